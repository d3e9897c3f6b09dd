import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type GenesysSimulator, startGenesysSimulator } from '../src/sources/genesys/simulator.js';
import { usableCatalogs } from './support/catalogs.js';
import { AUDIO, retrieveBody, startTestGateway, type TestGateway } from './support/gateway.js';
import { post } from './support/http.js';

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
    gw = await startTestGateway({
      catalog: kind,
      sources: { acme: [{ name: 'genesys', type: 'genesys', environment: 'mypurecloud.ie', login_base_url: sim.loginBaseUrl, api_base_url: sim.apiBaseUrl, client_id: 'custodian-sim', client_secret: 'custodian-sim-secret', source_systems: ['genesys_cloud'] }] },
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

  it('answers 404 after every fallback for a ref nobody knows', async () => {
    const before = analytics();
    const res = await post(gw, retrieveBody({ target_recording_ref: 'nobody-knows-this', format_preference: 'json' }));
    expect(res.status).toBe(404);
    expect(analytics()).toBeGreaterThan(before);
  });
});
