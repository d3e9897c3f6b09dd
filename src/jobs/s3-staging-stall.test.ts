import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { rawServer } from '../../test/support/raw-server.js';
import { s3StagingConfig } from '../../test/support/s3-staging.js';
import { AppError } from '../errors.js';
import { S3Staging } from './s3-staging.js';

const MIB = 1024 * 1024;
/** The staging client's socket idle timeout in these tests (tuning; the real one is a minute). */
const IDLE = 300;
/** A call: the SDK tries 3 times, each attempt ended by IDLE of silence, with a short backoff between. */
const BOUND = 3 * IDLE + 2_500;

const stops: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const stop of stops.splice(0).reverse()) await stop();
});

function staging(endpoint: string): S3Staging {
  const s = new S3Staging(s3StagingConfig({ endpoint, accessKeyId: 'AKID', secretAccessKey: 'secret' }, 'staging'), { idleTimeoutMs: IDLE });
  stops.push(() => s.close());
  return s;
}

/** How `p` settled (its value or its error) and how long it took; "still hanging" past `ms`. */
async function settle(p: Promise<unknown>, ms = 8_000): Promise<{ out: unknown; elapsed: number }> {
  const t0 = Date.now();
  let timer: NodeJS.Timeout | undefined;
  const guard = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`still hanging after ${ms} ms`)), ms)));
  try {
    const out = await Promise.race([p.then((v) => v ?? 'settled', (e: unknown) => e), guard]);
    return { out, elapsed: Date.now() - t0 };
  } finally {
    clearTimeout(timer);
  }
}

const bytes = (n: number) => Readable.from([Buffer.alloc(n, 7)]);

/** Byte i of the synthetic object (period 251, so a resume at the wrong offset shows). */
const at = (i: number) => i % 251;
function pattern(from: number, n: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let j = 0; j < n; j++) b[j] = at(from + j);
  return b;
}

describe('S3Staging against a store that stops answering', () => {
  it('every call to a store that accepts the connection and never answers fails within the idle bound', async () => {
    const stalled = await rawServer(() => {}); // holds every request open, answers nothing
    stops.push(stalled.stop);
    const s = staging(stalled.endpoint);

    const small = async () => {
      const w = await s.writer('job_small');
      await pipeline(bytes(1000), w.stream); // under one part: nothing is sent before commit
      const e = await w.commit().catch((err: unknown) => err);
      await w.abort();
      return e;
    };
    let bigWriter: Awaited<ReturnType<S3Staging['writer']>> | undefined;
    const big = async () => {
      bigWriter = await s.writer('job_big');
      return pipeline(bytes(6 * MIB), bigWriter.stream);
    };
    const [size, open, del, put, multi] = await Promise.all([settle(s.size('job_a')), settle(s.open('job_a')), settle(s.delete('job_a')), settle(small()), settle(big())]);

    for (const r of [size, open, del]) {
      expect(r.out).toBeInstanceOf(AppError);
      expect(r.out).toMatchObject({ code: 'staging.unavailable', message: expect.stringMatching(/ETIMEDOUT/) });
      expect(r.elapsed).toBeLessThan(BOUND);
    }
    // PutObject at commit: the write fails, nothing is presented as staged.
    expect(put.out).toBeInstanceOf(AppError);
    expect(put.out).toMatchObject({ code: 'staging.write_failed', message: expect.stringMatching(/ETIMEDOUT/) });
    expect(put.elapsed).toBeLessThan(BOUND);
    // CreateMultipartUpload: the write stream fails with the code run-job reports as staging.write_failed.
    expect(multi.out).toMatchObject({ code: 'ETIMEDOUT' });
    expect(multi.elapsed).toBeLessThan(BOUND);
    const aborted = await settle(bigWriter!.abort());
    expect(aborted.out).toBe('settled');
    expect(aborted.elapsed).toBeLessThan(BOUND);
    expect(await bigWriter!.commit().catch((e: unknown) => e)).toMatchObject({ code: 'staging.write_failed' });
    expect(stalled.seen.length).toBeGreaterThanOrEqual(5);
  }, 10_000);

  it('a part the store never answers: abort() (lease lost mid-part) waits for it only up to the bound, then ends the upload', async () => {
    const store = await rawServer((req, res, url) => {
      req.resume();
      if (req.method === 'POST' && url.searchParams.has('uploads')) {
        res.writeHead(200, { 'content-type': 'application/xml' }).end('<?xml version="1.0" encoding="UTF-8"?><InitiateMultipartUploadResult><Bucket>staging</Bucket><Key>k</Key><UploadId>up-1</UploadId></InitiateMultipartUploadResult>');
      } else if (req.method === 'DELETE' && url.searchParams.has('uploadId')) {
        res.writeHead(204).end();
      } // UploadPart: the body is taken, no answer ever comes
    });
    stops.push(store.stop);
    const s = staging(store.endpoint);
    const w = await s.writer('job_part');
    const ac = new AbortController();
    const done = pipeline(bytes(6 * MIB), w.stream, { signal: ac.signal }).catch((e: unknown) => e);
    while (!store.seen.some((x) => x.query.includes('partNumber'))) await new Promise((r) => setTimeout(r, 10));
    ac.abort(new Error('lease lost'));
    await done;
    const aborted = await settle(w.abort());
    expect(aborted.out).toBe('settled');
    expect(aborted.elapsed).toBeLessThan(BOUND);
    expect(store.seen.at(-1)).toMatchObject({ method: 'DELETE', query: ['uploadId'] });
  }, 10_000);

  it('CompleteMultipartUpload and AbortMultipartUpload never answered: commit is staging.write_failed, abort returns, both bounded', async () => {
    const store = await rawServer((req, res, url) => {
      if (req.method === 'POST' && url.searchParams.has('uploads')) {
        req.resume();
        res.writeHead(200, { 'content-type': 'application/xml' }).end('<?xml version="1.0" encoding="UTF-8"?><InitiateMultipartUploadResult><Bucket>staging</Bucket><Key>k</Key><UploadId>up-1</UploadId></InitiateMultipartUploadResult>');
      } else if (req.method === 'PUT' && url.searchParams.has('partNumber')) {
        req.resume();
        req.once('end', () => res.writeHead(200, { ETag: `"etag-${url.searchParams.get('partNumber')}"` }).end());
      } // CompleteMultipartUpload, AbortMultipartUpload: silence
    });
    stops.push(store.stop);
    const s = staging(store.endpoint);
    const w = await s.writer('job_complete');
    await pipeline(bytes(6 * MIB), w.stream);
    const committed = await settle(w.commit());
    expect(committed.out).toBeInstanceOf(AppError);
    expect(committed.out).toMatchObject({ code: 'staging.write_failed', message: expect.stringMatching(/ETIMEDOUT/) });
    expect(committed.elapsed).toBeLessThan(BOUND);
    const aborted = await settle(w.abort());
    expect(aborted.out).toBe('settled');
    expect(aborted.elapsed).toBeLessThan(BOUND);
    expect(store.seen.map((x) => `${x.method} ${x.query.join('&')}`)).toContain('DELETE uploadId');
  }, 10_000);

  describe('reads', () => {
    const SIZE = 64 * MIB;
    /** HEAD and ranged GETs of a synthetic SIZE-byte object; `stallAfter` bytes into a body, it goes silent. */
    async function objectStore(stallAfter?: number) {
      return rawServer((req, res) => {
        req.resume();
        const headers = { ETag: '"e1"', 'Accept-Ranges': 'bytes' };
        if (req.method === 'HEAD') return void res.writeHead(200, { ...headers, 'Content-Length': SIZE }).end();
        const from = Number(/^bytes=(\d+)-$/.exec(req.headers.range ?? '')?.[1] ?? 0);
        res.writeHead(206, { ...headers, 'Content-Length': SIZE - from, 'Content-Range': `bytes ${from}-${SIZE - 1}/${SIZE}` });
        const body = Readable.from(
          (function* () {
            for (let off = from; off < SIZE; off += 64 * 1024) {
              if (stallAfter !== undefined && off - from >= stallAfter) return;
              yield pattern(off, Math.min(64 * 1024, SIZE - off));
            }
          })(),
        );
        // A stalled body keeps the response open (no end): silence, not a short body.
        body.pipe(res, { end: stallAfter === undefined });
        res.once('close', () => body.destroy());
      });
    }

    it('a download paused longer than the idle timeout (slow client) resumes byte-exactly on a new ranged GET', async () => {
      const store = await objectStore();
      stops.push(store.stop);
      const r = await staging(store.endpoint).open('job_r');
      const buf = Buffer.alloc(MIB);
      expect(await r.read(buf, 0, MIB, 0)).toEqual({ bytesRead: MIB });
      expect(buf.equals(pattern(0, MIB))).toBe(true);
      // The client stops reading: buffers fill, the GET's socket goes silent and the idle timeout ends it.
      await new Promise((res) => setTimeout(res, 4 * IDLE));
      expect(await r.read(buf, 0, MIB, MIB)).toEqual({ bytesRead: MIB });
      expect(buf.equals(pattern(MIB, MIB))).toBe(true);
      await r.close();
      expect(store.seen.filter((x) => x.method === 'GET').map((x) => x.range)).toEqual(['bytes=0-', `bytes=${MIB}-`]);
    }, 10_000);

    it('a body that stops coming while it is read fails with staging.unavailable within the idle timeout', async () => {
      const store = await objectStore(256 * 1024);
      stops.push(store.stop);
      const r = await staging(store.endpoint).open('job_r');
      const buf = Buffer.alloc(MIB);
      const got = await settle(r.read(buf, 0, MIB, 0));
      expect(got.out).toBeInstanceOf(AppError);
      expect(got.out).toMatchObject({ code: 'staging.unavailable', message: expect.stringMatching(/ETIMEDOUT/) });
      expect(got.elapsed).toBeLessThan(IDLE + 1_000);
      await r.close();
    }, 10_000);
  });
});
