import { mkdirSync, statSync } from 'node:fs';
import { mkdir, stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';

/*
 * mkdir -p without Node's `recursive: true`, which never returns when the kernel answers ENOENT for
 * a directory whose parent exists (/proc/x, /sys/x: Node creates the parent, gets EEXIST, tries
 * the child again, forever — a data_dir under /proc hung `custodian migrate` at 100 % CPU). Here
 * the missing directories are found by walking up to one that exists, then made one by one: any
 * refusal comes back as the kernel's error for that directory.
 */

type Err = NodeJS.ErrnoException;
const notDir = (path: string): Err => Object.assign(new Error(`ENOTDIR: not a directory, mkdir '${path}'`), { code: 'ENOTDIR', syscall: 'mkdir', path });

/** The directories to create for `path`, outermost first. */
function missingSync(path: string): string[] {
  const missing: string[] = [];
  for (let p = resolve(path); ; p = dirname(p)) {
    try {
      if (!statSync(p).isDirectory()) throw notDir(p);
      return missing.reverse();
    } catch (e) {
      if ((e as Err).code !== 'ENOENT' || dirname(p) === p) throw e;
      missing.push(p);
    }
  }
}

export function makeDirsSync(path: string, mode?: number): void {
  for (const d of missingSync(path)) {
    try {
      mkdirSync(d, mode);
    } catch (e) {
      // made meanwhile by another process: fine, as long as it is a directory
      if ((e as Err).code !== 'EEXIST' || !statSync(d).isDirectory()) throw e;
    }
  }
}

export async function makeDirs(path: string, mode?: number): Promise<void> {
  const missing: string[] = [];
  for (let p = resolve(path); ; p = dirname(p)) {
    try {
      if (!(await stat(p)).isDirectory()) throw notDir(p);
      break;
    } catch (e) {
      if ((e as Err).code !== 'ENOENT' || dirname(p) === p) throw e;
      missing.push(p);
    }
  }
  for (const d of missing.reverse()) {
    try {
      await mkdir(d, mode);
    } catch (e) {
      if ((e as Err).code !== 'EEXIST' || !(await stat(d)).isDirectory()) throw e;
    }
  }
}
