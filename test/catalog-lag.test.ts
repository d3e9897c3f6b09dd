import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type GenesysSimulator, startGenesysSimulator } from '../src/sources/genesys/simulator.js';
import { usableCatalogs } from './support/catalogs.js';
import { AUDIO, bearer, KEYS, retrieveBody, startTestGateway, type TestGateway } from './support/gateway.js';
import { genesysSource } from './support/genesys-source.js';
import { post, raw } from './support/http.js';
import { unzip } from './console/support.js';

/**
 * The brief's edge case 1: the mapping table lags the migration. A ref the catalog does not know
 * is looked up in Genesys Cloud (analytics details query), served, and written back so the next
 * lookup is direct.
 */
describe.each(await usableCatalogs())('refs the catalog does not know yet, on %s', (kind) => {
  let sim: GenesysSimulator;
  let gw: TestGateway;
  // Lookups the finder makes: analytics queries and conversation recording lists (serving a copy uses recordingmetadata/{id} only).
  const analytics = () => sim.requests.filter((r) => r.path.includes('/analytics/conversations/details/query') || /\/recordingmetadata$/.test(r.path)).length;

  beforeAll(async () => {
    sim = await startGenesysSimulator();
    const start = '2023-11-05T10:00:00.000Z';
    sim.addRecording({ conversationId: '6f1c2b9e-0b7a-4d1e-9c3f-5a7d8e9f0a1b', recordingId: 'rec-by-conv', path: join(AUDIO, 'call_mono_pcm16_8k.wav'), startTime: start });
    sim.addRecording({ conversationId: '7a2d3c0f-1c8b-4e2f-8d4a-6b8e9f0a1b2c', recordingId: 'rec-by-tag', path: join(AUDIO, 'call_mono_pcm16_8k.wav'), startTime: new Date().toISOString(), externalTag: 'avaya_9003' });
    sim.addRecording({ conversationId: '9c4f5e2b-3e0d-4a4b-8f6c-8d0a1b2c3d4e', recordingId: 'rec-by-callid', path: join(AUDIO, 'call_mono_pcm16_8k.wav'), startTime: '2023-11-05T10:00:00.000Z', externalTag: '2023-11-05T10:00:00Z-9004' });
    sim.addRecording({ conversationId: '8b3e4d1a-2d9c-4f3a-9e5b-7c9f0a1b2c3d', recordingId: 'rec-by-sip', path: join(AUDIO, 'call_mono_pcm16_8k.wav'), startTime: new Date().toISOString(), protocolCallId: 'a84b4c76e66710@pbx.example.com' });
    // Migrated calls whose legacy copies the archive has since purged (the mapping not yet synced):
    // each carries its legacy call id as external tag, as the migration writes it.
    for (const n of ['9010', '9012', '9013', '9014', '9015', '9016', '9017', '9018']) {
      sim.addRecording({ conversationId: `0d5e6f3c-4f1e-4b5c-9a7d-00000000${n}`, recordingId: `rec-moved-${n}`, path: join(AUDIO, 'call_mono_pcm16_8k.wav'), startTime: start, externalTag: `2023-11-05T10:00:00Z-${n}` });
    }
    gw = await startTestGateway({
      catalog: kind,
      sources: { acme: [genesysSource(sim)] },
    });
    // The legacy copy of call 9001 is catalogued; its cloud copy is not yet.
    await gw.seed([{ call_id: '2023-11-05T10:00:00Z-9001', legacy_archive_id: 'avaya_9001', locator: 'call_mono_mulaw_8k.wav' }]);
  });
  afterAll(async () => {
    await gw?.stop();
    await sim?.close();
  });

  it('finds a conversation id in Genesys, serves it, writes it back, and the next lookup is direct', async () => {
    const ref = '6f1c2b9e-0b7a-4d1e-9c3f-5a7d8e9f0a1b';
    const before = analytics();
    const res = await post(gw, retrieveBody({ target_recording_ref: ref, format_preference: 'json' }));
    expect(res.status, res.body.toString()).toBe(200);
    expect(res.headers['x-recording-origin']).toBe('GENESYS_CLOUD');
    expect(analytics()).toBeGreaterThan(before);
    const event = await gw.deps.auditRepo.byId(res.headers['x-audit-event-id'] as string);
    expect(event?.detail?.self_heal).toBe('genesys:genesys');
    const rec = await gw.deps.recordings.findByRef('acme', ref);
    expect(rec?.copies[0]).toMatchObject({ genesysRecordingId: 'rec-by-conv', origin: 'GENESYS_CLOUD' });
    const n = analytics();
    const again = await post(gw, retrieveBody({ target_recording_ref: ref, format_preference: 'original' }));
    expect(again.status).toBe(200);
    expect(analytics()).toBe(n);
  });

  it('serves a legacy id that was migrated but not yet synced, found as the Genesys external tag', async () => {
    const res = await post(gw, retrieveBody({ target_recording_ref: 'avaya_9003', format_preference: 'original' }));
    expect(res.status, res.body.toString()).toBe(200);
    expect(res.headers['x-recording-origin']).toBe('GENESYS_CLOUD');
    const rec = await gw.deps.recordings.findByRef('acme', 'avaya_9003');
    expect(rec?.copies[0]?.genesysRecordingId).toBe('rec-by-tag');
  });

  it('files a cloud copy found by a call id tag under that call id, so the legacy copy joins it later', async () => {
    const callId = '2023-11-05T10:00:00Z-9004';
    const res = await post(gw, retrieveBody({ target_recording_ref: callId, format_preference: 'json' }));
    expect(res.status, res.body.toString()).toBe(200);
    await gw.seed([{ call_id: callId, legacy_archive_id: 'avaya_9004', locator: 'call_mono_mulaw_8k.wav' }]);
    const rec = await gw.deps.recordings.findByRef('acme', 'avaya_9004');
    expect(rec?.callId).toBe(callId);
    expect(rec?.copies.map((c) => c.origin).sort()).toEqual(['GENESYS_CLOUD', 'LEGACY_ARCHIVE']);
  });

  it('finds a SIP Call-ID at segment level', async () => {
    const res = await post(gw, retrieveBody({ target_recording_ref: 'a84b4c76e66710@pbx.example.com', format_preference: 'json' }));
    expect(res.status, res.body.toString()).toBe(200);
    expect(JSON.parse(res.body.toString()).copies[0].recording_id).toBe('rec-by-sip');
    expect((await gw.deps.recordings.findByRef('acme', 'a84b4c76e66710@pbx.example.com'))?.id).toBeTruthy();
  });

  describe('a known recording whose legacy copy is gone (purged after migration, mapping not yet synced)', () => {
    const recordings = async () => Number((await gw.catalogDb.db.selectFrom('recordings').select((eb) => eb.fn.countAll().as('n')).where('tenant_id', '=', 'acme').executeTakeFirstOrThrow()).n);
    const lastEvent = async (recordingPk: string) => (await gw.deps.auditRepo.query({ tenantId: 'acme', recordingPk, limit: 100 })).items.filter((e) => e.action === 'recording.retrieve').at(-1);

    it('asks Genesys by the call id, files the cloud copy on the same recording and serves it; the next retrieval goes straight to it', async () => {
      await gw.seed([{ call_id: '2023-11-05T10:00:00Z-9010', legacy_archive_id: 'avaya_9010', locator: 'purged/avaya_9010.wav' }]);
      const known = await gw.deps.recordings.findByRef('acme', 'avaya_9010');
      const count = await recordings();
      const before = analytics();
      const res = await post(gw, retrieveBody({ target_recording_ref: 'avaya_9010', format_preference: 'original' }));
      expect(res.status, res.body.toString()).toBe(200);
      expect(res.headers['x-recording-origin']).toBe('GENESYS_CLOUD');
      expect(res.body.equals(readFileSync(join(AUDIO, 'call_mono_pcm16_8k.wav')))).toBe(true);
      expect(analytics()).toBeGreaterThan(before);
      const event = await gw.deps.auditRepo.byId(res.headers['x-audit-event-id'] as string);
      expect(event?.detail).toMatchObject({ rediscovered_by: 'genesys:genesys', fallback_from: [{ copy_id: known!.copies[0]!.id, origin: 'LEGACY_ARCHIVE', code: 'source.object_missing' }] });
      // Written back on the same recording: no second one, every id of the call names it.
      expect(await recordings()).toBe(count);
      const rec = await gw.deps.recordings.findByRef('acme', 'avaya_9010');
      expect(rec?.id).toBe(known!.id);
      expect(rec?.copies.map((c) => c.origin).sort()).toEqual(['GENESYS_CLOUD', 'LEGACY_ARCHIVE']);
      expect(rec?.copies.find((c) => c.origin === 'GENESYS_CLOUD')?.genesysRecordingId).toBe('rec-moved-9010');
      expect((await gw.deps.recordings.findByRef('acme', 'rec-moved-9010'))?.id).toBe(known!.id);
      expect((await gw.deps.recordings.findByRef('acme', '0d5e6f3c-4f1e-4b5c-9a7d-000000009010'))?.id).toBe(known!.id);

      const n = analytics();
      const again = await post(gw, retrieveBody({ target_recording_ref: 'avaya_9010', format_preference: 'original' }));
      expect(again.status, again.body.toString()).toBe(200);
      expect(again.headers['x-recording-origin']).toBe('GENESYS_CLOUD');
      expect(analytics()).toBe(n);
      const second = await gw.deps.auditRepo.byId(again.headers['x-audit-event-id'] as string);
      expect(second?.detail?.rediscovered_by).toBeUndefined();
    });

    it('searches around the catalogued start when the call id carries no date (an Avaya UCID), not only the recent past', async () => {
      // Years before the fallback_lookback_days window: found only by asking around the call time.
      const start = '2023-11-05T10:00:00.000Z';
      const ucid = '00001002071523456789';
      sim.addRecording({ conversationId: '0d5e6f3c-4f1e-4b5c-9a7d-000000007777', recordingId: 'rec-moved-ucid', path: join(AUDIO, 'call_mono_pcm16_8k.wav'), startTime: start, externalTag: ucid });
      await gw.seed([{ call_id: ucid, started_at: start, legacy_archive_id: 'avaya_7777', locator: 'purged/avaya_7777.wav' }]);
      const known = await gw.deps.recordings.findByRef('acme', 'avaya_7777');
      const seen = sim.requests.length;
      const res = await post(gw, retrieveBody({ target_recording_ref: 'avaya_7777', format_preference: 'original' }));
      expect(res.status, res.body.toString()).toBe(200);
      expect(res.headers['x-recording-origin']).toBe('GENESYS_CLOUD');
      expect(res.body.equals(readFileSync(join(AUDIO, 'call_mono_pcm16_8k.wav')))).toBe(true);
      expect((await gw.deps.recordings.findByRef('acme', 'rec-moved-ucid'))?.id).toBe(known!.id);
      // The query by the UCID (as external tag) asked ±1 day around the catalogued start.
      const queries = sim.requests.slice(seen).filter((r) => r.path.endsWith('/analytics/conversations/details/query') && r.body.includes(ucid));
      expect(queries.map((q) => (JSON.parse(q.body) as { interval: string }).interval)).toEqual(['2023-11-04T10:00:00.000Z/2023-11-06T10:00:00.000Z']);
    });

    it('a queued job for such a recording does the same round and stages the cloud copy', async () => {
      await gw.seed([{ call_id: '2023-11-05T10:00:00Z-9016', legacy_archive_id: 'avaya_9016', locator: 'purged/avaya_9016.wav' }]);
      const known = (await gw.deps.recordings.findByRef('acme', 'avaya_9016'))!;
      const { job } = await gw.deps.jobs.create({ tenantId: 'acme', principalId: 'alice', callerId: null, requestId: null, auditLogId: null, ref: 'avaya_9016', recordingPk: known.id, format: 'original', maxAttempts: 1 });
      gw.deps.worker?.poke();
      let status = job.status;
      for (let i = 0; i < 200 && !['ready', 'failed'].includes(status); i++) {
        await new Promise((r) => setTimeout(r, 50));
        status = (await gw.deps.jobs.get('acme', job.id))!.status;
      }
      expect(status).toBe('ready');
      expect((await gw.deps.recordings.get('acme', known.id))?.copies.map((c) => c.origin).sort()).toEqual(['GENESYS_CLOUD', 'LEGACY_ARCHIVE']);
    });

    it('the console reads it the same way: a waveform and an evidence package of such a recording are of the cloud copy, described as re-read', async () => {
      await gw.seed([
        { call_id: '2023-11-05T10:00:00Z-9017', legacy_archive_id: 'avaya_9017', locator: 'purged/avaya_9017.wav' },
        { call_id: '2023-11-05T10:00:00Z-9018', legacy_archive_id: 'avaya_9018', locator: 'purged/avaya_9018.wav' },
      ]);
      const wave = await raw(`${gw.url}/api/v1/recordings/avaya_9017/waveform?points=50`, { headers: bearer(KEYS.acmeAdmin) });
      expect(wave.status, wave.body.toString()).toBe(200);
      expect(wave.headers['x-recording-origin']).toBe('GENESYS_CLOUD');
      expect((await gw.deps.auditRepo.byId(wave.headers['x-audit-event-id'] as string))?.detail).toMatchObject({ rediscovered_by: 'genesys:genesys' });

      const pkg = await raw(`${gw.url}/api/v1/evidence`, { method: 'POST', headers: { ...bearer(KEYS.acmeAdmin), 'content-type': 'application/json' }, body: JSON.stringify({ refs: ['avaya_9018'], purpose: 'Case 92' }) });
      expect(pkg.status, pkg.body.toString().slice(0, 300)).toBe(200);
      const files = await unzip(pkg.body);
      const manifest = JSON.parse(files.get('manifest.json')!.toString());
      expect(manifest.complete, JSON.stringify(manifest.problems)).toBe(true);
      const [entry] = manifest.recordings;
      expect(entry).toMatchObject({ rediscovered_by: 'genesys:genesys', original: { origin: 'GENESYS_CLOUD' } });
      expect(files.get(entry.original.path)!.equals(readFileSync(join(AUDIO, 'call_mono_pcm16_8k.wav')))).toBe(true);
      // The metadata describes the recording as found: both copies, the cloud one with its Genesys id.
      expect(files.get(entry.metadata)!.toString()).toContain('rec-moved-9018');
    });

    it('serves a Range of the rediscovered copy to a player (located by the recording as re-read)', async () => {
      await gw.seed([{ call_id: '2023-11-05T10:00:00Z-9015', legacy_archive_id: 'avaya_9015', locator: 'purged/avaya_9015.wav' }]);
      const res = await raw(`${gw.url}/api/v1/recordings/avaya_9015/media?format=original`, { headers: { ...bearer(KEYS.acme), range: 'bytes=100-299' } });
      expect(res.status, res.body.toString()).toBe(206);
      expect(res.headers['x-recording-origin']).toBe('GENESYS_CLOUD');
      expect(res.body.equals(readFileSync(join(AUDIO, 'call_mono_pcm16_8k.wav')).subarray(100, 300))).toBe(true);
    });

    it('keeps the 502 source.object_missing when Genesys does not know the call either, after one finder round', async () => {
      await gw.seed([{ call_id: '2023-11-05T10:00:00Z-9011', legacy_archive_id: 'avaya_9011', locator: 'purged/avaya_9011.wav' }]);
      const known = await gw.deps.recordings.findByRef('acme', 'avaya_9011');
      const count = await recordings();
      const before = analytics();
      const res = await post(gw, retrieveBody({ target_recording_ref: 'avaya_9011', format_preference: 'original' }));
      expect(res.status, res.body.toString()).toBe(502);
      expect(JSON.parse(res.body.toString()).code).toBe('source.object_missing');
      expect(analytics() - before).toBe(1); // one analytics query by the call id (as external tag)
      expect(await recordings()).toBe(count);
      expect((await gw.deps.recordings.findByRef('acme', 'avaya_9011'))?.copies).toHaveLength(1);
      expect((await lastEvent(known!.id))?.detail).toMatchObject({ rediscovery: { outcome: 'not_found' }, attempts: [{ code: 'source.object_missing' }] });
    });

    it('asks nobody when a legacy copy fails for another reason than "not there"', async () => {
      // Refused path alone, and refused path beside a missing copy: neither says "it moved".
      await gw.seed([
        { call_id: '2023-11-05T10:00:00Z-9012', legacy_archive_id: 'avaya_9012', locator: '../escape/avaya_9012.wav' },
        { call_id: '2023-11-05T10:00:00Z-9013', legacy_archive_id: 'avaya_9013a', locator: 'purged/avaya_9013a.wav' },
        { call_id: '2023-11-05T10:00:00Z-9013', legacy_archive_id: 'avaya_9013b', locator: '../escape/avaya_9013b.wav' },
      ]);
      const before = analytics();
      const one = await post(gw, retrieveBody({ target_recording_ref: 'avaya_9012', format_preference: 'original' }));
      expect(one.status).toBe(502);
      expect(JSON.parse(one.body.toString()).code).toBe('source.path_refused');
      const two = await post(gw, retrieveBody({ target_recording_ref: 'avaya_9013a', format_preference: 'original' }));
      expect(two.status).toBe(502);
      expect(analytics()).toBe(before);
      expect((await gw.deps.recordings.findByRef('acme', 'avaya_9013a'))?.copies.map((c) => c.origin)).toEqual(['LEGACY_ARCHIVE', 'LEGACY_ARCHIVE']);
    });

    it('keeps the 502 (never a 500) when the finder fails, and says so in the event', async () => {
      await gw.seed([{ call_id: '2023-11-05T10:00:00Z-9014', legacy_archive_id: 'avaya_9014', locator: 'purged/avaya_9014.wav' }]);
      const known = await gw.deps.recordings.findByRef('acme', 'avaya_9014');
      sim.failNext(1, { status: 403 });
      const res = await post(gw, retrieveBody({ target_recording_ref: 'avaya_9014', format_preference: 'original' }));
      expect(res.status, res.body.toString()).toBe(502);
      expect(JSON.parse(res.body.toString()).code).toBe('source.object_missing');
      expect((await lastEvent(known!.id))?.detail).toMatchObject({ rediscovery: { outcome: 'failed', code: 'source.auth_failed' } });
      expect((await gw.deps.recordings.findByRef('acme', 'avaya_9014'))?.copies).toHaveLength(1);
    });
  });

  it('answers 404 after every fallback for a ref nobody knows', async () => {
    const before = analytics();
    const res = await post(gw, retrieveBody({ target_recording_ref: 'nobody-knows-this', format_preference: 'json' }));
    expect(res.status).toBe(404);
    expect(analytics()).toBeGreaterThan(before);
  });
});
