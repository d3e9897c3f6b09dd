import { Readable } from 'node:stream';
import type { AppDeps } from '../deps.js';
import { AppError, isAppError } from '../errors.js';
import { openRange } from '../keys/chunked-cipher.js';
import { openStaged } from './staging.js';

/** What a ready job (a retrieval job, an evidence package) keeps of its staged object. */
export interface StagedObject {
  stagingKey: string;
  dekKeyId: string;
  dekWrapped: string;
  /** Plaintext size. */
  size: number;
}

/**
 * Whether an unwrap failed because the key service does not hold the master key at all (the
 * local master key was rotated, a KMS key deleted): then nothing sealed under it can ever be read
 * again. A service that cannot answer right now (KMS unreachable) is not that: its error stands.
 */
async function keyIsGone(keys: AppDeps['keys'], keyId: string, e: unknown): Promise<boolean> {
  if (!isAppError(e)) return false;
  if (e.code === 'key.unknown') return true;
  if (e.code !== 'key.unavailable') return false;
  const check = await keys.checkKey(keyId).catch(() => null);
  return check?.state === 'unknown';
}

/**
 * A ready job's staged object that must never be served again (it can no longer be read, or what it
 * holds may no longer be served: the recording's retention ended, its copy was deleted from the
 * catalog): the object is deleted (a failure is logged — `expire` drops the wrapped data key, so
 * what is left can no longer be decrypted), then the job marked expired, so its status says
 * `expired` instead of offering content until the TTL.
 */
export async function discardStaged(deps: Pick<AppDeps, 'staging' | 'logger'>, stagingKey: string, expire: () => Promise<void>): Promise<void> {
  await deps.staging.delete(stagingKey).catch((err: unknown) => deps.logger.warn({ err, staging_key: stagingKey }, 'staged object that may no longer be served could not be deleted'));
  await expire();
}

/**
 * Opens plaintext bytes [start, end] of a ready job's staged object for a download: unwraps its
 * data key, opens the object, and reads and authenticates the first record the range touches
 * (chunked-cipher.ts openRange), all before the caller audits the download as allowed — so each
 * failure here is still a problem answer:
 * - the object is gone (purged, TTL) or its data key was wrapped under a master key the key service
 *   does not hold (rotated: docs/OPERATIONS.md "Key rotation"): the media will never be served
 *   again. The object is deleted (if it is still there), the job marked expired (`expire`), and the
 *   answer is 410 job.expired — not a 503 a client would retry until the TTL;
 * - the first record fails authentication, or the object is shorter than recorded: 500 staging.corrupt;
 * - the key service or the staging store cannot be reached: their 503s, as before.
 */
export async function openStagedContent(
  deps: Pick<AppDeps, 'keys' | 'staging' | 'logger'>,
  s: StagedObject,
  range: { start: number; end: number },
  what: 'media' | 'package',
  expire: () => Promise<void>,
  /** A HEAD: the same answer about the object (gone, rotated away), without reading a record of it. */
  headOnly = false,
): Promise<Readable> {
  const gone = () => discardStaged(deps, s.stagingKey, expire);
  let key: Buffer;
  try {
    key = await deps.keys.unwrap(s.dekKeyId, s.dekWrapped);
  } catch (e) {
    if (!(await keyIsGone(deps.keys, s.dekKeyId, e))) throw e;
    await gone();
    throw new AppError('job.expired', `the staged ${what} was sealed under a master key the key service no longer holds (rotated): it can no longer be read`, { cause: e });
  }
  const fh = await openStaged(deps.staging, s.stagingKey, what).catch(async (e: unknown) => {
    if (isAppError(e) && e.code === 'job.expired') await gone();
    throw e;
  });
  if (headOnly) {
    await fh.close().catch(() => {});
    return Readable.from([]);
  }
  return openRange(fh, key, s.size, range.start, range.end);
}
