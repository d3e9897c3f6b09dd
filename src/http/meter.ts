import { createHash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { AppError } from '../errors.js';

/**
 * Counts and hashes exactly the bytes handed to the client, for the audit event. With
 * `expectSha256` (a whole stored object whose digest the catalog knows) a mismatch fails the
 * stream before its end, so the client sees an aborted transfer rather than altered bytes.
 */
export class Meter extends Transform {
  bytes = 0;
  private readonly hash = createHash('sha256');
  private digest: string | undefined;

  constructor(
    private readonly opts: { expectSha256?: string | null; onEnd?: (sha256: string) => void } = {},
  ) {
    super({ highWaterMark: 64 * 1024 });
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.bytes += chunk.length;
    this.hash.update(chunk);
    cb(null, chunk);
  }

  override _flush(cb: TransformCallback): void {
    // Every byte has been seen: the digest is final from here on.
    const sha = (this.digest = this.hash.copy().digest('hex'));
    if (this.opts.expectSha256 && this.opts.expectSha256 !== sha) {
      cb(new AppError('source.integrity_mismatch', 'the stored bytes do not match the SHA-256 recorded in the catalog', { extra: { expected: this.opts.expectSha256 } }));
      return;
    }
    this.opts.onEnd?.(sha);
    cb();
  }

  /** SHA-256 of the bytes seen so far (also after an early end); asking mid-stream does not freeze it. */
  sha256(): string {
    return this.digest ?? this.hash.copy().digest('hex');
  }
}

/** Passes bytes [start, end] (inclusive) of its input and ends; used for ranges of a computed output. */
export class Slice extends Transform {
  private pos = 0;
  private readonly first: number;
  private readonly last: number;
  constructor(first: number, last: number) {
    super({ highWaterMark: 64 * 1024 });
    this.first = first;
    this.last = last;
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    const from = this.pos;
    this.pos += chunk.length;
    if (this.pos <= this.first || from > this.last) return cb();
    cb(null, chunk.subarray(Math.max(0, this.first - from), Math.min(chunk.length, this.last - from + 1)));
  }
}
