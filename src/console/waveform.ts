import type { Readable } from 'node:stream';
import { AppError } from '../errors.js';

/** Min/max envelope of a PCM WAV, per channel, for drawing a waveform (values in -1..1). */
export interface Peaks {
  sample_rate: number;
  channels: number;
  bits_per_sample: number;
  duration_s: number;
  points: number;
  /** One entry per channel (stereo recordings: both sides of the call). */
  min: number[][];
  max: number[][];
}

interface Fmt {
  channels: number;
  sampleRate: number;
  blockAlign: number;
  bits: number;
}

const MAX_HEADER = 64 * 1024;
/** Blocks of 20 ms are collected while streaming, then merged into the requested number of points. */
const BLOCKS_PER_SECOND = 50;
/**
 * The most block values kept per envelope side, all channels together (2^20: about 8 MiB per side):
 * whatever the header says — a sample rate of 1 Hz makes one block per frame — memory is bounded.
 * When the blocks reach it, neighbours are merged in pairs and blocks last twice as long from then
 * on. Below it nothing changes: a mono recording of up to 5.8 h at 50 blocks/s (2.9 h stereo)
 * has the same waveform as before the bound.
 */
export const MAX_BLOCK_VALUES = 1 << 20;

function parseHeader(buf: Buffer): { fmt: Fmt; dataStart: number } | null {
  if (buf.length < 12) return null;
  if (buf.toString('latin1', 0, 4) !== 'RIFF' || buf.toString('latin1', 8, 12) !== 'WAVE') throw new AppError('media.undecodable', 'the playable output is not a WAV file');
  let off = 12;
  let fmt: Fmt | undefined;
  while (off + 8 <= buf.length) {
    const id = buf.toString('latin1', off, off + 4);
    const size = buf.readUInt32LE(off + 4);
    if (id === 'data') {
      if (!fmt) throw new AppError('media.undecodable', 'WAV data before its fmt chunk');
      return { fmt, dataStart: off + 8 };
    }
    if (off + 8 + size > buf.length) return null;
    if (id === 'fmt ') {
      const tag = buf.readUInt16LE(off + 8);
      const bits = buf.readUInt16LE(off + 22);
      // 1 = PCM; 0xFFFE = extensible, whose sub-format GUID starts with the PCM tag.
      const pcm = tag === 1 || (tag === 0xfffe && size >= 40 && buf.readUInt16LE(off + 32) === 1);
      if (!pcm || ![8, 16, 24, 32].includes(bits)) throw new AppError('media.unsupported_codec', 'the waveform needs integer PCM', { extra: { codec: `wav_tag_${tag}` } });
      fmt = { channels: buf.readUInt16LE(off + 10), sampleRate: buf.readUInt32LE(off + 12), blockAlign: buf.readUInt16LE(off + 20), bits };
      if (fmt.channels < 1 || fmt.channels > 8 || fmt.sampleRate < 1 || fmt.blockAlign !== (fmt.channels * bits) / 8) throw new AppError('media.undecodable', 'inconsistent WAV fmt chunk');
    }
    off += 8 + size + (size % 2);
  }
  return null;
}

function sampleReader(bits: number): (b: Buffer, off: number) => number {
  switch (bits) {
    case 8:
      return (b, o) => (b[o]! - 128) / 128;
    case 16:
      return (b, o) => b.readInt16LE(o) / 32768;
    case 24:
      return (b, o) => b.readIntLE(o, 3) / 8388608;
    default:
      return (b, o) => b.readInt32LE(o) / 2147483648;
  }
}

/**
 * Reads a PCM WAV stream once and returns its envelope in `points` buckets per channel. Memory is
 * two numbers per channel per 20 ms of audio, never the audio itself, and never more than
 * MAX_BLOCK_VALUES per side whatever the header claims (blocks grow longer instead).
 */
export async function wavPeaks(body: Readable, points: number): Promise<Peaks> {
  return (await wavEnvelope(body, points)).peaks;
}

/** wavPeaks, and how many 20 ms (or longer) blocks it kept per channel on the way. */
export async function wavEnvelope(body: Readable, points: number): Promise<{ peaks: Peaks; blocks: number }> {
  let head: Buffer = Buffer.alloc(0);
  let fmt: Fmt | undefined;
  let rest: Buffer = Buffer.alloc(0);
  let read: (b: Buffer, o: number) => number = () => 0;
  let blockFrames = 1;
  let maxBlocks = MAX_BLOCK_VALUES;
  let inBlock = 0;
  let frames = 0;
  const mins: number[][] = [];
  const maxs: number[][] = [];
  let curMin: number[] = [];
  let curMax: number[] = [];

  const flushBlock = () => {
    for (let c = 0; c < curMin.length; c++) {
      mins[c]!.push(curMin[c]!);
      maxs[c]!.push(curMax[c]!);
      curMin[c] = Infinity;
      curMax[c] = -Infinity;
    }
    inBlock = 0;
    if (mins[0]!.length >= maxBlocks) halveBlocks();
  };
  /** Merges neighbouring blocks in pairs (maxBlocks is even: none is left over) and doubles the block length. */
  const halveBlocks = () => {
    for (let c = 0; c < mins.length; c++) {
      const mn = mins[c]!;
      const mx = maxs[c]!;
      const half = mn.length >> 1;
      for (let i = 0; i < half; i++) {
        mn[i] = Math.min(mn[2 * i]!, mn[2 * i + 1]!);
        mx[i] = Math.max(mx[2 * i]!, mx[2 * i + 1]!);
      }
      mn.length = half;
      mx.length = half;
    }
    blockFrames *= 2;
  };

  for await (const chunk of body as AsyncIterable<Buffer>) {
    let data: Buffer = chunk;
    if (!fmt) {
      head = Buffer.concat([head, chunk]);
      const h = parseHeader(head);
      if (!h) {
        if (head.length > MAX_HEADER) throw new AppError('media.undecodable', 'no WAV data chunk in the first 64 KiB');
        continue;
      }
      fmt = h.fmt;
      read = sampleReader(fmt.bits);
      blockFrames = Math.max(1, Math.round(fmt.sampleRate / BLOCKS_PER_SECOND));
      // Even, so that halving leaves no block unpaired.
      maxBlocks = Math.max(2, Math.floor(MAX_BLOCK_VALUES / fmt.channels / 2) * 2);
      for (let c = 0; c < fmt.channels; c++) {
        mins.push([]);
        maxs.push([]);
      }
      curMin = new Array<number>(fmt.channels).fill(Infinity);
      curMax = new Array<number>(fmt.channels).fill(-Infinity);
      data = head.subarray(h.dataStart);
      head = Buffer.alloc(0);
    }
    const f = fmt;
    if (rest.length) data = Buffer.concat([rest, data]);
    const whole = data.length - (data.length % f.blockAlign);
    const bytesPerSample = f.bits / 8;
    for (let off = 0; off < whole; off += f.blockAlign) {
      for (let c = 0; c < f.channels; c++) {
        const v = read(data, off + c * bytesPerSample);
        if (v < curMin[c]!) curMin[c] = v;
        if (v > curMax[c]!) curMax[c] = v;
      }
      frames++;
      if (++inBlock === blockFrames) flushBlock();
    }
    rest = Buffer.from(data.subarray(whole));
  }
  if (!fmt) throw new AppError('media.undecodable', 'the playable output ended before its WAV header');
  if (inBlock > 0) flushBlock();

  const blocks = mins[0]!.length;
  const n = Math.max(1, Math.min(points, blocks));
  const round = (v: number) => Math.round(v * 1000) / 1000;
  const merge = (src: number[], pick: (a: number, b: number) => number) => {
    const out: number[] = [];
    for (let i = 0; i < n; i++) {
      const a = Math.floor((i * blocks) / n);
      const b = Math.max(a + 1, Math.floor(((i + 1) * blocks) / n));
      let v = src[a] ?? 0;
      for (let j = a + 1; j < b && j < blocks; j++) v = pick(v, src[j]!);
      out.push(round(v));
    }
    return out;
  };
  const peaks: Peaks = {
    sample_rate: fmt.sampleRate,
    channels: fmt.channels,
    bits_per_sample: fmt.bits,
    duration_s: frames / fmt.sampleRate,
    points: blocks === 0 ? 0 : n,
    min: blocks === 0 ? mins : mins.map((m) => merge(m, Math.min)),
    max: blocks === 0 ? maxs : maxs.map((m) => merge(m, Math.max)),
  };
  return { peaks, blocks };
}
