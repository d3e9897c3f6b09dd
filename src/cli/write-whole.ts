import { randomBytes } from 'node:crypto';
import { createWriteStream, fstatSync, rmSync, type Stats } from 'node:fs';
import { link, lstat, open, realpath, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

export interface WriteWholeOptions {
  /** Never replace a file that exists (evidence is written once): EEXIST instead. */
  exclusive?: boolean;
}

/** stat() (links followed), or null when nothing is there; a dangling link is "something there" (lstat). */
async function statOf(path: string): Promise<{ st: Stats | null; exists: boolean }> {
  try {
    return { st: await stat(path), exists: true };
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  try {
    await lstat(path);
    return { st: null, exists: true };
  } catch {
    return { st: null, exists: false };
  }
}

/**
 * Whether `path` names a file an exclusive write would refuse to replace: a regular file, a link
 * to one, or a dangling link. A FIFO or a device (`/dev/stdout`, `>(gzip > x.gz)`) is not one:
 * writing into it replaces nothing.
 */
export async function existingFile(path: string): Promise<boolean> {
  const { st, exists } = await statOf(path);
  return exists && (st === null || st.isFile());
}

function exists(path: string): Error {
  return Object.assign(new Error(`EEXIST: file already exists, open '${path}'`), { code: 'EEXIST', errno: -17, syscall: 'open', path });
}

/**
 * Whether `st` (a path, links followed) is the very pipe, socket, tty or device on our fd 1:
 * `/dev/stdout`, `/dev/fd/1`, `/proc/self/fd/1`, or a link to one. Compared by identity, not by
 * name, so any spelling of it counts, and a path that is something else never does.
 */
function isOwnStdout(st: Stats): boolean {
  try {
    const out = fstatSync(1);
    return out.dev === st.dev && out.ino === st.ino;
  } catch {
    return false; // fd 1 closed: nothing of ours to write to.
  }
}

/**
 * Streams into the process's stdout through `process.stdout`, not by opening the path: Linux
 * refuses open() of a socket (`/dev/stdout` is one when a supervisor, systemd, or Node's own
 * `spawn` stdio 'pipe' gives us a socketpair) with ENXIO. process.stdout also knows how to write
 * to each kind (a non-blocking socket or pipe waits for 'drain' instead of failing with EAGAIN).
 * It stays open for whatever the command prints next; resolved once the last byte is handed on.
 */
async function toStdout(source: Readable): Promise<void> {
  await pipeline(source, process.stdout, { end: false });
  // A write's callback runs after every earlier write is flushed: resolve when the export has left us.
  await new Promise<void>((resolve, reject) => process.stdout.write('', (e) => (e ? reject(e) : resolve())));
}

/**
 * Writes `source` to `path` whole or not at all: into a file beside it first, renamed over `path`
 * once every byte is written (and synced). An export that stops half-way (an error, a full disk,
 * Ctrl-C) must not leave a file that looks like a complete export — nor destroy the one it would
 * replace. With `exclusive`, the file appears only if none was there (a hard link, which never
 * replaces), else EEXIST.
 *
 * `path` naming something that is not a regular file — a FIFO, a character device, a link to one
 * (`/dev/stdout`, `/dev/fd/63` from `>(gzip > x.gz)`) — is written into directly, streamed: a
 * rename would replace the pipe or device with a file. When that is our own stdout (a socket, a
 * pipe, a tty) it is written through fd 1 rather than opened again (see toStdout). A link to a
 * regular file stays a link; its target is replaced whole — so is the file a shell redirected
 * stdout to (`--out /dev/stdout > x`): written beside it and renamed over it, as any file.
 */
export async function writeWhole(path: string, source: Readable, opts: WriteWholeOptions = {}): Promise<void> {
  const { st, exists: there } = await statOf(path);
  if (st && !st.isFile() && isOwnStdout(st)) {
    await toStdout(source);
    return;
  }
  if (st && !st.isFile()) {
    // A directory fails here with EISDIR, naming the path.
    await pipeline(source, createWriteStream(path, { flags: 'w' }));
    return;
  }
  if (there && opts.exclusive) {
    source.destroy();
    throw exists(path);
  }
  const target = st ? await realpath(path) : path;
  const partial = join(dirname(target), `.${basename(target)}.partial-${process.pid}-${randomBytes(4).toString('hex')}`);
  // Ctrl-C or a TERM while writing: remove the partial file, then die of the signal as before.
  const onSignal = (signal: NodeJS.Signals) => {
    rmSync(partial, { force: true });
    process.kill(process.pid, signal);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    await pipeline(source, createWriteStream(partial, { flags: 'wx' }));
    // On disk before it has its name: a crash after the rename must not leave an empty "whole" file.
    const h = await open(partial, 'r');
    try {
      await h.sync();
    } finally {
      await h.close();
    }
    if (!opts.exclusive) await rename(partial, target);
    else {
      try {
        await link(partial, target);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'EEXIST') throw exists(path);
        // A file system without hard links: check, then rename (a race with another writer is possible there only).
        if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'ENOSYS') throw e;
        if ((await statOf(target)).exists) throw exists(path);
        await rename(partial, target);
      }
      await rm(partial, { force: true });
    }
  } catch (e) {
    await rm(partial, { force: true });
    // The operator named `path`, not the partial file beside it.
    const err = e as NodeJS.ErrnoException;
    if (err?.path === partial && typeof err.message === 'string') {
      err.message = err.message.replaceAll(partial, path);
      err.path = path;
    }
    throw e;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
