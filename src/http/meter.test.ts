import { createHash, randomBytes } from 'node:crypto';
import { PassThrough, Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { AppError } from '../errors.js';
import { Meter, Slice } from './meter.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** Splits a buffer into chunks of the given sizes (the rest as the last chunk). */
function chunked(data: Buffer, sizes: number[]): Buffer[] {
  const out: Buffer[] = [];
  let pos = 0;
  for (const s of sizes) {
    out.push(data.subarray(pos, pos + s));
    pos += s;
  }
  if (pos < data.length) out.push(data.subarray(pos));
  return out;
}

function sink(): { stream: Writable; chunks: Buffer[] } {
  const chunks: Buffer[] = [];
  return {
    chunks,
    stream: new Writable({
      write(c: Buffer, _e, cb) {
        chunks.push(c);
        cb();
      },
    }),
  };
}

async function through(t: NodeJS.ReadWriteStream, chunks: Buffer[]): Promise<Buffer> {
  const s = sink();
  await pipeline(Readable.from(chunks), t, s.stream);
  return Buffer.concat(s.chunks);
}

describe('Meter', () => {
  const data = randomBytes(200_000);

  it('passes the bytes through unchanged, counting and hashing them', async () => {
    let ended: string | undefined;
    const m = new Meter({ onEnd: (s) => (ended = s) });
    const out = await through(m, chunked(data, [1, 1000, 65_536, 3]));
    expect(out.equals(data)).toBe(true);
    expect(m.bytes).toBe(data.length);
    expect(m.sha256()).toBe(sha(data));
    expect(ended).toBe(sha(data));
  });

  it('hashes an empty stream as the SHA-256 of nothing', async () => {
    const m = new Meter({ expectSha256: sha(Buffer.alloc(0)) });
    expect((await through(m, [])).length).toBe(0);
    expect(m.bytes).toBe(0);
    expect(m.sha256()).toBe(sha(Buffer.alloc(0)));
  });

  it('accepts the bytes when they match the expected digest', async () => {
    const m = new Meter({ expectSha256: sha(data) });
    expect((await through(m, chunked(data, [70_000]))).equals(data)).toBe(true);
  });

  it('fails the stream before its end when the digest does not match', async () => {
    const altered = Buffer.from(data);
    altered.writeUInt8(altered.readUInt8(123_456) ^ 0xff, 123_456);
    let onEnd = false;
    const m = new Meter({ expectSha256: sha(data), onEnd: () => (onEnd = true) });
    let ended = false;
    m.on('end', () => (ended = true));
    const s = sink();
    const err = await pipeline(Readable.from(chunked(altered, [65_536, 65_536])), m, s.stream).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(AppError);
    expect((err as AppError).code).toBe('source.integrity_mismatch');
    expect((err as AppError).extra).toEqual({ expected: sha(data) });
    // The consumer never saw a clean end, and no completion digest was announced.
    expect(ended).toBe(false);
    expect(onEnd).toBe(false);
    // The audit still learns what was sent and its digest.
    expect(m.bytes).toBe(altered.length);
    expect(m.sha256()).toBe(sha(altered));
  });

  it('fails a truncated copy the same way', async () => {
    const m = new Meter({ expectSha256: sha(data) });
    await expect(through(m, [data.subarray(0, data.length - 1)])).rejects.toMatchObject({ code: 'source.integrity_mismatch' });
  });

  it('reports the digest of the bytes seen so far at any moment, also after an early end', async () => {
    const m = new Meter({ expectSha256: sha(data) });
    const src = new PassThrough();
    const s = sink();
    const done = pipeline(src, m, s.stream);
    const first = data.subarray(0, 1000);
    src.write(first);
    await new Promise((r) => setImmediate(r));
    expect(m.bytes).toBe(1000);
    expect(m.sha256()).toBe(sha(first));
    src.end(data.subarray(1000));
    // Asking mid-stream must not freeze the digest: the whole stream still verifies.
    await done;
    expect(m.sha256()).toBe(sha(data));
    expect(Buffer.concat(s.chunks).equals(data)).toBe(true);
  });

  it('after a client abort, gives the digest of what was sent', async () => {
    const m = new Meter();
    const src = new PassThrough();
    const s = sink();
    const done = pipeline(src, m, s.stream).catch((e: unknown) => e);
    src.write(data.subarray(0, 5000));
    await new Promise((r) => setImmediate(r));
    s.stream.destroy(new Error('client went away'));
    await done;
    expect(m.bytes).toBe(5000);
    expect(m.sha256()).toBe(sha(data.subarray(0, 5000)));
  });
});

describe('Slice', () => {
  const data = Buffer.from(Array.from({ length: 100 }, (_, i) => i));

  it.each<[string, number[], number, number]>([
    ['within one chunk', [100], 10, 19],
    ['within a middle chunk', [30, 30, 40], 35, 50],
    ['across chunks', [30, 30, 40], 25, 75],
    ['exactly one chunk', [30, 30, 40], 30, 59],
    ['starting on a chunk edge', [10, 10, 80], 10, 12],
    ['ending on a chunk edge', [10, 10, 80], 5, 9],
    ['single byte at the start', [7, 93], 0, 0],
    ['single byte at the end', [7, 93], 99, 99],
    ['the last bytes', [33, 33, 34], 90, 99],
    ['everything', [1, 2, 3], 0, 99],
    ['one-byte chunks', Array(100).fill(1), 40, 44],
  ])('passes bytes [start, end] %s', async (_name, sizes, start, end) => {
    const out = await through(new Slice(start, end), chunked(data, sizes));
    expect([...out]).toEqual([...data.subarray(start, end + 1)]);
  });

  it('gives what exists when the end is past the input', async () => {
    expect([...(await through(new Slice(95, 200), chunked(data, [50, 50])))]).toEqual([95, 96, 97, 98, 99]);
    expect((await through(new Slice(150, 200), chunked(data, [50, 50]))).length).toBe(0);
  });
});
