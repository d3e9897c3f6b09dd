/**
 * Audio helpers for tests: fixture paths, a WAV reader independent of src/media/sniff.ts (so a
 * sniffer bug cannot hide itself), resampling, normalised cross-correlation and ffprobe.
 */
import { execFile } from 'node:child_process';
import { createReadStream, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { AppError } from '../../src/errors.js';
import type { AudioFormat } from '../../src/media/format.js';
import { prepareMedia, type PreparedMedia } from '../../src/media/prepare.js';
import type { Transcoder } from '../../src/media/transcoder.js';

/** /work/shared/fixtures/audio (read-only), relative to the repository root. */
export const FIXTURE_DIR = fileURLToPath(new URL('../../../shared/fixtures/audio/', import.meta.url));
export const fixturePath = (name: string): string => join(FIXTURE_DIR, name);
export const readFixture = (name: string): Buffer => readFileSync(fixturePath(name));

export const FFMPEG = '/usr/bin/ffmpeg';
export const FFPROBE = '/usr/bin/ffprobe';

export async function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** A readable over a buffer in small chunks (exercises chunk-boundary handling). */
export function chunked(buf: Buffer, size = 4096): Readable {
  let off = 0;
  return new Readable({
    read() {
      if (off >= buf.length) return void this.push(null);
      this.push(buf.subarray(off, off + size));
      off += size;
    },
  });
}

export interface ParsedWav {
  formatTag: number;
  sampleRate: number;
  channels: number;
  bitsPerSample: number;
  riffSize: number;
  dataSize: number;
  dataOffset: number;
  /** 16-bit samples, interleaved (only for 16-bit PCM). */
  samples: Int16Array;
}

/** Minimal RIFF walker for test assertions (16-bit PCM payloads). */
export function parseWav(buf: Buffer): ParsedWav {
  if (buf.toString('latin1', 0, 4) !== 'RIFF' || buf.toString('latin1', 8, 12) !== 'WAVE') throw new Error('not RIFF/WAVE');
  let off = 12;
  let fmt: Omit<ParsedWav, 'riffSize' | 'dataSize' | 'dataOffset' | 'samples'> | undefined;
  while (off + 8 <= buf.length) {
    const id = buf.toString('latin1', off, off + 4);
    const size = buf.readUInt32LE(off + 4);
    if (id === 'fmt ') {
      fmt = { formatTag: buf.readUInt16LE(off + 8), channels: buf.readUInt16LE(off + 10), sampleRate: buf.readUInt32LE(off + 12), bitsPerSample: buf.readUInt16LE(off + 22) };
    } else if (id === 'data') {
      if (!fmt) throw new Error('data before fmt');
      const end = size === 0xffffffff ? buf.length : Math.min(buf.length, off + 8 + size);
      const payload = buf.subarray(off + 8, end);
      const samples = new Int16Array(Math.floor(payload.length / 2));
      for (let i = 0; i < samples.length; i++) samples[i] = payload.readInt16LE(2 * i);
      return { ...fmt, riffSize: buf.readUInt32LE(4), dataSize: size, dataOffset: off + 8, samples };
    }
    off += 8 + size + (size & 1);
  }
  throw new Error('no data chunk');
}

/** Raw little-endian s16 bytes → samples. */
export function s16(buf: Buffer): Int16Array {
  const out = new Int16Array(buf.length >> 1);
  for (let i = 0; i < out.length; i++) out[i] = buf.readInt16LE(2 * i);
  return out;
}

export function channel(samples: Int16Array, channels: number, which: number): Float64Array {
  const out = new Float64Array(Math.floor(samples.length / channels));
  for (let i = 0; i < out.length; i++) out[i] = samples[i * channels + which]!;
  return out;
}

/**
 * Integer-factor decimation with a windowed-sinc (Blackman) low-pass at 0.9 × the new Nyquist,
 * so 16 kHz and 48 kHz outputs can be compared with the 8 kHz reference without aliasing.
 */
export function decimate(x: Float64Array, factor: number): Float64Array {
  if (factor === 1) return x;
  const taps = 32 * factor + 1;
  const mid = (taps - 1) / 2;
  const fc = 0.9 / (2 * factor); // cycles per input sample
  const h = new Float64Array(taps);
  let sum = 0;
  for (let i = 0; i < taps; i++) {
    const n = i - mid;
    const sinc = n === 0 ? 2 * fc : Math.sin(2 * Math.PI * fc * n) / (Math.PI * n);
    const w = 0.42 - 0.5 * Math.cos((2 * Math.PI * i) / (taps - 1)) + 0.08 * Math.cos((4 * Math.PI * i) / (taps - 1));
    h[i] = sinc * w;
    sum += h[i]!;
  }
  const out = new Float64Array(Math.floor(x.length / factor));
  for (let j = 0; j < out.length; j++) {
    const c = j * factor;
    let acc = 0;
    for (let i = 0; i < taps; i++) {
      const k = c + i - mid;
      if (k >= 0 && k < x.length) acc += h[i]! * x[k]!;
    }
    out[j] = acc / sum;
  }
  return out;
}

/** Normalised cross-correlation of a[i] with b[i + lag] over their overlap, from index `from` for `count` samples. */
function nccAt(a: Float64Array, b: Float64Array, lag: number, from = 0, count = Number.POSITIVE_INFINITY): number {
  const i0 = Math.max(from, -lag);
  const i1 = Math.min(a.length, b.length - lag, from + count);
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let i = i0; i < i1; i++) {
    const x = a[i]!;
    const y = b[i + lag]!;
    ab += x * y;
    aa += x * x;
    bb += y * y;
  }
  return aa > 0 && bb > 0 ? ab / Math.sqrt(aa * bb) : 0;
}

/**
 * Normalised cross-correlation of `b` against the reference `a`, maximised over lags in
 * [−maxLag, maxLag] (b[i + lag] ≈ a[i]). The lag is searched on a 2-second window from the
 * middle of the signal (cheap), then the correlation is computed over the whole overlap at the
 * best lag and its neighbours.
 */
export function bestCorrelation(a: Float64Array, b: Float64Array, maxLag: number, rate = 8000): { corr: number; lag: number } {
  const win = Math.min(2 * rate, a.length);
  const from = Math.max(0, Math.floor(a.length / 2 - win / 2));
  let lag = 0;
  let best = -Infinity;
  for (let l = -maxLag; l <= maxLag; l++) {
    const c = nccAt(a, b, l, from, win);
    if (c > best) {
      best = c;
      lag = l;
    }
  }
  let out = { corr: -Infinity, lag };
  for (let l = lag - 2; l <= lag + 2; l++) {
    const c = nccAt(a, b, l);
    if (c > out.corr) out = { corr: c, lag: l };
  }
  return out;
}

export interface ProbeStream {
  codec_name: string;
  sample_rate: string;
  channels: number;
  duration?: string;
  duration_ts?: number;
}

export interface Probe {
  streams: ProbeStream[];
  format: { format_name: string; duration?: string; size: string };
}

/** `ffprobe -v error -show_streams -show_format -of json` on bytes (via a temp file). */
export async function ffprobe(bytes: Buffer, ext = 'bin'): Promise<Probe> {
  const dir = mkdtempSync(join(tmpdir(), 'custodian-probe-'));
  const file = join(dir, `probe.${ext}`);
  writeFileSync(file, bytes);
  try {
    const stdout = await new Promise<string>((resolve, reject) =>
      execFile(FFPROBE, ['-v', 'error', '-show_streams', '-show_format', '-of', 'json', file], (err, out, errOut) => (err ? reject(new Error(`${err.message} ${errOut}`)) : resolve(out))),
    );
    return JSON.parse(stdout) as Probe;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Runs ffmpeg on bytes and returns stdout (for building fixtures at test time). */
export function ffmpegBytes(args: string[], input?: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const child = execFile(FFMPEG, ['-nostdin', '-hide_banner', '-loglevel', 'error', ...args], { encoding: 'buffer', maxBuffer: 64 << 20 }, (err, out, errOut) =>
      err ? reject(new Error(`${err.message} ${errOut.toString()}`)) : resolve(out),
    );
    if (input) child.stdin?.end(input);
  });
}

/** Builds a RIFF/WAVE file from chunks (each [id, body]); odd bodies get their pad byte. */
export function buildWav(chunks: Array<[string, Buffer]>, opts: { magic?: string; riffSize?: number } = {}): Buffer {
  const parts: Buffer[] = [];
  for (const [id, body] of chunks) {
    const h = Buffer.alloc(8);
    h.write(id, 0, 'latin1');
    h.writeUInt32LE(body.length, 4);
    parts.push(h, body);
    if (body.length & 1) parts.push(Buffer.alloc(1));
  }
  const payload = Buffer.concat(parts);
  const head = Buffer.alloc(12);
  head.write(opts.magic ?? 'RIFF', 0, 'latin1');
  head.writeUInt32LE(opts.riffSize ?? payload.length + 4, 4);
  head.write('WAVE', 8, 'latin1');
  return Buffer.concat([head, payload]);
}

/** Splits an existing WAV fixture into its chunks (to re-assemble variants). */
export function wavChunks(buf: Buffer): Array<[string, Buffer]> {
  const out: Array<[string, Buffer]> = [];
  let off = 12;
  while (off + 8 <= buf.length) {
    const id = buf.toString('latin1', off, off + 4);
    const size = buf.readUInt32LE(off + 4);
    out.push([id, buf.subarray(off + 8, Math.min(buf.length, off + 8 + size))]);
    off += 8 + size + (size & 1);
  }
  return out;
}

/** A `fmt ` body (16 bytes, or 18 with cbSize, plus extra bytes). */
export function fmtBody(f: { tag: number; channels: number; sampleRate: number; byteRate: number; blockAlign: number; bits: number; extra?: Buffer }): Buffer {
  const b = Buffer.alloc(f.extra ? 18 + f.extra.length : 16);
  b.writeUInt16LE(f.tag, 0);
  b.writeUInt16LE(f.channels, 2);
  b.writeUInt32LE(f.sampleRate, 4);
  b.writeUInt32LE(f.byteRate, 8);
  b.writeUInt16LE(f.blockAlign, 12);
  b.writeUInt16LE(f.bits, 14);
  if (f.extra) {
    b.writeUInt16LE(f.extra.length, 16);
    f.extra.copy(b, 18);
  }
  return b;
}

/** Whether a process id is still alive (signal 0 probes without sending anything). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export async function waitFor(cond: () => boolean, ms = 5000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (cond()) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return cond();
}

// ---------------------------------------------------------------------------------------------
// prepareMedia helpers shared by src/media/prepare*.test.ts

/** The reference recording (8 kHz mono) as samples, and its duration. */
export const REFERENCE = channel(parseWav(readFixture('call_mono_pcm16_8k.wav')).samples, 1, 0);
export const REFERENCE_SECONDS = REFERENCE.length / 8000;

/** Correlation of a WAV's first channel with the reference, compared at 8 kHz. */
export function corrWithReference(wav: Buffer, maxLag: number): { corr: number; lag: number } {
  const w = parseWav(wav);
  return bestCorrelation(REFERENCE, decimate(channel(w.samples, w.channels, 0), w.sampleRate / 8000), maxLag);
}

export const liveSignal = (): AbortSignal => new AbortController().signal;

export interface PrepareFixtureOptions {
  transcoder: Transcoder;
  rawCodecHint?: string;
  /** Pass the file size as sourceSize (default true). */
  withSize?: boolean;
  signal?: AbortSignal;
}

/** prepareMedia on a fixture file, streamed from disk. */
export function prepareFixture(name: string, want: AudioFormat, o: PrepareFixtureOptions): Promise<PreparedMedia> {
  const path = fixturePath(name);
  return prepareMedia(createReadStream(path), want, {
    transcoder: o.transcoder,
    signal: o.signal ?? liveSignal(),
    sourceSize: o.withSize === false ? undefined : statSync(path).size,
    rawCodecHint: o.rawCodecHint,
  });
}

/** prepareMedia on bytes in memory, in odd-sized chunks. */
export function prepareBytes(b: Buffer, want: AudioFormat, o: { transcoder: Transcoder; sourceSize?: number; rawCodecHint?: string; signal?: AbortSignal }): Promise<PreparedMedia> {
  return prepareMedia(chunked(b, 4093), want, { transcoder: o.transcoder, signal: o.signal ?? liveSignal(), sourceSize: o.sourceSize, rawCodecHint: o.rawCodecHint });
}

/** Awaits a promise that must reject with an AppError, and returns it. */
export async function appErrorOf(p: Promise<unknown>): Promise<AppError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  if (!(e instanceof AppError)) throw new Error(`expected an AppError, got ${String(e)}`);
  return e;
}

/** Collects "name → correlation" lines and prints them once per test file. */
export function correlationReport(): { record(name: string, value: string): void; print(): void } {
  const rows: Array<[string, string]> = [];
  return {
    record: (name, value) => void rows.push([name, value]),
    print: () => {
      // eslint-disable-next-line no-console
      if (rows.length) console.info(`correlation with call_mono_pcm16_8k.wav:\n${rows.map(([k, v]) => `  ${k.padEnd(44)} ${v}`).join('\n')}`);
    },
  };
}
