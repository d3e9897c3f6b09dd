import { describe, expect, it } from 'vitest';
import type { CopyDigest } from './copy-digest.js';
import { align, correlationAt, EnvelopeBuilder, HOP_MS } from './fingerprint.js';
import { judge } from './judge.js';

/** s16le bytes of a syllable-like signal: bursts of a tone with a varying loudness, silences between. */
function speechLike(seconds: number, seed = 1): Buffer {
  const n = seconds * 8000;
  const out = Buffer.alloc(n * 2);
  let s = seed;
  const rnd = () => ((s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  let i = 0;
  while (i < n) {
    const burst = Math.floor(800 + rnd() * 2400);
    const gap = Math.floor(400 + rnd() * 2000);
    const amp = 2000 + rnd() * 12000;
    for (let k = 0; k < burst && i < n; k++, i++) out.writeInt16LE(Math.round(amp * Math.sin((k * 2 * Math.PI * 300) / 8000) * Math.sin((Math.PI * k) / burst)), i * 2);
    i += gap;
  }
  return out;
}

function envelopeOf(pcm: Buffer, chunk = 4096): EnvelopeBuilder {
  const b = new EnvelopeBuilder();
  for (let o = 0; o < pcm.length; o += chunk) b.push(pcm.subarray(o, o + chunk));
  return b;
}

function digest(pcm: Buffer, sha = 'x'): CopyDigest {
  const b = envelopeOf(pcm);
  return { codec: 'pcm_s16le', pcmSha256: sha, durationMs: b.durationMs, envelope: b.finish() };
}

const silence = (ms: number) => Buffer.alloc(ms * 16);
const T = { minSimilarity: 0.9, maxOffsetMs: 1000, durationToleranceMs: 2000 };

describe('EnvelopeBuilder', () => {
  it('gives the same envelope however the bytes are cut, odd chunk sizes included', () => {
    const pcm = speechLike(3);
    const whole = envelopeOf(pcm, pcm.length).finish();
    for (const size of [1, 3, 7, 161, 4097]) expect(envelopeOf(pcm, size).finish()).toEqual(whole);
  });

  it('counts samples for the duration and yields one value per 10 ms hop (20 ms frames)', () => {
    const b = envelopeOf(speechLike(2));
    expect(b.samples).toBe(16_000);
    expect(b.durationMs).toBe(2000);
    expect(b.finish().length).toBe(2000 / HOP_MS - 1);
  });

  it('floors quiet frames so digital silence and faint noise read the same', () => {
    const quiet = Buffer.alloc(1600);
    for (let i = 0; i < 800; i++) quiet.writeInt16LE(i % 2 ? 3 : -3, i * 2);
    const a = envelopeOf(silence(100)).finish();
    const b = envelopeOf(quiet).finish();
    expect(Math.abs(a[0]! - b[0]!)).toBeLessThan(0.1);
  });
});

describe('align', () => {
  const a = envelopeOf(speechLike(6)).finish();

  it('scores an envelope against itself 1 at offset 0', () => {
    expect(align(a, a, { maxOffsetMs: 1000 })).toMatchObject({ similarity: expect.closeTo(1, 6), offsetMs: 0 });
  });

  it('finds a leading offset in either direction, within the search window only', () => {
    const later = envelopeOf(Buffer.concat([silence(500), speechLike(6)])).finish();
    expect(align(a, later, { maxOffsetMs: 1000 })).toMatchObject({ similarity: expect.closeTo(1, 3), offsetMs: 500 });
    expect(align(later, a, { maxOffsetMs: 1000 })).toMatchObject({ similarity: expect.closeTo(1, 3), offsetMs: -500 });
    // Outside the window the best lag is a wrong one, and it scores low.
    expect(align(a, later, { maxOffsetMs: 200 }).similarity).toBeLessThan(0.9);
  });

  it('scores a different signal low', () => {
    const other = envelopeOf(speechLike(6, 99)).finish();
    expect(align(a, other, { maxOffsetMs: 1000 }).similarity).toBeLessThan(0.5);
  });

  it('never compares fewer than half the shorter envelope (no chance peaks at the edges)', () => {
    expect(correlationAt(a, a, 0, a.length + 1)).toBeNaN();
    const r = align(a.subarray(0, 40), a, { maxOffsetMs: 1000 });
    expect(r.overlap).toBeGreaterThanOrEqual(20);
  });

  it('says nothing (NaN) about flat envelopes', () => {
    const flat = envelopeOf(silence(1000)).finish();
    expect(correlationAt(flat, a, 0)).toBeNaN();
    expect(align(flat, flat, { maxOffsetMs: 100 }).similarity).toBe(0);
  });
});

describe('judge', () => {
  const call = speechLike(6);

  it('calls equal PCM identical without correlating', () => {
    expect(judge(digest(call, 'h'), digest(call, 'h'), T)).toEqual({ verdict: 'identical', similarity: null, offsetMs: 0, reason: 'pcm_identical' });
  });

  it('calls a lossy copy with a leading offset a match, with the offset', () => {
    const lossy = Buffer.from(call);
    for (let i = 0; i < lossy.length; i += 2) lossy.writeInt16LE(Math.round(lossy.readInt16LE(i) / 64) * 64, i);
    const j = judge(digest(call, 'a'), digest(Buffer.concat([silence(300), lossy]), 'b'), T);
    expect(j).toMatchObject({ verdict: 'match', offsetMs: 300, reason: 'fingerprint_match' });
    expect(j.similarity).toBeGreaterThan(0.99);
  });

  it('calls another call a mismatch with its score', () => {
    const j = judge(digest(call, 'a'), digest(speechLike(6, 7), 'b'), T);
    expect(j).toMatchObject({ verdict: 'mismatch', reason: 'similarity_below_threshold' });
    expect(j.similarity).toBeLessThan(0.9);
  });

  it('calls a copy cut short a mismatch on its duration even though what is there matches', () => {
    const j = judge(digest(call, 'a'), digest(call.subarray(0, 3 * 16000), 'b'), T);
    expect(j).toMatchObject({ verdict: 'mismatch', reason: 'duration_differs' });
    expect(j.similarity).toBeGreaterThan(0.99);
  });

  it('calls two silent copies of one length a match', () => {
    expect(judge(digest(silence(2000), 'a'), digest(silence(2000), 'b'), T)).toMatchObject({ verdict: 'match', similarity: 1, reason: 'both_silent' });
  });
});
