import { parse } from 'csv-parse/sync';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type CatalogKind, openTestCatalog, type TestCatalog, usableCatalogs } from '../../test/support/catalogs.js';
import { type GenesysSimulator, startGenesysSimulator } from '../sources/genesys/simulator.js';
import { migrationReport, reportCsv, retentionGap } from './report.js';
import { runSync, type SyncDeps } from './runner.js';
import { SyncStore } from './store.js';
import { genesysSource, syncDepsFor, tempDir, VERINT_MAPPING, type VerintCall, verintTree } from './test-helpers.js';

const T0 = Date.parse('2024-03-01T09:00:00Z');
const at = (min: number) => new Date(T0 + min * 60_000);
const ANI = 'tel:+15551230000';
const DNIS = 'tel:+15559870000';

/**
 * The scenario: legacy Verint copies on a file share and cloud copies in Genesys for the same calls,
 * linked by call id (Genesys externalTag), legacy id (externalTag), SIP Call-ID and the fuzzy rule;
 * an ambiguous SIP Call-ID kept apart; unmatched copies on both sides; a duration mismatch; retention gaps.
 */
function legacyCalls(): VerintCall[] {
  const sc = (id: string, min: number, extra: Record<string, unknown> = {}) => ({
    id,
    start: at(min),
    sidecar: { callId: `CALL-${id}`, startTime: at(min).toISOString(), duration: 61, contact: { ani: ANI, dnis: DNIS }, retainUntil: '2099-01-01T00:00:00Z', ...extra },
  });
  return [
    sc('a', 0),
    sc('vb', 10),
    sc('c', 20, { sipCallId: 'sip-c@pbx' }),
    sc('d1', 30, { sipCallId: 'sip-d@pbx' }),
    sc('d2', 31, { sipCallId: 'sip-d@pbx' }),
    sc('e', 40, { purgeAfter: '2030-01-01T00:00:00Z' }),
    sc('g', 50),
    sc('h', 60, { duration: 30 }),
    sc('i', 70, { purgeAfter: '2030-01-01T00:00:00Z' }),
  ];
}

function cloudCalls(sim: GenesysSimulator): void {
  const add = (conv: string, min: number, extra: Record<string, unknown> = {}) =>
    sim.addRecording({ conversationId: `conv-${conv}`, recordingId: `rec-${conv}`, startTime: at(min), durationMs: 61_000, bytes: 'x', ani: ANI, dnis: DNIS, ...extra });
  add('a', 0, { externalTag: 'CALL-a' });
  add('b', 10, { externalTag: 'vb' });
  add('c', 20, { protocolCallId: 'sip-c@pbx' });
  add('d', 30, { protocolCallId: 'sip-d@pbx' });
  add('f', 45);
  // Same call as legacy "g": one second later, half a second longer, same ANI/DNIS, no shared id.
  sim.addRecording({ conversationId: 'conv-g', recordingId: 'rec-g', startTime: new Date(at(50).getTime() + 1000), durationMs: 61_500, bytes: 'x', ani: ANI, dnis: DNIS });
  add('h', 60, { externalTag: 'CALL-h', durationMs: 90_000 });
  add('i', 70, { externalTag: 'CALL-i', deleteDate: '2031-01-01T00:00:00Z' });
}

describe('retention gap', () => {
  const rec = (copies: { state?: string; exp: string | null }[], retention: string | null, legalHold = false) =>
    ({
      retentionExpiry: retention,
      legalHold,
      copies: copies.map((c) => ({ state: c.state ?? 'AVAILABLE', sourceRetentionExpiry: c.exp })),
    }) as unknown as Parameters<typeof retentionGap>[0];
  it('is a gap only when every live copy goes before the obligation ends', () => {
    const now = new Date('2025-01-01T00:00:00Z');
    expect(retentionGap(rec([{ exp: '2030-01-01T00:00:00Z' }], '2099-01-01T00:00:00Z'), now).gap).toBe(true);
    expect(retentionGap(rec([{ exp: '2030-01-01T00:00:00Z' }, { exp: null }], '2099-01-01T00:00:00Z'), now).gap).toBe(false);
    expect(retentionGap(rec([{ exp: '2030-01-01T00:00:00Z' }, { exp: null, state: 'DELETED' }], '2099-01-01T00:00:00Z'), now).gap).toBe(true);
    expect(retentionGap(rec([{ exp: '2030-01-01T00:00:00Z' }], '2029-01-01T00:00:00Z'), now).gap).toBe(false);
    expect(retentionGap(rec([{ exp: '2030-01-01T00:00:00Z' }], null, true), now).gap).toBe(true);
    expect(retentionGap(rec([{ exp: '2030-01-01T00:00:00Z' }], '2024-01-01T00:00:00Z'), now).gap).toBe(false);
  });
  it('names the first and the last date a live copy goes (the gap opens at the last one)', () => {
    const now = new Date('2025-01-01T00:00:00Z');
    const r = retentionGap(rec([{ exp: '2034-01-01T00:00:00Z' }, { exp: '2026-01-01T00:00:00Z' }, { exp: '2040-01-01T00:00:00Z', state: 'DELETED' }], '2099-01-01T00:00:00Z'), now);
    expect(r).toEqual({ gap: true, deletesAt: '2026-01-01T00:00:00Z', lastDeletesAt: '2034-01-01T00:00:00Z' });
    expect(retentionGap(rec([{ exp: '2030-01-01T00:00:00Z', state: 'DELETED' }], '2099-01-01T00:00:00Z'), now)).toEqual({ gap: true, deletesAt: null, lastDeletesAt: null });
  });
});

describe.each(await usableCatalogs())('crosswalk and migration report on %s', (kind: CatalogKind) => {
  let cat: TestCatalog;
  let sim: GenesysSimulator;
  let share: ReturnType<typeof tempDir>;
  let deps: SyncDeps & { close(): Promise<void> };

  beforeEach(async () => {
    cat = await openTestCatalog(kind);
    sim = await startGenesysSimulator({});
    cloudCalls(sim);
    share = tempDir();
    verintTree(share.dir, legacyCalls());
    deps = syncDepsFor(cat, {
      sources: [genesysSource(sim), { name: 'verint-share', type: 'filesystem', root: share.dir, source_systems: ['verint'] }],
      sync: {
        legacy: [{ source: 'verint-share', source_system: 'verint', mapping: VERINT_MAPPING }],
        crosswalk: { rule: { start_tolerance_ms: 5_000, duration_tolerance_ms: 2_000 } },
      },
    });
  });
  afterEach(async () => {
    await deps.close();
    await sim.close();
    await cat.dispose();
    share.dispose();
  });

  it('links by call id, external tag, SIP Call-ID and the time rule; keeps the ambiguous apart; reports it all; a second run changes nothing', async () => {
    const since = new Date('2024-03-01T00:00:00Z');
    const until = new Date('2024-03-02T00:00:00Z');
    const first = await runSync(deps, { since, until });
    expect(first.runs.map((r) => [r.source, r.status])).toEqual([
      ['genesys', 'succeeded'],
      ['verint-share', 'succeeded'],
    ]);
    expect(first.crosswalk[0]).toMatchObject({ status: 'succeeded', stats: { linked: 6, ambiguous: 3, conflicts: 0, integrityMismatches: 1, integrityMatches: 5 } });

    // Linked: one recording with both copies, found by any id of either side (the absorbed recording's id too).
    const a = await deps.recordings.findByRef('acme', 'CALL-a');
    expect(a?.copies.map((c) => c.origin).sort()).toEqual(['GENESYS_CLOUD', 'LEGACY_ARCHIVE']);
    expect(a?.conversationId).toBe('conv-a');
    expect((await deps.recordings.findByRef('acme', 'rec-a'))?.id).toBe(a?.id);
    // The legacy copy is keyed by its path (no id mapped); its base name, an external_tag ref, met the cloud's externalTag.
    expect((await deps.recordings.findByRef('acme', 'vb'))?.copies.map((c) => c.genesysRecordingId ?? c.locator).sort()).toEqual(['2024/03/01/09/vb.wav', 'rec-b']);
    expect((await deps.recordings.findByRef('acme', 'sip-c@pbx'))?.copies).toHaveLength(2);
    expect((await deps.recordings.findByRef('acme', 'rec-g'))?.callId).toBe('CALL-g');
    const linked = await cat.db.selectFrom('audit_events').selectAll().where('action', '=', 'sync.crosswalk.linked').execute();
    expect(linked).toHaveLength(6);
    const ev = linked.find((e) => e.recording_pk === a?.id)!;
    expect(JSON.parse(ev.detail!)).toMatchObject({ rule: 'call_id', value: 'CALL-a', survivor: a?.id, moved: [{ source_system: 'genesys_cloud', new_recording: a?.id }] });
    expect((await deps.recordings.findByRef('acme', ev.ref!))?.id).toBe(a?.id);

    // Ambiguous: two legacy calls share the cloud call's SIP Call-ID: nothing merged, all three listed.
    await expect(deps.recordings.findByRef('acme', 'sip-d@pbx')).rejects.toMatchObject({ code: 'recording.ambiguous_ref' });
    expect((await deps.recordings.findByRef('acme', 'CALL-d1'))?.copies).toHaveLength(1);
    expect((await deps.recordings.findByRef('acme', 'rec-d'))?.copies).toHaveLength(1);
    const findings = await new SyncStore(cat.db).findings('acme');
    expect(findings.filter((f) => f.kind === 'ambiguous')).toHaveLength(3);

    const report = await migrationReport(cat.db, 'acme', { now: new Date('2025-01-01T00:00:00Z') });
    expect(report.counts).toEqual({ recordings: 11, legacy_only: 3, cloud_only: 2, both: 6, ambiguous: 3, mismatched: 1, retention_gap: 2 });
    expect(report.lists.mismatched[0]).toMatchObject({ call_id: 'CALL-h' });
    expect(report.lists.retention_gap.map((r) => r.call_id).sort()).toEqual(['CALL-e', 'CALL-i']);
    expect(report.lists.retention_gap.find((r) => r.call_id === 'CALL-i')?.source_deletes_at).toBe('2030-01-01T00:00:00.000Z');
    // The legacy copy goes in 2030, the cloud copy in 2031: the gap opens when the last one goes.
    expect(report.lists.retention_gap.find((r) => r.call_id === 'CALL-i')?.detail).toBe(
      'the last live copy is deleted by its source on 2031-01-01T00:00:00.000Z (the first on 2030-01-01T00:00:00.000Z); retention runs to 2099-01-01T00:00:00.000Z',
    );
    expect(report.lists.ambiguous.map((r) => r.call_id ?? r.conversation_id).sort()).toEqual(['CALL-d1', 'CALL-d2', 'conv-d']);
    expect(report.lists.legacy_only.map((r) => r.call_id).sort()).toEqual(['CALL-d1', 'CALL-d2', 'CALL-e']);

    const rows = parse(reportCsv([report]), { columns: true }) as Record<string, string>[];
    const count = (k: string) => rows.find((r) => r.category === `count:${k}`)?.recording;
    expect([count('recordings'), count('legacy_only'), count('cloud_only'), count('both'), count('ambiguous'), count('mismatched'), count('retention_gap')]).toEqual(['11', '3', '2', '6', '3', '1', '2']);
    expect(rows.filter((r) => r.category === 'retention_gap').map((r) => r.call_id).sort()).toEqual(['CALL-e', 'CALL-i']);
    expect(rows.filter((r) => r.category === 'both')).toHaveLength(6);

    // Twice: nothing changes, nothing is linked again, no finding moves.
    const second = await runSync(deps, { since, until });
    for (const r of second.runs) expect(r).toMatchObject({ status: 'succeeded', stats: { added: 0, changed: 0, inserted: 0, updated: 0, factsChanged: 0 } });
    expect(second.crosswalk[0]).toMatchObject({ stats: { linked: 0, findingsChanged: 0, ambiguous: 3 } });
    expect((await migrationReport(cat.db, 'acme', { now: new Date('2025-01-01T00:00:00Z') })).counts).toEqual(report.counts);
    expect((await deps.auditRepo.verify()).ok).toBe(true);
  });

  it('counts only copies that exist: a DELETED copy makes no "both", no "legacy_only", no integrity pair', async () => {
    await runSync(deps, { since: new Date('2024-03-01T00:00:00Z'), until: new Date('2024-03-02T00:00:00Z') });
    const now = new Date('2025-01-01T00:00:00Z');
    const before = await migrationReport(cat.db, 'acme', { now });
    expect(before.counts).toMatchObject({ recordings: 11, legacy_only: 3, cloud_only: 2, both: 6 });
    expect(before.integrity.pairs).toBe(6);
    const setState = async (ref: string, origin: string, state: string) => {
      const rec = await deps.recordings.findByRef('acme', ref);
      await cat.db.updateTable('recording_copies').set({ state }).where('recording_pk', '=', rec!.id).where('origin', '=', origin).execute();
    };
    // Genesys deleted the cloud copy of CALL-a: only the legacy copy is left, it is not migrated.
    await setState('CALL-a', 'GENESYS_CLOUD', 'DELETED');
    // The archive purged the only copy of CALL-e: no copy is left anywhere.
    await setState('CALL-e', 'LEGACY_ARCHIVE', 'DELETED');
    // A copy in ERROR still exists (as for the retention gap): CALL-c stays "both".
    await setState('CALL-c', 'GENESYS_CLOUD', 'ERROR');
    const after = await migrationReport(cat.db, 'acme', { now });
    expect(after.counts).toMatchObject({ recordings: 11, legacy_only: 3, cloud_only: 2, both: 5 });
    expect(after.lists.both.map((r) => r.call_id)).not.toContain('CALL-a');
    expect(after.lists.both.map((r) => r.call_id)).toContain('CALL-c');
    expect(after.lists.legacy_only.map((r) => r.call_id).sort()).toEqual(['CALL-a', 'CALL-d1', 'CALL-d2']);
    expect([...after.lists.cloud_only, ...after.lists.both, ...after.lists.legacy_only].map((r) => r.call_id)).not.toContain('CALL-e');
    expect(after.integrity.pairs).toBe(5);
    // CALL-e's retention still runs and nothing is left: a retention gap that says so.
    expect(after.lists.retention_gap.find((r) => r.call_id === 'CALL-e')?.detail).toBe('no live copy is left (every copy is DELETED); retention runs to 2099-01-01T00:00:00.000Z');
  });
});
