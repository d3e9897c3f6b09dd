/**
 * A codec-robust fingerprint of a recording: its log-energy envelope, one value per 10 ms hop
 * over 20 ms frames of canonical PCM (8 kHz mono s16le). Codecs change the waveform (G.729 vs
 * PCM correlates about 0.83 sample by sample) but hardly when speech is loud and when it is
 * quiet, so envelopes of two copies of one call line up closely while another call's do not.
 *
 * Built while the PCM streams by (`EnvelopeBuilder.push`): memory is 4 bytes per 10 ms of audio
 * (1.4 MB for a two-hour call), never the PCM itself.
 */

export const SAMPLE_RATE = 8000;
/** Energy is summed per hop; a frame is two consecutive hops (20 ms frames, 50 % overlap). */
export const HOP_MS = 10;
const HOP = (SAMPLE_RATE * HOP_MS) / 1000;

/**
 * Mean-square floor: −55 dBFS. Without one, digital silence (log 0) in a PCM copy against
 * codec noise at −70 dBFS in a G.729 copy would dominate the correlation; with it, both read as
 * "quiet" and only audible structure counts.
 */
const FLOOR = (32768 * 10 ** (-55 / 20)) ** 2;

export class EnvelopeBuilder {
  #hops: number[] = [];
  #acc = 0;
  #n = 0;
  #carry: number | undefined;
  /** Samples seen (the decoded duration is samples / 8000). */
  samples = 0;

  /** Feeds s16le bytes; a chunk may end in the middle of a sample. */
  push(chunk: Uint8Array): void {
    let i = 0;
    if (this.#carry !== undefined && chunk.length > 0) {
      this.#sample(((chunk[0]! << 8) | this.#carry) << 16 >> 16);
      this.#carry = undefined;
      i = 1;
    }
    const end = chunk.length - ((chunk.length - i) & 1);
    for (; i < end; i += 2) this.#sample(((chunk[i + 1]! << 8) | chunk[i]!) << 16 >> 16);
    if (end < chunk.length) this.#carry = chunk[end]!;
  }

  #sample(v: number): void {
    this.samples++;
    this.#acc += v * v;
    if (++this.#n === HOP) {
      this.#hops.push(this.#acc);
      this.#acc = 0;
      this.#n = 0;
    }
  }

  /** The envelope in dB (one value per hop; a trailing partial hop is dropped). */
  finish(): Float32Array {
    const h = this.#hops;
    const out = new Float32Array(Math.max(0, h.length - 1));
    for (let i = 0; i < out.length; i++) out[i] = 10 * Math.log10((h[i]! + h[i + 1]!) / (2 * HOP) + FLOOR);
    return out;
  }

  get durationMs(): number {
    return Math.round((this.samples * 1000) / SAMPLE_RATE);
  }
}

export interface Alignment {
  /** Pearson correlation of the two envelopes at the best lag, −1…1 (0 when there is nothing to compare). */
  similarity: number;
  /** How much later the same audio starts in `b` than in `a`, ms (negative: earlier). */
  offsetMs: number;
  /** Hops compared at that lag. */
  overlap: number;
}

/** Pearson correlation of a[i] and b[i + lag] over their overlap; NaN when too short or flat. */
export function correlationAt(a: Float32Array, b: Float32Array, lag: number, minOverlap = 1): number {
  const start = Math.max(0, -lag);
  const end = Math.min(a.length, b.length - lag);
  const n = end - start;
  if (n < Math.max(2, minOverlap)) return Number.NaN;
  let sa = 0;
  let sb = 0;
  for (let i = start; i < end; i++) {
    sa += a[i]!;
    sb += b[i + lag]!;
  }
  const ma = sa / n;
  const mb = sb / n;
  let sab = 0;
  let saa = 0;
  let sbb = 0;
  for (let i = start; i < end; i++) {
    const x = a[i]! - ma;
    const y = b[i + lag]! - mb;
    sab += x * y;
    saa += x * x;
    sbb += y * y;
  }
  // Two flat envelopes (silence against silence) say nothing either way.
  if (saa < 1e-9 || sbb < 1e-9) return Number.NaN;
  return sab / Math.sqrt(saa * sbb);
}

/**
 * Best normalised cross-correlation of two envelopes over lags within ±maxOffsetMs. A lag must
 * leave at least `minOverlapRatio` of the shorter envelope compared, so a few hops cannot
 * correlate by chance at the edge of the search.
 */
export function align(a: Float32Array, b: Float32Array, opts: { maxOffsetMs: number; minOverlapRatio?: number }): Alignment {
  const maxLag = Math.round(opts.maxOffsetMs / HOP_MS);
  const minOverlap = Math.max(2, Math.ceil(Math.min(a.length, b.length) * (opts.minOverlapRatio ?? 0.5)));
  let best: Alignment = { similarity: 0, offsetMs: 0, overlap: 0 };
  let found = false;
  for (let lag = -maxLag; lag <= maxLag; lag++) {
    const r = correlationAt(a, b, lag, minOverlap);
    if (Number.isNaN(r)) continue;
    // Ties go to the smallest shift.
    if (!found || r > best.similarity || (r === best.similarity && Math.abs(lag) * HOP_MS < Math.abs(best.offsetMs))) {
      best = { similarity: r, offsetMs: lag * HOP_MS, overlap: Math.min(a.length, b.length - lag) - Math.max(0, -lag) };
      found = true;
    }
  }
  return best;
}
