import { createHash } from 'node:crypto';
import { cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuditRepository } from '../src/audit/audit-repository.js';
import { openCatalog } from '../src/catalog/database.js';
import { migrateToLatest } from '../src/catalog/migrations.js';
import type { CatalogRecord } from '../src/catalog/record.js';
import { RecordingRepository } from '../src/catalog/recording-repository.js';
import { parseConfig } from '../src/config/load.js';
import { LocalKeyring } from '../src/keys/keyring.js';
import { usableCatalogs } from './support/catalogs.js';
import { AUDIO, retrieveBody } from './support/gateway.js';
import { createTestDatabase } from './support/postgres.js';
import { type Served, alive, logLines, serve, until, workersSeen, writeConfig } from './support/serve-process.js';

const PCM = readFileSync(join(AUDIO, 'call_mono_pcm16_8k.wav'));
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
/** Principals with their own rate-limit budgets: alice for the limit test, the others for concurrent traffic. */
const PRINCIPALS = ['alice', 'bob', 'carol', 'dave', 'erin'];
const keyOf = (p: string) => `cst_acme-${p}_${createHash('sha256').update(p).digest('hex').slice(0, 32)}`;
const RATE_MAX = 10;

/** A fresh connection per request (no keep-alive): the cluster hands each connection to the next worker. */
function get(url: string, key?: string, opts: { method?: string; body?: string } = {}): Promise<{ status: number; worker: string; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = key ? { authorization: `Bearer ${key}` } : {};
    if (opts.body) headers['content-type'] = 'application/json';
    const req = request(url, { method: opts.method ?? 'GET', agent: false, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, worker: String(res.headers['x-custodian-worker'] ?? ''), body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}


describe.each(await usableCatalogs())('custodian serve with server.workers: 2 on %s', (kind) => {
  let dir: string;
  let drop: (() => Promise<void>) | undefined;
  let doc: Record<string, unknown>;
  let srv: Served;
  let url: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'custodian-cluster-'));
    cpSync(AUDIO, join(dir, 'archive'), { recursive: true });
    let catalog: Record<string, unknown> = { driver: 'sqlite', path: join(dir, 'data', 'catalog.sqlite') };
    if (kind === 'postgres') {
      const db = await createTestDatabase();
      drop = db.drop;
      catalog = { driver: 'postgres', url: db.url, pool_size: 4 };
    }
    doc = {
      data_dir: join(dir, 'data'),
      allow_inline_secrets: true,
      server: { port: 0, workers: 2, shutdown_grace_ms: 2_000 },
      catalog,
      logging: { level: 'info' },
      jobs: { concurrency: 1 },
      audit: { checkpoint_every_events: 20 },
      auth: {
        api_keys: [
          ...PRINCIPALS.map((p) => ({ id: `acme-${p}`, tenant: 'acme', principal: p, scopes: ['recordings:read', 'audit:read'], key: keyOf(p) })),
          // Asks for the verify verdict after the others spent their rate-limit budget.
          { id: 'acme-ops', tenant: 'acme', principal: 'ops', scopes: ['audit:read'], key: keyOf('ops') },
        ],
        rate_limit: { max: RATE_MAX, window_ms: 60_000 },
      },
      tenants: [{ id: 'acme', sources: [{ name: 'archive', type: 'filesystem', root: join(dir, 'archive'), source_systems: ['avaya_aura'] }] }],
    };
    // One recording to stream, written before the gateway starts (its primary then finds the schema current).
    const cat = openCatalog(parseConfig(doc, {}));
    await migrateToLatest(cat.db, cat.dialect);
    await new RecordingRepository(cat.db).upsertAll([{ tenant_id: 'acme', call_id: 'c-local', source_system: 'avaya_aura', legacy_archive_id: 'local-1', locator: 'call_mono_pcm16_8k.wav', state: 'AVAILABLE', legal_hold: false } as CatalogRecord]);
    await cat.close();
    srv = serve(writeConfig(dir, doc));
    url = await until('custodian listening', srv, () => logLines(srv).find((l) => l.msg === 'custodian listening')?.address as string | undefined);
  }, 60_000);

  afterAll(async () => {
    // Whatever a failed test left running.
    for (const pid of [srv?.child.pid, ...(srv ? workersSeen(srv).values() : [])]) if (pid && alive(pid)) process.kill(pid, 'SIGKILL');
    await drop?.();
    rmSync(dir, { recursive: true, force: true });
  });

  it('both workers answer, and the rate limit is one budget across them', async () => {
    expect(workersSeen(srv).size).toBe(2);
    const statuses: number[] = [];
    const answeredBy = new Set<string>();
    for (let i = 0; i < RATE_MAX + 4; i++) {
      const r = await get(`${url}/api/v1/recordings`, keyOf('alice'));
      statuses.push(r.status);
      answeredBy.add(r.worker);
    }
    expect(answeredBy).toEqual(new Set(['1', '2']));
    // Per worker the budget would allow 2 × RATE_MAX.
    expect(statuses).toEqual([...Array(RATE_MAX).fill(200), 429, 429, 429, 429]);
  });

  it('keeps one audit chain under concurrent streams through both workers', async () => {
    const calls = PRINCIPALS.slice(1).flatMap((p) =>
      Array.from({ length: 6 }, () => get(`${url}/api/v1/recordings/retrieve`, keyOf(p), { method: 'POST', body: JSON.stringify(retrieveBody({ target_recording_ref: 'c-local', caller_id: p })) })),
    );
    const res = await Promise.all(calls);
    for (const r of res) {
      expect(r.status, r.body.toString().slice(0, 300)).toBe(200);
      expect(sha256(r.body)).toBe(sha256(PCM));
    }
    expect(new Set(res.map((r) => r.worker))).toEqual(new Set(['1', '2']));
    const verify = JSON.parse((await get(`${url}/api/v1/audit/verify`, keyOf('ops'))).body.toString());
    expect(verify, JSON.stringify(verify)).toMatchObject({ ok: true });
    // The whole chain's count is the operator's walk (custodian audit verify), read from the catalog both workers write.
    const cat = openCatalog(parseConfig(doc, {}));
    try {
      const r = await new AuditRepository(cat.db, cat.dialect, new LocalKeyring(join(dir, 'data', 'keys', 'staging.key'))).verify({ checkpoints: false });
      expect(r.ok, JSON.stringify(r)).toBe(true);
      expect(r.checked).toBeGreaterThanOrEqual(res.length * 2);
    } finally {
      await cat.close();
    }
  });

  it('replaces a worker that dies', async () => {
    const victim = workersSeen(srv).get(1)!;
    process.kill(victim, 'SIGKILL');
    const replacement = await until('worker 3', srv, () => workersSeen(srv).get(3));
    expect(replacement).not.toBe(victim);
    expect(logLines(srv).some((l) => l.msg === 'worker died unexpectedly; restarting it' && l.pid === victim)).toBe(true);
    const seen = new Set<string>();
    for (let i = 0; i < 20 && !seen.has('3'); i++) seen.add((await get(`${url}/healthz`)).worker);
    expect(seen.has('3')).toBe(true);
    expect(alive(victim)).toBe(false);
  });

  it('SIGTERM shuts every worker down gracefully and leaves a chain that verifies with its checkpoints', async () => {
    const pids = [...workersSeen(srv).entries()].filter(([id]) => id !== 1).map(([, pid]) => pid);
    expect(pids.every(alive)).toBe(true);
    srv.child.kill('SIGTERM');
    expect(await srv.exited).toBe(0);
    expect(pids.filter(alive)).toEqual([]);
    expect(logLines(srv).some((l) => l.msg === 'every worker has exited' && l.exit_code === 0)).toBe(true);

    const config = parseConfig(doc, {});
    const cat = openCatalog(config);
    try {
      const r = await new AuditRepository(cat.db, cat.dialect, new LocalKeyring(join(config.data_dir, 'keys', 'staging.key'))).verify();
      expect(r.ok, JSON.stringify(r)).toBe(true);
      // Each worker signs a final checkpoint on its way out; at least one covers the head.
      expect(r.checkpoints).toBeGreaterThanOrEqual(1);
    } finally {
      await cat.close();
    }
  }, 40_000);
});
