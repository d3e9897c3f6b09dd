/**
 * Bad input, failures while streaming, cancellation, saturation, and property-based runs: every
 * outcome is a body or a 415/422 AppError, never another error, never a hang.
 */
import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  appErrorOf,
  buildWav,
  chunked,
  collect,
  FFMPEG,
  ffmpegBytes,
  fixturePath,
  fmtBody,
  liveSignal,
  pidAlive,
  prepareBytes,
  prepareFixture,
  type PrepareFixtureOptions,
  readFixture,
  waitFor,
  wavChunks,
} from '../../test/support/audio.js';
import { AppError } from '../errors.js';
import type { AudioFormat } from './format.js';
import { prepareMedia, type PreparedMedia } from './prepare.js';
import { Transcoder, TranscodeOutput } from './transcoder.js';

const transcoder = new Transcoder({ ffmpegPath: FFMPEG, maxConcurrent: 2, maxQueued: 32, timeoutMs: 20_000, killGraceMs: 500 });
const fromFile = (name: string, want: AudioFormat, o: Omit<PrepareFixtureOptions, 'transcoder'> & { t?: Transcoder } = {}): Promise<PreparedMedia> =>
  prepareFixture(name, want, { transcoder: o.t ?? transcoder, ...o });
const fromBytes = (b: Buffer, want: AudioFormat, o: { sourceSize?: number; rawCodecHint?: string; t?: Transcoder; signal?: AbortSignal } = {}): Promise<PreparedMedia> =>
  prepareBytes(b, want, { transcoder: o.t ?? transcoder, ...o });

describe('prepareMedia: bad input is refused quickly, never hangs or crashes', () => {
  it.each(['bad_truncated_pcm16.wav', 'bad_garbage_riff.wav', 'bad_text.wav'])('%s', { timeout: 5000 }, async (name) => {
    for (const want of ['wav', 'mp3', 'opus'] as const) {
      for (const withSize of [true, false]) {
        const e = await appErrorOf(fromFile(name, want, { withSize }));
        expect(e).toMatchObject({ code: 'media.undecodable', status: 422 });
      }
    }
    expect((await appErrorOf(fromFile('bad_truncated_pcm16.wav', 'wav'))).message).toMatch(/truncated/);
  });

  it('a recognised codec we cannot convert → 415 naming it (X-Audio-Codec)', async () => {
    const g729 = wavChunks(readFixture('call_mono_g729_8k.wav'));
    const data = g729.find(([id]) => id === 'data')![1];
    const stereo729 = buildWav([['fmt ', fmtBody({ tag: 0x83, channels: 2, sampleRate: 8000, byteRate: 2000, blockAlign: 20, bits: 0 })], ['data', data]]);
    const e = await appErrorOf(fromBytes(stereo729, 'wav'));
    expect(e).toMatchObject({ code: 'media.unsupported_codec', status: 415, extra: { codec: 'g729' }, headers: { 'X-Audio-Codec': 'g729' } });

    const alien = buildWav([['fmt ', fmtBody({ tag: 0x1234, channels: 1, sampleRate: 8000, byteRate: 1000, blockAlign: 1, bits: 0 })], ['data', data]]);
    const e2 = await appErrorOf(fromBytes(alien, 'mp3'));
    expect(e2).toMatchObject({ status: 415, extra: { codec: 'unknown', formatTag: '0x1234' }, headers: { 'X-Audio-Codec': 'unknown' } });

    const speex = await ffmpegBytes(['-i', fixturePath('call_mono_pcm16_8k.wav'), '-t', '1', '-c:a', 'libspeex', '-f', 'ogg', 'pipe:1']);
    expect(await appErrorOf(fromBytes(speex, 'wav'))).toMatchObject({ status: 415, headers: { 'X-Audio-Codec': 'unknown' } });
    // ... but 'original' still serves it.
    expect((await fromBytes(speex, 'original')).contentType).toBe('audio/ogg');
  });

  it('a header that promises more than a long file holds: the body errors, never ends cleanly', async () => {
    const wav = Buffer.from(readFixture('call_mono_mulaw_8k.wav')); // 67 626 bytes > the 64 KiB sniff window
    wav.writeUInt32LE(67533 + 5000, 0x58); // data size
    const p = await fromBytes(wav, 'wav'); // size unknown: cannot be refused up front
    expect(p.length).toBe(44 + 2 * (67533 + 5000));
    await expect(collect(p.body)).rejects.toMatchObject({ code: 'media.undecodable', message: expect.stringMatching(/ends early/) });
    // With the size known it is refused before any byte is sent.
    await expect(fromBytes(wav, 'wav', { sourceSize: wav.length })).rejects.toMatchObject({ status: 422 });
  });

  it('a PCM WAV cut short, from a source of unknown size: the wav body errors, never ends cleanly', async () => {
    const cut = readFixture('call_mono_pcm16_8k.wav').subarray(0, 100_000); // header declares 135 066 data bytes
    const p = await fromBytes(cut, 'wav'); // past the sniff window and no size: cannot be refused up front
    expect(p.plan.action).toBe('passthrough');
    await expect(collect(p.body)).rejects.toMatchObject({ code: 'media.undecodable', message: expect.stringMatching(/ends early/) });
    // 'original' is the stored bytes as they are, short or not.
    expect((await collect((await fromBytes(cut, 'original')).body)).equals(cut)).toBe(true);
  });

  it('a whole PCM WAV of unknown size passes through byte for byte, chunks after the data included', async () => {
    const chunks = wavChunks(readFixture('call_mono_pcm16_8k.wav'));
    const withList = buildWav([...chunks, ['LIST', Buffer.from('INFOISFT\x06\x00\x00\x00recdr\x00', 'latin1')]]);
    for (const b of [readFixture('call_mono_pcm16_8k.wav'), withList]) {
      const p = await fromBytes(b, 'wav');
      expect(p.length).toBeUndefined();
      expect((await collect(p.body)).equals(b)).toBe(true);
    }
  });

  it('the abort signal stops a checked passthrough body too', async () => {
    const ac = new AbortController();
    const p = await fromFile('call_mono_pcm16_8k.wav', 'wav', { withSize: false, signal: ac.signal });
    await new Promise((r) => p.body.once('data', r));
    ac.abort();
    await expect(collect(p.body)).rejects.toMatchObject({ name: 'AbortError' });
  });
});

describe('prepareMedia: failures while streaming', () => {
  /** The bytes of a file up to `at`, then an error (once `until` settles, when given). */
  function failingAfter(buf: Buffer, at: number, until?: Promise<unknown>): Readable {
    let sent = 0;
    let failing = false;
    return new Readable({
      read() {
        if (sent >= at) {
          if (!failing) void Promise.resolve(until).then(() => this.destroy(new Error('storage connection reset')));
          failing = true;
          return;
        }
        this.push(buf.subarray(sent, Math.min(at, sent + 8192)));
        sent += 8192;
      },
    });
  }

  it.each([
    ['call_mono_pcm16_8k.wav', 100_000], // passthrough
    ['call_mono_mulaw_8k.wav', 66_000], // in-process G.711
    ['call_mono_g722_16k.wav', 66_000], // ffmpeg
  ])('%s: a source error midway makes the body error', async (name, at) => {
    const buf = readFixture(name);
    // The source fails once the body has begun (ffmpeg failing before its first output buffer
    // rejects prepareMedia instead: below).
    let begun!: () => void;
    const p = await prepareMedia(failingAfter(buf, at, new Promise<void>((r) => (begun = r))), 'wav', { transcoder, signal: liveSignal(), sourceSize: buf.length });
    begun();
    let ended = false;
    p.body.on('end', () => (ended = true));
    await expect(collect(p.body)).rejects.toThrow('storage connection reset');
    expect(ended).toBe(false);
  });

  /** Deterministic noise (an LCG): the same bytes on every run. */
  function noise(n: number): Buffer {
    const b = Buffer.alloc(n);
    let x = 1;
    for (let i = 0; i < n; i++) b[i] = (x = (Math.imul(x, 1664525) + 1013904223) >>> 0) >>> 24;
    return b;
  }

  it('G.726 with 8 bits per sample (ffmpeg refuses it) → 415 naming the codec, before ffmpeg runs', async () => {
    const t = new Transcoder({ ffmpegPath: '/nonexistent/ffmpeg', maxConcurrent: 1, maxQueued: 0, timeoutMs: 10_000 });
    const g726 = buildWav([['fmt ', fmtBody({ tag: 0x45, channels: 1, sampleRate: 8000, byteRate: 8000, blockAlign: 1, bits: 8 })], ['data', Buffer.alloc(3000, 0x55)]]);
    for (const want of ['wav', 'mp3'] as const) {
      const e = await appErrorOf(fromBytes(g726, want, { sourceSize: g726.length, t }));
      expect(e).toMatchObject({ code: 'media.unsupported_codec', status: 415, extra: { codec: 'g726', formatTag: '0x0045' }, headers: { 'X-Audio-Codec': 'g726' } });
      expect(e.message).toMatch(/8 bits per sample/);
    }
  });

  it('ffmpeg failing before its first output buffer rejects prepareMedia (422), so no response has begun', async () => {
    const t = new Transcoder({ ffmpegPath: FFMPEG, maxConcurrent: 1, maxQueued: 0, timeoutMs: 10_000, killGraceMs: 500 });
    const mp3InWav = (n: number) => buildWav([['fmt ', fmtBody({ tag: 0x55, channels: 1, sampleRate: 8000, byteRate: 1000, blockAlign: 1, bits: 0 })], ['data', noise(n)]]);
    for (const [b, sourceSize] of [
      [mp3InWav(3000), 3000 + 44],
      [mp3InWav(100_000), undefined], // past the sniff window, size unknown
    ] as const) {
      // For mp3 and opus ffmpeg writes the container's header at its end, before it exits non-zero.
      for (const want of ['wav', 'mp3', 'opus'] as const) {
        const e = await appErrorOf(fromBytes(b, want, { t, ...(sourceSize === undefined ? {} : { sourceSize }) }));
        expect(e).toMatchObject({ code: 'media.undecodable', status: 422, message: expect.stringMatching(/ffmpeg could not decode/) });
        expect(await waitFor(() => t.active === 0)).toBe(true); // the slot (and the child) is gone
      }
    }
  });

  it('a source error before ffmpeg has produced its first output buffer rejects prepareMedia with it', async () => {
    const t = new Transcoder({ ffmpegPath: FFMPEG, maxConcurrent: 1, maxQueued: 0, timeoutMs: 10_000, killGraceMs: 500 });
    const buf = readFixture('call_mono_g722_16k.wav');
    await expect(prepareMedia(failingAfter(buf, 16_384), 'wav', { transcoder: t, signal: liveSignal(), sourceSize: buf.length })).rejects.toThrow('storage connection reset');
    expect(await waitFor(() => t.active === 0)).toBe(true);
  });

  it('the peeked output is replayed: the body is the whole, exact output', async () => {
    const wav = readFixture('call_mono_g729_8k.wav');
    const data = wavChunks(wav).find(([id]) => id === 'data')![1];
    const direct = await ffmpegBytes(['-f', 'g729', '-i', 'pipe:0', '-c:a', 'pcm_s16le', '-ar', '8000', '-ac', '1', '-f', 's16le', 'pipe:1'], data);
    for (const withSize of [true, false]) {
      const p = await fromFile('call_mono_g729_8k.wav', 'wav', { withSize });
      expect(p.body).toBeInstanceOf(TranscodeOutput); // longer than the peek: ffmpeg's own output, the peek put back
      const body = await collect(p.body);
      expect(body.length).toBe(135_244);
      expect(body.subarray(44).equals(direct)).toBe(true);
    }
  });

  it('the client going away before the first output buffer of ffmpeg rejects prepareMedia and kills it', async () => {
    const t = new Transcoder({ ffmpegPath: FFMPEG, maxConcurrent: 1, maxQueued: 0, timeoutMs: 20_000, killGraceMs: 500 });
    // The header and about a second of frames, then nothing: identified early (size known), so
    // ffmpeg starts, and waits for more input with its output buffer not yet full.
    const wav = readFixture('call_mono_g729_8k.wav');
    let sent = false;
    const stalls = new Readable({
      read() {
        if (!sent) this.push(wav.subarray(0, 1000));
        sent = true;
      },
    });
    const ac = new AbortController();
    const pending = prepareMedia(stalls, 'mp3', { transcoder: t, signal: ac.signal, sourceSize: wav.length });
    await waitFor(() => t.active === 1);
    await new Promise((r) => setTimeout(r, 200));
    ac.abort(new Error('client disconnected'));
    await expect(pending).rejects.toThrow('client disconnected');
    expect(await waitFor(() => t.active === 0)).toBe(true);
    expect(stalls.destroyed).toBe(true);
  });

  it('a source error before the sniff window is full rejects prepareMedia', async () => {
    await expect(prepareMedia(failingAfter(readFixture('call_mono_pcm16_8k.wav'), 20_000), 'wav', { transcoder, signal: liveSignal() })).rejects.toThrow('storage connection reset');
  });

  /** Raw G.729 frames forever, only as fast as they are read. */
  function endlessG729(): Readable {
    const frames = readFixture('call_mono_g729_8k.g729');
    let i = 0;
    return new Readable({
      read() {
        const o = (i++ % 8) * 1000;
        this.push(frames.subarray(o, o + 1000));
      },
    });
  }

  it('destroying the body kills ffmpeg', async () => {
    const p = await prepareMedia(endlessG729(), 'wav', { transcoder, signal: liveSignal(), rawCodecHint: 'g729' });
    expect(p.body).toBeInstanceOf(TranscodeOutput);
    const out = p.body as TranscodeOutput;
    expect(pidAlive(out.pid!)).toBe(true);
    await new Promise((r) => out.once('data', r));
    out.destroy();
    await out.exited;
    expect(pidAlive(out.pid!)).toBe(false);
  });

  it('the client going away (abort signal) kills ffmpeg and errors the body', async () => {
    const ac = new AbortController();
    const p = await prepareMedia(endlessG729(), 'mp3', { transcoder, signal: ac.signal, rawCodecHint: 'g729' });
    const out = p.body as TranscodeOutput;
    await new Promise((r) => out.once('data', r));
    ac.abort(new Error('client disconnected'));
    await expect(collect(out)).rejects.toThrow('client disconnected');
    await out.exited;
    expect(pidAlive(out.pid!)).toBe(false);
  });

  it('transcoders busy → 503 with Retry-After; in-process G.711 still served', async () => {
    const t = new Transcoder({ ffmpegPath: FFMPEG, maxConcurrent: 1, maxQueued: 0, timeoutMs: 10_000, retryAfterSeconds: 3 });
    const hog = await prepareMedia(endlessG729(), 'wav', { transcoder: t, signal: liveSignal(), rawCodecHint: 'g729' });
    const e = await appErrorOf(fromFile('call_mono_g729_8k.wav', 'wav', { t }));
    expect(e).toMatchObject({ code: 'media.transcoder_busy', status: 503, headers: { 'Retry-After': '3' } });
    const ulaw = await fromFile('call_mono_mulaw_8k.wav', 'wav', { t });
    expect((await collect(ulaw.body)).length).toBe(ulaw.length);
    hog.body.destroy();
    await (hog.body as TranscodeOutput).exited;
  });

  it('ffmpeg missing → 503 transcoder_unavailable; in-process paths unaffected', async () => {
    const t = new Transcoder({ ffmpegPath: '/nonexistent/ffmpeg', maxConcurrent: 1, maxQueued: 0, timeoutMs: 10_000 });
    expect(await appErrorOf(fromFile('call_mono_gsm610_8k.wav', 'wav', { t }))).toMatchObject({ code: 'media.transcoder_unavailable', status: 503 });
    expect(t.active).toBe(0);
    expect((await fromFile('call_mono_alaw_8k.wav', 'wav', { t })).plan.action).toBe('g711');
    expect((await fromFile('call_mono_pcm16_8k.wav', 'wav', { t })).plan.action).toBe('passthrough');
  });

  it('the abort signal also stops in-process bodies (G.711, passthrough)', async () => {
    for (const name of ['call_mono_mulaw_8k.wav', 'call_mono_pcm16_8k.wav']) {
      const ac = new AbortController();
      const p = await fromFile(name, 'wav', { signal: ac.signal });
      await new Promise((r) => p.body.once('data', r));
      ac.abort();
      await expect(collect(p.body)).rejects.toMatchObject({ name: 'AbortError' });
    }
  });

  it('an already aborted signal rejects and releases the source', async () => {
    const ac = new AbortController();
    ac.abort(new Error('gone'));
    const src = createReadStream(fixturePath('call_mono_pcm16_8k.wav'));
    await expect(prepareMedia(src, 'wav', { transcoder, signal: ac.signal })).rejects.toThrow('gone');
    expect(src.destroyed).toBe(true);
  });
});

describe('prepareMedia: properties (each run succeeds or fails with a 415/422 AppError, within a deadline)', () => {
  const pt = new Transcoder({ ffmpegPath: FFMPEG, maxConcurrent: 2, maxQueued: 8, timeoutMs: 10_000, killGraceMs: 200 });

  /** Runs prepareMedia and drains the body; returns what happened. Fails the property on anything else. */
  async function outcome(bytes: Buffer, sourceSize: number | undefined): Promise<string> {
    const run = (async (): Promise<string> => {
      let p: PreparedMedia;
      try {
        p = await prepareMedia(chunked(bytes, 1500), 'wav', { transcoder: pt, signal: liveSignal(), sourceSize });
      } catch (e) {
        if (e instanceof AppError && (e.status === 422 || e.status === 415)) return `refused ${e.status}`;
        throw e;
      }
      try {
        const out = await collect(p.body);
        if (p.length !== undefined) expect(out.length).toBe(p.length);
        return `ok ${p.plan.action}`;
      } catch (e) {
        if (e instanceof AppError && e.status === 422) return 'body 422';
        throw e;
      }
    })();
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error('hung')), 8000)));
    try {
      return await Promise.race([run, deadline]);
    } finally {
      clearTimeout(timer);
    }
  }

  it('random bytes', async () => {
    const seen = new Set<string>();
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 2000 }), fc.boolean(), async (arr, known) => {
        const b = Buffer.from(arr);
        seen.add(await outcome(b, known ? b.length : undefined));
      }),
      { numRuns: 150 },
    );
    expect(seen.has('refused 422')).toBe(true);
  });

  it('random mutations and truncations of valid WAV headers', { timeout: 60_000 }, async () => {
    // Small but valid files (header + 1950 bytes of payload), so mutations reach every decode path.
    const bases = ['call_mono_mulaw_8k.wav', 'call_mono_pcm16_8k.wav', 'call_mono_gsm610_8k.wav', 'call_mono_g729_8k.wav', 'call_mono_g722_16k.wav'].map((n) =>
      buildWav(wavChunks(readFixture(n)).map(([id, body]) => [id, id === 'data' ? body.subarray(0, 1950) : body])),
    );
    const seen = new Set<string>();
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...bases),
        fc.array(fc.record({ i: fc.nat({ max: 63 }), v: fc.nat({ max: 255 }) }), { minLength: 1, maxLength: 6 }),
        fc.oneof(fc.constant(Number.POSITIVE_INFINITY), fc.nat({ max: 2100 })),
        fc.boolean(),
        async (base, muts, cut, known) => {
          const b = Buffer.from(base.subarray(0, Math.min(cut, base.length)));
          for (const { i, v } of muts) if (i < b.length) b[i] = v;
          seen.add(await outcome(b, known ? b.length : undefined));
        },
      ),
      { numRuns: 200 },
    );
    expect(seen.size).toBeGreaterThan(2);
  });

  it('well-formed containers around random payloads (these reach ffmpeg)', { timeout: 60_000 }, async () => {
    const wavOf = (tag: number, blockAlign: number, bits: number, extra?: Buffer) => (payload: Buffer) =>
      buildWav([['fmt ', fmtBody({ tag, channels: 1, sampleRate: 8000, byteRate: 1000, blockAlign, bits, extra })], ['data', payload]]);
    const mp3 = readFixture('call_mono_8k.mp3');
    const opus = readFixture('call_mono_48k.opus.ogg');
    const makers: Array<(payload: Buffer) => Buffer> = [
      wavOf(0x0031, 65, 0, Buffer.from([0x40, 0x01])), // GSM
      wavOf(0x0083, 10, 0), // G.729
      wavOf(0x0133, 10, 0), // Sipro
      wavOf(0x028f, 1, 4), // G.722
      wavOf(0x0045, 1, 4), // G.726
      wavOf(0x0042, 24, 0), // G.723.1
      wavOf(0x0055, 1, 0), // MP3 in WAV
      (p) => Buffer.concat([mp3.subarray(0, 1200), p]), // ID3 + a few frames, then noise
      (p) => Buffer.concat([opus.subarray(0, 200), p]), // Ogg Opus headers, then noise
    ];
    const seen = new Set<string>();
    await fc.assert(
      fc.asyncProperty(fc.nat({ max: makers.length - 1 }), fc.uint8Array({ maxLength: 3000 }), fc.boolean(), async (k, arr, known) => {
        const b = makers[k]!(Buffer.from(arr));
        seen.add(await outcome(b, known ? b.length : undefined));
      }),
      { numRuns: 60 },
    );
    expect([...seen].some((o) => o.startsWith('ok ffmpeg'))).toBe(true);
  });
});
