import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type GenesysSimulator, startGenesysSimulator } from '../src/sources/genesys/simulator.js';
import { type LegacySimulator, startLegacySimulator } from '../src/sources/legacy-http/simulator.js';
import { AUDIO, KEYS, retrieveBody, startTestGateway, type TestGateway } from './support/gateway.js';
import { genesysSource } from './support/genesys-source.js';
import { post, raw } from './support/http.js';

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const G729 = readFileSync(join(AUDIO, 'call_mono_g729_8k.wav'));
const MULAW = readFileSync(join(AUDIO, 'call_mono_mulaw_8k.wav'));
const LEGACY_PASSWORD = 'avaya-password-only-for-avaya';
const MS_PASSWORD = 'mediasense-password';
const GENESYS_SECRET = 'genesys-secret-only-for-genesys';

/**
 * One tenant with three security domains side by side — Avaya (basic auth, configured with the
 * original brief's block), Cisco MediaSense (session cookie) and Genesys Cloud (OAuth) — and a
 * slow WAN archive. What each simulator received proves no credential crossed to another.
 */
describe('legacy recorders and Genesys Cloud through one gateway', () => {
  let avaya: LegacySimulator;
  let mediasense: LegacySimulator;
  let slow: LegacySimulator;
  let genesys: GenesysSimulator;
  let gw: TestGateway;

  beforeAll(async () => {
    avaya = await startLegacySimulator({
      provider: 'avaya_aura',
      users: [{ username: 'svc_rec_retrieval', password: LEGACY_PASSWORD }],
      recordings: [{ id: '800000000000101', ucid: '00001002071523456789', path: join(AUDIO, 'call_mono_g729_8k.wav') }],
    });
    mediasense = await startLegacySimulator({
      provider: 'cisco_mediasense',
      users: [{ username: 'apiuser', password: MS_PASSWORD }],
      recordings: [{ id: 'ms-session-1', tracks: [{ path: join(AUDIO, 'call_mono_mulaw_8k.wav') }] }],
    });
    slow = await startLegacySimulator({
      provider: 'generic_http',
      recordings: [{ id: 'wan-1', path: join(AUDIO, 'call_mono_mulaw_8k.wav') }],
      knobs: { latencyMs: 1_500, auth: 'none' },
    });
    genesys = await startGenesysSimulator({ clients: [{ id: 'gw-client', secret: GENESYS_SECRET }] });
    genesys.addRecording({ conversationId: 'conv-1', recordingId: 'rec-1', path: join(AUDIO, 'call_mono_pcm16_8k.wav') });

    gw = await startTestGateway({
      sources: {
        acme: [
          // The original brief's block, verbatim but for the endpoint and the password reference
          // (and a 20 s first-byte budget: its G.729 transcode must not become a 202 while ffmpeg starts on a loaded CI machine).
          { legacy_connector: { provider: 'avaya_aura', api_endpoint: avaya.endpoint, auth_type: 'basic', username: 'svc_rec_retrieval', timeout_ms: 30000, max_retries: 3 }, name: 'avaya', password: LEGACY_PASSWORD, first_byte_budget_ms: 20_000 },
          { name: 'mediasense', type: 'legacy-http', provider: 'cisco_mediasense', api_endpoint: mediasense.endpoint, auth_type: 'session', username: 'apiuser', password: MS_PASSWORD, source_systems: ['cisco_mediasense'] },
          { name: 'wan', type: 'legacy-http', provider: 'generic_http', api_endpoint: slow.endpoint, auth_type: 'none', source_systems: ['wan_archive'], first_byte_budget_ms: 200 },
          genesysSource(genesys, { client_id: 'gw-client', client_secret: GENESYS_SECRET }),
        ],
      },
      config: (doc) => (doc.jobs = { poll_interval_ms: 50 }),
    });
    await gw.seed([
      { call_id: 'call-avaya', source_system: 'avaya_aura', legacy_archive_id: '800000000000101', connector: 'avaya' },
      { call_id: 'call-ms', source_system: 'cisco_mediasense', legacy_archive_id: 'ms-session-1' },
      { call_id: 'call-wan', source_system: 'wan_archive', legacy_archive_id: 'wan-1' },
      { call_id: 'call-cloud', source_system: 'genesys_cloud', recording_id: 'rec-1', conversation_id: 'conv-1' },
    ]);
  });
  afterAll(async () => {
    await gw?.stop();
    await Promise.all([avaya?.close(), mediasense?.close(), slow?.close(), genesys?.close()]);
  });

  it('serves an Avaya recording configured with the brief block, and transcodes its G.729', async () => {
    const original = await post(gw, retrieveBody({ target_recording_ref: 'call-avaya', format_preference: 'original' }));
    expect(original.status, original.body.toString().slice(0, 300)).toBe(200);
    expect(sha256(original.body)).toBe(sha256(G729));
    const wav = await post(gw, retrieveBody({ target_recording_ref: 'call-avaya', format_preference: 'wav' }));
    expect(wav.headers['x-audio-codec']).toBe('g729');
    expect(wav.headers['x-transcoded']).toBe('true');
  });

  it('serves a MediaSense session track with the session cookie', async () => {
    const res = await post(gw, retrieveBody({ target_recording_ref: 'call-ms', format_preference: 'original' }));
    expect(res.status, res.body.toString().slice(0, 300)).toBe(200);
    expect(sha256(res.body)).toBe(sha256(MULAW));
    expect(mediasense.signIns).toBe(1);
  });

  it('answers 202 within the budget for a slow WAN archive, then serves the staged copy', async () => {
    const t0 = Date.now();
    const res = await post(gw, retrieveBody({ target_recording_ref: 'call-wan', format_preference: 'original' }));
    expect(res.status).toBe(202);
    // Not a timing assertion of speed: the source needs 1.5 s before its first byte, so a 202
    // before that proves the gateway did not wait for it.
    expect(Date.now() - t0).toBeLessThan(1_400);
    const { poll_endpoint: poll } = JSON.parse(res.body.toString());
    let status;
    for (let i = 0; i < 200; i++) {
      status = JSON.parse((await raw(`${gw.url}${poll}`, { headers: { authorization: `Bearer ${KEYS.acme}` } })).body.toString());
      if (status.status === 'ready' || status.status === 'failed') break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(status.status).toBe('ready');
    const content = await raw(`${gw.url}${status.content_endpoint}`, { headers: { authorization: `Bearer ${KEYS.acme}` } });
    expect(sha256(content.body)).toBe(sha256(MULAW));
    // the same fetch continued: one media request at the slow origin
    expect(slow.requests.filter((r) => r.method === 'GET').length).toBe(1);
  });

  it('serves the Genesys copy with its own OAuth client', async () => {
    const res = await post(gw, retrieveBody({ target_recording_ref: 'call-cloud', format_preference: 'original' }));
    expect(res.status).toBe(200);
    expect(res.headers['x-recording-origin']).toBe('GENESYS_CLOUD');
  });

  it('never sends one security domain’s credentials to another', () => {
    const basic = `Basic ${Buffer.from(`svc_rec_retrieval:${LEGACY_PASSWORD}`).toString('base64')}`;
    const everything = (reqs: readonly { headers: Record<string, unknown>; body?: string }[]) => reqs.map((r) => JSON.stringify(r.headers) + (r.body ?? '')).join('\n');
    const atAvaya = everything(avaya.requests);
    const atMediasense = everything(mediasense.requests);
    const atSlow = everything(slow.requests);
    const atGenesys = everything(genesys.requests as never);
    expect(atAvaya).toContain(basic);
    for (const other of [atMediasense, atSlow, atGenesys]) expect(other).not.toContain(basic);
    expect(atAvaya + atSlow + atGenesys).not.toContain(MS_PASSWORD);
    expect(atAvaya + atMediasense + atSlow).not.toContain(GENESYS_SECRET);
    expect(atAvaya + atMediasense + atSlow).not.toMatch(/Bearer /);
    expect(atAvaya + atSlow + atGenesys).not.toMatch(/JSESSIONID/);
  });
});
