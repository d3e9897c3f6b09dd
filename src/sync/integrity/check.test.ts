import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openTestCatalog, type TestCatalog, usableCatalogs } from '../../../test/support/catalogs.js';
import { FFMPEG, fixturePath } from '../../../test/support/audio.js';
import type { CatalogRecord } from '../../catalog/record.js';
import { isAppError } from '../../errors.js';
import { decodeG711 } from '../../media/g711.js';
import { sniff } from '../../media/sniff.js';
import { Transcoder } from '../../media/transcoder.js';
import { wavHeader } from '../../media/wav-header.js';
import { type GenesysSimulator, startGenesysSimulator } from '../../sources/genesys/simulator.js';
import { migrationReport, reportCsv } from '../report.js';
import { genesysSource, syncDepsFor, tempDir } from '../test-helpers.js';
import { withTrailDown } from '../../../test/support/trail-down.js';
import { judgeRecording, keepVerdict, type IntegrityDeps } from './check.js';
import { IntegrityRepository } from './integrity-repository.js';
import { sampleIntegrity } from './sampler.js';

/** A PCM WAV (8 kHz mono) of the µ-law fixture's data, optionally after `leadMs` of silence. */
function pcmWav(data: Buffer, leadMs = 0): Buffer {
  const body = Buffer.concat([Buffer.alloc(leadMs * 16), data]);
  return Buffer.concat([wavHeader({ sampleRate: 8000, channels: 1, bitsPerSample: 16, dataLength: body.length }), body]);
}

function dataOf(file: string): Buffer {
  const b = readFileSync(fixturePath(file));
  const s = sniff(b, { totalSize: b.length });
  return b.subarray(s.dataOffset!, s.dataOffset! + s.dataLength!);
}

/**
 * Pairs of copies of one call (or not), the legacy side on a file share, the cloud side in the
 * Genesys simulator, each read through its real connector and decoded with real ffmpeg.
 * name → [legacy file (or codec hint), cloud file].
 */
const PAIRS: Record<string, { legacy: string; codec?: string; cloud: string; cloudState?: 'ARCHIVED' }> = {
  mulaw: { legacy: 'call_mono_mulaw_8k.wav', cloud: 'call_mono_pcm16_8k.wav' },
  alaw: { legacy: 'call_mono_alaw_8k.wav', cloud: 'call_mono_pcm16_8k.wav' },
  gsm: { legacy: 'call_mono_gsm610_8k.wav', cloud: 'call_mono_pcm16_8k.wav' },
  g729: { legacy: 'call_mono_g729_8k.wav', cloud: 'call_mono_pcm16_8k.wav' },
  g729raw: { legacy: 'call_mono_g729_8k.g729', codec: 'g729', cloud: 'call_mono_pcm16_8k.wav' },
  g722: { legacy: 'call_mono_g722_16k.wav', cloud: 'call_mono_pcm16_8k.wav' },
  mp3: { legacy: 'call_mono_8k.mp3', cloud: 'call_mono_pcm16_8k.wav' },
  opus: { legacy: 'call_mono_48k.opus.ogg', cloud: 'call_mono_pcm16_8k.wav' },
  // The cloud copy is the µ-law decoded to PCM: the same samples, re-wrapped.
  rewrapped: { legacy: 'call_mono_mulaw_8k.wav', cloud: 'mulaw_as_pcm.wav' },
  // G.729 in a WAV and as bare frames: the same payload.
  g729both: { legacy: 'call_mono_g729_8k.g729', codec: 'g729', cloud: 'call_mono_g729_8k.wav' },
  lead500: { legacy: 'call_mono_pcm16_8k.wav', cloud: 'lead500.wav' },
  g729lead500: { legacy: 'call_mono_g729_8k.wav', cloud: 'lead500.wav' },
  // The stereo fixture is another call (6.7 s, two speakers).
  other: { legacy: 'call_mono_pcm16_8k.wav', cloud: 'call_stereo_pcm16_8k.wav' },
  truncated: { legacy: 'call_mono_pcm16_8k.wav', cloud: 'bad_truncated_pcm16.wav' },
  garbage: { legacy: 'bad_garbage_riff.wav', cloud: 'call_mono_pcm16_8k.wav' },
  text: { legacy: 'bad_text.wav', cloud: 'call_mono_pcm16_8k.wav' },
  missing: { legacy: 'not-there.wav', cloud: 'call_mono_pcm16_8k.wav' },
  archived: { legacy: 'call_mono_pcm16_8k.wav', cloud: 'call_mono_pcm16_8k.wav', cloudState: 'ARCHIVED' },
};

describe.each(await usableCatalogs())('decoded-audio integrity on %s', (kind) => {
  let cat: TestCatalog;
  let sim: GenesysSimulator;
  let deps: ReturnType<typeof syncDepsFor> & IntegrityDeps;
  let archive: ReturnType<typeof tempDir>;
  let transcoder: Transcoder;
  const pk: Record<string, string> = {};

  beforeAll(async () => {
    cat = await openTestCatalog(kind);
    archive = tempDir('custodian-integrity-');
    sim = await startGenesysSimulator({});
    const files = new Set(Object.values(PAIRS).flatMap((p) => [p.legacy, p.cloud]));
    for (const f of files) if (!['mulaw_as_pcm.wav', 'lead500.wav', 'not-there.wav'].includes(f)) copyFileSync(fixturePath(f), join(archive.dir, f));
    writeFileSync(join(archive.dir, 'mulaw_as_pcm.wav'), pcmWav(decodeG711('mulaw', dataOf('call_mono_mulaw_8k.wav'))));
    writeFileSync(join(archive.dir, 'lead500.wav'), pcmWav(dataOf('call_mono_pcm16_8k.wav'), 500));

    const base = syncDepsFor(cat, { sources: [{ name: 'archive', type: 'filesystem', root: archive.dir }, genesysSource(sim)] });
    transcoder = new Transcoder({ ffmpegPath: FFMPEG, maxConcurrent: 4, maxQueued: 16, timeoutMs: 60_000 });
    deps = { ...base, transcoder };
    const records: CatalogRecord[] = [];
    for (const [name, p] of Object.entries(PAIRS)) {
      sim.addRecording({ conversationId: `conv-${name}`, recordingId: `rec-${name}`, path: join(archive.dir, p.cloud), contentType: 'audio/wav' });
      const common = { tenant_id: 'acme', call_id: `CALL-${name}`, legal_hold: false, state: 'AVAILABLE' as const };
      records.push({ ...common, source_system: 'avaya_aura', connector: 'archive', locator: p.legacy, legacy_archive_id: `av-${name}`, codec: p.codec ?? null });
      records.push({ ...common, source_system: 'genesys_cloud', connector: 'genesys', recording_id: `rec-${name}`, conversation_id: `conv-${name}`, state: p.cloudState ?? 'AVAILABLE' });
    }
    records.push({ tenant_id: 'acme', call_id: 'CALL-alone', legal_hold: false, source_system: 'avaya_aura', connector: 'archive', locator: 'call_mono_pcm16_8k.wav', legacy_archive_id: 'av-alone' });
    await deps.recordings.upsertAll(records);
    for (const name of [...Object.keys(PAIRS), 'alone']) pk[name] = (await deps.recordings.findByRef('acme', `CALL-${name}`))!.id;
  });
  afterAll(async () => {
    await deps?.close();
    await sim?.close();
    await cat?.dispose();
    archive?.dispose();
  });

  const check = async (name: string) => {
    const rec = (await deps.recordings.get('acme', pk[name]!))!;
    const c = await judgeRecording(deps, rec, { principalId: 'tester', trigger: 'on_demand', signal: AbortSignal.timeout(60_000) });
    await keepVerdict(deps, c, { principalId: 'tester', principalKind: 'system' });
    return c;
  };

  it('matches every legacy codec of the call against its PCM cloud copy (G.711 and G.729 included)', async () => {
    const scores: Record<string, number | null> = {};
    for (const name of ['mulaw', 'alaw', 'gsm', 'g729', 'g729raw', 'g722', 'mp3', 'opus']) {
      const c = await check(name);
      expect(c, name).toMatchObject({ verdict: 'match', errorCode: null });
      expect(Math.abs(c.offsetMs!), name).toBeLessThanOrEqual(20);
      expect(Math.abs(c.legacy.durationMs! - c.cloud.durationMs!), name).toBeLessThan(100);
      scores[name] = c.similarity;
    }
    // The measurements in docs/SYNC.md.
    expect(scores.mulaw).toBeGreaterThan(0.999);
    expect(scores.g729).toBeGreaterThan(0.97);
    expect(Math.min(...Object.values(scores).map(Number))).toBeGreaterThan(0.97);
  });

  it('calls lossless-equivalent copies identical: µ-law against the same samples as PCM, G.729 in WAV against bare frames', async () => {
    for (const name of ['rewrapped', 'g729both']) {
      const c = await check(name);
      expect(c, name).toMatchObject({ verdict: 'identical', similarity: null });
      expect(c.legacy.pcmSha256).toBe(c.cloud.pcmSha256);
    }
  });

  it('finds a 500 ms leading offset and still matches, also across codecs', async () => {
    const c = await check('lead500');
    expect(c).toMatchObject({ verdict: 'match', offsetMs: 500 });
    expect(c.cloud.durationMs! - c.legacy.durationMs!).toBe(500);
    const g = await check('g729lead500');
    expect(g.verdict).toBe('match');
    expect(Math.abs(g.offsetMs! - 500)).toBeLessThanOrEqual(20);
  });

  it('calls a different call a mismatch, with score, offset and both durations, and stores it', async () => {
    const c = await check('other');
    expect(c).toMatchObject({ verdict: 'mismatch', detail: { reason: 'similarity_below_threshold' } });
    expect(c.similarity).toBeLessThan(0.5);
    expect(c.offsetMs).toEqual(expect.any(Number));
    expect(c.legacy.durationMs).toBe(8442);
    expect(c.cloud.durationMs).toBe(6717);
    const [stored] = await new IntegrityRepository(cat.db).history('acme', pk.other!);
    expect(stored).toEqual(c);
  });

  it('calls a pair unreadable, with the code, when a copy is truncated, garbage, not audio, missing or archived', async () => {
    const expected = {
      truncated: ['cloud', 'media.undecodable'],
      garbage: ['legacy', 'media.undecodable'],
      text: ['legacy', 'media.undecodable'],
      missing: ['legacy', 'source.object_missing'],
      archived: ['cloud', 'source.archived'],
    };
    for (const [name, [side, code]] of Object.entries(expected)) {
      const c = await check(name);
      expect(c, name).toMatchObject({ verdict: 'unreadable', errorCode: code, similarity: null, detail: { failed_side: side } });
    }
    expect(transcoder.active).toBe(0);
  });

  it('keeps a verdict only with its audit event: with the trail down nothing is stored, and the verdict event names it otherwise', async () => {
    const rec = (await deps.recordings.get('acme', pk.other!))!;
    const c = await judgeRecording(deps, rec, { principalId: 'tester', trigger: 'on_demand', signal: AbortSignal.timeout(60_000) });
    const before = await new IntegrityRepository(cat.db).history('acme', pk.other!);
    await expect(withTrailDown(deps.auditRepo, () => keepVerdict(deps, c, { principalId: 'tester', principalKind: 'system' }))).rejects.toThrow(/audit store unavailable/);
    expect(await new IntegrityRepository(cat.db).history('acme', pk.other!)).toEqual(before);
    await keepVerdict(deps, c, { principalId: 'tester', principalKind: 'system' });
    expect((await new IntegrityRepository(cat.db).history('acme', pk.other!)).length).toBe(before.length + 1);
    const events = (await deps.auditRepo.query({ tenantId: 'acme', recordingPk: pk.other!, action: 'sync.integrity.verdict', limit: 100 })).items;
    expect(events.at(-1)).toMatchObject({ principalId: 'tester', detail: expect.objectContaining({ check_id: c.id, verdict: 'mismatch' }) });
  });

  it('refuses a recording without both kinds of copy (integrity.not_a_pair), storing nothing', async () => {
    const err = await check('alone').catch((e: unknown) => e);
    expect(isAppError(err) && err.code).toBe('integrity.not_a_pair');
    expect(await new IntegrityRepository(cat.db).history('acme', pk.alone!)).toEqual([]);
  });

  it('samples N distinct pairs, stores and audits N verdicts, and the report lists fingerprint mismatches and unchecked pairs', async () => {
    const repo = new IntegrityRepository(cat.db);
    const before = await repo.pairCounts('acme');
    expect(before.pairs).toBe(Object.keys(PAIRS).length);
    const r = await sampleIntegrity(deps, { tenantId: 'acme', count: 5, principalId: 'sampler' });
    expect(r.sampled).toBe(5);
    expect(new Set(r.checks.map((c) => c.recordingPk)).size).toBe(5);
    expect(Object.values(r.verdicts).reduce((a, b) => a + b, 0)).toBe(5);
    const rows = await cat.db.selectFrom('integrity_checks').select(['recording_pk', 'checked_by']).where('trigger', '=', 'sample').execute();
    expect(rows).toHaveLength(5);
    const events = await deps.auditRepo.query({ tenantId: 'acme', action: 'sync.integrity.verdict', principalId: 'sampler', limit: 100 });
    expect(events.items).toHaveLength(5);
    expect(events.items.map((e) => e.recordingPk).sort()).toEqual(r.checks.map((c) => c.recordingPk).sort());
    expect(events.items[0]!.detail).toMatchObject({ verdict: expect.any(String), trigger: 'sample' });

    // A fraction rounds up; more than there are is all of them, each once.
    expect((await sampleIntegrity(deps, { tenantId: 'acme', fraction: 0.1, principalId: 'sampler' })).sampled).toBe(2);
    expect((await sampleIntegrity(deps, { tenantId: 'other', count: 3, principalId: 'sampler' })).sampled).toBe(0);

    // The latest verdict of "other" (a mismatch) is in the report, with why; pairs never checked are counted.
    await check('other');
    const report = await migrationReport(cat.db, 'acme');
    const mis = report.lists.mismatched.find((i) => i.recording === pk.other);
    expect(mis?.detail).toMatch(/decoded audio mismatch \(similarity_below_threshold\): similarity 0\.\d+ \(min 0\.9\)/);
    expect(report.counts.mismatched).toBe(report.lists.mismatched.length);
    const checked = new Set((await cat.db.selectFrom('integrity_checks').select('recording_pk').execute()).map((x) => x.recording_pk));
    expect(report.integrity.pairs).toBe(Object.keys(PAIRS).length);
    expect(report.integrity.never_checked).toBe(Object.keys(PAIRS).length - checked.size);
    expect((await repo.pairCounts('acme')).neverChecked).toBe(report.integrity.never_checked);
    expect(Object.values(report.integrity.latest).reduce((a, b) => a + b, 0)).toBe(checked.size);
    expect(reportCsv([report])).toContain(`acme,count:integrity_never_checked,${report.integrity.never_checked}`);
  });
});
