import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { ApiKeyService } from './access/api-keys.js';
import { JwtVerifier } from './access/jwt.js';
import { clusterRateLimiter, memoryRateLimiter, postgresRateLimiter } from './access/rate-limit.js';
import { buildApp } from './app.js';
import { AuditRepository } from './audit/audit-repository.js';
import { Checkpointer } from './audit/checkpointer.js';
import { AuditRecorder } from './audit/recorder.js';
import { type CatalogDb, openCatalog } from './catalog/database.js';
import { tagResponses } from './cluster/worker-header.js';
import { migrateToLatest } from './catalog/migrations.js';
import { RecordingRepository } from './catalog/recording-repository.js';
import { RequestRepository } from './catalog/request-repository.js';
import { ConfigError } from './config/load.js';
import type { Config } from './config/schema.js';
import type { AppDeps } from './deps.js';
import { applyHeapGrowth } from './heap-growth.js';
import { HandoffClock } from './http/handoff-clock.js';
import { Metrics } from './http/metrics.js';
import { JobRepository } from './jobs/job-repository.js';
import { S3Staging } from './jobs/s3-staging.js';
import { LocalStaging, type Staging } from './jobs/staging.js';
import { abortForShutdown } from './jobs/run-job.js';
import { JobWorker } from './jobs/worker.js';
import { HoldRepository } from './holds/hold-repository.js';
import { LocalKeyring } from './keys/keyring.js';
import { KmsKeyService } from './keys/kms.js';
import { createLogger } from './logger.js';
import { Transcoder } from './media/transcoder.js';
import { GenesysRefFinder } from './resolve/genesys-finder.js';
import { Resolver } from './resolve/resolver.js';
import { GenesysConnector } from './sources/genesys/connector.js';
import { createConnector } from './sources/factory.js';
import { clusterBudgetStore, memoryBudgetStore, postgresBudgetStore } from './sources/request-budget.js';
import { type ConnectorFactory, SourceRegistry } from './sources/registry.js';
import { startSyncScheduler } from './sync/scheduler.js';

export interface Gateway {
  app: FastifyInstance;
  deps: AppDeps;
  /** Base URL it listens on (after listen). */
  url: string;
  close(): Promise<void>;
}

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|localhost)$/;

/** Plain HTTP off loopback would expose recordings and bearer tokens (PCI DSS 4.2.1). */
export function checkTransport(config: Config): void {
  if (!config.server.tls && !LOOPBACK.test(config.server.host) && !config.server.allow_insecure_http) {
    throw new ConfigError(`server.host: plain HTTP on ${config.server.host} is refused; configure server.tls or set server.allow_insecure_http (TLS terminated in front)`);
  }
}

/** Closes what buildDeps opened (and the app, when it was built), each step on its own: the first failure must not hide. */
async function closeAfterFailedStart(deps: AppDeps, app: FastifyInstance | undefined): Promise<void> {
  const steps: [string, () => Promise<unknown> | unknown][] = [
    ['app', () => app?.close()],
    ['sources', () => deps.sources.close()],
    ['staging', () => deps.staging.close?.()],
    ['catalog', () => deps.catalog.close()],
  ];
  for (const [what, step] of steps) {
    try {
      await step();
    } catch (e) {
      deps.logger.warn({ err: e }, `closing the ${what} after a failed start failed`);
    }
  }
}

export interface BuildDepsOptions {
  logger?: Logger;
  catalog?: CatalogDb;
  connectorFactory?: ConnectorFactory;
  metrics?: Metrics;
  /**
   * Set in a node:cluster worker of `custodian serve` (server.workers > 1; src/cluster/): its
   * cluster worker id. The primary has run the migrations; on SQLite the rate limits and request
   * budgets are kept by the primary; responses carry X-Custodian-Worker.
   */
  clusterWorker?: number;
}

/** The composition root: every adapter is built here and nowhere else. */
export async function buildDeps(config: Config, opts: BuildDepsOptions = {}): Promise<AppDeps> {
  const logger = opts.logger ?? createLogger(config.logging.level);
  // What this build opened, closed in reverse order when a later step fails (a migration, auth.jwt's
  // keys, the rate limiter's table): a CLI command would otherwise live on, never exiting, on the
  // catalog's pool, and the SQLite file would keep its connections. A catalog the caller passed is theirs.
  const opened: [string, () => Promise<unknown> | undefined][] = [];
  try {
    return await build(config, opts, logger, (what, close) => opened.push([what, close]));
  } catch (e) {
    for (const [what, close] of opened.reverse()) {
      try {
        await close();
      } catch (closeError) {
        // The original error is the one to report; this one is only logged.
        logger.warn({ err: closeError }, `closing the ${what} after a failed build failed`);
      }
    }
    throw e;
  }
}

async function build(config: Config, opts: BuildDepsOptions, logger: Logger, opened: (what: string, close: () => Promise<unknown> | undefined) => void): Promise<AppDeps> {
  let catalog = opts.catalog;
  if (!catalog) {
    const own = openCatalog(config);
    opened('catalog', () => own.close());
    catalog = own;
  }
  // In a cluster worker the primary migrated once before forking: concurrent migrators race on SQLite.
  if (opts.clusterWorker === undefined) await migrateToLatest(catalog.db, catalog.dialect);
  const recordings = new RecordingRepository(catalog.db);
  const keys = config.keys.provider === 'aws_kms' ? KmsKeyService.fromConfig(config.keys.aws_kms!) : new LocalKeyring(join(config.data_dir, 'keys', 'staging.key'));
  // The key service also verifies the trail's signed checkpoints.
  const auditRepo = new AuditRepository(catalog.db, catalog.dialect, keys);
  // Several instances on one PostgreSQL share each source's request budget there.
  // The workers of one cluster on SQLite share theirs through the primary.
  const budgets = catalog.pgPool ? postgresBudgetStore(catalog.pgPool) : opts.clusterWorker !== undefined ? clusterBudgetStore() : memoryBudgetStore();
  // One ffmpeg pool for the whole process: the media layer's and a connector's that composes its
  // answer with ffmpeg (a MediaSense session's tracks merged into one call) share its limits.
  const transcoder = new Transcoder({
    ffmpegPath: config.media.ffmpeg_path,
    maxConcurrent: config.media.max_concurrent_transcodes,
    maxQueued: config.media.max_queued_transcodes,
    timeoutMs: config.media.transcode_timeout_ms,
  });
  const sources = new SourceRegistry(config.tenants, opts.connectorFactory ?? ((t, c) => createConnector(t, c, budgets, transcoder)));
  opened('sources', () => sources.close());
  // Per tenant, its own Genesys sources answer for refs the catalog does not know yet.
  const finders = new Map(
    config.tenants.map((t) => [
      t.id,
      sources
        .sourcesOf(t.id)
        .flatMap(({ connector, config: c }) =>
          c.type === 'genesys' && c.fallback_lookup && connector instanceof GenesysConnector ? [new GenesysRefFinder(connector, c.fallback_lookback_days)] : [],
        ),
    ]),
  );
  const metrics = opts.metrics ?? new Metrics();
  metrics.watchSources(() => sources.all() as { kind: string; stats?: () => object }[]);
  const staticKeys = config.auth.api_keys.map((k) => ({ id: k.id, tenant: k.tenant, principal: k.principal, scopes: k.scopes, key: k.key }));
  const jwt = config.auth.jwt ? await JwtVerifier.create(config.auth.jwt) : null;
  // Several instances share one PostgreSQL catalog, so they share one budget there too; the
  // workers of one cluster on SQLite share theirs through the primary.
  const rateLimiter = catalog.pgPool
    ? await postgresRateLimiter(catalog.pgPool, config.auth.rate_limit.max, config.auth.rate_limit.window_ms)
    : opts.clusterWorker !== undefined
      ? clusterRateLimiter(config.auth.rate_limit.max, config.auth.rate_limit.window_ms)
      : memoryRateLimiter(config.auth.rate_limit.max, config.auth.rate_limit.window_ms);
  // S3 lets every instance serve what any of them staged; local is <data_dir>/staging.
  const staging: Staging = config.jobs.staging.type === 's3' ? new S3Staging(config.jobs.staging) : new LocalStaging(join(config.data_dir, 'staging'));
  opened('staging', () => staging.close?.());
  return {
    config,
    logger,
    catalog,
    recordings,
    requests: new RequestRepository(catalog.db),
    auditRepo,
    audit: new AuditRecorder(auditRepo),
    apiKeys: new ApiKeyService(catalog.db, staticKeys),
    jwt,
    rateLimiter,
    sources,
    resolver: new Resolver(recordings, (tenantId) => finders.get(tenantId) ?? []),
    transcoder,
    metrics,
    jobs: new JobRepository(catalog.db, catalog.dialect),
    staging,
    keys,
    holds: new HoldRepository(catalog.db),
    handedOff: new Set(),
    handoffClock: new HandoffClock(),
    instanceId: `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`,
  };
}

/** The TLS files, read once; one that cannot be read is the field's error, not a stack. */
function readTls(tls: NonNullable<Config['server']['tls']>): { cert: Buffer; key: Buffer } {
  const read = (field: 'cert_file' | 'key_file') => {
    try {
      return readFileSync(tls[field]);
    } catch (e) {
      throw new ConfigError(`server.tls.${field}: cannot read ${tls[field]} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    }
  };
  return { cert: read('cert_file'), key: read('key_file') };
}

/**
 * Builds the app and listens. What fails here fails after the dependencies are up (the catalog and
 * its pool, the sources), so the caller closes them; a certificate and key node:tls
 * refuses (not PEM, not a pair) is the server.tls field's error.
 */
async function listen(deps: AppDeps, config: Config, opts: BuildDepsOptions, built: (app: FastifyInstance) => void): Promise<FastifyInstance> {
  const tls = config.server.tls;
  let app: FastifyInstance;
  try {
    app = await buildApp(deps, tls ? { https: readTls(tls) } : {});
  } catch (e) {
    if (tls && /^ERR_OSSL/.test(String((e as NodeJS.ErrnoException).code))) {
      throw new ConfigError(`server.tls: ${tls.cert_file} and ${tls.key_file} are not a usable PEM certificate and private key (${(e as Error).message})`);
    }
    throw e;
  }
  built(app);
  if (opts.clusterWorker !== undefined) tagResponses(app, opts.clusterWorker);
  await app.listen({ host: config.server.host, port: config.server.port });
  return app;
}

export async function startGateway(config: Config, opts: BuildDepsOptions = {}): Promise<Gateway> {
  checkTransport(config);
  applyHeapGrowth(config.server.heap_growing_percent);
  const deps = await buildDeps(config, opts);
  const tls = config.server.tls;
  let built: FastifyInstance | undefined;
  let app: FastifyInstance;
  try {
    app = await listen(deps, config, opts, (a) => (built = a));
  } catch (e) {
    // Nothing may stay open behind a failed start (the catalog's pool, the sources' connections and
    // timers): the process would live on without ever listening.
    await closeAfterFailedStart(deps, built);
    throw e;
  }
  const worker = new JobWorker(deps);
  deps.worker = worker;
  worker.start();
  const checkpointer = new Checkpointer(deps.auditRepo, deps.keys, {
    everyEvents: config.audit.checkpoint_every_events,
    intervalMs: config.audit.checkpoint_interval_ms,
    log: (level, msg, o) => deps.logger[level](o, msg),
  });
  deps.checkpointer = checkpointer;
  checkpointer.start();
  // Tenants with sync.schedule_interval_ms are synced from here; per-source leases keep one run across instances.
  const scheduler = startSyncScheduler(deps, (level, msg, o) => deps.logger[level](o, msg));
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : config.server.port;
  const host = config.server.host.includes(':') ? `[${config.server.host}]` : config.server.host;
  const url = `${tls ? 'https' : 'http'}://${host}:${port}`;
  let closing: Promise<void> | undefined;
  return {
    app,
    deps,
    url,
    close: () =>
      (closing ??= (async () => {
        // Stop accepting, give streams the grace period, then cut what is left; close sources and the catalog last.
        // The job worker stops claiming now; its running jobs and 202 hand-offs get the same grace,
        // then are handed back to the queue for another instance (JobWorker.stop).
        const jobsStopped = worker.stop(config.server.shutdown_grace_ms);
        const grace = setTimeout(() => app.server.closeAllConnections(), config.server.shutdown_grace_ms);
        await app.close();
        clearTimeout(grace);
        await scheduler.stop();
        await jobsStopped;
        // A handed-off fetch must not outlive the catalog it reports to: one a request handed off
        // after the worker stopped is aborted now, and let settle (its job goes back to the queue).
        for (const h of deps.handedOff) abortForShutdown(h.abort);
        // So must a catalog miss's search that outlived its request (Resolver.resolve): its write-back too.
        await Promise.allSettled([...[...deps.handedOff].map((h) => h.done), deps.resolver.close()]);
        // The last events of this run are covered by a signed checkpoint before the catalog closes.
        await checkpointer.stop().catch((e: unknown) => deps.logger.error({ err: e }, 'final audit checkpoint failed'));
        await deps.sources.close();
        await deps.staging.close?.();
        await deps.catalog.close();
      })()),
  };
}
