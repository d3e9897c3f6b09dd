import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterEach, describe, expect, it } from 'vitest';
import { rawServer } from '../../test/support/raw-server.js';
import { withSecretContext } from '../config/secret.js';
import { AppError } from '../errors.js';
import { s3SourceConfig } from '../sources/s3/config.js';
import { type S3Simulator, startS3Simulator } from '../sources/s3/simulator.js';
import { type ArchiveLister, type MediaEntry, s3Lister } from './legacy-sync.js';

const sourceOf = (fields: Record<string, unknown>) =>
  withSecretContext({ env: {}, allowInline: true }, () =>
    s3SourceConfig.parse({ name: 'archive', type: 's3', bucket: 'verint-export', force_path_style: true, access_key_id: 'S3RVER', secret_access_key: 'S3RVER', ...fields }),
  );

async function list(lister: ArchiveLister, signal = new AbortController().signal): Promise<MediaEntry[]> {
  const out: MediaEntry[] = [];
  for await (const e of lister.walk('', null, signal)) out.push(e);
  return out;
}

/** Settles `p`, or rejects with "still hanging" after `ms` (and aborts `ctl`, so nothing is left pending). */
async function within<T>(p: Promise<T>, ms: number, ctl: AbortController): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const guard = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      ctl.abort();
      reject(new Error(`still hanging after ${ms} ms`));
    }, ms);
  });
  try {
    return await Promise.race([p, guard]);
  } finally {
    clearTimeout(timer);
  }
}

const stops: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const stop of stops.splice(0).reverse()) await stop();
});

describe('the S3 lister of legacy sync', () => {
  it('fails with source.timeout, not a hang, when the endpoint accepts the connection and never answers', async () => {
    const stalled = await rawServer(() => {}); // holds every request open, answers nothing
    stops.push(stalled.stop);
    const lister = s3Lister(sourceOf({ endpoint: stalled.endpoint, timeout_ms: 500 }));
    stops.push(async () => lister.close());
    const ctl = new AbortController();
    const t0 = Date.now();
    const err = await within(list(lister, ctl.signal), 6_000, ctl).then(
      () => new Error('the listing succeeded'),
      (e: unknown) => e,
    );
    const elapsed = Date.now() - t0;
    expect(err).toBeInstanceOf(AppError);
    expect(err).toMatchObject({ code: 'source.timeout' });
    // Each attempt waits timeout_ms; the SDK retries a timeout (3 attempts, short backoff) and then gives up.
    expect(elapsed).toBeGreaterThanOrEqual(500);
    expect(elapsed).toBeLessThan(3 * 500 + 2_500);
    expect(stalled.seen.length).toBeGreaterThanOrEqual(1);

    // A sidecar read through the same lister is bounded the same way.
    const t1 = Date.now();
    await expect(within(lister.readSmall('2024/01/01/00/v1.json', 4096, ctl.signal), 6_000, ctl)).rejects.toMatchObject({ code: 'source.timeout' });
    expect(Date.now() - t1).toBeLessThan(3 * 500 + 2_500);
  }, 15_000);

  it('gives its sockets back when closed (keep-alive connection held during the sync, destroyed by close)', async () => {
    const xml = '<?xml version="1.0" encoding="UTF-8"?><ListBucketResult><Name>verint-export</Name><KeyCount>1</KeyCount><IsTruncated>false</IsTruncated><Contents><Key>a/v1.wav</Key><Size>7</Size></Contents></ListBucketResult>';
    const srv = await rawServer((_req, res) => {
      res.writeHead(200, { 'Content-Type': 'application/xml', 'Content-Length': Buffer.byteLength(xml) });
      res.end(xml);
    });
    stops.push(srv.stop);
    const lister = s3Lister(sourceOf({ endpoint: srv.endpoint }));
    expect(await list(lister)).toEqual([{ locator: 'a/v1.wav', size: 7 }]);
    expect(srv.open()).toBe(1);
    lister.close();
    const deadline = Date.now() + 2_000;
    while (srv.open() > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(srv.open()).toBe(0);
  });

  it("signs with its own source's credentials only: a source with a wrong secret is refused, beside one that works", async () => {
    const sim: S3Simulator = await startS3Simulator({ buckets: ['verint-export'] });
    stops.push(sim.stop);
    const put = new S3Client({ region: 'us-east-1', endpoint: sim.endpoint, forcePathStyle: true, credentials: { accessKeyId: sim.accessKeyId, secretAccessKey: sim.secretAccessKey } });
    await put.send(new PutObjectCommand({ Bucket: 'verint-export', Key: 'a/v1.wav', Body: 'RIFF-v1' }));
    put.destroy();

    const wrong = s3Lister(sourceOf({ name: 'other', endpoint: sim.endpoint, access_key_id: sim.accessKeyId, secret_access_key: 'not-the-secret' }));
    const right = s3Lister(sourceOf({ endpoint: sim.endpoint, access_key_id: sim.accessKeyId, secret_access_key: sim.secretAccessKey }));
    stops.push(async () => {
      wrong.close();
      right.close();
    });
    await expect(list(wrong)).rejects.toMatchObject({ name: 'SignatureDoesNotMatch' });
    expect(await list(right)).toEqual([{ locator: 'a/v1.wav', size: 7 }]);
    await expect(list(wrong)).rejects.toMatchObject({ name: 'SignatureDoesNotMatch' });
  });
});
