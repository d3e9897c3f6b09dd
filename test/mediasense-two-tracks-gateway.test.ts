import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sniff } from '../src/media/sniff.js';
import { type LegacySimulator, startLegacySimulator } from '../src/sources/legacy-http/simulator.js';
import { AUDIO, KEYS, bearer, retrieveBody, startTestGateway, type TestGateway } from './support/gateway.js';
import { post, raw } from './support/http.js';

const MS_PASSWORD = 'mediasense-password';

/**
 * A MediaSense session recorded by network-based recording (near end G.729, far end µ-law) asked
 * for through the gateway: the whole call, both parties, a channel each (docs/CONFIG.md).
 */
describe('a two-track MediaSense session through the gateway', () => {
  let mediasense: LegacySimulator;
  let gw: TestGateway;

  beforeAll(async () => {
    mediasense = await startLegacySimulator({
      provider: 'cisco_mediasense',
      users: [{ username: 'apiuser', password: MS_PASSWORD }],
      recordings: [
        {
          id: 'ms-2tracks',
          tracks: [
            { path: join(AUDIO, 'call_mono_g729_8k.wav'), codec: 'G729', participants: ['1000'] },
            { path: join(AUDIO, 'call_mono_mulaw_8k.wav'), codec: 'PCMU', participants: ['+15551230000'] },
          ],
        },
      ],
    });
    gw = await startTestGateway({
      sources: {
        acme: [
          {
            name: 'mediasense',
            type: 'legacy-http',
            provider: 'cisco_mediasense',
            api_endpoint: mediasense.endpoint,
            auth_type: 'session',
            username: 'apiuser',
            password: MS_PASSWORD,
            source_systems: ['cisco_mediasense'],
            first_byte_budget_ms: 20_000,
          },
        ],
      },
    });
    await gw.seed([{ call_id: 'call-ms-2', source_system: 'cisco_mediasense', legacy_archive_id: 'ms-2tracks' }]);
  });
  afterAll(async () => {
    await gw?.stop();
    await mediasense?.close();
  });

  it('retrieve wav: one stereo WAV holding both tracks, the parties named in the file', async () => {
    const res = await post(gw, retrieveBody({ target_recording_ref: 'call-ms-2', format_preference: 'wav' }));
    expect(res.status, res.body.toString().slice(0, 300)).toBe(200);
    expect(res.headers['content-type']).toBe('audio/wav');
    const s = sniff(res.body, { totalSize: res.body.length });
    expect(s).toMatchObject({ container: 'wav', codec: 'pcm_s16le', channels: 2, sampleRate: 8000 });
    expect(res.body.subarray(0, s.dataOffset).toString('latin1')).toContain('channel 1 = track 0 (1000); channel 2 = track 1 (+15551230000)');
    expect(mediasense.requests.filter((e) => e.path.startsWith('/recordedMedia/')).map((e) => e.path)).toEqual([
      '/recordedMedia/oramedia/wav/ms-2tracks-0.wav',
      '/recordedMedia/oramedia/wav/ms-2tracks-1.wav',
    ]);
  });

  it('player Range: 206 with the slice of the computed whole', async () => {
    const url = `${gw.url}/api/v1/recordings/call-ms-2/media?format=wav`;
    const whole = await raw(url, { headers: bearer(KEYS.acme) });
    expect(whole.status).toBe(200);
    expect(whole.headers['content-length']).toBe(String(whole.body.length));
    const part = await raw(url, { headers: { ...bearer(KEYS.acme), range: 'bytes=100-1099' } });
    expect(part.status).toBe(206);
    expect(part.headers['content-range']).toBe(`bytes 100-1099/${whole.body.length}`);
    expect(part.body.equals(whole.body.subarray(100, 1100))).toBe(true);
  });

  it('mp3 encodes both channels', async () => {
    const res = await post(gw, retrieveBody({ target_recording_ref: 'call-ms-2', format_preference: 'mp3' }));
    expect(res.status).toBe(200);
    expect(res.headers['x-transcoded']).toBe('true');
    expect(res.body.length).toBeGreaterThan(1000);
  });

  it('original: refused 415 — a merge has no stored object to hand over as it is (profile.track serves one track as stored)', async () => {
    const res = await post(gw, retrieveBody({ target_recording_ref: 'call-ms-2', format_preference: 'original' }));
    expect(res.status, res.body.toString().slice(0, 300)).toBe(415);
    expect(JSON.parse(res.body.toString())).toMatchObject({ code: 'media.unsupported_codec' });
    expect(JSON.parse(res.body.toString()).detail).toContain('profile.track');
  });

  it('the merge is labelled computed: X-Transcoded true, no strong validator, the parties in the audit events', async () => {
    const res = await raw(`${gw.url}/api/v1/recordings/call-ms-2/media?format=wav`, { headers: bearer(KEYS.acme) });
    expect(res.status).toBe(200);
    expect(res.headers['x-transcoded']).toBe('true');
    expect(res.headers.etag).toBeUndefined();
    const allowed = await gw.deps.auditRepo.byId(res.headers['x-audit-event-id'] as string);
    expect(allowed?.detail).toMatchObject({ transcoded: true, merged_tracks: 2, track_channels: 'channel 1 = track 0 (1000); channel 2 = track 1 (+15551230000)' });
  });
});
