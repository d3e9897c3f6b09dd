import { AppError } from '../../errors.js';

/**
 * Keys come from the catalog, which imports come from outside. S3 itself has no directories to
 * escape, but S3-compatible servers backed by a filesystem (MinIO, s3rver, Ceph gateways) may
 * resolve `..`, so such keys are refused before any request is sent.
 *
 * Apart from the connector so that the legacy sync can use it without loading the AWS SDK.
 */
export function checkKey(key: string): void {
  if (key.includes('\0')) throw new AppError('source.path_refused', 'the object key contains a NUL byte');
  if (key.startsWith('/') || key.startsWith('\\')) throw new AppError('source.path_refused', 'the object key is absolute');
  if (key.split(/[\\/]/).some((seg) => seg === '..')) throw new AppError('source.path_refused', 'the object key climbs out of the prefix');
}
