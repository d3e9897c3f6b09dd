/**
 * WAV layouts and mislabels built from the fixtures at test time: extra and odd-sized chunks,
 * RF64, Sipro/Avaya G.729 and APICOM G.722 re-tags, G.726/G.723.1/Vorbis made by ffmpeg.
 */
import { afterAll, describe, expect, it } from 'vitest';
import {
  FFMPEG,
  buildWav,
  collect,
  correlationReport,
  corrWithReference,
  ffmpegBytes,
  fixturePath,
  fmtBody,
  parseWav,
  prepareBytes,
  prepareFixture,
  type PrepareFixtureOptions,
  readFixture,
  wavChunks,
} from '../../test/support/audio.js';
import type { AudioFormat } from './format.js';
import type { PreparedMedia } from './prepare.js';
import { Transcoder } from './transcoder.js';

const transcoder = new Transcoder({ ffmpegPath: FFMPEG, maxConcurrent: 2, maxQueued: 32, timeoutMs: 20_000, killGraceMs: 500 });
const fromFile = (name: string, want: AudioFormat, o: Omit<PrepareFixtureOptions, 'transcoder'> & { t?: Transcoder } = {}): Promise<PreparedMedia> =>
  prepareFixture(name, want, { transcoder: o.t ?? transcoder, ...o });
const fromBytes = (b: Buffer, want: AudioFormat, o: { sourceSize?: number; rawCodecHint?: string; t?: Transcoder; signal?: AbortSignal } = {}): Promise<PreparedMedia> =>
  prepareBytes(b, want, { transcoder: o.t ?? transcoder, ...o });
const report = correlationReport();
afterAll(() => report.print());

describe('prepareMedia: synthetic WAV layouts and mislabels', () => {
  const ulaw = readFixture('call_mono_mulaw_8k.wav');
  const ulawChunks = wavChunks(ulaw);
  const ulawFmt = ulawChunks.find(([id]) => id === 'fmt ')![1];
  const ulawData = ulawChunks.find(([id]) => id === 'data')![1];
  const bext = Buffer.alloc(603, 0x20); // odd: padded
  const odd = Buffer.from('xyz');
  const list = Buffer.concat([Buffer.from('INFOISFT'), Buffer.from([5, 0, 0, 0]), Buffer.from('test\0\0')]);
  const decodedPayload = async (p: PreparedMedia): Promise<Buffer> => {
    const b = await collect(p.body);
    return b.subarray(parseWav(b).dataOffset);
  };

  it('extra chunks (bext, odd-sized, fact, LIST; LIST after data) around µ-law', async () => {
    const plain = await decodedPayload(await fromFile('call_mono_mulaw_8k.wav', 'wav'));
    const wav = buildWav([['bext', bext], ['fmt ', ulawFmt], ['odd1', odd], ['fact', Buffer.from([0xcd, 7, 1, 0])], ['LIST', list], ['data', ulawData], ['LIST', list]]);
    const p = await fromBytes(wav, 'wav', { sourceSize: wav.length });
    expect(p.plan.action).toBe('g711');
    expect((await decodedPayload(p)).equals(plain)).toBe(true);
  });

  it('extra chunks around PCM: passthrough keeps the file as stored', async () => {
    const pcm = wavChunks(readFixture('call_mono_pcm16_8k.wav'));
    const wav = buildWav([['fmt ', pcm[0]![1]], ['odd1', odd], ['bext', bext], ['data', pcm[1]![1]], ['LIST', list]]);
    const p = await fromBytes(wav, 'wav', { sourceSize: wav.length });
    expect(p).toMatchObject({ transcoded: false, length: wav.length });
    expect((await collect(p.body)).equals(wav)).toBe(true);
  });

  it('extra odd chunks in GSM (ffmpeg parses that WAV itself)', async () => {
    const plain = await decodedPayload(await fromFile('call_mono_gsm610_8k.wav', 'wav'));
    const gsm = wavChunks(readFixture('call_mono_gsm610_8k.wav'));
    const wav = buildWav([['fmt ', gsm[0]![1]], ['odd1', odd], ['bext', bext], ...gsm.slice(1)]);
    const p = await fromBytes(wav, 'wav', { sourceSize: wav.length });
    const got = await decodedPayload(p);
    expect(got.equals(plain)).toBe(true);
  });

  it('RF64 µ-law', async () => {
    const ds64 = Buffer.alloc(28);
    ds64.writeBigUInt64LE(BigInt(ulawData.length), 8);
    const wav = buildWav([['ds64', ds64], ['fmt ', ulawFmt], ['data', ulawData]], { magic: 'RF64', riffSize: 0xffffffff });
    wav.writeUInt32LE(0xffffffff, wav.indexOf('data', 12, 'latin1') + 4);
    const plain = await decodedPayload(await fromFile('call_mono_mulaw_8k.wav', 'wav'));
    expect((await decodedPayload(await fromBytes(wav, 'wav'))).equals(plain)).toBe(true);
  });

  const g729Data = wavChunks(readFixture('call_mono_g729_8k.wav')).find(([id]) => id === 'data')![1];
  const g729Wav = (tag: number, blockAlign: number, byteRate: number): Buffer =>
    buildWav([['fmt ', fmtBody({ tag, channels: 1, sampleRate: 8000, byteRate, blockAlign, bits: 0, extra: Buffer.alloc(0) })], ['data', g729Data]]);

  it.each([
    ['Sipro 0x0133', 0x0133, 10, 1000],
    ['Sipro 0x0134', 0x0134, 10, 1000],
    ['Avaya-style 0x0083, blockAlign 20 / 8000 B/s', 0x0083, 20, 8000],
    ['Avaya-style 0x729A, blockAlign 1 / 1 B/s', 0x729a, 1, 1],
  ])('G.729 %s decodes like the standard file', async (_name, tag, blockAlign, byteRate) => {
    const plain = await decodedPayload(await fromFile('call_mono_g729_8k.wav', 'wav'));
    const wav = g729Wav(tag, blockAlign, byteRate);
    const p = await fromBytes(wav, 'wav', { sourceSize: wav.length });
    expect(p).toMatchObject({ codec: 'g729', length: 44 + 845 * 160 });
    expect((await decodedPayload(p)).equals(plain)).toBe(true);
  });

  it('…where ffmpeg alone fails on the Sipro tag', async () => {
    await expect(ffmpegBytes(['-i', 'pipe:0', '-f', 's16le', 'pipe:1'], g729Wav(0x0133, 10, 1000))).rejects.toThrow();
  });

  it('APICOM G.722 (0x0065), which ffmpeg alone takes for G.726', async () => {
    const wav = Buffer.from(readFixture('call_mono_g722_16k.wav'));
    wav.writeUInt16LE(0x0065, 20);
    await expect(ffmpegBytes(['-i', 'pipe:0', '-f', 's16le', 'pipe:1'], wav)).rejects.toThrow(/g726/);
    const plain = await decodedPayload(await fromFile('call_mono_g722_16k.wav', 'wav'));
    const p = await fromBytes(wav, 'wav', { sourceSize: wav.length });
    expect(p.codec).toBe('g722');
    const got = await decodedPayload(p);
    expect(got.equals(plain)).toBe(true);
  });

  it.each([
    ['16k', 2],
    ['24k', 3],
    ['32k', 4],
    ['40k', 5],
  ])('G.726 %s (made at test time): exact length', async (bitrate, bits) => {
    const wav = await ffmpegBytes(['-i', fixturePath('call_mono_pcm16_8k.wav'), '-c:a', 'g726', '-b:a', bitrate, '-f', 'wav', '-rf64', 'never', '-bitexact', 'pipe:1']);
    // ffmpeg wrote it to a pipe: patch the sizes as a file writer would have.
    const off = wav.indexOf('data', 12, 'latin1');
    wav.writeUInt32LE(wav.length - off - 8, off + 4);
    wav.writeUInt32LE(wav.length - 8, 4);
    const p = await fromBytes(wav, 'wav', { sourceSize: wav.length });
    expect(p.sniff).toMatchObject({ codec: 'g726', bitsPerSample: bits });
    const bytes = await collect(p.body);
    expect(p.length).toBe(bytes.length);
    const { corr, lag } = corrWithReference(bytes, 200);
    report.record(`G.726 ${bitrate} → wav`, `${corr.toFixed(4)} (lag ${lag})`);
    expect(corr).toBeGreaterThanOrEqual(bits === 2 ? 0.6 : 0.85);
  });

  it('G.723.1 and Ogg Vorbis (made at test time): length unknown, content right', async () => {
    const ref = fixturePath('call_mono_pcm16_8k.wav');
    const g723 = await ffmpegBytes(['-i', ref, '-c:a', 'g723_1', '-b:a', '6300', '-f', 'wav', 'pipe:1']);
    const vorbis = await ffmpegBytes(['-i', ref, '-c:a', 'libvorbis', '-f', 'ogg', 'pipe:1']);
    for (const [name, src, min] of [
      ['G.723.1', g723, 0.5],
      ['Vorbis', vorbis, 0.9],
    ] as const) {
      const p = await fromBytes(src, 'wav');
      expect(p.length).toBeUndefined();
      const bytes = await collect(p.body);
      const { corr, lag } = corrWithReference(bytes, 400);
      report.record(`${name} → wav`, `${corr.toFixed(4)} (lag ${lag})`);
      expect(corr).toBeGreaterThanOrEqual(min);
    }
  });
});
