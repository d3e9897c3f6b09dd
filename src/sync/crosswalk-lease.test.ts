import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type CatalogKind, openTestCatalog, type TestCatalog, usableCatalogs } from '../../test/support/catalogs.js';
import type { CatalogDb } from '../catalog/database.js';
import { openPostgres } from '../catalog/database.js';
import { type CatalogRecord, catalogRecord } from '../catalog/record.js';
import { runCrosswalk } from './crosswalk.js';
import { CROSSWALK_LEASE, runSync, type SyncDeps, syncConfigOf } from './runner.js';
import { SyncStore } from './store.js';
import { syncDepsFor } from './test-helpers.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** n legacy recordings, each with a cloud recording whose externalTag is its call id: n crosswalk pairs. */
function pairs(n: number): CatalogRecord[] {
  const records: CatalogRecord[] = [];
  for (let i = 0; i < n; i++) {
    records.push(catalogRecord.parse({ tenant_id: 'acme', source_system: 'avaya_aura', legacy_archive_id: `L-${i}`, locator: `l/${i}.wav`, call_id: `CALL-${i}` }));
    records.push(catalogRecord.parse({ tenant_id: 'acme', source_system: 'genesys_cloud', recording_id: `G-${i}`, conversation_id: `conv-${i}`, external_tag: `CALL-${i}` }));
  }
  return records;
}

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
    await syncDepsFor(cat, { sources: [] }).recordings.upsertAll(pairs(n));
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

/**
 * A pair qualifies while its legacy side is legacy-only and its cloud side cloud-only. Bug: the
 * merge re-read both recordings inside its transaction but not their copies, so a pair that had
 * stopped qualifying since the candidates were read (a sync page or a self-heal gave the legacy
 * recording a cloud copy) was merged all the same. And a run's abort signal was not heard: an
 * aborted crosswalk linked every pair to the end.
 */
describe.each(await usableCatalogs())('crosswalk pairs that change under it, and aborts, on %s', (kind: CatalogKind) => {
  let cat: TestCatalog;
  beforeEach(async () => {
    cat = await openTestCatalog(kind);
  });
  afterEach(async () => {
    await cat.dispose();
  });

  async function seed(n: number): Promise<void> {
    const records = pairs(n);
    // A pair by legacy id (Genesys externalTag = the legacy id) whose cloud recording has a call id of its own.
    records.push(catalogRecord.parse({ tenant_id: 'acme', source_system: 'avaya_aura', legacy_archive_id: 'L-tag', locator: 'l/tag.wav' }));
    records.push(catalogRecord.parse({ tenant_id: 'acme', source_system: 'genesys_cloud', recording_id: 'G-tag', conversation_id: 'conv-tag', external_tag: 'L-tag', call_id: 'CALL-tag' }));
    await syncDepsFor(cat, { sources: [] }).recordings.upsertAll(records);
  }

  const ctxOf = (d: SyncDeps, store: SyncStore, signal = new AbortController().signal) => ({
    db: d.catalog.db,
    recordings: d.recordings,
    audit: d.auditRepo,
    store,
    metrics: undefined,
    tenantId: 'acme',
    source: CROSSWALK_LEASE,
    kind: 'crosswalk' as const,
    runId: 'run-x',
    principalId: 'test',
    signal,
  });

  it('skips a pair whose legacy recording got a cloud copy, or whose cloud recording got a legacy one, after the candidates were read', async () => {
    await seed(2);
    const deps = syncDepsFor(cat, { sources: [] });
    const cfg = syncConfigOf(deps.config.tenants[0]!);
    /** Another writer between the candidates' read and the merges (the crosswalk reads the facts in between). */
    class RacingStore extends SyncStore {
      override async factsWithRecordings(t: string) {
        const facts = await super.factsWithRecordings(t);
        await deps.recordings.upsertAll([
          // A self-heal files another recording of conversation conv-0 on the legacy recording of CALL-0.
          catalogRecord.parse({ tenant_id: 'acme', source_system: 'genesys_cloud', recording_id: 'G-0-second', conversation_id: 'conv-0', call_id: 'CALL-0' }),
          // Another legacy source's page files its copy of CALL-tag on the cloud recording of that call id.
          catalogRecord.parse({ tenant_id: 'acme', source_system: 'verint', legacy_archive_id: 'V-tag', locator: 'v/tag.wav', call_id: 'CALL-tag' }),
        ]);
        return facts;
      }
    }
    const stats = await runCrosswalk(ctxOf(deps, new RacingStore(cat.db)), cfg);
    expect(stats).toMatchObject({ linked: 1, skipped: 2, conflicts: 0 });
    const linked = await cat.db.selectFrom('audit_events').select(['detail']).where('action', '=', 'sync.crosswalk.linked').execute();
    expect(linked.map((e) => (JSON.parse(e.detail!) as { value: string }).value)).toEqual(['CALL-1']);
    // Nothing merged for the two: each recording keeps its own copies.
    const ids = async (ref: string) => (await deps.recordings.findByRef('acme', ref))!.copies.map((c) => c.genesysRecordingId ?? c.legacyArchiveId).sort();
    expect(await ids('G-0-second')).toEqual(['G-0-second', 'L-0']);
    expect(await ids('G-0')).toEqual(['G-0']);
    expect(await ids('G-tag')).toEqual(['G-tag', 'V-tag']);
    // (L-tag names two recordings as a ref: the legacy one by its id, the cloud one by its tag.)
    const legacyTag = await cat.db.selectFrom('recording_copies').select('recording_pk').where('source_key', '=', 'L-tag').executeTakeFirstOrThrow();
    expect((await deps.recordings.get('acme', legacyTag.recording_pk))!.copies.map((c) => c.legacyArchiveId)).toEqual(['L-tag']);
    expect((await new SyncStore(cat.db).findings('acme')).filter((f) => f.kind === 'conflict')).toEqual([]);
  });

  it('an aborted run stops between merges and ends failed as aborted, like a source run', async () => {
    const N = 40;
    await seed(N);
    const deps = syncDepsFor(cat, { sources: [] });
    const appendIn = deps.auditRepo.appendIn.bind(deps.auditRepo);
    const ac = new AbortController();
    let merges = 0;
    deps.auditRepo.appendIn = async (...args: Parameters<typeof appendIn>) => {
      // The shutdown arrives during the fifth merge.
      if (++merges === 5) ac.abort();
      return appendIn(...args);
    };
    const r = await runSync(deps, { tenantId: 'acme', signal: ac.signal });
    expect(r.crosswalk).toMatchObject([{ tenant: 'acme', status: 'failed', error: { code: 'source.unavailable', message: 'sync aborted' } }]);
    const linked = await cat.db.selectFrom('audit_events').select('id').where('action', '=', 'sync.crosswalk.linked').execute();
    // The merge in flight commits; none starts after the abort.
    expect(linked).toHaveLength(5);
    expect((await new SyncStore(cat.db).runs('acme')).find((x) => x.kind === 'crosswalk')).toMatchObject({ status: 'failed', error: 'source.unavailable: sync aborted' });
    // No findings written by an aborted run.
    expect(await cat.db.selectFrom('crosswalk_findings').select('kind').execute()).toEqual([]);
  });
});
