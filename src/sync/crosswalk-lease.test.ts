import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type CatalogKind, openTestCatalog, type TestCatalog, usableCatalogs } from '../../test/support/catalogs.js';
import type { CatalogDb } from '../catalog/database.js';
import { openPostgres } from '../catalog/database.js';
import { catalogRecord } from '../catalog/record.js';
import { runCrosswalk } from './crosswalk.js';
import { CROSSWALK_LEASE, runSync, type SyncDeps, syncConfigOf } from './runner.js';
import { SyncStore } from './store.js';
import { syncDepsFor } from './test-helpers.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Two instances and one tenant's crosswalk. The lease is heartbeaten while the crosswalk runs (a
 * second instance gets `busy`, however long it takes), a run that loses it stops like a source run
 * (`sync.busy`), and a merge re-reads both recordings inside its transaction: a pair another run
 * has just merged is skipped, with no second `linked` event and no conflict finding.
 */
describe.each(await usableCatalogs())('crosswalk lease and merges across instances on %s', (kind: CatalogKind) => {
  let cat: TestCatalog;
  /** The second instance's catalog: its own pool on PostgreSQL; the same connection on SQLite (one writer either way). */
  let other: CatalogDb;
  beforeEach(async () => {
    cat = await openTestCatalog(kind);
    other = kind === 'postgres' ? openPostgres(String(cat.catalogConfig.url), 5) : cat;
  });
  afterEach(async () => {
    if (other !== cat) await other.close();
    await cat.dispose();
  });

  async function seed(n: number): Promise<void> {
    const records = [];
    for (let i = 0; i < n; i++) {
      records.push(catalogRecord.parse({ tenant_id: 'acme', source_system: 'avaya_aura', legacy_archive_id: `L-${i}`, locator: `l/${i}.wav`, call_id: `CALL-${i}` }));
      records.push(catalogRecord.parse({ tenant_id: 'acme', source_system: 'genesys_cloud', recording_id: `G-${i}`, conversation_id: `conv-${i}`, external_tag: `CALL-${i}` }));
    }
    await syncDepsFor(cat, { sources: [] }).recordings.upsertAll(records);
  }

  /** Each merge waits `ms` inside its transaction: a crosswalk as slow as a large tenant's. */
  function slowMerges(deps: SyncDeps, ms: number): void {
    const appendIn = deps.auditRepo.appendIn.bind(deps.auditRepo);
    deps.auditRepo.appendIn = async (...args: Parameters<typeof appendIn>) => {
      await sleep(ms);
      return appendIn(...args);
    };
  }

  async function trail() {
    const linked = await cat.db.selectFrom('audit_events').select(['ref']).where('action', '=', 'sync.crosswalk.linked').execute();
    const recordings = await cat.db.selectFrom('recordings').select('id').where('tenant_id', '=', 'acme').execute();
    const findings = await cat.db.selectFrom('crosswalk_findings').select(['kind', 'detail']).where('tenant_id', '=', 'acme').execute();
    return { linked: linked.length, absorbedTwice: linked.length - new Set(linked.map((e) => e.ref)).size, recordings: recordings.length, findings };
  }

  it('a crosswalk outliving lease_ms keeps its lease: a second instance gets busy, each pair is linked once', async () => {
    const N = 60;
    await seed(N);
    const tenant = { sources: [], sync: { lease_ms: 1000 } };
    const A = syncDepsFor(cat, tenant, 'host-a:1:aaaaaa');
    const B = syncDepsFor(other, tenant, 'host-b:2:bbbbbb');
    slowMerges(A, 40); // ~2.4 s of merges against a 1 s lease
    const ra = runSync(A, { tenantId: 'acme' });
    await sleep(1500);
    const b = await runSync(B, { tenantId: 'acme' });
    const a = await ra;
    expect(b.crosswalk).toMatchObject([{ tenant: 'acme', status: 'busy', error: { code: 'sync.busy' } }]);
    expect(a.crosswalk).toMatchObject([{ tenant: 'acme', status: 'succeeded', stats: { linked: N, conflicts: 0 } }]);
    expect(await trail()).toEqual({ linked: N, absorbedTwice: 0, recordings: N, findings: [] });
    // Released at the end, as before.
    const lease = await cat.db.selectFrom('sync_cursors').select(['lease_owner']).where('tenant_id', '=', 'acme').where('source', '=', CROSSWALK_LEASE).executeTakeFirstOrThrow();
    expect(lease.lease_owner).toBeNull();
  });

  it('a crosswalk whose lease another instance took stops with sync.busy, like a source run', async () => {
    const N = 60;
    await seed(N);
    const tenant = { sources: [], sync: { lease_ms: 1000 } };
    const A = syncDepsFor(cat, tenant, 'host-a:1:aaaaaa');
    slowMerges(A, 40);
    const ra = runSync(A, { tenantId: 'acme' });
    await sleep(600);
    // As if A had stalled past its lease and host-b had claimed it.
    await cat.db.updateTable('sync_cursors').set({ lease_owner: 'host-b:2:bbbbbb', lease_until: new Date(Date.now() + 60_000).toISOString() }).where('tenant_id', '=', 'acme').where('source', '=', CROSSWALK_LEASE).execute();
    const a = await ra;
    expect(a.crosswalk).toMatchObject([{ tenant: 'acme', status: 'failed', error: { code: 'sync.busy' } }]);
    const t = await trail();
    expect(t.linked).toBeGreaterThan(0);
    expect(t.linked).toBeLessThan(N);
    expect(t.absorbedTwice).toBe(0);
    const runs = await new SyncStore(cat.db).runs('acme');
    expect(runs.find((r) => r.kind === 'crosswalk')).toMatchObject({ status: 'failed', error: expect.stringContaining('sync.busy') });
    // host-b's lease is left alone.
    const lease = await cat.db.selectFrom('sync_cursors').select(['lease_owner']).where('tenant_id', '=', 'acme').where('source', '=', CROSSWALK_LEASE).executeTakeFirstOrThrow();
    expect(lease.lease_owner).toBe('host-b:2:bbbbbb');
  });

  it('two crosswalks merging the same pairs at once: each pair linked once, no false conflict', async () => {
    const N = 40;
    await seed(N);
    const tenant = { sources: [] };
    const A = syncDepsFor(cat, tenant, 'host-a:1:aaaaaa');
    const B = syncDepsFor(other, tenant, 'host-b:2:bbbbbb');
    slowMerges(A, 5);
    slowMerges(B, 5);
    const cfg = syncConfigOf(A.config.tenants[0]!);
    const ctx = (d: SyncDeps, runId: string) => ({
      db: d.catalog.db,
      recordings: d.recordings,
      audit: d.auditRepo,
      store: new SyncStore(d.catalog.db),
      metrics: undefined,
      tenantId: 'acme',
      source: CROSSWALK_LEASE,
      kind: 'crosswalk' as const,
      runId,
      principalId: 'test',
      signal: new AbortController().signal,
    });
    const [sa, sb] = await Promise.all([runCrosswalk(ctx(A, 'run-a'), cfg), runCrosswalk(ctx(B, 'run-b'), cfg)]);
    expect(sa.linked + sb.linked).toBe(N);
    expect(sa.conflicts + sb.conflicts).toBe(0);
    expect(await trail()).toEqual({ linked: N, absorbedTwice: 0, recordings: N, findings: [] });
  });
});
