import { createCipheriv, createDecipheriv } from 'node:crypto';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import type { StagingReader } from '../jobs/staging.js';
import { AppError } from '../errors.js';

/**
 * Staged media is encrypted in fixed-size records (AES-256-GCM, one tag per record) so a Range
 * read decrypts only the records it touches. Each file has its own data key, so the record
 * index is a safe nonce; the index and a "last record" flag are authenticated, so records cannot
 * be reordered, and a file cut short is detected rather than served as whole.
 */
export const RECORD_PLAIN = 64 * 1024;
const TAG = 16;
export const RECORD_SEALED = RECORD_PLAIN + TAG;

function nonce(index: number): Buffer {
  const n = Buffer.alloc(12);
  n.writeUIntBE(index, 6, 6);
  return n;
}

function aad(index: number, last: boolean): Buffer {
  const a = Buffer.alloc(9);
  a.writeBigUInt64BE(BigInt(index));
  a[8] = last ? 1 : 0;
  return a;
}

function seal(key: Buffer, index: number, last: boolean, plain: Buffer): Buffer {
  const c = createCipheriv('aes-256-gcm', key, nonce(index));
  c.setAAD(aad(index, last));
  return Buffer.concat([c.update(plain), c.final(), c.getAuthTag()]);
}

function open(key: Buffer, index: number, last: boolean, sealed: Buffer): Buffer {
  const d = createDecipheriv('aes-256-gcm', key, nonce(index));
  d.setAAD(aad(index, last));
  d.setAuthTag(sealed.subarray(sealed.length - TAG));
  try {
    return Buffer.concat([d.update(sealed.subarray(0, sealed.length - TAG)), d.final()]);
  } catch (e) {
    throw new AppError('staging.corrupt', 'a staged record failed authentication', { cause: e });
  }
}

/** Encrypts a plaintext stream into sealed records; the last record (possibly empty) carries the final flag. */
export class EncryptRecords extends Transform {
  private buf: Buffer = Buffer.alloc(0);
  private index = 0;
  constructor(private readonly key: Buffer) {
    super();
  }
  override _transform(chunk: Buffer, _e: BufferEncoding, cb: TransformCallback): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    // Hold back one full record: only at the end do we know which record is last.
    while (this.buf.length > RECORD_PLAIN) {
      this.push(seal(this.key, this.index++, false, this.buf.subarray(0, RECORD_PLAIN)));
      this.buf = this.buf.subarray(RECORD_PLAIN);
    }
    cb();
  }
  override _flush(cb: TransformCallback): void {
    this.push(seal(this.key, this.index++, true, this.buf));
    cb();
  }
}

/** Size of the sealed file for a plaintext size (used to check a staged file is whole). */
export function sealedSize(plainSize: number): number {
  const records = Math.max(1, Math.ceil(plainSize / RECORD_PLAIN));
  return plainSize + records * TAG;
}

/** Reads and opens record `index` of a sealed file of known plaintext size. */
async function readRecord(fh: StagingReader, key: Buffer, plainSize: number, index: number): Promise<Buffer> {
  const lastIndex = Math.max(0, Math.ceil(plainSize / RECORD_PLAIN) - 1);
  const plainLen = index === lastIndex ? plainSize - index * RECORD_PLAIN : RECORD_PLAIN;
  const sealed = Buffer.alloc(plainLen + TAG);
  const { bytesRead } = await fh.read(sealed, 0, sealed.length, index * RECORD_SEALED);
  if (bytesRead !== sealed.length) throw new AppError('staging.corrupt', 'the staged file is shorter than recorded');
  return open(key, index, index === lastIndex, sealed);
}

/**
 * Reads plaintext bytes [start, end] of a sealed file of known plaintext size, decrypting record
 * by record. Closes the reader (a FileHandle, an S3 reader) at the end or on destroy. `first`: the
 * plaintext of the first record the range touches, already read and authenticated (openRange).
 */
export function decryptRange(fh: StagingReader, key: Buffer, plainSize: number, start: number, end: number, first?: Buffer): Readable {
  let index = Math.floor(start / RECORD_PLAIN);
  const stop = Math.floor(end / RECORD_PLAIN);
  let pending = first;
  return new Readable({
    async read() {
      try {
        if (plainSize === 0 || index > stop) {
          this.push(null);
          return;
        }
        const plain = pending ?? (await readRecord(fh, key, plainSize, index));
        pending = undefined;
        const from = index * RECORD_PLAIN;
        const a = Math.max(start - from, 0);
        const b = Math.min(end - from + 1, plain.length);
        index++;
        this.push(plain.subarray(a, b));
      } catch (e) {
        this.destroy(e as Error);
      }
    },
    destroy(err, cb) {
      fh.close().then(
        () => cb(err),
        () => cb(err),
      );
    },
  });
}

/**
 * decryptRange, with the first record the range touches read and authenticated before it returns:
 * a file corrupt (or cut short) there is a `staging.corrupt` error the caller can still answer as
 * a problem, before anything was audited as allowed or sent. Later records failing still end the
 * stream with an error mid-transfer. The reader is closed when this rejects.
 */
export async function openRange(fh: StagingReader, key: Buffer, plainSize: number, start: number, end: number): Promise<Readable> {
  let first: Buffer;
  try {
    first = await readRecord(fh, key, plainSize, Math.floor(start / RECORD_PLAIN));
  } catch (e) {
    await fh.close().catch(() => {});
    throw e;
  }
  return decryptRange(fh, key, plainSize, start, end, first);
}
