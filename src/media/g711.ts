import { Transform, type TransformCallback } from 'node:stream';

/**
 * G.711 µ-law and A-law → linear 16-bit PCM (ITU-T G.711 expansion; bit-identical to ffmpeg's
 * pcm_mulaw / pcm_alaw decoders, which a test checks). G.711 is the commonest recorder codec and
 * its decode is a 256-entry lookup, so it runs in-process: no ffmpeg slot, no child process, and
 * the output length is known exactly (two bytes per input byte).
 */

export type G711Law = 'mulaw' | 'alaw';

function ulawToLinear(u: number): number {
  const v = ~u & 0xff;
  const t = (((v & 0x0f) << 3) + 0x84) << ((v & 0x70) >> 4);
  return v & 0x80 ? 0x84 - t : t - 0x84;
}

function alawToLinear(a: number): number {
  const v = a ^ 0x55;
  const seg = (v & 0x70) >> 4;
  let t = (v & 0x0f) << 4;
  if (seg === 0) t += 8;
  else t = (t + 0x108) << (seg - 1);
  return v & 0x80 ? t : -t;
}

function table(f: (b: number) => number): Int16Array {
  const t = new Int16Array(256);
  for (let b = 0; b < 256; b++) t[b] = f(b);
  return t;
}

export const MULAW_TO_S16: Readonly<Int16Array> = table(ulawToLinear);
export const ALAW_TO_S16: Readonly<Int16Array> = table(alawToLinear);

/** Byte → two little-endian bytes, so decoding is two array loads per sample. */
function leTable(t: Readonly<Int16Array>): Uint8Array {
  const le = new Uint8Array(512);
  for (let b = 0; b < 256; b++) {
    const v = t[b]! & 0xffff;
    le[2 * b] = v & 0xff;
    le[2 * b + 1] = v >> 8;
  }
  return le;
}
const LE: Record<G711Law, Uint8Array> = { mulaw: leTable(MULAW_TO_S16), alaw: leTable(ALAW_TO_S16) };

/** Decodes a whole buffer (any length: G.711 has one byte per sample and no framing). */
export function decodeG711(law: G711Law, input: Uint8Array): Buffer {
  const le = LE[law];
  const out = Buffer.allocUnsafe(input.length * 2);
  for (let i = 0, j = 0; i < input.length; i++, j += 2) {
    const k = input[i]! << 1;
    out[j] = le[k]!;
    out[j + 1] = le[k + 1]!;
  }
  return out;
}

/** Streaming decoder; interleaved multi-channel input stays interleaved. */
export class G711Decoder extends Transform {
  readonly law: G711Law;

  constructor(law: G711Law) {
    super();
    this.law = law;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    cb(null, decodeG711(this.law, chunk));
  }
}
