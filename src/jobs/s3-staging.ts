import { Readable, Writable } from 'node:stream';
import type { Config } from '../config/schema.js';
import { AppError } from '../errors.js';
import { checkStagingKey, type Staging, type StagingReader, type StagingWriter } from './staging.js';
import { destroyLazy, preloadS3, type S3Handle, s3Client } from '../sources/s3/client.js';

export type S3StagingConfig = Extract<Config['jobs']['staging'], { type: 's3' }>;

const MIB = 1024 * 1024;
/** S3 numbers parts 1..10000. */
const MAX_PARTS = 10_000;

/**
 * Socket idle timeout of every staging call: a call whose connection carries no byte for this long
 * fails (the SDK tries 3 times). It bounds silence, not duration, so a 512 MiB part on a slow link
 * is not cut while its bytes flow; it is what ends a call to a store that accepts the connection and
 * stops answering, which would otherwise hold a job's lease or a download for ever. A constant, not
 * config: a store that is working is never silent this long in the middle of a call (S3 sends
 * whitespace while it completes a multipart upload), so it does not depend on the deployment;
 * 60 s is the AWS SDKs' usual read timeout (botocore 60 s, Java 50 s).
 */
const IDLE_TIMEOUT_MS = 60_000;
/** Establishing the TCP/TLS connection. */
const CONNECT_TIMEOUT_MS = 5_000;

/** Tuning that is not configuration: tests count requests, shrink the socket pool and the idle timeout. */
export interface S3StagingTuning {
  maxSockets?: number;
  /** Replaces IDLE_TIMEOUT_MS (tests of a stalled store). */
  idleTimeoutMs?: number;
  /** Called with each command name before it is sent (tests). */
  onRequest?: (command: string) => void;
}

/**
 * Staging in a bucket every instance shares, so the instance that staged a job need not be the one
 * that serves it. Writes are multipart uploads with one part in flight per writer (memory per
 * writing job ≈ one part); nothing is visible under the key before CompleteMultipartUpload, and a
 * failed write aborts the upload. An object smaller than one part is one PutObject at commit.
 * Reads serve the cipher's sequential positional reads from one ranged GET (docs/OPERATIONS.md).
 */
export class S3Staging implements Staging {
  /** Not a local directory: a scan of it finds nothing (leftovers are the bucket lifecycle rule's). */
  readonly dir = '';
  readonly partSize: number;
  /** Made on first use: the SDK is imported asynchronously (sources/s3/client.ts), the constructor is not. */
  private handle: Promise<S3Handle> | undefined;

  constructor(
    private readonly cfg: S3StagingConfig,
    private readonly tuning: S3StagingTuning = {},
  ) {
    this.partSize = cfg.part_size_mib * MIB;
    preloadS3();
  }

  /** The object key of a staging key: the configured prefix + the (checked) key. */
  objectKey(key: string): string {
    return this.cfg.prefix + checkStagingKey(key);
  }

  private sse(): { ServerSideEncryption?: 'AES256' | 'aws:kms'; SSEKMSKeyId?: string } {
    const s = this.cfg.sse;
    if (!s) return {};
    return { ServerSideEncryption: s.mode, ...(s.kms_key_id ? { SSEKMSKeyId: s.kms_key_id } : {}) };
  }

  private s3(): Promise<S3Handle> {
    // No requestTimeoutMs: in the installed handler it only logs (client.ts), and it would measure a
    // large part's whole upload rather than silence.
    return (this.handle ??= s3Client(this.cfg, {
      maxSockets: this.tuning.maxSockets ?? 50,
      connectionTimeoutMs: CONNECT_TIMEOUT_MS,
      socketTimeoutMs: this.tuning.idleTimeoutMs ?? IDLE_TIMEOUT_MS,
    }));
  }

  private send<T>(name: string, run: () => Promise<T>): Promise<T> {
    this.tuning.onRequest?.(name);
    return run();
  }

  async writer(key: string): Promise<StagingWriter> {
    const Bucket = this.cfg.bucket;
    const Key = this.objectKey(key);
    // Loaded before the stream exists, so each command is still built in the tick that sends it.
    const { client, sdk } = await this.s3();
    const partSize = this.partSize;
    // Aborts the part upload in flight when the stream is destroyed (client gone, lease lost).
    let part: Buffer | undefined;
    let filled = 0;
    let total = 0;
    let creating: Promise<string> | undefined;
    let uploading: Promise<void> | undefined;
    const parts: { PartNumber: number; ETag: string }[] = [];
    let finished = false;
    let state: 'open' | 'committed' | 'aborted' = 'open';

    const uploadPart = async (): Promise<void> => {
      // An upload created while the stream dies is still learnt of, so abort() can end it.
      creating ??= this.send('CreateMultipartUpload', () => client.send(new sdk.CreateMultipartUploadCommand({ Bucket, Key, ...this.sse() }))).then((out) => {
        if (!out.UploadId) throw new Error('CreateMultipartUpload answered without an UploadId');
        return out.UploadId;
      });
      const UploadId = await creating;
      const PartNumber = parts.length + 1;
      if (PartNumber > MAX_PARTS) throw Object.assign(new Error(`more than ${MAX_PARTS} parts: raise jobs.staging.part_size_mib`), { code: 'TooManyParts' });
      // Not cancelled when the stream dies: S3 may still store a part whose request was cut ("part
      // uploads in progress might or might not succeed" after an abort), which would outlive the
      // AbortMultipartUpload. abort() waits for it instead (bounded by the idle timeout: the
      // attempts of a part the store never answers end in ETIMEDOUT).
      const out = await this.send('UploadPart', () =>
        client.send(new sdk.UploadPartCommand({ Bucket, Key, UploadId, PartNumber, Body: part!.subarray(0, filled), ContentLength: filled })),
      );
      if (!out.ETag) throw new Error('UploadPart answered without an ETag');
      parts.push({ PartNumber, ETag: out.ETag });
      // The SDK is done with the buffer once the part is stored: it is filled again for the next one.
      filled = 0;
    };
    const track = (p: Promise<void>): Promise<void> => {
      uploading = p;
      return p.then(
        () => void (uploading = undefined),
        (e: unknown) => {
          uploading = undefined;
          throw writeError(e);
        },
      );
    };

    const stream = new Writable({
      // The write callback waits for a full part's upload: that, not a queue, is the backpressure.
      write(chunk: Buffer, _enc, cb) {
        part ??= Buffer.allocUnsafe(partSize);
        let off = 0;
        const step = (): void => {
          // abort() may have come while the last part was being stored.
          if (state !== 'open' || !part) return cb(new Error('the staging writer was aborted'));
          while (off < chunk.length) {
            const n = chunk.copy(part!, filled, off);
            filled += n;
            off += n;
            total += n;
            if (filled === partSize) {
              track(uploadPart()).then(step, cb);
              return;
            }
          }
          cb();
        };
        step();
      },
      final(cb) {
        // The short last part, only when a multipart upload exists; else commit sends one PutObject.
        const last = creating && filled > 0 ? track(uploadPart()) : Promise.resolve();
        last.then(() => {
          finished = true;
          cb();
        }, cb);
      },
      destroy(err, cb) {
        cb(err);
      },
    });

    return {
      stream,
      commit: async () => {
        if (state !== 'open' || !finished) throw new AppError('staging.write_failed', 'the staged object was not written to its end');
        try {
          if (!creating) {
            await this.send('PutObject', () =>
              client.send(new sdk.PutObjectCommand({ Bucket, Key, Body: part ? part.subarray(0, filled) : Buffer.alloc(0), ContentLength: filled, ...this.sse() })),
            );
          } else {
            const UploadId = await creating;
            await this.send('CompleteMultipartUpload', () => client.send(new sdk.CompleteMultipartUploadCommand({ Bucket, Key, UploadId, MultipartUpload: { Parts: parts } })));
          }
        } catch (e) {
          throw new AppError('staging.write_failed', `staging could not be written (${errorName(e)})`, { cause: trimmedCause(e) });
        }
        state = 'committed';
        part = undefined;
        return total;
      },
      abort: async () => {
        if (state !== 'open') return;
        state = 'aborted';
        stream.destroy();
        part = undefined;
        await uploading?.catch(() => {});
        const UploadId = await creating?.catch(() => undefined);
        if (!UploadId) return;
        // Parts stored so far are freed. A failure here (a timeout too) is not the job's failure: the
        // upload stays invisible under the key, and the bucket's AbortIncompleteMultipartUpload rule removes it.
        await this.send('AbortMultipartUpload', () => client.send(new sdk.AbortMultipartUploadCommand({ Bucket, Key, UploadId }))).catch(() => {});
      },
    };
  }

  async open(key: string): Promise<StagingReader> {
    const Key = this.objectKey(key);
    const head = await this.head(Key);
    if (!head) throw new AppError('job.expired', 'the staged object is not there');
    return new S3ObjectReader((position) => this.get(Key, position, head.etag), head.size);
  }

  async size(key: string): Promise<number | null> {
    return (await this.head(this.objectKey(key)))?.size ?? null;
  }

  async delete(key: string): Promise<void> {
    const Key = this.objectKey(key);
    const { client, sdk } = await this.s3();
    try {
      await this.send('DeleteObject', () => client.send(new sdk.DeleteObjectCommand({ Bucket: this.cfg.bucket, Key })));
    } catch (e) {
      if (statusOf(e) === 404) return;
      throw readError(e, 'deleted');
    }
  }

  async close(): Promise<void> {
    await destroyLazy(this.handle);
  }

  private async head(Key: string): Promise<{ size: number; etag: string | undefined } | null> {
    const { client, sdk } = await this.s3();
    try {
      const out = await this.send('HeadObject', () => client.send(new sdk.HeadObjectCommand({ Bucket: this.cfg.bucket, Key })));
      if (out.ContentLength === undefined) throw new Error('HeadObject answered without a Content-Length');
      return { size: out.ContentLength, etag: out.ETag };
    } catch (e) {
      if (statusOf(e) === 404) return null;
      throw readError(e, 'read');
    }
  }

  /** A GET from `position` to the end; the ETag pins the object the reader started with. */
  private async get(Key: string, position: number, etag: string | undefined): Promise<Readable> {
    const { client, sdk } = await this.s3();
    let out;
    try {
      out = await this.send('GetObject', () =>
        client.send(new sdk.GetObjectCommand({ Bucket: this.cfg.bucket, Key, Range: `bytes=${position}-`, ...(etag ? { IfMatch: etag } : {}) })),
      );
    } catch (e) {
      throw readError(e, 'read');
    }
    const body = out.Body;
    if (!(body instanceof Readable)) throw new AppError('staging.unavailable', 'the staging store answered without a body');
    // A server that ignored the range would hand us the object from its start.
    const m = out.ContentRange ? /^bytes (\d+)-/.exec(out.ContentRange) : null;
    if (position > 0 && Number(m?.[1]) !== position) {
      body.destroy();
      throw new AppError('staging.unavailable', 'the staging store served a different range than asked');
    }
    return body;
  }
}

/**
 * Positional reads served from one ranged GET stream while they are sequential (decryptRange reads
 * record after record); a read elsewhere starts a new GET there. One read at a time. Closing (or
 * any restart) destroys the body, so its socket goes back or is closed, never leaked.
 *
 * A body that fails while a read waits on it (the store went silent: idle timeout) fails the read.
 * One that fails while no read was waiting failed because of our own silence — a slow client holds
 * the download back, the socket idles, the idle timeout (or the store) ends it — so the next read
 * resumes with a new GET at the exact offset, pinned to the same object by its ETag.
 */
export class S3ObjectReader implements StagingReader {
  private body: Readable | undefined;
  private chunks: AsyncIterator<Buffer> | undefined;
  /** Object offset of the next byte `pending` (then the stream) yields. */
  private pos = -1;
  private pending: Buffer | undefined;
  private closed = false;
  /** A read is waiting on the body. */
  private waiting = false;
  /** The body failed while no read was waiting on it. */
  private dropped = false;
  /** GETs started so far (tests check sequential reads share one). */
  gets = 0;

  constructor(
    private readonly start: (position: number) => Promise<Readable>,
    readonly size: number,
  ) {}

  async read(buffer: Buffer, offset: number, length: number, position: number): Promise<{ bytesRead: number }> {
    if (this.closed) throw new Error('the staging reader is closed');
    if (length <= 0 || position >= this.size) return { bytesRead: 0 };
    if (!this.chunks || position !== this.pos || this.dropped) await this.restart(position);
    let n = 0;
    this.waiting = true;
    try {
      while (n < length) {
        if (!this.pending?.length) {
          const r = await this.chunks!.next();
          if (r.done) break;
          this.pending = r.value;
        }
        const take = Math.min(length - n, this.pending.length);
        this.pending.copy(buffer, offset + n, 0, take);
        this.pending = this.pending.subarray(take);
        n += take;
        this.pos += take;
      }
    } catch (e) {
      this.drop();
      throw e instanceof AppError ? e : new AppError('staging.unavailable', `the staged object could not be read (${errorName(e)})`, { cause: trimmedCause(e) });
    } finally {
      this.waiting = false;
    }
    return { bytesRead: n };
  }

  async close(): Promise<void> {
    this.closed = true;
    this.drop();
  }

  private async restart(position: number): Promise<void> {
    this.drop();
    this.gets++;
    const body = await this.start(position);
    if (this.closed) {
      body.destroy();
      throw new Error('the staging reader is closed');
    }
    this.body = body;
    body.once('error', () => {
      if (this.body === body && !this.waiting) this.dropped = true;
    });
    this.chunks = body[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
    this.pos = position;
  }

  private drop(): void {
    this.body?.destroy();
    this.body = undefined;
    this.chunks = undefined;
    this.pending = undefined;
    this.dropped = false;
  }
}

interface SdkError {
  name?: string;
  code?: string;
  $metadata?: { httpStatusCode?: number };
}

function statusOf(e: unknown): number | undefined {
  return (e as SdkError | undefined)?.$metadata?.httpStatusCode;
}

/** The S3 error code or network error code only: S3 messages can quote keys and principals. */
function errorName(e: unknown): string {
  if (e instanceof AppError) return e.code;
  const s = (e ?? {}) as SdkError;
  if (s.name === 'AbortError') return 'aborted';
  // The HTTP handler names a connect or idle timeout TimeoutError without a code (and ECONNRESET/EPIPE
  // TimeoutError with theirs): a real timeout reads ETIMEDOUT, like the system's own.
  if (s.name === 'TimeoutError' && (s.code === undefined || s.code === 'ETIMEDOUT')) return 'ETIMEDOUT';
  const status = s.$metadata?.httpStatusCode;
  if (status === undefined) return s.code ?? s.name ?? 'error';
  // A bodiless answer (HEAD) leaves the SDK nothing to name it by: it says 'Unknown'. The status says more.
  // A name that is not shaped like an S3 error code is not one (a store may put anything in <Code>).
  return s.name && s.name !== 'Unknown' && s.name !== 'UnknownError' && S3_CODE.test(s.name) ? s.name : `HTTP ${status}`;
}

const S3_CODE = /^[A-Za-z][A-Za-z0-9.]{0,63}$/;

/**
 * What an AppError keeps of an SDK failure as its cause: the name and status only. The logger prints
 * a cause's message, and S3 messages quote principals and role ARNs, account ids, KMS key ARNs.
 */
function trimmedCause(e: unknown): unknown {
  if (e instanceof AppError) return e;
  const status = statusOf(e);
  return status === undefined ? { name: errorName(e) } : { name: errorName(e), status };
}

/** What the write stream fails with: run-job reports it as staging.write_failed with this code. */
function writeError(e: unknown): Error {
  return Object.assign(new Error(`S3 staging write failed (${errorName(e)})`, { cause: trimmedCause(e) }), { code: errorName(e) });
}

function readError(e: unknown, what: 'read' | 'deleted'): AppError {
  if (statusOf(e) === 412) return new AppError('staging.unavailable', 'the staged object changed while it was read');
  return new AppError('staging.unavailable', `the staged object could not be ${what} (${errorName(e)})`, { cause: trimmedCause(e) });
}
