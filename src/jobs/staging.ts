import { createWriteStream } from 'node:fs';
import { mkdir, open, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { Writable } from 'node:stream';

/**
 * Where jobs put fetched media until the client downloads it: encrypted records (see
 * keys/chunked-cipher.ts), written to a temporary name and renamed when whole, so a crash never
 * leaves a partial file under a final name. Local directory here; several instances need a shared
 * store (docs/OPERATIONS.md).
 */
export class LocalStaging {
  constructor(readonly dir: string) {}

  private path(key: string): string {
    if (!/^[A-Za-z0-9_-]{1,128}$/.test(key)) throw new Error('bad staging key');
    return join(this.dir, key);
  }

  async writer(key: string): Promise<{ stream: Writable; commit(): Promise<number>; abort(): Promise<void> }> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const final = this.path(key);
    const tmp = `${final}.part`;
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
