import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { type CatalogKind, openTestCatalog, type TestCatalog, usableCatalogs } from '../../test/support/catalogs.js';
import { uuidFrom } from '../sources/genesys/simulator-analytics.js';
import { type GenesysSimulator, startGenesysSimulator } from '../sources/genesys/simulator.js';
import { retentionStatus } from '../resolve/retention.js';
import { keepSkipped, nextWindowEnd, planRange, windowCount } from './genesys-sync.js';
import { DEFAULT_SYNC_CONFIG } from './config.js';
import { runSync, type SyncDeps, type SyncLogger } from './runner.js';
import { SyncStore } from './store.js';
import { genesysSource, syncDepsFor } from './test-helpers.js';

const DAY = 86_400_000;
const SINCE = new Date('2024-03-01T00:00:00.000Z');
const UNTIL = new Date('2024-03-05T00:00:00.000Z');
const N = 2000;
/** The scenario tests use fewer recordings and smaller pages: the same paging, a fraction of the round trips. */
const SMALL = 400;

/** N recordings spread over four days, one per conversation; a few with externalTag / SIP Call-ID / deleteDate. */
function seed(sim: GenesysSimulator, n: number): void {
  for (let i = 0; i < n; i++) {
    sim.addRecording({
      conversationId: uuidFrom(`conv-${i}`),
      recordingId: uuidFrom(`rec-${i}`),
      startTime: new Date(SINCE.getTime() + Math.floor((i * 4 * DAY) / n)),
      durationMs: 60_000 + (i % 100) * 1000,
      bytes: 'x',
      fileState: i % 50 === 0 ? 'ARCHIVED' : 'AVAILABLE',
      ...(i % 10 === 0 ? { externalTag: `verint-${i}` } : {}),
      ...(i % 7 === 0 ? { protocolCallId: `sip-${i}@pbx` } : {}),
      ...(i % 3 === 0 ? { deleteDate: '2025-03-01T00:00:00.000Z' } : {}),
    });
  }
}

async function counts(cat: TestCatalog) {
  const rec = await cat.db.selectFrom('recordings').select((eb) => eb.fn.countAll<number>().as('n')).where('tenant_id', '=', 'acme').executeTakeFirstOrThrow();
  const cop = await cat.db.selectFrom('recording_copies').select((eb) => eb.fn.countAll<number>().as('n')).where('tenant_id', '=', 'acme').executeTakeFirstOrThrow();
  return { recordings: Number(rec.n), copies: Number(cop.n) };
}

/** A logger that keeps what it was given, serialised, for the assertions. */
function captureLogger(): SyncLogger & { lines: { level: string; msg: string; o: object; text: string }[] } {
  const lines: { level: string; msg: string; o: object; text: string }[] = [];
  const at = (level: string) => (o: object, msg: string) => void lines.push({ level, msg, o, text: JSON.stringify(o) + msg });
  return { lines, info: at('info'), warn: at('warn'), error: at('error') };
}

async function auditActions(cat: TestCatalog, action: string) {
  return cat.db.selectFrom('audit_events').selectAll().where('action', '=', action).orderBy('seq').execute();
}

describe('windows', () => {
  it('never crosses a UTC midnight nor the end, and counts its windows', () => {
    const from = Date.parse('2024-03-01T10:00:00Z');
    expect(new Date(nextWindowEnd(from, from + 3 * DAY, DAY)).toISOString()).toBe('2024-03-02T00:00:00.000Z');
    expect(nextWindowEnd(from, from + 3600_000, DAY)).toBe(from + 3600_000);
    expect(windowCount('2024-03-01T10:00:00Z', '2024-03-04T10:00:00Z', DAY)).toBe(4);
  });
  it('starts after the last success minus the overlap, or resumes an unfinished run', () => {
    const until = new Date('2024-03-10T00:00:00Z');
    const p = planRange(DEFAULT_SYNC_CONFIG, { cursor: null, syncedUntil: '2024-03-09T00:00:00.000Z' }, undefined, until);
    expect(p.cursor.from).toBe('2024-03-08T23:00:00.000Z');
    expect(p.resumed).toBe(false);
    const r = planRange(DEFAULT_SYNC_CONFIG, { cursor: { ...p.cursor, page: 7 }, syncedUntil: null }, undefined, until);
    expect(r).toMatchObject({ resumed: true, cursor: { page: 7 } });
    expect(planRange(DEFAULT_SYNC_CONFIG, { cursor: { ...p.cursor, page: 7 }, syncedUntil: null }, new Date('2024-03-01T00:00:00Z'), until).resumed).toBe(false);
  });
});

describe('skipped conversations to retry', () => {
  const at = (i: number) => ({ id: `c-${i}`, start: new Date(SINCE.getTime() + i).toISOString() });
  it('keeps the first time each was skipped, drops those that synced, and drops the oldest beyond the bound, counting them', () => {
    const a = keepSkipped([at(1), at(2)], [at(2), at(3)], new Set(['c-1']), 3);
    expect(a).toEqual({ list: [at(2), at(3)], dropped: 0 });
    const b = keepSkipped(a.list, [at(4), at(5), at(6)], new Set(), 3);
    expect(b).toEqual({ list: [at(4), at(5), at(6)], dropped: 2 });
  });
});

describe.each(await usableCatalogs())('Genesys sync on %s', (kind: CatalogKind) => {
  let cat: TestCatalog;
  let sim: GenesysSimulator;
  let deps: SyncDeps & { close(): Promise<void> };

  beforeEach(async () => {
    cat = await openTestCatalog(kind);
    sim = await startGenesysSimulator({ logLimit: 50_000 });
  });
  const setup = (n: number, sync: Record<string, unknown> = {}) => {
    seed(sim, n);
    deps = syncDepsFor(cat, { sources: [genesysSource(sim)], sync: { concurrency: 16, ...sync } });
  };
  afterEach(async () => {
    await deps?.close();
    await sim.close();
    await cat.dispose();
  });

  it('pages day windows, survives 429s, is idempotent, and follows state changes with audited old → new', { timeout: 120_000 }, async () => {
    setup(N);
    sim.rateLimitNext(2, 1);
    const first = await runSync(deps, { since: SINCE, until: UNTIL, crosswalk: false });
    expect(first.runs).toHaveLength(1);
    expect(first.runs[0]).toMatchObject({ status: 'succeeded', stats: { added: N, changed: 0, windows: 4, recordings: N, skipped: 0 } });
    expect(await counts(cat)).toEqual({ recordings: N, copies: N });
    // Every query is a day window with the recording filter, never a longer interval.
    const queries = sim.requests.filter((r) => r.path.endsWith('/details/query')).map((r) => JSON.parse(r.body) as { interval: string; segmentFilters: unknown });
    for (const q of queries) {
      const [a, b] = q.interval.split('/');
      expect(Date.parse(b!) - Date.parse(a!)).toBeLessThanOrEqual(DAY);
      expect(JSON.stringify(q.segmentFilters)).toContain('"recording"');
    }
    const rec = await deps.recordings.findByRef('acme', 'verint-10');
    expect(rec?.conversationId).toBe(uuidFrom('conv-10'));
    expect(rec?.copies[0]).toMatchObject({ genesysRecordingId: uuidFrom('rec-10'), state: 'AVAILABLE', connector: 'genesys', origin: 'GENESYS_CLOUD' });
    expect((await deps.recordings.findByRef('acme', 'sip-14@pbx'))?.id).toBeDefined();
    expect((await deps.recordings.findByRef('acme', uuidFrom('rec-0')))?.copies[0]).toMatchObject({ state: 'ARCHIVED', sourceRetentionExpiry: '2025-03-01T00:00:00.000Z' });
    const added = await auditActions(cat, 'sync.mapping.added');
    expect(added.reduce((n, e) => n + (JSON.parse(e.detail!) as { count: number }).count, 0)).toBe(N);
    expect((await new SyncStore(cat.db).read('acme', 'genesys')).syncedUntil).toBe(UNTIL.toISOString());

    // Second run over the same range: nothing changes, nothing is audited as a mapping change.
    const eventsBefore = (await cat.db.selectFrom('audit_events').select('id').execute()).length;
    const second = await runSync(deps, { since: SINCE, until: UNTIL, crosswalk: false });
    expect(second.runs[0]).toMatchObject({ status: 'succeeded', stats: { added: 0, changed: 0, inserted: 0, updated: 0, factsChanged: 0, unchanged: N } });
    const eventsAfter = await cat.db.selectFrom('audit_events').select(['action']).execute();
    expect(eventsAfter.slice(eventsBefore).map((e) => e.action)).toEqual(['sync.run']);

    // Deleted at the source: the copies stay in the catalog, marked DELETED, each change audited.
    for (const i of [1, 2, 3]) sim.setFileState(uuidFrom(`conv-${i}`), uuidFrom(`rec-${i}`), 'DELETED');
    const third = await runSync(deps, { since: SINCE, until: new Date(SINCE.getTime() + DAY), crosswalk: false });
    expect(third.runs[0]).toMatchObject({ stats: { added: 0, changed: 3 } });
    const changed = await auditActions(cat, 'sync.mapping.changed');
    expect(changed).toHaveLength(3);
    expect(JSON.parse(changed[0]!.detail!)).toMatchObject({ old: { state: 'AVAILABLE' }, new: { state: 'DELETED' }, kind: 'genesys' });
    expect(changed[0]!.recording_pk).toBe((await deps.recordings.findByRef('acme', uuidFrom('rec-1')))!.id);
    expect(await counts(cat)).toEqual({ recordings: N, copies: N });
    expect((await deps.auditRepo.verify()).ok).toBe(true);
  });

  it('picks up recordings that appear mid-run; late arrivals in a finished window come with the next run', async () => {
    setup(SMALL, { page_size: 25 });
    let injected = false;
    const report = await runSync(deps, {
      since: SINCE,
      until: UNTIL,
      crosswalk: false,
      onGenesysPage: () => {
        if (injected) return;
        injected = true;
        // One in a window still to come, one before the page we are on (shifts the paging: a duplicate), one in a finished window later.
        sim.addRecording({ conversationId: 'late-future', recordingId: 'late-future-rec', startTime: '2024-03-04T12:00:00Z', bytes: 'x' });
        sim.addRecording({ conversationId: 'late-shift', recordingId: 'late-shift-rec', startTime: '2024-03-01T00:00:00.500Z', bytes: 'x' });
      },
    });
    expect(report.runs[0]).toMatchObject({ status: 'succeeded', stats: { added: SMALL + 1 } });
    expect(await deps.recordings.findByRef('acme', 'late-future-rec')).not.toBeNull();
    // The conversation inserted before the current page position pushed one conversation onto two pages: written once.
    expect(await counts(cat)).toEqual({ recordings: SMALL + 1, copies: SMALL + 1 });
    // The next run over a range covering the late arrival finds it.
    const next = await runSync(deps, { since: SINCE, until: new Date(SINCE.getTime() + DAY), crosswalk: false });
    expect(next.runs[0]).toMatchObject({ stats: { added: 1, changed: 0 } });
    expect(await deps.recordings.findByRef('acme', 'late-shift-rec')).not.toBeNull();
  });

  it('resumes from the stored cursor after a crash mid-run, without re-reading finished pages', async () => {
    setup(SMALL, { page_size: 25 });
    let pages = 0;
    const crashed = await runSync(deps, {
      since: SINCE,
      until: UNTIL,
      crosswalk: false,
      onGenesysPage: () => {
        if (++pages === 9) throw new Error('simulated crash after page 9');
      },
    });
    expect(crashed.runs[0]).toMatchObject({ status: 'failed' });
    const partial = await counts(cat);
    expect(partial.recordings).toBeGreaterThan(0);
    expect(partial.recordings).toBeLessThan(SMALL);
    const stored = (await new SyncStore(cat.db).read('acme', 'genesys')).cursor as { windowStart: string; page: number };
    expect(stored).toMatchObject({ kind: 'genesys' });
    expect((await new SyncStore(cat.db).read('acme', 'genesys')).syncedUntil).toBeNull();

    sim.clearLog();
    const resumed = await runSync(deps, { crosswalk: false });
    expect(resumed.runs[0]).toMatchObject({ status: 'succeeded', stats: { resumed: true, added: SMALL - partial.copies, from: SINCE.toISOString(), to: UNTIL.toISOString() } });
    const firstQuery = JSON.parse(sim.requests.find((r) => r.path.endsWith('/details/query'))!.body) as { interval: string; paging: { pageNumber: number } };
    expect(firstQuery.interval.startsWith(stored.windowStart)).toBe(true);
    expect(firstQuery.paging.pageNumber).toBe(stored.page);
    expect(await counts(cat)).toEqual({ recordings: SMALL, copies: SMALL });
    const runs = await new SyncStore(cat.db).runs('acme');
    expect(runs.map((r) => r.status)).toEqual(['succeeded', 'failed']);
  });

  it('splits a window holding more conversations than the query pages, down to min_window_ms, and reports what it could not page', { timeout: 60_000 }, async () => {
    // The API pages 100 results per interval here; each day holds 150.
    sim.set({ analyticsMaxResults: 100, analyticsIntervalMatch: 'interval' });
    setup(600, { page_size: 25, max_window_results: 100 });
    const report = await runSync(deps, { since: SINCE, until: UNTIL, crosswalk: false });
    expect(report.runs[0]).toMatchObject({ status: 'succeeded', stats: { added: 600, recordings: 600, overfull: [] } });
    expect((report.runs[0]!.stats as { splits: number }).splits).toBeGreaterThanOrEqual(4);
    expect(await counts(cat)).toEqual({ recordings: 600, copies: 600 });
    // Never asked for a page the API refuses.
    expect(sim.requests.filter((r) => r.path.endsWith('/details/query') && r.status !== 200)).toEqual([]);
    // Idempotent with the splits too.
    expect((await runSync(deps, { since: SINCE, until: UNTIL, crosswalk: false })).runs[0]).toMatchObject({ stats: { added: 0, changed: 0 } });

    // 150 conversations in one second: even a min_window_ms window is over-full; paged as deep as allowed and reported.
    for (let i = 0; i < 150; i++) sim.addRecording({ conversationId: uuidFrom(`burst-${i}`), recordingId: uuidFrom(`burst-rec-${i}`), startTime: new Date(Date.parse('2024-03-05T10:00:00.000Z') + i), bytes: 'x' });
    const burst = await runSync(deps, { since: new Date('2024-03-05T00:00:00Z'), until: new Date('2024-03-06T00:00:00Z'), crosswalk: false });
    const stats = burst.runs[0]!.stats as { added: number; overfull: { interval: string; totalHits: number }[] };
    expect(stats.added).toBe(100);
    expect(stats.overfull).toHaveLength(1);
    expect(stats.overfull[0]!.totalHits).toBe(150);
    const [a, b] = stats.overfull[0]!.interval.split('/');
    expect(Date.parse(b!) - Date.parse(a!)).toBeGreaterThanOrEqual(DEFAULT_SYNC_CONFIG.min_window_ms);
    expect(Date.parse(b!) - Date.parse(a!)).toBeLessThan(2 * DEFAULT_SYNC_CONFIG.min_window_ms);

    // An API answering whole days whatever the interval: a half is as full as its parent, so the day is not split further.
    sim.set({ analyticsIntervalMatch: 'day' });
    sim.clearLog();
    const days = await runSync(deps, { since: new Date('2024-03-05T00:00:00Z'), until: new Date('2024-03-06T00:00:00Z'), crosswalk: false });
    expect(days.runs[0]).toMatchObject({ status: 'succeeded', stats: { added: 0 } });
    expect((days.runs[0]!.stats as { overfull: unknown[] }).overfull.length).toBeGreaterThan(0);
    expect(sim.requests.filter((r) => r.path.endsWith('/details/query')).length).toBeLessThan(20);
  });

  it('one run at a time per source: a live lease held elsewhere makes the run busy; an expired one is taken over', async () => {
    setup(SMALL);
    const store = new SyncStore(cat.db);
    await store.claim('acme', 'genesys', 'other-instance', 60_000);
    const busy = await runSync(deps, { since: SINCE, until: UNTIL, crosswalk: false });
    expect(busy.runs[0]).toMatchObject({ status: 'busy', error: { code: 'sync.busy' } });
    expect(await counts(cat)).toEqual({ recordings: 0, copies: 0 });
    await expect(store.claim('acme', 'genesys', 'third', 60_000)).rejects.toMatchObject({ code: 'sync.busy' });
    await cat.db.updateTable('sync_cursors').set({ lease_until: new Date(Date.now() - 1).toISOString() }).execute();
    const ok = await runSync(deps, { since: new Date('2024-03-04T00:00:00Z'), until: UNTIL, crosswalk: false });
    expect(ok.runs[0]).toMatchObject({ status: 'succeeded' });
    // Released after the run.
    const row = await cat.db.selectFrom('sync_cursors').selectAll().where('source', '=', 'genesys').executeTakeFirstOrThrow();
    expect(row.lease_owner).toBeNull();
  });

  it('skips and reports a conversation the client may not view (403 division), keeps its copies, and carries on', async () => {
    setup(40, { page_size: 10 });
    expect((await runSync(deps, { since: SINCE, until: UNTIL, crosswalk: false })).runs[0]).toMatchObject({ status: 'succeeded', stats: { added: 40 } });
    const log = captureLogger();
    deps = Object.assign(deps, { logger: log });
    // One conversation already cataloged moves to a division the client lacks recording:recording:view in, one new one is there from the start.
    const known = uuidFrom('conv-5');
    const fresh = uuidFrom('conv-new');
    sim.addRecording({ conversationId: fresh, recordingId: uuidFrom('rec-new'), startTime: new Date(SINCE.getTime() + 3_600_000 + 7), bytes: 'x' });
    sim.denyConversation(known);
    sim.denyConversation(fresh, 'missing.any.division.permissions');
    sim.addRecording({ conversationId: uuidFrom('conv-late'), recordingId: uuidFrom('rec-late'), startTime: new Date(SINCE.getTime() + 3 * DAY + 60_000), bytes: 'x' });
    const r = await runSync(deps, { since: SINCE, until: UNTIL, crosswalk: false });
    expect(r.runs[0]).toMatchObject({ status: 'succeeded', stats: { added: 1, changed: 0, vanished: 0, skipped: 2, notPermitted: 2, recordings: 40 } });
    const stats = r.runs[0]!.stats as { invalid: { origin: string; message: string }[] };
    expect(stats.invalid).toEqual(
      expect.arrayContaining([
        { origin: `conversation ${known}`, message: 'not permitted to list its recordings (Genesys 403 missing.division.permission)' },
        { origin: `conversation ${fresh}`, message: 'not permitted to list its recordings (Genesys 403 missing.any.division.permissions)' },
      ]),
    );
    // The pages after the refused conversation are cataloged, the cursor is gone and the range synced.
    expect(await deps.recordings.findByRef('acme', uuidFrom('rec-late'))).not.toBeNull();
    expect(await deps.recordings.findByRef('acme', uuidFrom('rec-new'))).toBeNull();
    const stored = await new SyncStore(cat.db).read('acme', 'genesys');
    expect(stored).toMatchObject({ cursor: null, syncedUntil: UNTIL.toISOString() });
    // Its copy cataloged earlier is not taken for deleted.
    expect((await deps.recordings.findByRef('acme', uuidFrom('rec-5')))?.copies[0]).toMatchObject({ state: 'AVAILABLE' });
    expect(await auditActions(cat, 'sync.mapping.changed')).toEqual([]);
    // Logged once each, at warn, with the conversation and Genesys's code, and nothing of the credentials.
    const warned = log.lines.filter((l) => l.level === 'warn');
    expect(warned).toHaveLength(2);
    expect(warned.map((l) => l.o)).toEqual(
      expect.arrayContaining([expect.objectContaining({ tenant: 'acme', source: 'genesys', conversation_id: known, genesys_status: 403, genesys_code: 'missing.division.permission' })]),
    );
    for (const l of log.lines) expect(l.text).not.toMatch(/custodian-sim-secret|Bearer|access_token/);
  });

  it('retries the conversations a 403 skipped on the next runs, whatever their range, until they sync or are gone', async () => {
    setup(40, { page_size: 10 });
    // conv-10 (tag verint-10) lies in a division the client may not see yet; conv-gone too, and Genesys deletes it later.
    const denied = uuidFrom('conv-10');
    const gone = uuidFrom('conv-gone');
    sim.addRecording({ conversationId: gone, recordingId: uuidFrom('rec-gone'), startTime: new Date(SINCE.getTime() + 7_200_000), bytes: 'x' });
    sim.denyConversation(denied);
    sim.denyConversation(gone);
    const first = await runSync(deps, { since: SINCE, until: UNTIL, crosswalk: false });
    expect(first.runs[0]).toMatchObject({ status: 'succeeded', stats: { added: 39, notPermitted: 2, retried: 0, stillSkipped: 2 } });
    // The next run covers a later day only (the cursor has passed both): they are asked again, still refused.
    const LATER = new Date(UNTIL.getTime() - DAY);
    const second = await runSync(deps, { since: LATER, until: UNTIL, crosswalk: false });
    expect(second.runs[0]).toMatchObject({ status: 'succeeded', stats: { added: 0, notPermitted: 0, skipped: 0, retried: 2, recovered: 0, stillSkipped: 2 } });
    expect(await deps.recordings.findByRef('acme', uuidFrom('rec-10'))).toBeNull();

    // The permission is granted, and conv-gone deleted: the same org as a second simulator sees it.
    const sim2 = await startGenesysSimulator({ logLimit: 50_000 });
    seed(sim2, 40);
    const deps2 = syncDepsFor(cat, { sources: [genesysSource(sim2)], sync: { concurrency: 16, page_size: 10 } });
    try {
      const third = await runSync(deps2, { since: LATER, until: UNTIL, crosswalk: false });
      expect(third.runs[0]).toMatchObject({ status: 'succeeded', stats: { added: 1, retried: 2, recovered: 2, stillSkipped: 0 } });
      // Cataloged with what the conversation's details say (its externalTag is a ref), like any synced conversation.
      const rec = await deps2.recordings.findByRef('acme', 'verint-10');
      expect(rec?.conversationId).toBe(denied);
      expect(rec?.copies[0]).toMatchObject({ genesysRecordingId: uuidFrom('rec-10'), state: 'AVAILABLE' });
      expect(await deps2.recordings.findByRef('acme', uuidFrom('rec-gone'))).toBeNull();
      // Only the endpoints the sync already uses, and the details query narrowed to the conversation and its day.
      const paths = new Set(sim2.requests.filter((r) => r.role === 'api').map((r) => r.path.replace(/conversations\/[^/]+\/recordingmetadata/, 'conversations/{id}/recordingmetadata')));
      expect([...paths].sort()).toEqual(['/api/v2/analytics/conversations/details/query', '/api/v2/conversations/{id}/recordingmetadata']);
      const byId = sim2.requests.filter((r) => r.path.endsWith('/details/query') && r.body.includes(denied)).map((r) => JSON.parse(r.body) as { interval: string });
      expect(byId).toHaveLength(1);
      const [a, b] = byId[0]!.interval.split('/');
      expect(Date.parse(b!) - Date.parse(a!)).toBeLessThanOrEqual(DAY);
      // Nothing left to retry.
      expect((await runSync(deps2, { since: LATER, until: UNTIL, crosswalk: false })).runs[0]).toMatchObject({ stats: { added: 0, retried: 0, stillSkipped: 0 } });
    } finally {
      await deps2.close();
      await sim2.close();
    }
  });

  it('skips a conversation refused by the recording segment view check (recording.yml lists it for GET …/recordingmetadata), not the whole sync', async () => {
    setup(40, { page_size: 10 });
    const denied = uuidFrom('conv-5');
    sim.denyConversation(denied, 'recording.recordingsegment.view.permission.check.failed');
    const r = await runSync(deps, { since: SINCE, until: UNTIL, crosswalk: false });
    expect(r.runs[0]).toMatchObject({ status: 'succeeded', stats: { added: 39, notPermitted: 1, skipped: 1, stillSkipped: 1 } });
    expect((r.runs[0]!.stats as { invalid: unknown[] }).invalid).toEqual([
      { origin: `conversation ${denied}`, message: 'not permitted to list its recordings (Genesys 403 recording.recordingsegment.view.permission.check.failed)' },
    ]);
    // The cursor passed it: the range is synced, the conversation is left to the retry list.
    expect(await new SyncStore(cat.db).read('acme', 'genesys')).toMatchObject({ cursor: null, syncedUntil: UNTIL.toISOString() });
    expect(await deps.recordings.findByRef('acme', uuidFrom('rec-6'))).not.toBeNull();
  });

  it('clears a deleteDate Genesys removed (the recording PUT removes delete dates), audited old → new, so the copy is not taken for deleted after it', async () => {
    const conv = uuidFrom('conv-dd');
    const recId = uuidFrom('rec-dd');
    const rec = { conversationId: conv, recordingId: recId, startTime: new Date(SINCE.getTime() + 3_600_000), bytes: 'x' };
    sim.addRecording({ ...rec, deleteDate: '2026-01-01T00:00:00.000Z' });
    deps = syncDepsFor(cat, { sources: [genesysSource(sim)] });
    expect((await runSync(deps, { since: SINCE, until: UNTIL, crosswalk: false })).runs[0]).toMatchObject({ status: 'succeeded', stats: { added: 1 } });
    expect((await deps.recordings.findByRef('acme', recId))?.copies[0]?.sourceRetentionExpiry).toBe('2026-01-01T00:00:00.000Z');
    // The org's admin lifts the delete date (a dispute): Genesys lists the recording without deleteDate.
    sim.addRecording(rec);
    const second = await runSync(deps, { since: SINCE, until: UNTIL, crosswalk: false });
    expect(second.runs[0]).toMatchObject({ status: 'succeeded', stats: { added: 0, changed: 1 } });
    const got = await deps.recordings.findByRef('acme', recId);
    expect(got?.copies[0]?.sourceRetentionExpiry).toBeNull();
    expect(retentionStatus(got!, new Date('2026-06-01T00:00:00Z'))).toBe('ACTIVE');
    const changed = await auditActions(cat, 'sync.mapping.changed');
    expect(changed).toHaveLength(1);
    expect(JSON.parse(changed[0]!.detail!)).toMatchObject({ kind: 'genesys', old: { source_retention_expiry: '2026-01-01T00:00:00.000Z' }, new: { source_retention_expiry: null } });
    expect(changed[0]!.recording_pk).toBe(got!.id);
    // Nothing flips back on the next run; a date set again is written again.
    expect((await runSync(deps, { since: SINCE, until: UNTIL, crosswalk: false })).runs[0]).toMatchObject({ stats: { changed: 0, unchanged: 1 } });
    sim.addRecording({ ...rec, deleteDate: '2027-01-01T00:00:00.000Z' });
    expect((await runSync(deps, { since: SINCE, until: UNTIL, crosswalk: false })).runs[0]).toMatchObject({ stats: { changed: 1 } });
    expect((await deps.recordings.findByRef('acme', recId))?.copies[0]?.sourceRetentionExpiry).toBe('2027-01-01T00:00:00.000Z');
  });

  it('a 403 that says the client lacks the right altogether (not one division) still fails the page', async () => {
    setup(40, { page_size: 10 });
    sim.denyConversation(uuidFrom('conv-5'), 'missing.any.permissions');
    const r = await runSync(deps, { since: SINCE, until: UNTIL, crosswalk: false });
    expect(r.runs[0]).toMatchObject({ status: 'failed', error: { code: 'source.auth_failed' } });
    expect((await new SyncStore(cat.db).read('acme', 'genesys')).cursor).toMatchObject({ windowStart: SINCE.toISOString(), page: 1 });
  });

  it('catalogs audio recordings only: chat, email and message recordings are left out and counted', async () => {
    setup(40, { page_size: 10 });
    const startOf = (i: number) => new Date(SINCE.getTime() + Math.floor((i * 4 * DAY) / 40));
    sim.addRecording({ conversationId: uuidFrom('conv-1'), recordingId: 'chat-1', media: 'chat', startTime: startOf(1), bytes: 'transcript' });
    sim.addRecording({ conversationId: uuidFrom('conv-2'), recordingId: 'email-2', media: 'email', startTime: startOf(2), bytes: 'mail' });
    // A messaging conversation with no audio at all.
    sim.addRecording({ conversationId: uuidFrom('conv-msg'), recordingId: 'message-3', media: 'message', startTime: startOf(3), bytes: 'sms' });
    const r = await runSync(deps, { since: SINCE, until: UNTIL, crosswalk: false });
    expect(r.runs[0]).toMatchObject({ status: 'succeeded', stats: { added: 40, recordings: 40, nonAudio: 3, skipped: 0, vanished: 0 } });
    expect(await counts(cat)).toEqual({ recordings: 40, copies: 40 });
    for (const id of ['chat-1', 'email-2', 'message-3']) expect(await deps.recordings.findByRef('acme', id)).toBeNull();
    // Idempotent: the left-out recordings are not taken for vanished either.
    expect((await runSync(deps, { since: SINCE, until: UNTIL, crosswalk: false })).runs[0]).toMatchObject({ stats: { added: 0, changed: 0, vanished: 0, nonAudio: 3 } });
  });

  it('a lease claim failing for another reason than a live lease elsewhere is a failure, logged at error; the next source still runs', async () => {
    seed(sim, 40);
    deps = syncDepsFor(cat, { sources: [genesysSource(sim), genesysSource(sim, 'genesys-b')] });
    const log = captureLogger();
    deps = Object.assign(deps, { logger: log });
    const claim = vi.spyOn(SyncStore.prototype, 'claim').mockRejectedValueOnce(new Error('connection terminated unexpectedly'));
    try {
      const r = await runSync(deps, { since: SINCE, until: UNTIL, crosswalk: false });
      expect(r.runs.map((x) => [x.source, x.status, x.error?.code])).toEqual([
        ['genesys', 'failed', 'internal'],
        ['genesys-b', 'succeeded', undefined],
      ]);
      expect(log.lines.filter((l) => l.level === 'error')).toEqual([
        expect.objectContaining({ o: expect.objectContaining({ tenant: 'acme', source: 'genesys', error: { code: 'internal', message: 'connection terminated unexpectedly' } }) }),
      ]);
    } finally {
      claim.mockRestore();
    }
  });

  it('the lease is released when starting the run fails; the run is failed, not busy', async () => {
    setup(40);
    const start = vi.spyOn(SyncStore.prototype, 'startRun').mockRejectedValueOnce(new Error('disk I/O error'));
    try {
      const r = await runSync(deps, { since: SINCE, until: UNTIL, crosswalk: false });
      expect(r.runs[0]).toMatchObject({ status: 'failed', error: { code: 'internal', message: 'disk I/O error' } });
    } finally {
      start.mockRestore();
    }
    const row = await cat.db.selectFrom('sync_cursors').selectAll().where('source', '=', 'genesys').executeTakeFirstOrThrow();
    expect(row.lease_owner).toBeNull();
    // The next run is not kept out by a lease left behind.
    expect((await runSync(deps, { since: SINCE, until: UNTIL, crosswalk: false })).runs[0]).toMatchObject({ status: 'succeeded', stats: { added: 40 } });
  });
});
