import { align } from './fingerprint.js';
import type { CopyDigest } from './copy-digest.js';
import type { Verdict } from './integrity-repository.js';

export interface IntegrityThresholds {
  /** Envelope similarity at or above which two copies hold the same audio. */
  minSimilarity: number;
  /** Largest leading offset searched between the copies, ms. */
  maxOffsetMs: number;
  /** Decoded durations further apart than this are a mismatch (the tenant's crosswalk tolerance). */
  durationToleranceMs: number;
}

/**
 * Defaults chosen from the fixtures (docs/SYNC.md, "Integrity"): every codec of the same call
 * scores ≥ 0.98 against the PCM reference (G.729 lowest), other calls, a reversed call and noise
 * score ≤ 0.35. 0.90 sits well inside the gap on both sides.
 */
export const DEFAULT_THRESHOLDS: Omit<IntegrityThresholds, 'durationToleranceMs'> = { minSimilarity: 0.9, maxOffsetMs: 1000 };

export interface Judgement {
  verdict: Exclude<Verdict, 'unreadable'>;
  /** Null when the PCM was identical (no need to correlate). */
  similarity: number | null;
  offsetMs: number | null;
  reason: 'pcm_identical' | 'fingerprint_match' | 'both_silent' | 'similarity_below_threshold' | 'duration_differs';
}

const flat = (e: Float32Array) => e.every((v) => Math.abs(v - e[0]!) < 1e-3);

/** The verdict on two decoded copies (legacy first, so a positive offset means the cloud copy starts later). */
export function judge(legacy: CopyDigest, cloud: CopyDigest, t: IntegrityThresholds): Judgement {
  if (legacy.pcmSha256 === cloud.pcmSha256) return { verdict: 'identical', similarity: null, offsetMs: 0, reason: 'pcm_identical' };
  const durationOk = Math.abs(legacy.durationMs - cloud.durationMs) <= t.durationToleranceMs;
  // Two copies with nothing audible agree on everything an envelope can say.
  const silent = flat(legacy.envelope) && flat(cloud.envelope);
  const a = silent ? { similarity: 1, offsetMs: 0 } : align(legacy.envelope, cloud.envelope, { maxOffsetMs: t.maxOffsetMs });
  const similarity = Math.round(a.similarity * 10_000) / 10_000;
  if (similarity < t.minSimilarity) return { verdict: 'mismatch', similarity, offsetMs: a.offsetMs, reason: 'similarity_below_threshold' };
  if (!durationOk) return { verdict: 'mismatch', similarity, offsetMs: a.offsetMs, reason: 'duration_differs' };
  return { verdict: 'match', similarity, offsetMs: a.offsetMs, reason: silent ? 'both_silent' : 'fingerprint_match' };
}
