import { constants, createReadStream } from 'node:fs';
import { open, realpath, stat } from 'node:fs/promises';
import { isAbsolute, relative, resolve, sep } from 'node:path';
import { Readable } from 'node:stream';
import { AppError } from '../../errors.js';
import { ExactBody } from '../exact-body.js';
import { locatorOf } from '../locator.js';
import { abortedError } from '../net.js';
import type { CopyLocation, OpenOptions, SourceConnector, SourceMedia } from '../port.js';
import type { FilesystemSourceConfig } from './config.js';

/** Locators come from the catalog, which imports come from outside: treat them as hostile paths. */
export function checkLocator(locator: string): void {
  if (locator.includes('\0')) throw new AppError('source.path_refused', 'the locator contains a NUL byte');
  if (isAbsolute(locator) || /^[A-Za-z]:[\\/]/.test(locator) || locator.startsWith('\\\\')) {
    throw new AppError('source.path_refused', 'the locator is an absolute path');
  }
  if (locator.split(/[\\/]/).some((seg) => seg === '..')) throw new AppError('source.path_refused', 'the locator climbs out of the archive root');
}

function inside(root: string, p: string): boolean {
  const rel = relative(root, p);
  return rel !== '' && !rel.startsWith('..' + sep) && rel !== '..' && !isAbsolute(rel);
}

/** A local disk or NFS/SMB mount holding an exported archive. Nothing outside `root` is ever opened. */
export class FilesystemConnector implements SourceConnector {
  readonly kind = 'filesystem';
  readonly origin = 'LEGACY_ARCHIVE' as const;
  readonly name: string;
  private realRoot: Promise<string> | undefined;

  constructor(
    readonly tenantId: string,
    private readonly cfg: FilesystemSourceConfig,
  ) {
    this.name = cfg.name;
  }

  private root(): Promise<string> {
    this.realRoot ??= realpath(this.cfg.root).catch((e: NodeJS.ErrnoException) => {
      this.realRoot = undefined;
      throw new AppError('source.unavailable', `archive root is not reachable (${e.code ?? 'error'})`);
    });
    return this.realRoot;
  }

  async open(copy: CopyLocation, opts: OpenOptions): Promise<SourceMedia> {
    const locator = locatorOf(copy, this.cfg.path_template);
    if (!locator) throw new AppError('source.object_missing', 'the copy has no locator and the path template cannot be filled');
    checkLocator(locator);
    const root = await this.root();
    const candidate = resolve(root, locator);
    if (!inside(root, candidate)) throw new AppError('source.path_refused', 'the locator climbs out of the archive root');
    let real: string;
    try {
      real = await realpath(candidate);
    } catch (e) {
      throw fsError(e as NodeJS.ErrnoException);
    }
    // A symlink inside the archive may point anywhere; only its target's real place counts.
    if (!inside(root, real)) throw new AppError('source.path_refused', 'the locator resolves outside the archive root');
    let handle;
    try {
      handle = await open(real, constants.O_RDONLY | constants.O_NOFOLLOW);
    } catch (e) {
      throw fsError(e as NodeJS.ErrnoException);
    }
    try {
      const st = await handle.stat();
      if (!st.isFile()) throw new AppError('source.object_missing', 'the locator does not name a file');
      const size = st.size;
      let start = 0;
      let end = size - 1;
      if (opts.range) {
        start = opts.range.start;
        end = Math.min(opts.range.end ?? size - 1, size - 1);
        if (start >= size || start > end) throw new AppError('range.not_satisfiable', undefined, { extra: { size }, headers: { 'Content-Range': `bytes */${size}` } });
      }
      if (opts.signal.aborted) throw abortedError();
      if (size === 0) {
        // Nothing to read (and fs streams refuse end = -1): an empty body, the handle closed now.
        await handle.close();
        return { body: Readable.from([]), totalSize: 0 };
      }
      // 128 KiB reads: ~1.2× the throughput of 64 KiB on a 1 GiB file here (fewer reads, writes and
      // hash updates per byte); a slow client holds at most this much in the read stream.
      const file = createReadStream('', { fd: handle, start, end, autoClose: true, highWaterMark: 128 * 1024 });
      // The client is promised end - start + 1 bytes (Content-Length) from the stat above. A file
      // truncated or rewritten meanwhile (an archive job, an NFS/SMB export being re-synced) must
      // break the transfer, not end it cleanly short; one that grows is read up to `end`. The
      // body closes once the descriptor has (see ExactBody).
      const body = new ExactBody(file, 0, end - start + 1, false, opts.signal, 'the archive file');
      const onAbort = () => body.destroy();
      opts.signal.addEventListener('abort', onAbort, { once: true });
      body.once('close', () => opts.signal.removeEventListener('abort', onAbort));
      return { body, totalSize: size, ...(opts.range ? { range: { start, end } } : {}) };
    } catch (e) {
      await handle.close().catch(() => {});
      throw e;
    }
  }

  async check(): Promise<void> {
    const root = await this.root();
    const st = await stat(root).catch((e: NodeJS.ErrnoException) => {
      throw new AppError('source.unavailable', `archive root is not reachable (${e.code ?? 'error'})`);
    });
    if (!st.isDirectory()) throw new AppError('source.unavailable', 'archive root is not a directory');
  }

  async close(): Promise<void> {}
}

function fsError(e: NodeJS.ErrnoException): AppError {
  switch (e.code) {
    case 'ENOENT':
    case 'ENOTDIR':
      return new AppError('source.object_missing', 'the archive has no file at the copy locator');
    case 'ELOOP':
      return new AppError('source.path_refused', 'the locator is a symbolic link loop');
    // The catalog's locator is wrong, not the archive down: no retry will make the name shorter.
    case 'ENAMETOOLONG':
      return new AppError('source.path_refused', 'the locator names a path longer than the filesystem allows');
    case 'EACCES':
    case 'EPERM':
      return new AppError('source.unavailable', 'the archive file cannot be read (permission denied)');
    default:
      return new AppError('source.unavailable', `the archive cannot be read (${e.code ?? 'error'})`);
  }
}
