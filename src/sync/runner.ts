import { setMaxListeners } from 'node:events';
import type { Kysely } from 'kysely';
import type { AuditRepository } from '../audit/audit-repository.js';
import type { RecordingRepository } from '../catalog/recording-repository.js';
import type { Database } from '../catalog/tables.js';
import type { Config, TenantConfig } from '../config/schema.js';
import { AppError, isAppError } from '../errors.js';
import type { Metrics } from '../http/metrics.js';
import { GenesysConnector } from '../sources/genesys/connector.js';
import type { SourceRegistry } from '../sources/registry.js';
import type { SyncContext } from './apply.js';
import { DEFAULT_SYNC_CONFIG, type LegacySyncSource, type SyncTenantConfig } from './config.js';
import { type CrosswalkStats, runCrosswalk } from './crosswalk.js';
import { type PageInfo, syncGenesys } from './genesys-sync.js';
import { type ArchiveLister, filesystemLister, s3Lister, syncLegacy } from './legacy-sync.js';
import { type LegacySearchPageInfo, syncLegacySearch } from './legacy-search.js';
import { createTimeSearch } from '../sources/legacy-http/time-search.js';
import { syncMetrics } from './metrics.js';
import { NO_PROGRESS, type Progress } from './progress.js';
import { SyncStore } from './store.js';

/** What the sync logs through (AppDeps' pino logger fits): structured fields first, never secrets. */
export interface SyncLogger {
  info(o: object, msg: string): void;
  warn(o: object, msg: string): void;
  error(o: object, msg: string): void;
}

/** What the sync needs of the composition root (AppDeps has all of it). */
export interface SyncDeps {
  config: Config;
  catalog: { db: Kysely<Database> };
  recordings: RecordingRepository;
  auditRepo: AuditRepository;
  sources: SourceRegistry;
  metrics?: Metrics;
  instanceId: string;
  /** Skipped conversations (warn) and runs that could not start (error). */
  logger?: SyncLogger;
}

export interface SyncRequest {
  tenantId?: string;
  source?: string;
  since?: Date;
  until?: Date;
  /** Who asked, for the audit trail. */
  principalId?: string;
  progress?: Progress;
  signal?: AbortSignal;
  /** Run the crosswalk after the sources (default true). */
  crosswalk?: boolean;
  /** Test hooks, called after each page is written and its cursor saved. */
  onGenesysPage?: (p: PageInfo) => void | Promise<void>;
  onLegacyPage?: (pagesDone: number) => void | Promise<void>;
  onSearchPage?: (p: LegacySearchPageInfo) => void | Promise<void>;
  /** Test hook: replaces the lister of a legacy source. */
  lister?: (tenantId: string, src: LegacySyncSource) => ArchiveLister | undefined;
}

export interface SourceRunResult {
  tenant: string;
  source: string;
  kind: SyncContext['kind'];
  status: 'succeeded' | 'failed' | 'busy';
  runId?: string;
  stats?: object;
  error?: { code: string; message: string };
}

export interface SyncReport {
  runs: SourceRunResult[];
  crosswalk: { tenant: string; status: 'succeeded' | 'failed' | 'busy'; stats?: CrosswalkStats; error?: { code: string; message: string } }[];
}

/** The crosswalk's lease name in sync_cursors (configured source names cannot start with ":"). */
export const CROSSWALK_LEASE = ':crosswalk';

export function syncConfigOf(t: TenantConfig): SyncTenantConfig {
  return t.sync ?? DEFAULT_SYNC_CONFIG;
}

interface Job {
  source: string;
  kind: SyncContext['kind'];
  run(ctx: SyncContext, owner: string): Promise<object & { to?: string }>;
}

/**
 * The sources a sync of this tenant runs, by name, read from its configuration alone (the CLI
 * checks --source with it before any run): its genesys sources (or those under
 * sync.genesys_sources), the filesystem/s3 sources under sync.legacy and the legacy-http ones
 * under sync.legacy_search. jobsOf below makes the same choice from the live connectors: keep
 * the two together.
 */
export function syncedSources(t: TenantConfig): string[] {
  const cfg = syncConfigOf(t);
  const typeOf = (name: string) => t.sources.find((s) => s.name === name)?.type;
  const genesys = t.sources.filter((s) => s.type === 'genesys' && (!cfg.genesys_sources || cfg.genesys_sources.includes(s.name))).map((s) => s.name);
  const legacy = cfg.legacy.map((l) => l.source).filter((n) => typeOf(n) === 'filesystem' || typeOf(n) === 's3');
  const search = cfg.legacy_search.map((l) => l.source).filter((n) => typeOf(n) === 'legacy-http');
  return [...genesys, ...legacy, ...search].sort();
}

function jobsOf(deps: SyncDeps, t: TenantConfig, req: SyncRequest): Job[] {
  const cfg = syncConfigOf(t);
  const jobs: Job[] = [];
  const progress = req.progress ?? NO_PROGRESS;
  for (const { connector, config } of deps.sources.sourcesOf(t.id)) {
    if (config.type !== 'genesys' || !(connector instanceof GenesysConnector)) continue;
    if (cfg.genesys_sources && !cfg.genesys_sources.includes(config.name)) continue;
    jobs.push({
      source: config.name,
      kind: 'genesys',
      run: (ctx, owner) =>
        syncGenesys(ctx, {
          connector,
          cfg,
          leaseOwner: owner,
          progress,
          ...(deps.logger ? { log: (level: 'warn', msg: string, o: object) => deps.logger?.[level](o, msg) } : {}),
          ...(req.since ? { since: req.since } : {}),
          ...(req.until ? { until: req.until } : {}),
          ...(req.onGenesysPage ? { onPage: req.onGenesysPage } : {}),
        }),
    });
  }
  for (const src of cfg.legacy) {
    const sc = t.sources.find((s) => s.name === src.source);
    if (!sc || (sc.type !== 'filesystem' && sc.type !== 's3')) continue;
    const kind = sc.type;
    jobs.push({
      source: src.source,
      kind,
      run: async (ctx, owner) => {
        const lister = req.lister?.(t.id, src) ?? (sc.type === 'filesystem' ? filesystemLister(sc) : s3Lister(sc));
        try {
          return await syncLegacy(ctx, {
            lister,
            src,
            cfg,
            leaseOwner: owner,
            progress,
            fresh: !!req.since,
            ...(req.onLegacyPage ? { onPage: req.onLegacyPage } : {}),
          });
        } finally {
          lister.close();
        }
      },
    });
  }
  for (const src of cfg.legacy_search) {
    const sc = t.sources.find((s) => s.name === src.source);
    if (!sc || sc.type !== 'legacy-http') continue;
    jobs.push({
      source: src.source,
      kind: 'legacy-http',
      run: async (ctx, owner) => {
        const search = createTimeSearch(sc);
        try {
          return await syncLegacySearch(ctx, {
            search,
            src,
            sourceSystem: src.source_system ?? sc.provider,
            cfg,
            leaseOwner: owner,
            progress,
            ...(req.since ? { since: req.since } : {}),
            ...(req.until ? { until: req.until } : {}),
            ...(req.onSearchPage ? { onPage: req.onSearchPage } : {}),
          });
        } finally {
          await search.close().catch(() => {});
        }
      },
    });
  }
  if (req.source) {
    const picked = jobs.filter((j) => j.source === req.source);
    if (!picked.length) throw new AppError('request.invalid', `--source: "${req.source}" is not a genesys source nor a source listed under sync.legacy or sync.legacy_search of tenant "${t.id}"`);
    return picked;
  }
  return jobs;
}

const errorOf = (e: unknown) => (e instanceof AppError ? { code: e.code, message: e.message } : { code: 'internal', message: (e as Error)?.message ?? String(e) });

/**
 * One sync: for each tenant (or the one asked), each of its sources in turn under the source's
 * lease (one run at a time per source across instances), then the crosswalk under its own lease.
 * A failed source does not stop the others; its cursor stays for the next run to resume.
 */
export async function runSync(deps: SyncDeps, req: SyncRequest = {}): Promise<SyncReport> {
  const tenants = req.tenantId ? deps.config.tenants.filter((t) => t.id === req.tenantId) : deps.config.tenants;
  if (req.tenantId && !tenants.length) throw new AppError('request.invalid', `--tenant: unknown tenant "${req.tenantId}"`);
  const store = new SyncStore(deps.catalog.db);
  const metrics = deps.metrics ? syncMetrics(deps.metrics.registry) : undefined;
  const owner = deps.instanceId;
  const signal = req.signal ?? new AbortController().signal;
  // Listings run concurrently, each request listening on the run's signal.
  setMaxListeners(0, signal);
  const principalId = req.principalId ?? 'sync';
  const report: SyncReport = { runs: [], crosswalk: [] };

  for (const t of tenants) {
    const cfg = syncConfigOf(t);
    const base = { db: deps.catalog.db, recordings: deps.recordings, audit: deps.auditRepo, store, metrics, tenantId: t.id, principalId, signal };
    for (const job of jobsOf(deps, t, req)) {
      try {
        await store.claim(t.id, job.source, owner, cfg.lease_ms);
      } catch (e) {
        const err = errorOf(e);
        // Busy is a live lease held by another owner, nothing else: a database error is a failure.
        const busy = isAppError(e) && e.code === 'sync.busy';
        if (!busy) deps.logger?.error({ tenant: t.id, source: job.source, kind: job.kind, error: err }, 'sync: could not claim the source lease');
        report.runs.push({ tenant: t.id, source: job.source, kind: job.kind, status: busy ? 'busy' : 'failed', error: err });
        metrics?.runs.inc({ kind: job.kind, status: busy ? 'busy' : 'failed' });
        continue;
      }
      let runId: string | undefined;
      try {
        runId = await store.startRun(t.id, job.source, job.kind, req.since ? { from: req.since.toISOString() } : {}).catch((e: unknown) => {
          deps.logger?.error({ tenant: t.id, source: job.source, kind: job.kind, error: errorOf(e) }, 'sync: could not start the run');
          throw e;
        });
        const ctx: SyncContext = { ...base, source: job.source, kind: job.kind, runId };
        const stats = await job.run(ctx, owner);
        await store.finishRun(runId, 'succeeded', stats);
        // Windowed runs (Genesys, legacy search) end at `to`: the next one starts there minus the overlap.
        await store.succeed(t.id, job.source, owner, stats.to ?? null);
        await deps.auditRepo.append({ tenantId: t.id, principalId, principalKind: 'system', action: 'sync.run', outcome: 'completed', detail: { run_id: runId, source: job.source, kind: job.kind, stats } });
        report.runs.push({ tenant: t.id, source: job.source, kind: job.kind, status: 'succeeded', runId, stats });
        metrics?.runs.inc({ kind: job.kind, status: 'succeeded' });
      } catch (e) {
        const err = errorOf(e);
        if (runId) await store.finishRun(runId, 'failed', {}, `${err.code}: ${err.message}`).catch(() => {});
        await deps.auditRepo
          .append({ tenantId: t.id, principalId, principalKind: 'system', action: 'sync.run', outcome: 'failed', errorCode: err.code, detail: { ...(runId ? { run_id: runId } : {}), source: job.source, kind: job.kind, error: err.message } })
          .catch(() => {});
        report.runs.push({ tenant: t.id, source: job.source, kind: job.kind, status: 'failed', ...(runId ? { runId } : {}), error: err });
        metrics?.runs.inc({ kind: job.kind, status: 'failed' });
      } finally {
        await store.release(t.id, job.source, owner).catch(() => {});
      }
      req.progress?.done();
    }

    if (req.crosswalk === false) continue;
    const claimedAt = Date.now();
    try {
      await store.claim(t.id, CROSSWALK_LEASE, owner, cfg.lease_ms);
    } catch (e) {
      report.crosswalk.push({ tenant: t.id, status: 'busy', error: errorOf(e) });
      continue;
    }
    const runId = await store.startRun(t.id, CROSSWALK_LEASE, 'crosswalk', {});
    // The crosswalk saves no cursor page by page: its lease is heartbeaten on a timer while it
    // runs, and it stops (sync.busy, like a source run) before a merge once the lease is lost.
    const lease = store.keepLease(t.id, CROSSWALK_LEASE, owner, cfg.lease_ms, claimedAt);
    try {
      const stats = await runCrosswalk({ ...base, source: CROSSWALK_LEASE, kind: 'crosswalk', runId }, cfg, lease);
      await store.finishRun(runId, 'succeeded', stats);
      await store.succeed(t.id, CROSSWALK_LEASE, owner, null);
      report.crosswalk.push({ tenant: t.id, status: 'succeeded', stats });
      metrics?.runs.inc({ kind: 'crosswalk', status: 'succeeded' });
    } catch (e) {
      const err = errorOf(e);
      await store.finishRun(runId, 'failed', {}, `${err.code}: ${err.message}`).catch(() => {});
      report.crosswalk.push({ tenant: t.id, status: 'failed', error: err });
      metrics?.runs.inc({ kind: 'crosswalk', status: 'failed' });
    } finally {
      await lease.stop();
      await store.release(t.id, CROSSWALK_LEASE, owner).catch(() => {});
    }
  }
  return report;
}
