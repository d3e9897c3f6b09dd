import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { createServer, request, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { s3StagingConfig } from '../../test/support/s3-staging.js';
import { AppError } from '../errors.js';
import { EncryptRecords, decryptRange, sealedSize } from '../keys/chunked-cipher.js';
import { startS3Simulator, type S3Simulator } from '../sources/s3/simulator.js';
import { S3Staging, type S3StagingConfig, type S3StagingTuning } from './s3-staging.js';

const BUCKET = 'staging';
const MIB = 1024 * 1024;
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

interface Seen {
  method: string;
  path: string;
  query: string[];
  headers: IncomingHttpHeaders;
}

/**
 * In front of the real simulator: records each request, injects faults, and answers the one call
 * s3rver 3.7 lacks, AbortMultipartUpload (405 there), the way S3 does: the upload and its parts go.
 * (ListMultipartUploads is NotImplemented in s3rver too, so pending uploads are checked on its disk.)
 */
async function front(sim: S3Simulator) {
  const seen: Seen[] = [];
  let fail: ((s: Seen) => boolean) | undefined;
  let partsInFlight = 0;
  let maxPartsInFlight = 0;
  let partDelayMs = 0;
  const target = new URL(sim.endpoint);
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url!, 'http://x');
    const s: Seen = { method: req.method!, path: decodeURIComponent(url.pathname), query: [...url.searchParams.keys()].filter((k) => k !== 'x-id'), headers: req.headers };
    seen.push(s);
    if (fail?.(s)) {
      req.resume();
      res.writeHead(500, { 'content-type': 'application/xml' }).end('<?xml version="1.0"?><Error><Code>InternalError</Code><Message>injected</Message></Error>');
      return;
    }
    if (req.method === 'DELETE' && url.searchParams.has('uploadId')) {
      req.resume();
      const dir = join(sim.dir, s.path.split('/')[1]!, '._S3rver_uploads', url.searchParams.get('uploadId')!);
      if (!existsSync(dir)) {
        res.writeHead(404, { 'content-type': 'application/xml' }).end('<?xml version="1.0"?><Error><Code>NoSuchUpload</Code></Error>');
        return;
      }
      rmSync(dir, { recursive: true, force: true });
      res.writeHead(204).end();
      return;
    }
    const isPart = req.method === 'PUT' && url.searchParams.has('partNumber');
    if (isPart) maxPartsInFlight = Math.max(maxPartsInFlight, ++partsInFlight);
    forward(req, res, isPart);
  });
  const forward = (req: IncomingMessage, res: ServerResponse, isPart: boolean) => {
    // A slow store: the part is stored at once, its answer comes partDelayMs later.
    const up = request({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers }, (r) =>
      setTimeout(
        () => {
          res.writeHead(r.statusCode!, r.headers);
          r.pipe(res);
          r.once('end', () => isPart && partsInFlight--);
        },
        isPart ? partDelayMs : 0,
      ),
    );
    up.once('error', () => res.destroy());
    req.pipe(up);
  };
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    setFail: (f: typeof fail) => (fail = f),
    maxPartsInFlight: () => maxPartsInFlight,
    resetCounters: () => (maxPartsInFlight = 0),
    delayParts: (ms: number) => (partDelayMs = ms),
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  };
}

let sim: S3Simulator;
let proxy: Awaited<ReturnType<typeof front>>;
let raw: S3Client;
const made: S3Staging[] = [];

/** The config as an operator writes it, through the real schema, pointed at the recording proxy. */
function stagingConfig(fields: Record<string, unknown> = {}): S3StagingConfig {
  return s3StagingConfig({ ...sim, endpoint: proxy.endpoint }, BUCKET, fields);
}

function staging(fields: Record<string, unknown> = {}, tuning?: S3StagingTuning): S3Staging {
  const s = new S3Staging(stagingConfig(fields), tuning);
  made.push(s);
  return s;
}

/** Pending multipart uploads, from s3rver's own store (it has no ListMultipartUploads). */
const pendingUploads = () => readdirSync(join(sim.dir, BUCKET, '._S3rver_uploads')).filter(Boolean);

async function rawObject(key: string): Promise<Buffer | null> {
  try {
    const out = await raw.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
    return Buffer.from(await out.Body!.transformToByteArray());
  } catch (e) {
    if ((e as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404) return null;
    throw e;
  }
}

/** Chunks of up to 64 KiB, like a source's body. */
function source(data: Buffer, failAt?: number): Readable {
  let off = 0;
  return new Readable({
    read() {
      if (failAt !== undefined && off >= failAt) {
        this.destroy(new Error('source broke mid-stream'));
        return;
      }
      if (off >= data.length) {
        this.push(null);
        return;
      }
      const n = Math.min(64 * 1024, data.length - off);
      this.push(data.subarray(off, off + n));
      off += n;
    },
  });
}

async function stage(s: S3Staging, key: string, data: Buffer): Promise<number> {
  const w = await s.writer(key);
  await pipeline(source(data), w.stream);
  return w.commit();
}

async function readAll(r: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of r) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

beforeAll(async () => {
  sim = await startS3Simulator({ buckets: [BUCKET] });
  proxy = await front(sim);
  raw = new S3Client({
    region: 'us-east-1',
    endpoint: sim.endpoint,
    forcePathStyle: true,
    credentials: { accessKeyId: sim.accessKeyId, secretAccessKey: sim.secretAccessKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
});
afterAll(async () => {
  for (const s of made) await s.close();
  raw?.destroy();
  await proxy?.close();
  await sim?.stop();
});
beforeEach(() => {
  proxy.delayParts(0);
  proxy.setFail(undefined);
  proxy.seen.length = 0;
  proxy.resetCounters();
});

const ops = () => proxy.seen.map((s) => `${s.method}${s.query.length ? ' ?' + s.query.join('&') : ''}`);

describe('S3Staging', () => {
  it('stages a 20 MiB object as 5 MiB parts, one in flight, visible only after commit', async () => {
    const s = staging();
    const data = randomBytes(20 * MIB + 12_345);
    const w = await s.writer('job_big');
    await pipeline(source(data), w.stream);
    // Written to its end but not committed: nothing under the key yet.
    expect(await rawObject('custodian/staging/job_big')).toBeNull();
    expect(pendingUploads()).toHaveLength(1);
    expect(await w.commit()).toBe(data.length);
    expect(ops()).toEqual(['POST ?uploads', ...Array(5).fill('PUT ?partNumber&uploadId'), 'POST ?uploadId']);
    expect(proxy.maxPartsInFlight()).toBe(1);
    const parts = proxy.seen.filter((x) => x.query.includes('partNumber')).map((x) => Number(x.headers['content-length']));
    expect(parts).toEqual([5 * MIB, 5 * MIB, 5 * MIB, 5 * MIB, 12_345]);
    expect(pendingUploads()).toEqual([]);
    expect(sha((await rawObject('custodian/staging/job_big'))!)).toBe(sha(data));
    expect(await s.size('job_big')).toBe(data.length);
  });

  it('applies backpressure: the writer holds about one part, not the whole source', async () => {
    const s = staging();
    const w = await s.writer('job_pressure');
    const chunk = randomBytes(64 * 1024);
    let refusedAt = -1;
    for (let i = 0; i < 200; i++) {
      if (!w.stream.write(chunk)) {
        refusedAt = i;
        break;
      }
    }
    // The 80th chunk fills the 5 MiB part; from then on the stream says "wait" until the part is stored.
    expect(refusedAt).toBeGreaterThanOrEqual(79);
    expect(refusedAt).toBeLessThan(100);
    await w.abort();
  });

  it('stages an object smaller than one part with a single PutObject', async () => {
    const s = staging();
    const data = randomBytes(300_000);
    expect(await stage(s, 'job_small', data)).toBe(data.length);
    expect(ops()).toEqual(['PUT']);
    expect((await rawObject('custodian/staging/job_small'))!.equals(data)).toBe(true);
  });

  it('stages an empty object', async () => {
    const s = staging();
    expect(await stage(s, 'job_empty', Buffer.alloc(0))).toBe(0);
    expect(await s.size('job_empty')).toBe(0);
  });

  it('a source failing mid-stream leaves no object and no pending multipart upload', async () => {
    const s = staging();
    const data = randomBytes(12 * MIB);
    const w = await s.writer('job_broken');
    await expect(pipeline(source(data, 11 * MIB), w.stream)).rejects.toThrow('source broke mid-stream');
    await w.abort();
    expect(ops()).toEqual(['POST ?uploads', 'PUT ?partNumber&uploadId', 'PUT ?partNumber&uploadId', 'DELETE ?uploadId']);
    expect(pendingUploads()).toEqual([]);
    expect(await rawObject('custodian/staging/job_broken')).toBeNull();
    expect(await s.size('job_broken')).toBeNull();
    // abort is idempotent
    await w.abort();
  });

  it('aborting while a part is being stored (client gone) ends the upload; nothing is left, nothing unhandled', async () => {
    const s = staging();
    proxy.delayParts(300);
    const unhandled: unknown[] = [];
    const onUnhandled = (e: unknown) => unhandled.push(e);
    process.on('unhandledRejection', onUnhandled);
    try {
      const w = await s.writer('job_midpart');
      const ac = new AbortController();
      const done = pipeline(source(randomBytes(12 * MIB)), w.stream, { signal: ac.signal }).catch((e: unknown) => e);
      while (!proxy.seen.some((x) => x.query.includes('partNumber'))) await new Promise((r) => setTimeout(r, 10));
      ac.abort();
      expect(await done).toMatchObject({ name: 'AbortError' });
      await w.abort();
      await new Promise((r) => setTimeout(r, 500));
      expect(unhandled).toEqual([]);
      expect(proxy.seen.at(-1)).toMatchObject({ method: 'DELETE', query: ['uploadId'] });
      expect(pendingUploads()).toEqual([]);
      expect(await s.size('job_midpart')).toBeNull();
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });

  it('aborting before a part was full sends nothing at all', async () => {
    const s = staging();
    const w = await s.writer('job_early');
    w.stream.write(randomBytes(1000));
    await w.abort();
    expect(ops()).toEqual([]);
    expect(await s.size('job_early')).toBeNull();
  });

  it('a part the store refuses fails the stream with the S3 code and leaves nothing behind', async () => {
    const s = staging();
    proxy.setFail((x) => x.query.includes('partNumber') && x.method === 'PUT' && proxy.seen.filter((y) => y.query.includes('partNumber')).length >= 2);
    const w = await s.writer('job_refused');
    const err = await pipeline(source(randomBytes(11 * MIB)), w.stream).then(
      () => null,
      (e: unknown) => e as Error & { code?: string },
    );
    expect(err?.code).toBe('InternalError');
    expect(err?.message).not.toMatch(/injected/);
    await w.abort();
    proxy.setFail(undefined);
    expect(pendingUploads()).toEqual([]);
    expect(await s.size('job_refused')).toBeNull();
  });

  it('a refused CompleteMultipartUpload is staging.write_failed, and abort cleans up', async () => {
    const s = staging();
    proxy.setFail((x) => x.method === 'POST' && x.query.includes('uploadId'));
    const w = await s.writer('job_nocomplete');
    await pipeline(source(randomBytes(6 * MIB)), w.stream);
    const e = await w.commit().catch((err: unknown) => err);
    expect(e).toBeInstanceOf(AppError);
    expect((e as AppError).code).toBe('staging.write_failed');
    await w.abort();
    proxy.setFail(undefined);
    expect(pendingUploads()).toEqual([]);
    expect(await s.size('job_nocomplete')).toBeNull();
  });

  it('reads sealed records through decryptRange: whole and ranged, sequential reads on one GET', async () => {
    const s = staging();
    const key = randomBytes(32);
    const plain = randomBytes(7 * MIB + 777);
    const w = await s.writer('job_sealed');
    await pipeline(source(plain), new EncryptRecords(key), w.stream);
    expect(await w.commit()).toBe(sealedSize(plain.length));

    proxy.seen.length = 0;
    const whole = await readAll(decryptRange(await s.open('job_sealed'), key, plain.length, 0, plain.length - 1));
    expect(sha(whole)).toBe(sha(plain));
    // one HEAD (open) and one GET for 113 records
    expect(ops()).toEqual(['HEAD', 'GET']);
    expect(proxy.seen[1]!.headers.range).toBe('bytes=0-');

    for (const [a, b] of [
      [0, 0],
      [65_535, 65_536],
      [3 * MIB + 5, 5 * MIB + 17],
      [plain.length - 10, plain.length - 1],
    ] as const) {
      proxy.seen.length = 0;
      const part = await readAll(decryptRange(await s.open('job_sealed'), key, plain.length, a, b));
      expect(part.equals(plain.subarray(a, b + 1))).toBe(true);
      const gets = proxy.seen.filter((x) => x.method === 'GET');
      expect(gets).toHaveLength(1);
      expect(gets[0]!.headers.range).toBe(`bytes=${Math.floor(a / 65_536) * (65_536 + 16)}-`);
      expect(gets[0]!.headers['if-match']).toBeTruthy();
    }
  });

  it('positional reads: sequential on one stream, a jump restarts, past the end is 0 bytes', async () => {
    const s = staging();
    const data = randomBytes(1 * MIB);
    await stage(s, 'job_reader', data);
    const r = (await s.open('job_reader')) as Awaited<ReturnType<S3Staging['open']>> & { gets: number };
    const buf = Buffer.alloc(100_000);
    expect((await r.read(buf, 0, 100_000, 0)).bytesRead).toBe(100_000);
    expect(buf.equals(data.subarray(0, 100_000))).toBe(true);
    expect((await r.read(buf, 10, 50_000, 100_000)).bytesRead).toBe(50_000);
    expect(buf.subarray(10, 50_010).equals(data.subarray(100_000, 150_000))).toBe(true);
    expect(r.gets).toBe(1);
    // backwards: a new GET there
    expect((await r.read(buf, 0, 1000, 5)).bytesRead).toBe(1000);
    expect(buf.subarray(0, 1000).equals(data.subarray(5, 1005))).toBe(true);
    expect(r.gets).toBe(2);
    // a short read at the end, then nothing
    expect((await r.read(buf, 0, 100_000, data.length - 10)).bytesRead).toBe(10);
    expect(buf.subarray(0, 10).equals(data.subarray(data.length - 10))).toBe(true);
    expect((await r.read(buf, 0, 100, data.length)).bytesRead).toBe(0);
    await r.close();
    await expect(r.read(buf, 0, 10, 0)).rejects.toThrow(/closed/);
  });

  it('closing a reader mid-object gives its socket back (one-socket pool, many partial reads)', async () => {
    const s = staging({}, { maxSockets: 1 });
    const data = randomBytes(4 * MIB);
    await stage(s, 'job_sockets', data);
    const buf = Buffer.alloc(1000);
    for (let i = 0; i < 20; i++) {
      const r = await s.open('job_sockets');
      await r.read(buf, 0, 1000, i * 1000);
      await r.close();
    }
    // Had a body been left open, the single socket would still be taken and this would hang.
    expect(await s.size('job_sockets')).toBe(data.length);
  }, 20_000);

  it('missing objects: size is null, open rejects, delete is quiet; delete removes', async () => {
    const s = staging();
    expect(await s.size('job_none')).toBeNull();
    await expect(s.open('job_none')).rejects.toThrow(/not there/);
    await s.delete('job_none');
    await stage(s, 'job_del', randomBytes(1000));
    expect(await s.size('job_del')).toBe(1000);
    await s.delete('job_del');
    expect(await s.size('job_del')).toBeNull();
    expect(await rawObject('custodian/staging/job_del')).toBeNull();
  });

  it('refuses keys that are not one safe segment, before any request', async () => {
    const s = staging();
    for (const bad of ['../x', 'a/b', '', 'x'.repeat(129), 'a\0b']) {
      await expect(s.writer(bad)).rejects.toThrow('bad staging key');
      await expect(s.open(bad)).rejects.toThrow('bad staging key');
      await expect(s.delete(bad)).rejects.toThrow('bad staging key');
    }
    expect(proxy.seen).toEqual([]);
  });

  it('keys go under the prefix (empty prefix: bucket root) and SSE settings are sent', async () => {
    const s = staging({ prefix: '', sse: { mode: 'aws:kms', kms_key_id: 'alias/custodian-staging' } });
    await stage(s, 'job_root', randomBytes(10));
    expect(await rawObject('job_root')).not.toBeNull();
    const put = proxy.seen.find((x) => x.method === 'PUT')!;
    expect(put.path).toBe(`/${BUCKET}/job_root`);
    expect(put.headers['x-amz-server-side-encryption']).toBe('aws:kms');
    expect(put.headers['x-amz-server-side-encryption-aws-kms-key-id']).toBe('alias/custodian-staging');
    proxy.seen.length = 0;
    const big = staging({ sse: { mode: 'AES256' } });
    await stage(big, 'job_sse', randomBytes(5 * MIB + 1));
    expect(proxy.seen[0]!.headers['x-amz-server-side-encryption']).toBe('AES256');
  });

  it('an unreachable store: reads are staging.unavailable, writes fail the stream', async () => {
    const s = staging({ endpoint: 'http://127.0.0.1:9' });
    const e = await s.size('job_x').catch((err: unknown) => err);
    expect(e).toBeInstanceOf(AppError);
    expect((e as AppError).code).toBe('staging.unavailable');
    const w = await s.writer('job_x');
    await expect(pipeline(source(randomBytes(6 * MIB)), w.stream)).rejects.toMatchObject({ code: expect.any(String) });
    await w.abort();
  }, 20_000);
});
