import { Transform, type TransformCallback } from 'node:stream';
import { AppError } from '../errors.js';

export interface FramedOutputOptions {
  /** Written before the first payload byte (our WAV header); also sent for an empty payload. */
  prefix?: Buffer | undefined;
  /** Payload bytes promised by the prefix (and by Content-Length); undefined = not enforced. */
  expectedBytes?: number | undefined;
  /**
   * How far the decoder may miss `expectedBytes` and still be corrected (about one codec frame):
   * a shortfall is padded with zero bytes (silence in s16le), a surplus is cut. Beyond it the
   * stream errors, because the header and Content-Length would lie.
   */
  tolerance?: number | undefined;
}

/**
 * The body of a prepared recording: prefix, then payload held to the promised length. Keeping
 * that promise here means a decoder off by a few samples cannot produce a response whose
 * Content-Length disagrees with its bytes (clients would hang or truncate).
 */
export class FramedOutput extends Transform {
  #prefix: Buffer | undefined;
  readonly #expected: number | undefined;
  readonly #tolerance: number;
  #seen = 0;

  constructor(opts: FramedOutputOptions = {}) {
    super();
    this.#prefix = opts.prefix;
    this.#expected = opts.expectedBytes;
    this.#tolerance = opts.tolerance ?? 0;
  }

  /** Payload bytes received so far (before cutting). */
  get payloadBytes(): number {
    return this.#seen;
  }

  #sendPrefix(): void {
    if (this.#prefix) {
      this.push(this.#prefix);
      this.#prefix = undefined;
    }
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.#sendPrefix();
    const before = this.#seen;
    this.#seen += chunk.length;
    if (this.#expected === undefined) return cb(null, chunk);
    if (this.#seen > this.#expected + this.#tolerance) {
      return cb(new AppError('media.undecodable', `the decoder produced more than the ${this.#expected} bytes the header promised`));
    }
    const room = Math.max(0, this.#expected - before);
    cb(null, chunk.length <= room ? chunk : chunk.subarray(0, room));
  }

  override _flush(cb: TransformCallback): void {
    this.#sendPrefix();
    if (this.#expected !== undefined && this.#seen < this.#expected) {
      const missing = this.#expected - this.#seen;
      if (missing > this.#tolerance) {
        return cb(new AppError('media.undecodable', `the decoder produced ${this.#seen} of the ${this.#expected} bytes the header promised`));
      }
      this.push(Buffer.alloc(missing));
    }
    cb();
  }
}
