import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type CatalogKind, openTestCatalog, type TestCatalog, usableCatalogs } from '../../test/support/catalogs.js';
import { LegacyHttpConnector } from '../sources/legacy-http/connector.js';
import { configFor, drain } from '../sources/legacy-http/test-helpers.js';
import { DEFAULT_SIM_USER, type LegacySimRecording, type LegacySimulator, startLegacySimulator } from '../sources/legacy-http/simulator.js';
import { locationOf } from '../sources/registry.js';
import { runSync, type SyncDeps } from './runner.js';
import { SyncStore } from './store.js';
import { syncDepsFor } from './test-helpers.js';

const DAY = 86_400_000;
const SINCE = new Date('2024-03-01T00:00:00.000Z');
const UNTIL = new Date('2024-03-04T00:00:00.000Z');

/** n segments over three days; every 3rd call has two segments (same UCID). */
function segments(n: number, idOf: (i: number) => string): LegacySimRecording[] {
  return Array.from({ length: n }, (_, i) => ({
    id: idOf(i),
    ucid: `0000100207${String(Math.floor(i / 2)).padStart(10, '0')}`,
    startedAt: new Date(SINCE.getTime() + Math.floor((i * 3 * DAY) / n) + 1),
    durationMs: 30_000 + (i % 50) * 1000,
    ani: `+1555${String(i).padStart(6, '0')}`,
    dnis: '+18005550100',
    bytes: `RIFF-seg-${i}`,
  }));
}

/** What the catalog must hold for the simulator's recordings: id → { state, locator, start }. */
async function catalogState(cat: TestCatalog, sourceSystem: string) {
  const rows = await cat.db
    .selectFrom('recording_copies as c')
    .leftJoin('sync_facts as f', (j) => j.onRef('f.tenant_id', '=', 'c.tenant_id').onRef('f.source_system', '=', 'c.source_system').onRef('f.source_key', '=', 'c.source_key'))
    .select(['c.legacy_archive_id', 'c.state', 'c.locator', 'f.started_at', 'f.duration_ms'])
    .where('c.tenant_id', '=', 'acme')
    .where('c.source_system', '=', sourceSystem)
    .execute();
  return new Map(rows.map((r) => [r.legacy_archive_id!, { state: r.state, locator: r.locator, startedAt: r.started_at, durationMs: r.duration_ms === null ? null : Number(r.duration_ms) }]));
}

const events = async (cat: TestCatalog, action: string) => cat.db.selectFrom('audit_events').selectAll().where('action', '=', action).orderBy('seq').execute();

describe.each(await usableCatalogs())('legacy search-API sync on %s', (kind: CatalogKind) => {
  let cat: TestCatalog;
  let sim: LegacySimulator;
  let deps: SyncDeps & { close(): Promise<void> };

  beforeEach(async () => {
    cat = await openTestCatalog(kind);
  });
  afterEach(async () => {
    await deps?.close();
    await sim?.close();
    await cat.dispose();
  });

  const sourceOf = (s: LegacySimulator, name = 'acr') => ({
    name,
    type: 'legacy-http',
    provider: s.provider,
    api_endpoint: s.endpoint,
    auth_type: s.provider === 'cisco_mediasense' ? 'session' : 'basic',
    username: DEFAULT_SIM_USER.username,
    password: DEFAULT_SIM_USER.password,
    backoff: { initial_ms: 5, max_ms: 20 },
  });

  it('Avaya: pages time windows, splits over-full ones, catalogs what the simulator holds, is idempotent, opens a copy, marks vanished segments DELETED', { timeout: 120_000 }, async () => {
    const N = 1200;
    const recs = segments(N, (i) => String(100_000_000_000_000 + i));
    // The recorder pages only 300 results per window: a day of 400 segments must be split.
    sim = await startLegacySimulator({ provider: 'avaya_aura', recordings: recs, knobs: { searchMaxResults: 300 } });
    deps = syncDepsFor(cat, { sources: [sourceOf(sim)], sync: { legacy_search: [{ source: 'acr', page_size: 100, max_window_results: 300 }] } });
    const first = await runSync(deps, { since: SINCE, until: UNTIL, crosswalk: false });
    expect(first.runs[0]).toMatchObject({ status: 'succeeded', kind: 'legacy-http', stats: { added: N, changed: 0, skipped: 0, hits: N, vanished: 0, overfull: [] } });
    expect((first.runs[0]!.stats as { splits: number }).splits).toBeGreaterThan(0);
    // Truth computed here: every segment, with its start and duration, located by inum.
    const got = await catalogState(cat, 'avaya_aura');
    expect(got.size).toBe(N);
    for (const r of recs) expect(got.get(r.id)).toEqual({ state: 'AVAILABLE', locator: `inum:${r.id}`, startedAt: (r.startedAt as Date).toISOString(), durationMs: r.durationMs });
    // The UCID is indexed (external_tag): it names both segments of the call.
    await expect(deps.recordings.findByRef('acme', recs[7]!.ucid!)).rejects.toMatchObject({ code: 'recording.ambiguous_ref' });
    expect((await new SyncStore(cat.db).read('acme', 'acr')).syncedUntil).toBe(UNTIL.toISOString());

    // The existing connector replays the copy by its locator, unchanged.
    const conn = new LegacyHttpConnector('acme', configFor(sim));
    const rec = await deps.recordings.findByRef('acme', recs[42]!.id);
    const media = await conn.open(locationOf(rec!.copies[0]!, null), { signal: new AbortController().signal });
    expect((await drain(media.body)).toString()).toBe('RIFF-seg-42');
    await conn.close();

    // Second run over the same range: nothing written, no mapping event.
    const before = (await cat.db.selectFrom('audit_events').select('id').execute()).length;
    const second = await runSync(deps, { since: SINCE, until: UNTIL, crosswalk: false });
    expect(second.runs[0]).toMatchObject({ status: 'succeeded', stats: { added: 0, changed: 0, inserted: 0, updated: 0, factsChanged: 0, vanished: 0, unchanged: N } });
    expect((await cat.db.selectFrom('audit_events').select('action').execute()).slice(before).map((e) => e.action)).toEqual(['sync.run']);

    // Three segments vanish from the recorder: marked DELETED (kept), audited old → new.
    const goneIds = [recs[5]!.id, recs[900]!.id, recs[N - 1]!.id];
    for (const id of goneIds) sim.removeRecording(id);
    const third = await runSync(deps, { since: SINCE, until: UNTIL, crosswalk: false });
    expect(third.runs[0]).toMatchObject({ status: 'succeeded', stats: { added: 0, changed: 3, vanished: 3 } });
    const after = await catalogState(cat, 'avaya_aura');
    expect(after.size).toBe(N);
    for (const id of goneIds) expect(after.get(id)?.state).toBe('DELETED');
    const changed = await events(cat, 'sync.mapping.changed');
    expect(changed).toHaveLength(3);
    expect(JSON.parse(changed[0]!.detail!)).toMatchObject({ old: { state: 'AVAILABLE' }, new: { state: 'DELETED' }, kind: 'legacy-http' });
    // Idempotent after the deletion too; a segment that comes back is AVAILABLE again.
    expect((await runSync(deps, { since: SINCE, until: UNTIL, crosswalk: false })).runs[0]).toMatchObject({ stats: { changed: 0, vanished: 0 } });
    sim.addRecording(recs[5]!);
    expect((await runSync(deps, { since: SINCE, until: UNTIL, crosswalk: false })).runs[0]).toMatchObject({ stats: { changed: 1, vanished: 0 } });
    expect((await catalogState(cat, 'avaya_aura')).get(recs[5]!.id)?.state).toBe('AVAILABLE');
    expect((await deps.auditRepo.verify()).ok).toBe(true);
  });

  it('Avaya: resumes after a crash at the stored page; a crashed run marks nothing; a segment appearing mid-run is picked up', { timeout: 60_000 }, async () => {
    const N = 600;
    const recs = segments(N, (i) => String(200_000_000_000_000 + i));
    const late: LegacySimRecording = { id: '299999999999999', ucid: 'late-ucid', startedAt: '2024-03-03T12:00:00.000Z', bytes: 'late' };
    sim = await startLegacySimulator({ provider: 'avaya_aura', recordings: recs, knobs: { lateRecordings: [{ afterSearches: 3, recording: late }] } });
    deps = syncDepsFor(cat, { sources: [sourceOf(sim)], sync: { legacy_search: [{ source: 'acr', page_size: 50 }] } });
    const crashAt = (n: number) => {
      let pages = 0;
      return () => {
        if (++pages === n) throw new Error(`simulated crash after page ${n}`);
      };
    };
    const crashed = await runSync(deps, { since: SINCE, until: UNTIL, crosswalk: false, onSearchPage: crashAt(7) });
    expect(crashed.runs[0]).toMatchObject({ status: 'failed' });
    const partial = await catalogState(cat, 'avaya_aura');
    expect(partial.size).toBeGreaterThan(0);
    expect(partial.size).toBeLessThan(N);
    const stored = (await new SyncStore(cat.db).read('acme', 'acr')).cursor as { kind: string; windowStart: string; page: number };
    expect(stored.kind).toBe('legacy-search');
    expect((await new SyncStore(cat.db).read('acme', 'acr')).syncedUntil).toBeNull();

    sim.clearLog();
    const resumed = await runSync(deps, { crosswalk: false });
    expect(resumed.runs[0]).toMatchObject({ status: 'succeeded', stats: { resumed: true, from: SINCE.toISOString(), to: UNTIL.toISOString(), added: N + 1 - partial.size } });
    const firstQuery = new URLSearchParams(sim.requests.find((r) => r.query.includes('from='))!.query);
    expect(firstQuery.get('from')).toBe(stored.windowStart);
    expect(Number(firstQuery.get('offset'))).toBe((stored.page - 1) * 50);
    // Truth computed here: every segment the simulator holds, the one that appeared mid-run included.
    const got = await catalogState(cat, 'avaya_aura');
    for (const r of [...recs, late]) expect(got.get(r.id)?.state).toBe('AVAILABLE');
    expect(got.size).toBe(N + 1);

    // A segment vanishes; a run that crashes after reading its whole window marks nothing.
    sim.removeRecording(recs[0]!.id);
    const crashed2 = await runSync(deps, { since: SINCE, until: UNTIL, crosswalk: false, onSearchPage: crashAt(6) });
    expect(crashed2.runs[0]).toMatchObject({ status: 'failed' });
    expect((await catalogState(cat, 'avaya_aura')).get(recs[0]!.id)?.state).toBe('AVAILABLE');
    expect(await events(cat, 'sync.mapping.changed')).toHaveLength(0);
    // The next complete run does.
    const full = await runSync(deps, { since: SINCE, until: UNTIL, crosswalk: false });
    expect(full.runs[0]).toMatchObject({ status: 'succeeded', stats: { added: 0, vanished: 1 } });
    expect((await catalogState(cat, 'avaya_aura')).get(recs[0]!.id)?.state).toBe('DELETED');
  });

  it('MediaSense: queries sessions by time range, maps state and duration, locates by session id', { timeout: 60_000 }, async () => {
    const N = 500;
    const recs = segments(N, (i) => `1a2b3c4d${String(i).padStart(8, '0')}`).map(({ ucid: _u, ani: _a, dnis: _d, ...r }, i) => ({ ...r, ...(i === 3 ? { sessionState: 'DELETED' } : {}) }));
    sim = await startLegacySimulator({ provider: 'cisco_mediasense', recordings: recs, knobs: { searchMaxResults: 100 } });
    deps = syncDepsFor(cat, { sources: [sourceOf(sim, 'ms')], sync: { legacy_search: [{ source: 'ms', page_size: 50, max_window_results: 100 }] } });
    const first = await runSync(deps, { since: SINCE, until: UNTIL, crosswalk: false });
    expect(first.runs[0]).toMatchObject({ status: 'succeeded', stats: { added: N, skipped: 0 } });
    // Without a total, a window is known over-full only once its deepest page is full: those pages are read again after the split.
    expect((first.runs[0]!.stats as { hits: number }).hits).toBeGreaterThan(N);
    expect((first.runs[0]!.stats as { splits: number }).splits).toBeGreaterThan(0);
    const got = await catalogState(cat, 'cisco_mediasense');
    expect(got.size).toBe(N);
    for (const [i, r] of recs.entries()) expect(got.get(r.id)).toEqual({ state: i === 3 ? 'DELETED' : 'AVAILABLE', locator: r.id, startedAt: (r.startedAt as Date).toISOString(), durationMs: r.durationMs });
    const conn = new LegacyHttpConnector('acme', configFor(sim));
    const rec = await deps.recordings.findByRef('acme', recs[10]!.id);
    const media = await conn.open(locationOf(rec!.copies[0]!, null), { signal: new AbortController().signal });
    expect((await drain(media.body)).toString()).toBe('RIFF-seg-10');
    await conn.close();
    // A sign-in expired between runs: the query signs in again.
    sim.expireSessions();
    const signIns = sim.signIns;
    const second = await runSync(deps, { since: SINCE, until: UNTIL, crosswalk: false });
    expect(second.runs[0]).toMatchObject({ status: 'succeeded', stats: { added: 0, changed: 0, inserted: 0, updated: 0, factsChanged: 0 } });
    expect(sim.signIns).toBeGreaterThan(signIns);
    expect(await events(cat, 'sync.mapping.changed')).toHaveLength(0);
  });
});
