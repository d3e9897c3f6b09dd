import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { prepareMedia } from '../../media/prepare.js';
import { sniff } from '../../media/sniff.js';
import { LegacyHttpConnector } from './connector.js';
import { channelMap, defaultMergePool, mergeGraph } from './mediasense-tracks.js';
import { startLegacySimulator, type LegacySimRecording, type LegacySimulator } from './simulator.js';
import { configFor, copyOf, drain, failure, signal } from './test-helpers.js';

/**
 * A MediaSense session recorded as two tracks (near end, far end), each a tone of its own: the
 * merged answer must hold both parties, one per channel, in track order.
 */

let dir: string;
/** Near end: 440 Hz, G.711 µ-law, 8 kHz, 2.0 s. */
let NEAR: Buffer;
/** Far end: 1000 Hz, G.722, 16 kHz, 1.5 s (another codec, rate and length). */
let FAR: Buffer;
/** Far end as 16 kHz PCM, 1.5 s (48 000 data bytes: longer on the wire than NEAR). */
let FAR_PCM: Buffer;

function tone(name: string, hz: number, rate: number, seconds: number, codec: string): Buffer {
  const path = join(dir, name);
  execFileSync('ffmpeg', ['-nostdin', '-hide_banner', '-loglevel', 'error', '-f', 'lavfi', '-i', `sine=frequency=${hz}:sample_rate=${rate}:duration=${seconds}`, '-c:a', codec, '-map_metadata', '-1', '-fflags', '+bitexact', '-y', path]);
  return readFileSync(path);
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'ms-tracks-'));
  NEAR = tone('near.wav', 440, 8000, 2, 'pcm_mulaw');
  FAR = tone('far.wav', 1000, 16000, 1.5, 'g722');
  FAR_PCM = tone('far-pcm.wav', 1000, 16000, 1.5, 'pcm_s16le');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const CALL = 'call-2tracks';
const tracksOf = (far: Buffer): LegacySimRecording['tracks'] => [
  { bytes: 'video', mediaType: 'VIDEO', codec: 'H264' },
  { bytes: NEAR, codec: 'PCMU', participants: ['1000'] },
  { bytes: far, codec: 'G722', participants: ['+15551230000'] },
];

let sim: LegacySimulator;
const open: LegacyHttpConnector[] = [];
async function simWith(recordings: LegacySimRecording[], knobs = {}): Promise<LegacySimulator> {
  sim = await startLegacySimulator({ provider: 'cisco_mediasense', recordings, knobs });
  return sim;
}
function connector(over: Record<string, unknown> = {}): LegacyHttpConnector {
  const c = new LegacyHttpConnector('tenant-a', configFor(sim, over));
  open.push(c);
  return c;
}
const downloads = () => sim.requests.filter((e) => e.path.startsWith('/recordedMedia/'));

afterEach(async () => {
  await Promise.all(open.splice(0).map((c) => c.close()));
  await sim?.close();
});

/** Power of `hz` in one channel of interleaved s16le (Goertzel), samples [from, to). */
function power(pcm: Buffer, channels: number, channel: number, rate: number, hz: number, from = 0, to = pcm.length / 2 / channels): number {
  const k = 2 * Math.cos((2 * Math.PI * hz) / rate);
  let s1 = 0;
  let s2 = 0;
  for (let i = from; i < to; i++) {
    const s0 = pcm.readInt16LE((i * channels + channel) * 2) + k * s1 - s2;
    s2 = s1;
    s1 = s0;
  }
  return (s1 * s1 + s2 * s2 - k * s1 * s2) / (to - from);
}

function peak(pcm: Buffer, channels: number, channel: number, from: number, to: number): number {
  let m = 0;
  for (let i = from; i < to; i++) m = Math.max(m, Math.abs(pcm.readInt16LE((i * channels + channel) * 2)));
  return m;
}

describe('MediaSense: a session of two audio tracks is served as the whole call', () => {
  it('track: all (the default) merges near and far end into one stereo WAV, a channel per track, in track order', async () => {
    await simWith([{ id: CALL, tracks: tracksOf(FAR) }]);
    const m = await connector().open(copyOf(CALL), { signal: signal() });
    expect(m.contentType).toBe('audio/wav');
    const wav = await drain(m.body);
    expect(m.totalSize).toBe(wav.length);
    const s = sniff(wav, { totalSize: wav.length });
    // 16 kHz: the highest rate among the tracks (G.722), so the wideband party keeps its band.
    expect(s).toMatchObject({ container: 'wav', codec: 'pcm_s16le', channels: 2, sampleRate: 16000 });
    expect(s.problem).toBeUndefined();
    const pcm = wav.subarray(s.dataOffset, (s.dataOffset ?? 0) + (s.dataLength ?? 0));
    const frames = pcm.length / 4;
    // As long as the longer track (2.0 s); the shorter one is padded with silence, never the longer cut.
    expect(frames).toBe(32000);
    const at = (ch: number, hz: number) => power(pcm, 2, ch, 16000, hz, 0, 24000);
    expect(at(0, 440)).toBeGreaterThan(1000 * at(0, 1000));
    expect(at(1, 1000)).toBeGreaterThan(1000 * at(1, 440));
    expect(peak(pcm, 2, 0, 24000, 32000)).toBeGreaterThan(1000); // the near end goes on
    expect(peak(pcm, 2, 1, 24100, 32000)).toBe(0); // the far end has ended: silence
    // Which party is which travels in the file (LIST/INFO comment).
    expect(wav.subarray(0, s.dataOffset).toString('latin1')).toContain('channel 1 = track 1 (1000); channel 2 = track 2 (+15551230000)');
    expect(downloads().map((e) => e.path)).toEqual([`/recordedMedia/oramedia/wav/${CALL}-1.wav`, `/recordedMedia/oramedia/wav/${CALL}-2.wav`]);
    await expect.poll(() => defaultMergePool().active).toBe(0);
  });

  it('a 16 kHz PCM track comes out bit-exact in its channel; the length is known for PCM tracks too', async () => {
    await simWith([{ id: CALL, tracks: [{ bytes: NEAR }, { bytes: FAR_PCM }] }]);
    const m = await connector().open(copyOf(CALL), { signal: signal() });
    const wav = await drain(m.body);
    expect(m.totalSize).toBe(wav.length);
    const s = sniff(wav, { totalSize: wav.length });
    expect(s.dataLength).toBe(32000 * 4);
    const pcm = wav.subarray(s.dataOffset, (s.dataOffset ?? 0) + (s.dataLength ?? 0));
    // The far end was 16 kHz PCM already: it comes out bit-exact in channel 2.
    const far = FAR_PCM.subarray(FAR_PCM.length - 48000);
    for (let i = 0; i < 24000; i++) expect(pcm.readInt16LE(i * 4 + 2)).toBe(far.readInt16LE(i * 2));
  });

  it('the merged WAV goes through the media layer like any stored WAV: mp3 keeps both channels', async () => {
    await simWith([{ id: CALL, tracks: tracksOf(FAR) }]);
    const m = await connector().open(copyOf(CALL), { signal: signal() });
    const mp3 = await prepareMedia(m.body, 'mp3', { transcoder: defaultMergePool(), signal: signal(), sourceSize: m.totalSize });
    expect(mp3).toMatchObject({ contentType: 'audio/mpeg', transcoded: true, codec: 'pcm_s16le' });
    const bytes = await drain(mp3.body);
    const probe = execFileSync('ffprobe', ['-v', 'error', '-show_entries', 'stream=channels,sample_rate', '-of', 'csv=p=0', '-'], { input: bytes }).toString().trim();
    expect(probe).toBe('16000,2');
  });

  it('a Range is cut from the computed whole (200 with its length, cut by the connector)', async () => {
    await simWith([{ id: CALL, tracks: tracksOf(FAR) }]);
    const c = connector();
    const whole = await drain((await c.open(copyOf(CALL), { signal: signal() })).body);
    const m = await c.open(copyOf(CALL), { range: { start: 1000, end: 4999 }, signal: signal() });
    expect(m.range).toEqual({ start: 1000, end: 4999 });
    expect(m.totalSize).toBe(whole.length);
    expect((await drain(m.body)).equals(whole.subarray(1000, 5000))).toBe(true);
    // The tracks are fetched whole: a byte range of the merge is no byte range of a track.
    expect(downloads().every((e) => e.headers.range === undefined)).toBe(true);
    expect((await failure(c.open(copyOf(CALL), { range: { start: whole.length }, signal: signal() }))).code).toBe('range.not_satisfiable');
  });

  it('one track breaking mid-way fails the whole answer: never half a call that ends cleanly', async () => {
    // Every media answer stops after 30 000 bytes: the near end (16 KB) is whole, the far end (48 KB) is cut.
    await simWith([{ id: CALL, tracks: [{ bytes: NEAR }, { bytes: FAR_PCM }] }], { resetAfterBytes: 30_000 });
    // The headers of both tracks arrive, so the answer starts; the far end breaks inside the body.
    const m = await connector().open(copyOf(CALL), { signal: signal() });
    const outcome = await drain(m.body).then(
      () => 'ended cleanly',
      (e: unknown) => e,
    );
    expect(outcome).not.toBe('ended cleanly');
    expect(outcome).toBeInstanceOf(Error);
    await expect.poll(() => defaultMergePool().active).toBe(0);
  });

  it('a track that is not audio refuses the call before any byte, naming the track', async () => {
    await simWith([{ id: CALL, tracks: [{ bytes: NEAR }, { bytes: Buffer.alloc(4000, 7) }] }]);
    const e = await failure(connector().open(copyOf(CALL), { signal: signal() }));
    expect(e.code).toBe('media.undecodable');
    expect(e.extra).toMatchObject({ track: 1 });
    expect(e.message).toMatch(/track 1 \(channel 2 of the merged call\).*profile\.track/);
    await expect.poll(() => defaultMergePool().active).toBe(0);
  });

  it('a track missing upstream fails the open (the other track is let go)', async () => {
    await simWith([{ id: CALL, tracks: tracksOf(FAR) }]);
    sim.failNext(1, 404, 'media');
    const e = await failure(connector().open(copyOf(CALL), { signal: signal() }));
    expect(e.code).toBe('source.object_missing');
  });

  it('the consumer going away stops the merge (ffmpeg killed, slot released)', async () => {
    await simWith([{ id: CALL, tracks: tracksOf(FAR) }]);
    const m = await connector().open(copyOf(CALL), { signal: signal() });
    await new Promise((r) => m.body.once('readable', r));
    m.body.destroy();
    await expect.poll(() => defaultMergePool().active).toBe(0);
  });

  it('track: first and a track number still serve one track, its stored bytes untouched', async () => {
    await simWith([{ id: CALL, tracks: tracksOf(FAR) }]);
    const first = await connector({ profile: { track: 'first' } }).open(copyOf(CALL), { signal: signal() });
    expect((await drain(first.body)).equals(NEAR)).toBe(true);
    const far = await connector({ profile: { track: 2 } }).open(copyOf(CALL), { signal: signal() });
    expect((await drain(far.body)).equals(FAR)).toBe(true);
  });

  it('a session with one audio track is that track as stored, also under track: all', async () => {
    await simWith([{ id: CALL, tracks: [{ bytes: 'video', mediaType: 'VIDEO' }, { bytes: NEAR }] }]);
    const m = await connector({ profile: { track: 'all' } }).open(copyOf(CALL), { signal: signal() });
    expect((await drain(m.body)).equals(NEAR)).toBe(true);
  });
});

describe('merge plan', () => {
  it('pans each track to its own channel and pads to the longest', () => {
    expect(mergeGraph([8000, 16000], 16000)).toBe(
      '[0:a]aresample=16000,aformat=sample_fmts=flt:channel_layouts=mono,pan=2c|c0=c0[t0];[1:a]aresample=16000,aformat=sample_fmts=flt:channel_layouts=mono,pan=2c|c1=c0[t1];[t0][t1]amix=inputs=2:duration=longest:normalize=0[out]',
    );
  });

  it('names the parties printable and bounded', () => {
    expect(channelMap([{ trackNumber: 0, codec: undefined, participants: ['1000', 'bad\nref'] }, { trackNumber: 1, codec: undefined, participants: [] }])).toBe(
      'channel 1 = track 0 (1000, bad?ref); channel 2 = track 1',
    );
  });
});
