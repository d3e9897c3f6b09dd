import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import type { GetObjectCommandInput } from '@aws-sdk/client-s3';
import { AppError } from '../../errors.js';
import { ExactBody } from '../exact-body.js';
import { locatorOf } from '../locator.js';
import type { ByteRange, CopyLocation, OpenOptions, SourceConnector, SourceMedia } from '../port.js';
import { checkKey } from './check-key.js';
import { destroyLazy, preloadS3, type S3Handle, s3Client } from './client.js';
import type { S3SourceConfig } from './config.js';

/** Tuning that is not configuration: tests shrink the socket pool to prove aborted reads give sockets back. */
export interface S3ConnectorTuning {
  maxSockets?: number;
}

/** What a call is about: an object read (GET/HEAD), an object's restore, the bucket. */
type Subject = 'object' | 'restore' | 'bucket';
const aborted = () => new AppError('source.unavailable', 'request aborted');

/** A bucket of an S3-compatible store holding an exported archive. */
export class S3Connector implements SourceConnector {
  readonly kind = 's3';
  readonly origin = 'LEGACY_ARCHIVE' as const;
  readonly name: string;
  /** Made on first use: the SDK is imported asynchronously (client.ts), the constructor is not. */
  private handle: Promise<S3Handle> | undefined;

  constructor(
    readonly tenantId: string,
    private readonly cfg: S3SourceConfig,
    private readonly tuning: S3ConnectorTuning = {},
  ) {
    this.name = cfg.name;
    preloadS3();
  }

  private s3(): Promise<S3Handle> {
    return (this.handle ??= s3Client(this.cfg, { maxSockets: this.tuning.maxSockets ?? 50, connectionTimeoutMs: this.cfg.timeout_ms, socketTimeoutMs: this.cfg.idle_timeout_ms }));
  }

  /** SSE-C key headers, revealed per request so the key never sits on the instance in clear. */
  private sse(): Pick<GetObjectCommandInput, 'SSECustomerAlgorithm' | 'SSECustomerKey' | 'SSECustomerKeyMD5'> {
    const key = this.cfg.sse.mode === 'sse-c' ? this.cfg.sse.customer_key?.reveal() : undefined;
    if (!key) return {};
    return { SSECustomerAlgorithm: 'AES256', SSECustomerKey: key, SSECustomerKeyMD5: createHash('md5').update(Buffer.from(key, 'base64')).digest('base64') };
  }

  keyOf(copy: CopyLocation): string {
    const locator = locatorOf(copy, this.cfg.path_template);
    if (!locator) throw new AppError('source.object_missing', 'the copy has no locator and the path template cannot be filled');
    const key = this.cfg.prefix + locator;
    checkKey(key);
    return key;
  }

  async open(copy: CopyLocation, opts: OpenOptions): Promise<SourceMedia> {
    const key = this.keyOf(copy);
    const { range, signal } = opts;
    if (range && !validRange(range)) throw await this.unsatisfiable(key, signal);
    const out = await this.call(
      ({ client, sdk }, abortSignal) =>
        client.send(
          new sdk.GetObjectCommand({ Bucket: this.cfg.bucket, Key: key, ...this.sse(), ...(range ? { Range: `bytes=${range.start}-${range.end ?? ''}` } : {}) }),
          { abortSignal },
        ),
      signal,
      'object',
    ).catch(async (e: AppError) => {
      if (e.code === 'source.archived') throw await this.archiveState(key, signal, e);
      throw e.code === 'range.not_satisfiable' && e.extra.size === undefined ? await this.unsatisfiable(key, signal) : e;
    });

    const body = out.Body;
    if (!(body instanceof Readable)) throw new AppError('source.bad_gateway', 'the source answered without a body');
    // From here on the body holds a pooled socket until it is read to the end or destroyed.
    try {
      const served = out.ContentRange ? parseContentRange(out.ContentRange) : undefined;
      if (out.ContentRange && !served) throw new AppError('source.bad_gateway', 'the source sent an unreadable Content-Range');
      // A store that ignored Range (some S3-compatible gateways and proxies) answers 200 with the
      // whole object: cut it here, as the legacy HTTP connector does — passed on whole, it went out
      // under a 206 from byte 0 and ran past its Content-Length into the client's next response.
      if (range && !served) return this.abortable(this.cutToRange(body, range, out.ContentLength, out.ContentType, signal), signal);
      // Real S3 refuses any range of an empty object; s3rver instead promises one byte and never sends it.
      if (range && served?.total === 0) throw rangeError(0);
      if (range && served && served.start !== range.start) throw new AppError('source.bad_gateway', 'the source served a different range than asked');
      // A GET without Range asks for the whole object: a store answering with part of it (a 206
      // whose Content-Range does not cover 0..total-1) must not be passed on as the whole file.
      if (!range && served && (served.start !== 0 || served.total === undefined || served.end !== served.total - 1)) {
        throw new AppError('source.bad_gateway', 'the source served part of the object to a request for all of it');
      }
      const totalSize = served?.total ?? out.ContentLength;
      // The length promised: the range served, else the whole object. A body that ends short
      // errors (ExactBody) instead of ending cleanly as if it were all there.
      const promised = served ? served.end - served.start + 1 : out.ContentLength;
      return this.abortable(
        {
          body: new ExactBody(body, 0, promised, false, signal, 'the S3 object: the transfer'),
          ...(totalSize !== undefined ? { totalSize } : {}),
          ...(range && served ? { range: { start: served.start, end: served.end } } : {}),
          ...(out.ContentType ? { contentType: out.ContentType } : {}),
        },
        signal,
      );
    } catch (e) {
      body.destroy();
      throw e;
    }
  }

  /**
   * Starts the restore of an object in an archive storage class, kept restored until `until` (whole
   * days, at least one). The job worker calls it on source.archived and then polls open(), which
   * answers source.restoring until S3 has the temporary copy. A restore already running is fine;
   * an Intelligent-Tiering archive tier takes no Days (the object moves back to its access tier).
   */
  async restore(copy: CopyLocation, until: Date, signal: AbortSignal): Promise<void> {
    const key = this.keyOf(copy);
    const head = await this.head(key, signal);
    const days = Math.max(1, Math.ceil((until.getTime() - Date.now()) / 86_400_000));
    const request = head.StorageClass === 'INTELLIGENT_TIERING' ? {} : { Days: days, GlacierJobParameters: { Tier: this.cfg.restore_tier } };
    try {
      await this.call(
        ({ client, sdk }, abortSignal) => client.send(new sdk.RestoreObjectCommand({ Bucket: this.cfg.bucket, Key: key, RestoreRequest: request }), { abortSignal }),
        signal,
        'restore',
      );
    } catch (e) {
      if (e instanceof AppError && e.code === 'source.restoring') return;
      throw e;
    }
  }

  /** The caller's abort ends the body (and gives its socket back). */
  private abortable(media: SourceMedia, signal: AbortSignal): SourceMedia {
    const onAbort = () => media.body.destroy();
    signal.addEventListener('abort', onAbort, { once: true });
    media.body.once('close', () => signal.removeEventListener('abort', onAbort));
    if (signal.aborted) throw aborted();
    return media;
  }

  private cutToRange(body: Readable, range: ByteRange, total: number | undefined, contentType: string | undefined, signal: AbortSignal): SourceMedia {
    if (total === undefined) throw new AppError('source.bad_gateway', 'the source ignored Range and gave no Content-Length');
    if (range.start >= total) throw rangeError(total);
    const end = Math.min(range.end ?? total - 1, total - 1);
    const take = end - range.start + 1;
    return {
      body: new ExactBody(body, range.start, take, range.start + take < total, signal, 'the S3 object: the transfer'),
      totalSize: total,
      range: { start: range.start, end },
      ...(contentType ? { contentType } : {}),
    };
  }

  async check(signal: AbortSignal): Promise<void> {
    await this.call(({ client, sdk }, abortSignal) => client.send(new sdk.HeadBucketCommand({ Bucket: this.cfg.bucket }), { abortSignal }), signal, 'bucket');
  }

  async close(): Promise<void> {
    await destroyLazy(this.handle);
  }

  private head(key: string, signal: AbortSignal) {
    return this.call(
      ({ client, sdk }, abortSignal) => client.send(new sdk.HeadObjectCommand({ Bucket: this.cfg.bucket, Key: key, ...this.sse() }), { abortSignal }),
      signal,
      'object',
    );
  }

  /**
   * An object in an archive storage class (a lifecycle rule moved it to Glacier): restoring or not
   * yet asked, as HEAD's x-amz-restore says. Either is "the bytes exist but need time": the retrieve
   * endpoint answers 202 and the job worker restores (restore()) and waits. The catalog's state is
   * not asked: an import says AVAILABLE, the bucket's lifecycle decides.
   */
  private async archiveState(key: string, signal: AbortSignal, archived: AppError): Promise<AppError> {
    const head = await this.head(key, signal).catch((e: unknown) => (e instanceof AppError ? e : archived));
    if (head instanceof AppError) return head;
    const cls = head.StorageClass ?? 'an archive class';
    if (/ongoing-request="true"/.test(head.Restore ?? '')) return new AppError('source.restoring', `the object is being restored from ${cls}`, { extra: { storage_class: cls } });
    // The restore finished between the GET and this HEAD: readable on the next try, not a new restore.
    if (/ongoing-request="false"/.test(head.Restore ?? '')) return new AppError('source.restoring', `the object's restore from ${cls} has just finished`, { extra: { storage_class: cls } });
    return new AppError('source.archived', `the object is in ${cls} and must be restored first`, { extra: { storage_class: cls } });
  }

  /** The 416 answer needs the object's size for `Content-Range: bytes *\/size`; without it, it goes out bare. */
  private async unsatisfiable(key: string, signal: AbortSignal): Promise<AppError> {
    try {
      const head = await this.head(key, signal);
      return head.ContentLength === undefined ? rangeError() : rangeError(head.ContentLength);
    } catch (e) {
      // A missing object or a dead source says more than "bad range".
      return e instanceof AppError ? e : rangeError();
    }
  }

  /** One SDK call bounded by timeout_ms until its response headers arrive, and by the caller's signal. */
  private async call<T>(send: (s3: S3Handle, abortSignal: AbortSignal) => Promise<T>, signal: AbortSignal, subject: Subject): Promise<T> {
    // Outside the timeout: loading the SDK on first use is not the source being slow.
    const s3 = await this.s3();
    if (signal.aborted) throw aborted();
    const ctl = new AbortController();
    const relay = () => ctl.abort();
    signal.addEventListener('abort', relay, { once: true });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      ctl.abort();
    }, this.cfg.timeout_ms);
    try {
      return await send(s3, ctl.signal);
    } catch (e) {
      if (signal.aborted) throw aborted();
      if (timedOut) throw new AppError('source.timeout', `the source did not answer within ${this.cfg.timeout_ms} ms`);
      throw s3Error(e, subject, this.cfg.sse.mode === 'sse-c');
    } finally {
      clearTimeout(timer);
      signal.removeEventListener('abort', relay);
    }
  }
}

function validRange(r: ByteRange): boolean {
  return Number.isSafeInteger(r.start) && r.start >= 0 && (r.end === undefined || (Number.isSafeInteger(r.end) && r.end >= r.start));
}

function rangeError(size?: number): AppError {
  return size === undefined
    ? new AppError('range.not_satisfiable')
    : new AppError('range.not_satisfiable', undefined, { extra: { size }, headers: { 'Content-Range': `bytes */${size}` } });
}

export function parseContentRange(v: string): { start: number; end: number; total: number | undefined } | undefined {
  const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(v.trim());
  if (!m) return undefined;
  const [start, end] = [Number(m[1]), Number(m[2])];
  if (end < start) return undefined;
  return { start, end, total: m[3] === '*' ? undefined : Number(m[3]) };
}

/** 403s that name the request's credentials, not the object's key: still source.auth_failed under SSE-C. */
const CREDENTIAL_ERRORS = new Set(['SignatureDoesNotMatch', 'InvalidAccessKeyId', 'ExpiredToken', 'InvalidToken', 'TokenRefreshRequired', 'RequestTimeTooSkewed']);

interface SdkError {
  name?: string;
  code?: string;
  $metadata?: { httpStatusCode?: number };
  ActualObjectSize?: unknown;
}

/**
 * Maps an SDK failure to the catalogue. Details carry only the S3 error code and status: S3 messages
 * can quote the key, the access key id or the principal, none of which a client should see.
 */
function s3Error(err: unknown, subject: Subject, sseC = false): AppError {
  if (err instanceof AppError) return err;
  const e = (err ?? {}) as SdkError;
  const status = e.$metadata?.httpStatusCode;
  const name = e.name ?? 'Error';
  if (status === undefined) {
    if (e.code === 'ETIMEDOUT' || (name === 'TimeoutError' && e.code === undefined)) return new AppError('source.timeout', 'the source connection timed out');
    if (name === 'CredentialsProviderError') return new AppError('source.unavailable', 'no S3 credentials are available to this source');
    return new AppError('source.unavailable', `the source is not reachable (${e.code ?? name})`, { cause: err });
  }
  const what = `${name}, HTTP ${status}`;
  if (status === 416 || name === 'InvalidRange') {
    const size = Number(e.ActualObjectSize);
    return rangeError(e.ActualObjectSize !== undefined && Number.isSafeInteger(size) ? size : undefined);
  }
  if (name === 'NoSuchBucket' || (subject === 'bucket' && status === 404)) return new AppError('source.unavailable', `the bucket does not exist (${what})`);
  if (status === 404 || name === 'NoSuchKey') return new AppError('source.object_missing', 'the bucket has no object at the copy key');
  // S3 documents both by error code: a GET of an object in an archive storage class (403), and a
  // restore asked for again while one runs (409).
  if (name === 'InvalidObjectState') return new AppError('source.archived', 'the object is in an archive storage class and must be restored first');
  if (name === 'RestoreAlreadyInProgress') return new AppError('source.restoring', 'the object is already being restored');
  // The store could not use the object's KMS key (disabled, pending deletion, no grant): a key
  // refusal, so the key rules (key-guard.ts: one metadata refresh and retry, then source.key_refused)
  // apply as to a Genesys copy. S3's message quotes the key ARN: only the error name travels.
  if (name.startsWith('KMS.')) return new AppError('source.key_refused', `the source could not use the object's encryption key (${what})`);
  // SSE-C: an object stored with a customer key read without one (InvalidRequest, "stored using a
  // form of Server Side Encryption"), or with a key whose MD5 does not match (InvalidArgument), or a
  // GET/HEAD refused (403) under the configured customer key — the key, not an outage to retry.
  // S3's message is not kept: only the error name.
  if (subject === 'object' && status === 400 && (name === 'InvalidRequest' || (sseC && name === 'InvalidArgument'))) {
    return new AppError('source.key_refused', `the source could not read the object with the configured encryption key (${what})`);
  }
  if (sseC && subject === 'object' && status === 403 && !CREDENTIAL_ERRORS.has(name)) {
    return new AppError('source.key_refused', `the source refused the object under the configured customer key (${what})`);
  }
  // Credentials or permissions refused: a fault of this source's configuration, not an outage to
  // retry (source.unavailable is 503). On a copy naming its key, key-guard.ts reads it as a key
  // refusal (an SSE-KMS key the bucket may no longer use answers AccessDenied too).
  if (status === 401 || status === 403) return new AppError('source.auth_failed', `the source refused this connector's credentials or permissions (${what})`);
  if (status >= 500) return new AppError('source.bad_gateway', `the source failed (${what})`);
  return new AppError('source.bad_gateway', `the source answered with an error (${what})`);
}
