import { Transform, type TransformCallback } from 'node:stream';
import { AppError } from '../errors.js';

export interface DataSliceOptions {
  /** Bytes to drop first (the container header up to the `data` payload). */
  skip: number;
  /** Payload bytes to pass on; undefined = to end of stream. */
  take?: number | undefined;
}

/**
 * Cuts the `data` payload out of a WAV stream: raw decoders (`-f g729`, `-f g722`, our G.711
 * table) must see codec frames only, not the header, the pad byte or trailing LIST chunks.
 *
 * Bytes after `take` are read and discarded rather than left unread, so the upstream pipeline
 * completes normally. A stream that ends before `skip + take` bytes errors with
 * 'media.undecodable': the header promised more than the file holds, and whoever computed an
 * output length from that promise must not end cleanly.
 */
export class DataSlice extends Transform {
  #toSkip: number;
  #toTake: number;
  readonly #declared: number | undefined;

  constructor({ skip, take }: DataSliceOptions) {
    super();
    this.#toSkip = skip;
    this.#declared = take;
    this.#toTake = take ?? Number.POSITIVE_INFINITY;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    let c = chunk;
    if (this.#toSkip > 0) {
      const s = Math.min(this.#toSkip, c.length);
      this.#toSkip -= s;
      c = c.subarray(s);
    }
    if (c.length > 0 && this.#toTake > 0) {
      const t = Math.min(this.#toTake, c.length);
      this.#toTake -= t;
      cb(null, t === c.length ? c : c.subarray(0, t));
      return;
    }
    cb();
  }

  override _flush(cb: TransformCallback): void {
    if (this.#toSkip > 0 || (this.#declared !== undefined && this.#toTake > 0)) {
      const got = this.#declared === undefined ? 0 : this.#declared - this.#toTake;
      cb(new AppError('media.undecodable', `the recording ends early: its header declares ${this.#declared ?? '?'} data bytes, only ${got} arrived`));
      return;
    }
    cb();
  }
}
