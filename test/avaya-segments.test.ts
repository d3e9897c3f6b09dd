import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { wavHeader } from '../src/media/wav-header.js';
import { type LegacySimulator, startLegacySimulator } from '../src/sources/legacy-http/simulator.js';
import { buildWav, corrWithReference, ffprobe, fmtBody, readFixture, wavChunks } from './support/audio.js';
import { KEYS, bearer, retrieveBody, startTestGateway, type TestGateway } from './support/gateway.js';
import { post, raw } from './support/http.js';

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const dataOf = (wav: Buffer) => wavChunks(wav).find(([id]) => id === 'data')![1];

// A call of three PCM segments cut from the reference fixture; segment 2 carries a LIST chunk.
const PCM = readFixture('call_mono_pcm16_8k.wav');
const PCM_FMT = wavChunks(PCM).find(([id]) => id === 'fmt ')![1];
const PCM_DATAS = [dataOf(PCM).subarray(0, 30_000), dataOf(PCM).subarray(30_000, 90_000), dataOf(PCM).subarray(90_000)];
const PCM_SEGMENTS = PCM_DATAS.map((d, i) =>
  buildWav([['fmt ', PCM_FMT], ...(i === 1 ? ([['LIST', Buffer.from('INFOISFT\x04\x00\x00\x00ACR\x00', 'latin1')]] as [string, Buffer][]) : []), ['data', d]]),
);
const PCM_JOINED = Buffer.concat([wavHeader({ sampleRate: 8000, channels: 1, bitsPerSample: 16, dataLength: PCM_DATAS.reduce((a, d) => a + d.length, 0) }), ...PCM_DATAS]);

// The G.729 fixture as Avaya writes it (non-standard fmt values), cut at frame boundaries.
const AVAYA_G729_FMT = fmtBody({ tag: 0x0083, channels: 1, sampleRate: 8000, byteRate: 8000, blockAlign: 20, bits: 0, extra: Buffer.alloc(0) });
const G729_DATA = dataOf(readFixture('call_mono_g729_8k.wav'));
const G729_DATAS = [G729_DATA.subarray(0, 3_000), G729_DATA.subarray(3_000, 5_450), G729_DATA.subarray(5_450)];
const G729_SEGMENTS = G729_DATAS.map((d) => buildWav([['fmt ', AVAYA_G729_FMT], ['data', d]]));
const G729_WHOLE = buildWav([['fmt ', AVAYA_G729_FMT], ['data', G729_DATA]]);

const PASSWORD = 'acr-api-user-password';

/**
 * An Avaya call split into segments (hold, transfer) served through the gateway as one
 * recording: `ucid:<ucid>` joins every segment in <startedat> order into one WAV with a known
 * length (Range works on it); `ucid:<ucid>#<n>` is one segment as stored.
 */
describe('Avaya calls of several segments through the gateway', () => {
  let avaya: LegacySimulator;
  let gw: TestGateway;

  beforeAll(async () => {
    avaya = await startLegacySimulator({
      provider: 'avaya_aura',
      users: [{ username: 'svc_replay', password: PASSWORD }],
      knobs: { reverseSearchOrder: true },
      recordings: [
        ...PCM_SEGMENTS.map((bytes, i) => ({ id: `70000000000010${i + 1}`, ucid: 'UCID-PCM', segment: i + 1, bytes })),
        ...G729_SEGMENTS.map((bytes, i) => ({ id: `70000000000020${i + 1}`, ucid: 'UCID-G729', segment: i + 1, bytes })),
        { id: '700000000000209', bytes: G729_WHOLE },
        { id: '700000000000301', ucid: 'UCID-MIX', segment: 1, bytes: PCM_SEGMENTS[0]! },
        { id: '700000000000302', ucid: 'UCID-MIX', segment: 2, bytes: readFixture('call_mono_mulaw_8k.wav') },
      ],
    });
    gw = await startTestGateway({
      sources: {
        acme: [{ name: 'avaya', type: 'legacy-http', provider: 'avaya_aura', api_endpoint: avaya.endpoint, auth_type: 'basic', username: 'svc_replay', password: PASSWORD }],
      },
    });
    await gw.seed([
      { call_id: 'call-pcm', locator: 'ucid:UCID-PCM', connector: 'avaya' },
      { call_id: 'call-pcm-2', locator: 'ucid:UCID-PCM#2', connector: 'avaya' },
      { call_id: 'call-g729', locator: 'ucid:UCID-G729', connector: 'avaya' },
      { call_id: 'call-g729-whole', legacy_archive_id: '700000000000209', connector: 'avaya' },
      { call_id: 'call-mix', locator: 'ucid:UCID-MIX', connector: 'avaya' },
    ]);
  });
  afterAll(async () => {
    await gw?.stop();
    await avaya?.close();
  });

  const media = (ref: string, format: string, headers: Record<string, string> = {}) => raw(`${gw.url}/api/v1/recordings/${ref}/media?format=${format}`, { headers: { ...bearer(KEYS.acme), ...headers } });

  it('"ucid:<ucid>" is the whole call: the segments in <startedat> order as one WAV that plays for their summed length', async () => {
    const res = await post(gw, retrieveBody({ target_recording_ref: 'call-pcm', format_preference: 'original' }));
    expect(res.status, res.body.toString().slice(0, 300)).toBe(200);
    expect(res.complete).toBe(true);
    expect(res.headers['content-type']).toBe('audio/wav');
    expect(res.headers['x-audio-codec']).toBe('pcm_s16le');
    expect(res.body.equals(PCM_JOINED)).toBe(true);
    expect(sha256(res.body)).toBe(sha256(Buffer.concat([PCM_JOINED.subarray(0, 44), ...PCM_SEGMENTS.map(dataOf)])));
    expect(res.trailers['x-content-sha256']).toBe(sha256(PCM_JOINED));
    const probe = await ffprobe(res.body, 'wav');
    expect(Number(probe.format.duration)).toBeCloseTo(PCM_DATAS.reduce((a, d) => a + d.length, 0) / 16_000, 2);
    // The player endpoint knows the length before the first byte.
    const player = await media('call-pcm', 'original');
    expect(player.headers['content-length']).toBe(String(PCM_JOINED.length));
    expect(player.headers['accept-ranges']).toBe('bytes');
    expect(player.body.equals(PCM_JOINED)).toBe(true);
  });

  it('a Range across a segment boundary returns exactly those bytes of the joined file', async () => {
    const boundary = 44 + PCM_DATAS[0]!.length;
    const res = await media('call-pcm', 'wav', { range: `bytes=${boundary - 1000}-${boundary + 999}` });
    expect(res.status, res.body.toString().slice(0, 300)).toBe(206);
    expect(res.headers['x-transcoded']).toBe('false');
    expect(res.headers['content-range']).toBe(`bytes ${boundary - 1000}-${boundary + 999}/${PCM_JOINED.length}`);
    expect(res.body.equals(PCM_JOINED.subarray(boundary - 1000, boundary + 1000))).toBe(true);
    const suffix = await media('call-pcm', 'original', { range: 'bytes=-100' });
    expect(suffix.status).toBe(206);
    expect(suffix.body.equals(PCM_JOINED.subarray(-100))).toBe(true);
  });

  it('"ucid:<ucid>#2" is the second segment alone, as stored', async () => {
    const res = await post(gw, retrieveBody({ target_recording_ref: 'call-pcm-2', format_preference: 'original' }));
    expect(res.status).toBe(200);
    expect(res.body.equals(PCM_SEGMENTS[1]!)).toBe(true);
  });

  it('segments in different formats: 502 source.bad_gateway naming the segment, as problem+json', async () => {
    const res = await post(gw, retrieveBody({ target_recording_ref: 'call-mix', format_preference: 'original' }));
    expect(res.status).toBe(502);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    const problem = JSON.parse(res.body.toString());
    expect(problem.code).toBe('source.bad_gateway');
    expect(problem.detail).toMatch(/segment 2 of 2 \(inum 700000000000302\) has another audio format than segment 1/);
    expect(problem).toMatchObject({ status: 502, segment: 2, inum: '700000000000302' });
  });

  it('a segment breaking midway aborts the client connection: never a complete-looking answer', async () => {
    // Headers (8 KiB reads) and segment 1 (30 000 bytes) pass; segment 2 (60 000) is cut after 40 000 bytes.
    avaya.set({ resetAfterBytes: 40_000 });
    try {
      const res = await post(gw, retrieveBody({ target_recording_ref: 'call-pcm', format_preference: 'original' }));
      expect(res.status).toBe(200);
      expect(res.complete).toBe(false);
      expect(res.trailers['x-content-sha256']).toBeUndefined();
      expect(res.body.length).toBeLessThan(PCM_JOINED.length);
      expect(PCM_JOINED.subarray(0, res.body.length).equals(res.body)).toBe(true);
      const player = await media('call-pcm', 'original');
      expect(player.headers['content-length']).toBe(String(PCM_JOINED.length));
      expect(player.complete).toBe(false);
      expect(player.body.length).toBeLessThan(PCM_JOINED.length);
    } finally {
      avaya.set({ resetAfterBytes: undefined });
    }
  });

  it('Avaya G.729 segments (non-standard fmt) join, then transcode to playable WAV like the same call in one file', async () => {
    const original = await post(gw, retrieveBody({ target_recording_ref: 'call-g729', format_preference: 'original' }));
    expect(original.status, original.body.toString().slice(0, 300)).toBe(200);
    expect(original.headers['x-audio-codec']).toBe('g729');
    expect(original.body.equals(G729_WHOLE)).toBe(true);
    const wav = await post(gw, retrieveBody({ target_recording_ref: 'call-g729', format_preference: 'wav' }));
    expect(wav.status, wav.body.toString().slice(0, 300)).toBe(200);
    expect(wav.headers['x-transcoded']).toBe('true');
    const single = await post(gw, retrieveBody({ target_recording_ref: 'call-g729-whole', format_preference: 'wav' }));
    expect(single.status).toBe(200);
    expect(wav.body.equals(single.body)).toBe(true);
    const probe = await ffprobe(wav.body, 'wav');
    expect(probe.streams[0]?.codec_name).toBe('pcm_s16le');
    expect(Number(probe.format.duration)).toBeCloseTo(G729_DATA.length / 1_000, 1);
    // What the pipeline gets from the fixture in one file (src/media/prepare.test.ts: 0.827).
    expect(corrWithReference(wav.body, 200).corr).toBeGreaterThanOrEqual(0.78);
  });
});
