import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildWav, fmtBody } from './support/audio.js';
import { AUDIO, KEYS, bearer, retrieveBody, startTestGateway, type TestGateway } from './support/gateway.js';
import { post, raw, type RawResponse } from './support/http.js';
import { rawServer, type RawServer } from './support/raw-server.js';

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const PCM = readFileSync(join(AUDIO, 'call_mono_pcm16_8k.wav'));

/** Deterministic noise (an LCG): the same bytes on every run. */
function noise(n: number): Buffer {
  const b = Buffer.alloc(n);
  let x = 7;
  for (let i = 0; i < n; i++) b[i] = (x = (Math.imul(x, 1664525) + 1013904223) >>> 0) >>> 24;
  return b;
}

/**
 * Copies that look fine to the sniffer but that ffmpeg refuses at once, and a PCM WAV cut short
 * from a source that does not say its size: none of them may reach a client as a 200 that then
 * resets, or as a clean end of a short file.
 */
describe('media that fails early, through the gateway', () => {
  let gw: TestGateway;
  let chunkedArchive: RawServer;
  // A PCM WAV whose recorder crashed: cut at 100 000 bytes, its header still declaring 135 066 data bytes.
  const cut = PCM.subarray(0, 100_000);

  beforeAll(async () => {
    // A legacy archive answering with chunked transfer encoding, no Content-Length (as many
    // recorder replay servlets do): the gateway never learns the size of what it gets.
    chunkedArchive = await rawServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'audio/wav' });
      res.write(cut.subarray(0, 50_000));
      res.end(cut.subarray(50_000));
    });
    gw = await startTestGateway({
      sources: {
        acme: [{ name: 'plain', type: 'legacy-http', provider: 'generic_http', api_endpoint: chunkedArchive.endpoint, auth_type: 'none', source_systems: ['plain_archive'] }],
      },
      // The file share streams whatever its first byte costs: on a loaded machine a bad copy's
      // ffmpeg run and the fallback must not turn into a 202 hand-off (the budget is tested elsewhere).
      config: (doc) => (doc.tenants[0].sources[0].mode = 'sync'),
    });
    // G.726 with 8 bits per sample (ffmpeg takes 2..5 only), and MP3-in-WAV whose payload is noise.
    const g726 = buildWav([['fmt ', fmtBody({ tag: 0x45, channels: 1, sampleRate: 8000, byteRate: 8000, blockAlign: 1, bits: 8 })], ['data', Buffer.alloc(3000, 0x55)]]);
    const mp3Noise = buildWav([['fmt ', fmtBody({ tag: 0x55, channels: 1, sampleRate: 8000, byteRate: 1000, blockAlign: 1, bits: 0 })], ['data', noise(20_000)]]);
    writeFileSync(join(gw.roots.acme!, 'bad_g726.wav'), g726);
    writeFileSync(join(gw.roots.acme!, 'bad_mp3_noise.wav'), mp3Noise);
    // The bad copy of each pair is catalogued first, so it is tried first.
    await gw.seed([
      { call_id: 'c-g726', source_system: 'avaya_aura', legacy_archive_id: 'g726_bad', locator: 'bad_g726.wav' },
      { call_id: 'c-noise', source_system: 'avaya_aura', legacy_archive_id: 'noise_bad', locator: 'bad_mp3_noise.wav' },
      { call_id: 'c-cut', source_system: 'plain_archive', legacy_archive_id: 'cut_1', locator: 'cut_1' },
      // The same bad files as the only copy of a recording.
      { call_id: 'c-g726-only', source_system: 'avaya_aura', legacy_archive_id: 'g726_only', locator: 'bad_g726.wav' },
      { call_id: 'c-noise-only', source_system: 'avaya_aura', legacy_archive_id: 'noise_only', locator: 'bad_mp3_noise.wav' },
    ]);
    await new Promise((r) => setTimeout(r, 5));
    await gw.seed([
      { call_id: 'c-g726', source_system: 'verint', legacy_archive_id: 'g726_good', locator: 'call_mono_pcm16_8k.wav' },
      { call_id: 'c-noise', source_system: 'verint', legacy_archive_id: 'noise_good', locator: 'call_mono_pcm16_8k.wav' },
    ]);
  });
  afterAll(async () => {
    await gw?.stop();
    await chunkedArchive?.stop();
  });

  const copyIdOf = async (ref: string, legacyId: string): Promise<string> => {
    const meta = JSON.parse((await post(gw, retrieveBody({ target_recording_ref: ref, format_preference: 'json' }))).body.toString());
    return meta.copies.find((c: { legacy_archive_id: string }) => c.legacy_archive_id === legacyId).id;
  };
  const endEventOf = async (res: RawResponse) => {
    const allowedId = res.headers['x-audit-event-id'] as string;
    const find = async () => (await gw.deps.auditRepo.query({ tenantId: 'acme', limit: 1000 })).items.find((e) => e.relatedEventId === allowedId);
    await expect.poll(find).toBeTruthy();
    return find();
  };

  it.each([
    // Refused up front: the fmt chunk alone says ffmpeg cannot decode it.
    ['c-g726', 'g726_bad', 'media.unsupported_codec'],
    // Sniffed as MP3-in-WAV; ffmpeg fails before its first output byte.
    ['c-noise', 'noise_bad', 'media.undecodable'],
  ])('%s: falls back from a copy ffmpeg cannot decode to the good copy, and records why', async (call, badId, code) => {
    const res = await post(gw, retrieveBody({ target_recording_ref: call, format_preference: 'wav' }));
    expect(res.status, res.body.toString().slice(0, 300)).toBe(200);
    expect(res.complete).toBe(true);
    expect(sha256(res.body)).toBe(sha256(PCM));
    const allowed = await gw.deps.auditRepo.byId(res.headers['x-audit-event-id'] as string);
    expect(allowed?.detail?.fallback_from, JSON.stringify(allowed)).toEqual([{ copy_id: await copyIdOf(call, badId), origin: 'LEGACY_ARCHIVE', code }]);
    expect(await endEventOf(res)).toMatchObject({ outcome: 'completed', bytesSent: PCM.length });
  });

  it.each([
    ['g726_only', 415, 'media.unsupported_codec', 'g726'],
    ['noise_only', 422, 'media.undecodable', 'mp3'],
  ])('%s, the only copy: a problem+json %i, not a 200 that resets', async (ref, status, code, codec) => {
    for (const res of [
      await post(gw, retrieveBody({ target_recording_ref: ref, format_preference: 'wav' })),
      await post(gw, retrieveBody({ target_recording_ref: ref, format_preference: 'mp3' })),
      await raw(`${gw.url}/api/v1/recordings/${ref}/media?format=wav`, { headers: bearer(KEYS.acme) }),
    ]) {
      expect(res.status, res.body.toString().slice(0, 300)).toBe(status);
      expect(res.complete).toBe(true);
      expect(res.headers['content-type']).toBe('application/problem+json');
      expect(JSON.parse(res.body.toString())).toMatchObject({ code });
      if (status === 415) expect(res.headers['x-audio-codec']).toBe(codec);
    }
    // The stored bytes as they are are still served.
    const original = await post(gw, retrieveBody({ target_recording_ref: ref, format_preference: 'original' }));
    expect(original.status).toBe(200);
    expect(original.headers['x-audio-codec']).toBe(codec);
  });

  it('a PCM WAV cut short from a chunked source: format=wav ends as an incomplete transfer, audited failed', async () => {
    const res = await post(gw, retrieveBody({ target_recording_ref: 'cut_1', format_preference: 'wav' }));
    expect(res.status).toBe(200); // committed before the end revealed the shortfall
    expect(res.headers['content-length']).toBeUndefined();
    expect(res.complete).toBe(false);
    expect(res.trailers['x-content-sha256']).toBeUndefined();
    expect(res.body.length).toBeLessThanOrEqual(cut.length);
    expect(await endEventOf(res)).toMatchObject({ action: 'recording.retrieve.end', outcome: 'failed', errorCode: 'media.undecodable' });

    const player = await raw(`${gw.url}/api/v1/recordings/cut_1/media?format=wav`, { headers: bearer(KEYS.acme) });
    expect(player.complete).toBe(false);

    // 'original' is the stored bytes as they are: served whole, short as they are.
    const original = await post(gw, retrieveBody({ target_recording_ref: 'cut_1', format_preference: 'original' }));
    expect(original.status).toBe(200);
    expect(original.complete).toBe(true);
    expect(original.body.equals(cut)).toBe(true);
    expect(await endEventOf(original)).toMatchObject({ outcome: 'completed', bytesSent: cut.length });
  });
});
