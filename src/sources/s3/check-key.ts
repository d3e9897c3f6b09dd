import { AppError } from '../../errors.js';

/**
 * Keys come from the catalog, which imports come from outside. S3 itself has no directories to
 * escape, but S3-compatible servers backed by a filesystem (MinIO, s3rver, Ceph gateways) may
 * resolve `..`, so such keys are refused before any request is sent.
 *
 * Apart from the connector so that the legacy sync can use it without loading the AWS SDK.
 */
export function checkKey(key: string): void {
  // Neither is a key S3 can hold: asked anyway, one is a 400 (KeyTooLongError; s3rver answers 500
  // three times over) and the other fails in the SDK's URI encoding — a bad catalog entry reported
  // as the source's outage. S3 keys are at most 1024 bytes of UTF-8.
  if (LONE_SURROGATE.test(key)) throw new AppError('source.path_refused', 'the object key is not valid Unicode (a lone surrogate)');
  if (Buffer.byteLength(key, 'utf8') > MAX_KEY_BYTES) throw new AppError('source.path_refused', `the object key is longer than ${MAX_KEY_BYTES} bytes of UTF-8`);
  if (key.includes('\0')) throw new AppError('source.path_refused', 'the object key contains a NUL byte');
  if (key.startsWith('/') || key.startsWith('\\')) throw new AppError('source.path_refused', 'the object key is absolute');
  if (key.split(/[\\/]/).some((seg) => seg === '..')) throw new AppError('source.path_refused', 'the object key climbs out of the prefix');
}

const MAX_KEY_BYTES = 1024;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
