import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { makeDirs, makeDirsSync } from './make-dirs.js';

const dir = mkdtempSync(join(tmpdir(), 'custodian-make-dirs-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe.each([
  ['makeDirsSync', async (p: string, mode?: number) => makeDirsSync(p, mode)],
  ['makeDirs', makeDirs],
])('%s', (name, make) => {
  it('makes every missing directory, with the mode asked, and accepts one that exists', async () => {
    const deep = join(dir, name, 'a', 'b', 'c');
    await make(deep, 0o700);
    expect(statSync(deep).isDirectory()).toBe(true);
    expect(statSync(deep).mode & 0o777).toBe(0o700);
    await make(deep);
    await make(dir);
  });

  it('refuses a path through a file with ENOTDIR', async () => {
    const file = join(dir, `${name}-file`);
    writeFileSync(file, 'x');
    await expect(make(join(file, 'sub'))).rejects.toMatchObject({ code: 'ENOTDIR' });
  });

  // Node's mkdir(…, { recursive: true }) never returns here (reproduced: `node -e "fs.mkdirSync('/proc/nope', {recursive: true})"`).
  it.runIf(existsSync('/proc/self'))('returns the kernel error for a directory it cannot make under /proc, instead of looping', { timeout: 5_000 }, async () => {
    await expect(make('/proc/custodian-no-such-dir/x')).rejects.toMatchObject({ code: 'ENOENT', syscall: 'mkdir' });
  });
});
