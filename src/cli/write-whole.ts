import { createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

/**
 * Writes `source` to `path` whole or not at all: into a file beside it first, renamed over `path`
 * once every byte is written. An export that stops half-way (an error, a full disk, Ctrl-C) must
 * not leave a file that looks like a complete export — nor destroy the one it would replace.
 */
export async function writeWhole(path: string, source: Readable): Promise<void> {
  const partial = join(dirname(path), `.${basename(path)}.partial-${process.pid}`);
  try {
    await pipeline(source, createWriteStream(partial, { flags: 'wx' }));
    await rename(partial, path);
  } catch (e) {
    await rm(partial, { force: true });
    throw e;
  }
}
