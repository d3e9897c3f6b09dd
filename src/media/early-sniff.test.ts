/**
 * A source that trickles (a slow WAN link to a legacy recorder): the first byte goes out as soon
 * as the bytes that decide the answer are in, not after the whole 64 KiB sniff window.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { FFMPEG, collect, fixturePath } from '../../test/support/audio.js';
import { prepareMedia } from './prepare.js';
import { Transcoder } from './transcoder.js';

const transcoder = new Transcoder({ ffmpegPath: FFMPEG, maxConcurrent: 1, maxQueued: 4, timeoutMs: 20_000, killGraceMs: 500 });
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** Delivers `first` at once, then nothing until release(). */
function trickle(bytes: Buffer, first: number): Readable & { release(): void } {
  const r = new Readable({ read() {} }) as Readable & { release(): void };
  r.push(bytes.subarray(0, first));
  r.release = () => {
    r.push(bytes.subarray(first));
    r.push(null);
  };
  return r;
}

const settledWithin = <T>(p: Promise<T>, ms: number): Promise<boolean> =>
  Promise.race([p.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), ms))]);

describe('sniffing a source that trickles', () => {
  it('a WAV is prepared once its fmt and data headers are in, and every byte still follows', async () => {
    const wav = readFileSync(fixturePath('call_mono_pcm16_8k.wav'));
    const src = trickle(wav, 1400);
    const prepared = prepareMedia(src, 'original', { transcoder, signal: new AbortController().signal, sourceSize: wav.length });
    expect(await settledWithin(prepared, 1000)).toBe(true);
    const p = await prepared;
    expect(p.plan.action).toBe('passthrough');
    expect(p.codec).toBe('pcm_s16le');
    src.release();
    expect(sha(await collect(p.body))).toBe(sha(wav));
  });

  it('a µ-law WAV decodes the same when its head came in a trickle', async () => {
    const wav = readFileSync(fixturePath('call_mono_mulaw_8k.wav'));
    const whole = await collect((await prepareMedia(Readable.from([wav]), 'wav', { transcoder, signal: new AbortController().signal })).body);
    const src = trickle(wav, 300);
    const prepared = prepareMedia(src, 'wav', { transcoder, signal: new AbortController().signal, sourceSize: wav.length });
    expect(await settledWithin(prepared, 1000)).toBe(true);
    src.release();
    expect(sha(await collect((await prepared).body))).toBe(sha(whole));
  });

  it('a WAV whose header has not all arrived, a WAV of unknown size, and an MP3 wait for the window', async () => {
    const wav = readFileSync(fixturePath('call_mono_pcm16_8k.wav'));
    const signal = new AbortController().signal;
    const cut = trickle(wav, 30); // inside the fmt chunk
    const a = prepareMedia(cut, 'original', { transcoder, signal, sourceSize: wav.length });
    // Size unknown: only reading to the end within the window tells a truncated file.
    const unsized = trickle(wav, 1400);
    const b = prepareMedia(unsized, 'original', { transcoder, signal });
    const mp3 = readFileSync(fixturePath('call_mono_8k.mp3'));
    const slow = trickle(mp3, 1400);
    const c = prepareMedia(slow, 'original', { transcoder, signal, sourceSize: mp3.length });
    expect(await settledWithin(Promise.any([a, b, c]), 300)).toBe(false);
    for (const s of [cut, unsized, slow]) s.release();
    const [pa, pb, pc] = await Promise.all([a, b, c]);
    expect([pa.codec, pb.codec, pc.codec]).toEqual(['pcm_s16le', 'pcm_s16le', 'mp3']);
    expect(sha(await collect(pa.body))).toBe(sha(wav));
    expect(sha(await collect(pb.body))).toBe(sha(wav));
    expect(sha(await collect(pc.body))).toBe(sha(mp3));
  });

  it('a truncated WAV of known size is not taken early: refused as before, before any byte', async () => {
    const wav = readFileSync(fixturePath('call_mono_pcm16_8k.wav'));
    const short = wav.subarray(0, 40_000);
    const src = trickle(short, 1400);
    const prepared = prepareMedia(src, 'wav', { transcoder, signal: new AbortController().signal, sourceSize: short.length });
    prepared.catch(() => {});
    expect(await settledWithin(prepared, 200)).toBe(false);
    src.release();
    await expect(prepared).rejects.toMatchObject({ code: 'media.undecodable' });
  });
});
