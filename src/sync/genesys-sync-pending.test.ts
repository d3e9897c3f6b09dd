import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type CatalogKind, openTestCatalog, type TestCatalog, usableCatalogs } from '../../test/support/catalogs.js';
import { queryConversationDetails, uuidFrom } from '../sources/genesys/simulator-analytics.js';
import { type GenesysSimulator, startGenesysSimulator } from '../sources/genesys/simulator.js';
import { incompleteReason, keepPending, MAX_PENDING, PENDING_MAX_AGE_MS, pendingBackoff } from './genesys-sync.js';
import { runSync, type SyncDeps, type SyncLogger } from './runner.js';
import { SyncStore } from './store.js';
import { genesysSource, syncDepsFor } from './test-helpers.js';

const H = 3_600_000;
const DAY = 24 * H;
const UNTIL = new Date('2024-03-10T00:00:00.000Z');
const SINCE = new Date(UNTIL.getTime() - 10 * DAY);
const at = (ms: number) => new Date(UNTIL.getTime() + ms);

function captureLogger(): SyncLogger & { lines: { level: string; msg: string; o: object }[] } {
  const lines: { level: string; msg: string; o: object }[] = [];
  const log = (level: string) => (o: object, msg: string) => void lines.push({ level, msg, o });
  return { lines, info: log('info'), warn: log('warn'), error: log('error') };
}

describe('the simulator models a call read before it is complete', () => {
  it('the details query gives a call in progress without conversationEnd (nor segmentEnd), one that is over with both', () => {
    const facts = { startTime: at(-H), durationMs: 0, externalTag: undefined, protocolCallId: undefined, direction: 'inbound' as const, ani: 'tel:+1', dnis: 'tel:+2' };
    const body = Buffer.from(JSON.stringify({ interval: `${at(-DAY).toISOString()}/${UNTIL.toISOString()}` }));
    const out = queryConversationDetails(
      [
        { ...facts, conversationId: 'live', ongoing: true },
        { ...facts, conversationId: 'over', durationMs: 60_000 },
      ],
      body,
    );
    expect(out.status).toBe(200);
    const [live, over] = out.status === 200 ? out.body.conversations! : [];
    expect(live).toMatchObject({ conversationId: 'live', conversationStart: at(-H).toISOString() });
    expect(live).not.toHaveProperty('conversationEnd');
    expect(JSON.stringify(live)).not.toContain('segmentEnd');
    expect(over).toMatchObject({ conversationId: 'over', conversationEnd: new Date(at(-H).getTime() + 60_000).toISOString() });
  });
});

describe('incomplete conversations to re-read', () => {
  const p = (i: number, reason: 'in_progress' | 'no_recording' | 'uploading' = 'in_progress') => ({ id: `c-${i}`, start: new Date(UNTIL.getTime() + i).toISOString(), reason });
  it('what counts as incomplete: no conversationEnd, no recording listed, a recording UPLOADING', () => {
    const ended = { conversationId: 'c', conversationStart: UNTIL.toISOString(), conversationEnd: at(H).toISOString() };
    expect(incompleteReason({ conversationId: 'c', conversationStart: UNTIL.toISOString() }, [{ id: 'r', fileState: 'AVAILABLE' }])).toBe('in_progress');
    expect(incompleteReason(ended, [])).toBe('no_recording');
    expect(incompleteReason(ended, [{ id: 'r', fileState: 'AVAILABLE' }, { id: 's', fileState: 'UPLOADING' }])).toBe('uploading');
    expect(incompleteReason(ended, [{ id: 'r', fileState: 'AVAILABLE' }, { id: 's', fileState: 'ERROR' }])).toBeUndefined();
  });
  it('keeps each in its place with its latest reason, removes the complete, and hands back the oldest beyond the bound', () => {
    const a = keepPending([p(1), p(2)], [p(2, 'uploading'), p(3)], new Set(['c-1']), 3);
    expect(a).toEqual({ list: [p(2, 'uploading'), p(3)], dropped: [] });
    const b = keepPending(a.list, [p(4), p(5), p(6)], new Set(), 3);
    expect(b).toEqual({ list: [p(4), p(5), p(6)], dropped: [p(2, 'uploading'), p(3)] });
    expect(MAX_PENDING).toBe(2000);
    expect(PENDING_MAX_AGE_MS).toBe(7 * DAY);
    // Read again after an eighth of its age, at most six hours later.
    expect([pendingBackoff(H / 2), pendingBackoff(8 * H), pendingBackoff(3 * DAY)]).toEqual([H / 16, H, 6 * H]);
  });
});

describe.each(await usableCatalogs())('Genesys sync of calls read before they were complete, on %s', (kind: CatalogKind) => {
  let cat: TestCatalog;
  let sim: GenesysSimulator;
  let deps: SyncDeps & { close(): Promise<void> };

  beforeEach(async () => {
    cat = await openTestCatalog(kind);
    sim = await startGenesysSimulator({ logLimit: 50_000 });
    deps = syncDepsFor(cat, { sources: [genesysSource(sim)], sync: { concurrency: 16, page_size: 10 } });
  });
  afterEach(async () => {
    await deps?.close();
    await sim.close();
    await cat.dispose();
  });

  const copyOf = async (recId: string) => (await deps.recordings.findByRef('acme', recId))?.copies[0];
  const listings = (conv: string) => sim.requests.filter((r) => r.path === `/api/v2/conversations/${conv}/recordingmetadata`).length;

  it('re-reads, on the next runs, a call that was in progress, whose recording came late or was still UPLOADING, until complete or given up', async () => {
    const c = (name: string) => uuidFrom(`conv-${name}`);
    const r = (name: string) => uuidFrom(`rec-${name}`);
    // Complete already: nothing to carry.
    sim.addRecording({ conversationId: c('done'), recordingId: r('done'), startTime: at(-6 * H), bytes: 'x' });
    // In progress when the first run reads its window, three hours before it ends (out of the next run's overlap).
    sim.addCall({ conversationId: c('live'), startTime: at(-3 * H), externalTag: 'verint-live' });
    // Over, but its recording (an edge upload) is not listed yet.
    sim.addCall({ conversationId: c('late'), startTime: at(-5 * H), durationMs: 600_000 });
    // Listed, still UPLOADING.
    sim.addRecording({ conversationId: c('up'), recordingId: r('up'), startTime: at(-4 * H), fileState: 'UPLOADING', bytes: 'x' });
    // In progress, half an hour before the end: the next run's overlap reads it again anyway.
    sim.addCall({ conversationId: c('recent'), startTime: at(-H / 2) });
    // In progress and never ends (an orphaned conversation).
    sim.addCall({ conversationId: c('stuck'), startTime: at(-2 * H) });
    // Nine days old and no recording listed: too old to wait for, given up at once.
    sim.addCall({ conversationId: c('ancient'), startTime: at(-9 * DAY), durationMs: 60_000 });

    const first = await runSync(deps, { since: SINCE, until: UNTIL, crosswalk: false });
    expect(first.runs[0]).toMatchObject({ status: 'succeeded', stats: { added: 2 } });
    expect(await copyOf(r('up'))).toMatchObject({ state: 'UPLOADING' });
    // Five minutes later nothing carried is due yet (an eighth of its age); the recent one is in this run's range anyway.
    const soon = await runSync(deps, { until: at(5 * 60_000), crosswalk: false });
    expect(soon.runs[0]).toMatchObject({ status: 'succeeded' });

    // Genesys completes them: the calls end, their recordings are uploaded.
    sim.endCall(c('live'), 20 * 60_000);
    sim.addRecording({ conversationId: c('live'), recordingId: r('live'), startTime: at(-3 * H), durationMs: 20 * 60_000, bytes: 'x' });
    sim.addRecording({ conversationId: c('late'), recordingId: r('late'), startTime: at(-5 * H), durationMs: 600_000, bytes: 'x' });
    sim.setFileState(c('up'), r('up'), 'AVAILABLE');
    sim.endCall(c('recent'), 10 * 60_000);
    sim.addRecording({ conversationId: c('recent'), recordingId: r('recent'), startTime: at(-H / 2), durationMs: 10 * 60_000, bytes: 'x' });
    sim.clearLog();

    // An incremental run: from the last one's end minus the hour of overlap.
    const second = await runSync(deps, { until: at(6 * H), crosswalk: false });
    expect(second.runs[0]).toMatchObject({ status: 'succeeded' });
    expect(await copyOf(r('live'))).toMatchObject({ state: 'AVAILABLE', genesysRecordingId: r('live') });
    expect(await copyOf(r('late'))).toMatchObject({ state: 'AVAILABLE' });
    expect(await copyOf(r('up'))).toMatchObject({ state: 'AVAILABLE' });
    expect(await copyOf(r('recent'))).toMatchObject({ state: 'AVAILABLE' });
    // Cataloged with the conversation's details as read now (its externalTag is a ref).
    expect((await deps.recordings.findByRef('acme', 'verint-live'))?.conversationId).toBe(c('live'));
    const facts = await cat.db.selectFrom('sync_facts').select(['source_key', 'duration_ms']).where('tenant_id', '=', 'acme').execute();
    expect(facts.find((f) => f.source_key === r('live'))?.duration_ms).toBe(20 * 60_000);

    // The first run's counts: six read incomplete, one of them too old to carry.
    expect(first.runs[0]).toMatchObject({ stats: { incomplete: 6, rechecked: 0, settled: 0, stillPending: 5, pendingGivenUp: 1 } });
    expect(soon.runs[0]).toMatchObject({ stats: { rechecked: 0, incomplete: 1, stillPending: 5 } });
    expect((first.runs[0]!.stats as { gaveUp: unknown }).gaveUp).toEqual([{ conversation: c('ancient'), start: at(-9 * DAY).toISOString(), reason: 'no_recording', why: 'too_old' }]);
    // The second: the four out of its range re-read first, the recent one by its window only (one listing).
    expect(second.runs[0]).toMatchObject({ stats: { added: 3, changed: 1, incomplete: 0, rechecked: 4, settled: 4, stillPending: 1, pendingGivenUp: 0 } });
    expect(listings(c('recent'))).toBe(1);
    expect(listings(c('done'))).toBe(0);
    const carried = (await new SyncStore(cat.db).read('acme', 'genesys')).carry as { pending: unknown };
    expect(carried.pending).toEqual([{ id: c('stuck'), start: at(-2 * H).toISOString(), reason: 'in_progress', next: at(7 * H).toISOString() }]);

    // A week later the stuck one is still in progress: given up, named in the run's stats (the sync.run event) and logged.
    const log = captureLogger();
    deps = Object.assign(deps, { logger: log });
    const third = await runSync(deps, { until: at(8 * DAY), crosswalk: false });
    expect(third.runs[0]).toMatchObject({ status: 'succeeded', stats: { rechecked: 1, settled: 0, stillPending: 0, pendingGivenUp: 1 } });
    const gaveUp = [{ conversation: c('stuck'), start: at(-2 * H).toISOString(), reason: 'in_progress', why: 'too_old' }];
    expect((third.runs[0]!.stats as { gaveUp: unknown }).gaveUp).toEqual(gaveUp);
    const events = await cat.db.selectFrom('audit_events').select('detail').where('action', '=', 'sync.run').orderBy('seq').execute();
    expect(JSON.parse(events.at(-1)!.detail!)).toMatchObject({ stats: { pendingGivenUp: 1, gaveUp } });
    expect(log.lines.filter((l) => l.level === 'warn')).toEqual([
      expect.objectContaining({ o: expect.objectContaining({ tenant: 'acme', source: 'genesys', given_up: 1, conversation_ids: [c('stuck')] }) }),
    ]);
    // Nothing left to re-read.
    expect((await runSync(deps, { until: at(8 * DAY + H), crosswalk: false })).runs[0]).toMatchObject({ stats: { rechecked: 0, stillPending: 0 } });
  });

  it('a carried conversation refused on its re-read (403 of its own) moves to the retry list of skipped ones', async () => {
    const conv = uuidFrom('conv-live');
    sim.addCall({ conversationId: conv, startTime: at(-3 * H) });
    expect((await runSync(deps, { since: at(-DAY), until: UNTIL, crosswalk: false })).runs[0]).toMatchObject({ stats: { incomplete: 1, stillPending: 1 } });
    sim.denyConversation(conv);
    const second = await runSync(deps, { until: at(H), crosswalk: false });
    expect(second.runs[0]).toMatchObject({ status: 'succeeded', stats: { rechecked: 1, notPermitted: 1, skipped: 1, stillPending: 0, stillSkipped: 1 } });
    expect((await new SyncStore(cat.db).read('acme', 'genesys')).carry).toEqual({ skipped: [{ id: conv, start: at(-3 * H).toISOString() }], pending: [] });
    // Retried as a skipped one from now on, whatever the range.
    expect((await runSync(deps, { until: at(2 * H), crosswalk: false })).runs[0]).toMatchObject({ stats: { retried: 1, rechecked: 0, stillSkipped: 1 } });
  });
});
