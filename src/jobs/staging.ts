import { randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { open, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { Writable } from 'node:stream';
import { AppError, isAppError } from '../errors.js';
import { makeDirs } from '../make-dirs.js';

/** Positional reads of a staged object (a FileHandle is one); decryptRange reads records through it. */
export interface StagingReader {
  read(buffer: Buffer, offset: number, length: number, position: number): Promise<{ bytesRead: number }>;
  close(): Promise<void>;
}

/** One object being staged: nothing is visible under its key until commit (which returns its size). */
export interface StagingWriter {
  stream: Writable;
  commit(): Promise<number>;
  abort(): Promise<void>;
}

/**
 * Where jobs put fetched media until the client downloads it: encrypted records (see
 * keys/chunked-cipher.ts) that become visible under their key only when whole, so a crash never
 * leaves a partial object under a final name. `LocalStaging` (a directory) or `S3Staging` (a
 * bucket several instances share, jobs/s3-staging.ts).
 */
export interface Staging {
  /**
   * Local directory holding the staged files, for scans of leftovers; a store that is not a local
   * directory gives '' (a scan finds nothing; its leftovers are the bucket lifecycle rule's).
   * @deprecated scanning it ties callers to LocalStaging.
   */
  readonly dir: string;
  writer(key: string): Promise<StagingWriter>;
  /** Rejects when the object is not there. */
  open(key: string): Promise<StagingReader>;
  /** null when the object is not there. */
  size(key: string): Promise<number | null>;
  /** No error when the object is already gone. */
  delete(key: string): Promise<void>;
  close?(): Promise<void>;
}

/** Staging keys (`<job id>_<attempt nonce>`, `evidence_<uuid>`): one safe path segment, the same rule for every store. */
/**
 * Opens staged bytes for a download: gone (purged, never written) is the job's 410, but a store
 * that cannot be reached right now is its own 503 (staging.unavailable) — an outage is not an expiry.
 */
export async function openStaged(staging: Staging, key: string, what: string): Promise<StagingReader> {
  try {
    return await staging.open(key);
  } catch (e) {
    if (isAppError(e) && e.code === 'staging.unavailable') throw e;
    throw new AppError('job.expired', `the staged ${what} is no longer there`);
  }
}

export function checkStagingKey(key: string): string {
  if (!/^[A-Za-z0-9_-]{1,128}$/.test(key)) throw new Error('bad staging key');
  return key;
}

/**
 * A local (or mounted NFS/EFS) directory: temp name, rename when whole. The temp name is the
 * writer's own, so two writers of one key (instances sharing the directory) never write through
 * two descriptors into one file, nor into the file the other has already published.
 */
export class LocalStaging implements Staging {
  constructor(readonly dir: string) {}

  private path(key: string): string {
    return join(this.dir, checkStagingKey(key));
  }

  async writer(key: string): Promise<StagingWriter> {
    await makeDirs(this.dir, 0o700);
    const final = this.path(key);
    const tmp = `${final}.${randomUUID()}.part`;
    const stream = createWriteStream(tmp, { mode: 0o600 });
    return {
      stream,
      commit: async () => {
        await rename(tmp, final);
        return (await stat(final)).size;
      },
      abort: async () => {
        stream.destroy();
        await rm(tmp, { force: true });
      },
    };
  }

  async open(key: string): Promise<FileHandle> {
    return open(this.path(key), 'r');
  }

  async size(key: string): Promise<number | null> {
    return stat(this.path(key)).then(
      (s) => s.size,
      () => null,
    );
  }

  async delete(key: string): Promise<void> {
    await rm(this.path(key), { force: true });
  }
}
