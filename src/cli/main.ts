#!/usr/bin/env node
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { parseCommandLine, USAGE, UsageError } from './args.js';
import { SCOPES, type Scope } from '../config/schema.js';
import { ConfigError, loadConfig, parseConfig } from '../config/load.js';
import { processEnv } from '../config/env.js';
import { buildDeps, startGateway } from '../main.js';
import { auditExport } from './audit-export.js';
import { auditFailed, appendOrFail } from './append-or-fail.js';
import { exportCommand, importCommand } from './catalog-commands.js';
import { AppError } from '../errors.js';
import { ApiKeyService } from '../access/api-keys.js';
import type { AuditEventInput } from '../audit/event.js';
import { CatalogUnavailable, writeTransaction } from '../catalog/database.js';
import type { Database } from '../catalog/tables.js';
import type { Kysely } from 'kysely';
import { serve } from '../cluster/serve.js';
import { startGenesysSimulator } from '../sources/genesys/simulator.js';
import { DEMO_AUDIO_DIR, DEMO_CALLER, DEMO_GENESYS_RECORDINGS, prepareDemoArchives } from './demo-seed.js';
import { demoConfigDocument } from './demo-config.js';
import { runDoctor } from './doctor.js';
import { runSim } from './sim.js';

/* The CLI talks to a human: console output is its interface. */
/* eslint-disable no-console */
async function main(argv: string[]): Promise<number> {
  // These parse their own options.
  if (argv[0] === 'doctor') return runDoctor(argv.slice(1), processEnv());
  if (argv[0] === 'sim') return runSim(argv.slice(1));
  if (argv[0] === 'verify') return (await import('../sync/integrity/cli.js')).runVerify(argv.slice(1), processEnv());
  // Each command takes only the options and arguments it acts on (COMMANDS in ./args.ts); the rest is refused.
  const { command, rest, values, help, positionals } = parseCommandLine(argv);
  if (!positionals.length || help) {
    console.log(USAGE);
    return help ? 0 : 2;
  }
  if (!command) {
    console.error(USAGE);
    return 2;
  }
  const env = processEnv();
  const configPath = values.config ?? env.CUSTODIAN_CONFIG;

  if (command === 'demo') return demo(configPath, env);

  const config = loadConfig(configPath, env);
  switch (command) {
    case 'serve': {
      // One process, or (server.workers > 1) a cluster primary and its workers: src/cluster/serve.ts.
      const code = await serve(config);
      if (code >= 0) process.exit(code);
      return -1;
    }
    case 'migrate': {
      const deps = await buildDeps(config);
      console.log('catalog schema is up to date');
      await deps.catalog.close();
      return 0;
    }
    case 'import': {
      const deps = await buildDeps(config);
      try {
        return await importCommand(deps, rest[0]!, new Set(config.tenants.map((t) => t.id)));
      } finally {
        await deps.catalog.close();
      }
    }
    case 'export': {
      if (values.tenant !== undefined && !config.tenants.some((t) => t.id === values.tenant)) throw new ConfigError(`--tenant: unknown tenant "${values.tenant}"`);
      const deps = await buildDeps(config);
      try {
        return await exportCommand(deps, { tenant: values.tenant ?? null, out: values.out });
      } finally {
        await deps.catalog.close();
      }
    }
    case 'keys create': {
      const tenant = values.tenant;
      const principal = values.principal;
      const scopes = (values.scopes ?? 'recordings:read').split(',').map((s) => s.trim());
      if (!tenant || !config.tenants.some((t) => t.id === tenant)) throw new ConfigError(`--tenant: unknown tenant "${tenant ?? ''}"`);
      if (!principal) throw new ConfigError('--principal is required');
      const bad = scopes.filter((s) => !(SCOPES as readonly string[]).includes(s));
      if (bad.length) throw new ConfigError(`--scopes: unknown scope(s) ${bad.join(', ')}; known: ${SCOPES.join(', ')}`);
      const deps = await buildDeps(config);
      try {
        // The key and its audit event commit together: a key issued unaudited is never left behind.
        const k = await audited(deps, 'no key was issued', async (trx, append) => {
          const issued = await new ApiKeyService(trx, []).issue(tenant, principal, scopes as Scope[], values.description);
          await append({ tenantId: tenant, principalId: 'cli', principalKind: 'system', action: 'admin.api_key.create', outcome: 'completed', detail: { key_id: issued.id, principal, scopes } });
          return issued;
        });
        console.log(k.key);
        console.error(`key ${k.id} for ${principal}@${tenant} (${scopes.join(' ')}); it is shown once and stored hashed`);
        return 0;
      } finally {
        await deps.catalog.close();
      }
    }
    case 'keys revoke': {
      const id = rest[0]!;
      const deps = await buildDeps(config);
      try {
        // The revocation and its audit event commit together: unaudited, the key stays as it was.
        const ok = await audited(deps, `key ${id} was not revoked`, async (trx, append) => {
          const revoked = await new ApiKeyService(trx, []).revoke(id);
          await append({ tenantId: null, principalId: 'cli', principalKind: 'system', action: 'admin.api_key.revoke', outcome: revoked ? 'completed' : 'failed', detail: { key_id: id } });
          return revoked;
        });
        console.error(ok ? `key ${id} revoked` : `no active key ${id}`);
        return ok ? 0 : 1;
      } finally {
        await deps.catalog.close();
      }
    }
    case 'sync': {
      const deps = await buildDeps(config);
      try {
        const { syncCommand } = await import('../sync/cli.js');
        return await syncCommand(deps, { tenant: values.tenant, source: values.source, since: values.since });
      } finally {
        await deps.sources.close();
        await deps.catalog.close();
      }
    }
    case 'report migration': {
      const deps = await buildDeps(config);
      try {
        const { reportCommand } = await import('../sync/cli.js');
        return await reportCommand(deps, { tenant: values.tenant, format: values.format, out: values.out });
      } finally {
        await deps.catalog.close();
      }
    }
    case 'audit export': {
      const deps = await buildDeps(config);
      try {
        const m = await auditExport(deps, { from: values.from, to: values.to, tenant: values.tenant, out: values.out });
        console.error(`${m.count} event(s) exported to ${values.out}; manifest signed by ${m.key_id}`);
        return 0;
      } finally {
        await deps.catalog.close();
      }
    }
    case 'audit verify': {
      const deps = await buildDeps(config);
      try {
        const r = await deps.auditRepo.verify();
        // No verdict is shown unaudited (a read of the whole trail is an audited action).
        await appendOrFail(deps, [{ tenantId: null, principalId: 'cli', principalKind: 'system', action: 'audit.verify', outcome: 'completed', detail: { ok: r.ok, checked: r.checked } }], `the chain was walked (${r.checked} event(s)) but no verdict is shown`);
        console.log(JSON.stringify(r, null, 2));
        return r.ok ? 0 : 1;
      } finally {
        await deps.catalog.close();
      }
    }
  }
}

/**
 * Runs an admin change and appends its audit event in one write transaction (the repository's
 * appendIn, as src/http/evidence.ts does): if the event cannot be written, the change rolls back
 * and the command fails with one line (`<undone>: the audit event could not be written (…)`).
 */
async function audited<T>(
  deps: Awaited<ReturnType<typeof buildDeps>>,
  undone: string,
  change: (trx: Kysely<Database>, append: (event: AuditEventInput) => Promise<void>) => Promise<T>,
): Promise<T> {
  const written: Awaited<ReturnType<typeof deps.auditRepo.appendIn>>[] = [];
  let auditError: { e: unknown } | undefined;
  try {
    const out = await writeTransaction(deps.catalog.db, (trx) =>
      change(trx, async (event) => {
        try {
          written.push(await deps.auditRepo.appendIn(trx, event));
        } catch (e) {
          auditError = { e };
          throw e;
        }
      }),
    );
    deps.auditRepo.published(written);
    return out;
  } catch (e) {
    // The change's own failure is its error; a failed audit write is the trail's.
    if (auditError) throw auditFailed(undone, auditError.e);
    throw e;
  }
}

async function demo(configPath: string | undefined, env: ReturnType<typeof processEnv>): Promise<number> {
  // With a config file, the demo seeds into that deployment's first tenants' data dir; without, embedded defaults.
  const dataDir = env.CUSTODIAN_DATA_DIR ?? './data';
  // Genesys Cloud in demo mode: the simulator, seeded with the demo's cloud recordings.
  const genesys = configPath ? null : await startGenesysSimulator({ layout: 'combined', clients: [{ id: 'demo-client', secret: randomBytes(16).toString('hex') }] });
  for (const r of genesys ? DEMO_GENESYS_RECORDINGS : []) {
    genesys!.addRecording({ conversationId: r.conversationId, recordingId: r.recordingId, fileState: r.fileState, path: join(DEMO_AUDIO_DIR, r.file), contentType: 'audio/wav' });
  }
  const client = genesys?.knobs.clients[0];
  const config =
    configPath || !genesys || !client
      ? loadConfig(configPath, env)
      : parseConfig(demoConfigDocument(dataDir, env, { loginBaseUrl: genesys.loginBaseUrl, apiBaseUrl: genesys.apiBaseUrl, clientId: client.id, clientSecret: client.secret }), env);
  const { records } = prepareDemoArchives(config.data_dir);
  const gw = await startGateway(config);
  const written = await gw.deps.recordings.upsertAll(records.filter((r) => config.tenants.some((t) => t.id === r.tenant_id)));
  const key = config.auth.api_keys.find((k) => k.id === 'demo')?.key.reveal() ?? '<your API key>';
  const otherKey = config.auth.api_keys.find((k) => k.id === 'other')?.key.reveal();
  gw.deps.logger.info({ url: gw.url, catalog: written }, 'custodian demo listening');
  const curl = (ref: string, format: string, out: string) => `  curl -sS -D - -o ${out} \\
    -H 'Authorization: Bearer ${key}' \\
    -H 'Content-Type: application/json' \\
    -d '{"request_id":"demo_req_'$RANDOM'","caller_id":"${DEMO_CALLER}","target_recording_ref":"${ref}","format_preference":"${format}","include_metadata":true,"audit_log_id":"log_demo_001"}' \\
    ${gw.url}/api/v1/recordings/retrieve`;
  console.log(`
custodian demo is up at ${gw.url}  (data in ${config.data_dir})

The original brief's request (its recording lives in Genesys Cloud, simulated here; it also has an Avaya copy):

${curl('rec_5f3a2b1c9d8e7f6g5h4i3j2k1l', 'wav', 'recording.wav')}

A legacy Avaya recording in G.729, transcoded to PCM WAV on the way:

${curl('avaya_7001', 'wav', 'avaya.wav')}

Other refs to try: 2023-10-27T14:30:00Z-8923 or avaya_8923 (the brief's call by call id or by its legacy id),
rec_cloud_only_0001 (Genesys only), rec_archived_0002 (archived in Genesys: 202 and a restore job to poll),
ms_1001 (µ-law), v_2002 (GSM), v_2003 (stereo), ms_1002 (raw G.729 frames), avaya_1234 (retention expired: 410),
avaya_5678 (legal hold); format_preference "original" (stored bytes) or "json" (metadata).
Player:   curl -H 'Authorization: Bearer ${key}' -H 'Range: bytes=0-1023' ${gw.url}/api/v1/recordings/ms_1001/media
Audit:    curl -H 'Authorization: Bearer ${key}' ${gw.url}/api/v1/audit/events
${otherKey ? `Isolation: the "other" tenant's key (${otherKey}) gets 404 for every ref above.\n` : ''}`);
  onSignals(async () => {
    await gw.close();
    await genesys?.close();
  });
  return -1;
}

function onSignals(close: () => Promise<void>): void {
  const stop = () => {
    close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exitCode = code;
  },
  (e: unknown) => {
    // What a person can act on is one line: a usage or config error, a refusal from the catalog or
    // a source (AppError), a file that cannot be opened or written. Anything else is a defect: its stack.
    if (e instanceof ConfigError || e instanceof UsageError || e instanceof AppError || e instanceof CatalogUnavailable) console.error(e.message);
    else if (typeof (e as NodeJS.ErrnoException | null)?.syscall === 'string') console.error((e as Error).message);
    else console.error(e);
    // A command that failed is over: exit now, even if something it started is still open (startGateway
    // closes what it built, but a handle left behind must not keep a failed `serve` alive without
    // listening — a supervisor would see a live process instead of a failed start). The empty write's
    // callback runs once what was written before it has left (stderr is asynchronous on some platforms).
    const code = e instanceof UsageError ? 2 : e instanceof ConfigError ? 78 : 1;
    process.exitCode = code;
    process.stderr.write('', () => process.exit(code));
  },
);
