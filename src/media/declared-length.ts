import { Transform, type TransformCallback } from 'node:stream';
import { AppError } from '../errors.js';

export interface DeclaredLengthOptions {
  /** Where the WAV `data` payload starts. */
  dataOffset: number;
  /** Payload bytes the `data` chunk header declares. */
  dataLength: number;
}

/**
 * DataSlice's "ends early" check without the slicing: every byte passes on unchanged (the header,
 * the payload, chunks after it), and the stream errors with 'media.undecodable' at its end if
 * fewer than `dataOffset + dataLength` bytes arrived. For a WAV passed through from a source that
 * does not say its size, the only way to tell a file cut short from a whole one; a body that ended
 * cleanly would hand the client a short file under a header that promises more.
 */
export class DeclaredLength extends Transform {
  readonly #dataOffset: number;
  readonly #dataLength: number;
  #seen = 0;

  constructor({ dataOffset, dataLength }: DeclaredLengthOptions) {
    super();
    this.#dataOffset = dataOffset;
    this.#dataLength = dataLength;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.#seen += chunk.length;
    cb(null, chunk);
  }

  override _flush(cb: TransformCallback): void {
    if (this.#seen < this.#dataOffset + this.#dataLength) {
      const got = Math.max(0, this.#seen - this.#dataOffset);
      cb(new AppError('media.undecodable', `the recording ends early: its header declares ${this.#dataLength} data bytes, only ${got} arrived`));
      return;
    }
    cb();
  }
}
