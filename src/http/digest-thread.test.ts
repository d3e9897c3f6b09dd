import { createHash, randomBytes } from 'node:crypto';
import type { Worker } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import { DigestThread } from './digest-thread.js';

const sha = (bufs: Buffer[]) => {
  const h = createHash('sha256');
  for (const b of bufs) h.update(b);
  return h.digest('hex');
};

describe('DigestThread', () => {
  const threads: DigestThread[] = [];
  const thread = (opts?: ConstructorParameters<typeof DigestThread>[0]) => {
    const t = new DigestThread(opts);
    threads.push(t);
    return t;
  };
  afterEach(async () => {
    for (const t of threads.splice(0)) await t.close();
  });

  it('gives each interleaved stream the SHA-256 of exactly its bytes, chunks of any size', async () => {
    const t = thread();
    // Sizes around the batch (256 KiB) and its 8-byte record headers, and empty chunks.
    const sizes = [0, 1, 7, 8, 9, 65_536, 262_136, 262_143, 262_144, 262_145, 1_000_000, 3];
    const streams = Array.from({ length: 5 }, () => ({ d: t.create(), chunks: [] as Buffer[] }));
    for (let round = 0; round < 4; round++) {
      for (const [i, s] of streams.entries()) {
        const c = randomBytes(sizes[(round * 5 + i) % sizes.length]!);
        s.chunks.push(c);
        s.d.update(c);
      }
      // Let some batches go between rounds, as the event loop does while streaming.
      if (round % 2) await new Promise((r) => setImmediate(r));
    }
    const got = await Promise.all(streams.map((s) => s.d.digest()));
    expect(got).toEqual(streams.map((s) => sha(s.chunks)));
    // A stream with no bytes at all.
    expect(await t.create().digest()).toBe(sha([]));
  });

  it('a chunk reused by its owner after update() does not change the digest (bytes are copied at once)', async () => {
    const t = thread();
    const d = t.create();
    const buf = Buffer.alloc(1000, 1);
    d.update(buf);
    buf.fill(2);
    expect(await d.digest()).toBe(sha([Buffer.alloc(1000, 1)]));
  });

  it('is congested while more than its bound waits to be hashed, and clears', async () => {
    const t = thread({ maxInFlightBytes: 512 * 1024 });
    const d = t.create();
    const chunks = Array.from({ length: 16 }, () => randomBytes(128 * 1024));
    for (const c of chunks) d.update(c);
    await new Promise((r) => setImmediate(r)); // the batches go out
    expect(t.congested).toBe(true);
    await t.whenUncongested();
    expect(t.congested).toBe(false);
    expect(await d.digest()).toBe(sha(chunks));
  });

  it('update() after digest() is refused; discard() forgets a stream', async () => {
    const t = thread();
    const d = t.create();
    d.update(Buffer.from('x'));
    await d.digest();
    expect(() => d.update(Buffer.from('y'))).toThrow(/final/);
    const gone = t.create();
    gone.update(Buffer.from('abc'));
    gone.discard();
    await expect(gone.digest()).rejects.toThrow(/final/);
  });

  it('fails closed when the thread dies: pending digests reject, later streams hash on the event loop', async () => {
    const errors: Error[] = [];
    const t = thread({ onError: (e) => errors.push(e) });
    const before = t.create();
    before.update(randomBytes(300_000));
    await new Promise((r) => setImmediate(r));
    // The thread crashing (reached through the private field: no public way to kill it).
    await (t as unknown as { started: Worker }).started.terminate();
    await expect(before.digest()).rejects.toThrow(/exited/);
    expect(errors).toHaveLength(1);
    expect(t.congested).toBe(false);
    const after = t.create();
    after.update(Buffer.from('still hashed'));
    expect(await after.digest()).toBe(sha([Buffer.from('still hashed')]));
  });
});
