import { execFileSync, spawn } from 'node:child_process';
import { createReadStream, existsSync, lstatSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { writeWhole } from './write-whole.js';

const WRITE_WHOLE = resolve(import.meta.dirname, 'write-whole.ts');

/**
 * writeWhole(out, <bytes>) in a child whose stdout is Node's stdio 'pipe' — on Linux a UNIX
 * socketpair, as a supervisor's would be — or, through `sh -c` when `shell` wraps the command, a
 * real pipe or a redirect. The child says on stderr what its fd 1 is.
 */
function writeInChild(out: string, bytes: number, opts: { exclusive?: boolean; shell?: (cmd: string) => string } = {}): Promise<{ code: number | null; stdout: Buffer; stderr: string }> {
  const script = [
    `import { fstatSync } from 'node:fs';`,
    `import { Readable } from 'node:stream';`,
    `const { writeWhole } = await import(${JSON.stringify(WRITE_WHOLE)});`,
    `const st = fstatSync(1);`,
    `process.stderr.write('fd1=' + (st.isSocket() ? 'socket' : st.isFIFO() ? 'pipe' : st.isFile() ? 'file' : 'other') + '\\n');`,
    `const chunk = 'x'.repeat(1023) + '\\n';`,
    `async function* lines() { for (let i = 0; i < ${bytes} / 1024; i++) yield chunk; }`,
    `await writeWhole(${JSON.stringify(out)}, Readable.from(lines()), { exclusive: ${Boolean(opts.exclusive)} });`,
    `process.stderr.write('done\\n');`,
  ].join('\n');
  const argv = [process.execPath, '--import', 'tsx', '--input-type=module', '-e', script];
  const child = opts.shell
    ? spawn('sh', ['-c', opts.shell('"$0" "$@"'), ...argv], { stdio: ['ignore', 'pipe', 'pipe'] })
    : spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  const stdout: Buffer[] = [];
  let stderr = '';
  child.stdout.on('data', (b: Buffer) => stdout.push(b));
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  return new Promise((done) => child.on('close', (code) => done({ code, stdout: Buffer.concat(stdout), stderr })));
}

async function readAll(path: string): Promise<string> {
  let text = '';
  for await (const chunk of createReadStream(path, 'utf8')) text += chunk as string;
  return text;
}

const dir = mkdtempSync(join(tmpdir(), 'custodian-write-whole-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('writeWhole', () => {
  it('replaces the file with every byte, and leaves nothing beside it', async () => {
    const path = join(dir, 'export.jsonl');
    writeFileSync(path, 'old\n');
    await writeWhole(path, Readable.from(['a\n', 'b\n']));
    expect(readFileSync(path, 'utf8')).toBe('a\nb\n');
    expect(readdirSync(dir)).toEqual(['export.jsonl']);
  });

  it('leaves the old file as it was when the source fails half-way, and no partial file', async () => {
    const path = join(dir, 'kept.jsonl');
    writeFileSync(path, 'old\n');
    async function* failing() {
      yield 'first\n';
      throw new Error('catalog went away');
    }
    await expect(writeWhole(path, Readable.from(failing()))).rejects.toThrow('catalog went away');
    expect(readFileSync(path, 'utf8')).toBe('old\n');
    expect(readdirSync(dir).filter((f) => f.includes('partial'))).toEqual([]);
  });

  it('fails with the file system error when the directory does not exist', async () => {
    await expect(writeWhole(join(dir, 'absent', 'x.jsonl'), Readable.from(['a\n']))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('streams into a FIFO (a pipe the operator reads) and leaves it a FIFO', async () => {
    const fifo = join(dir, 'pipe');
    execFileSync('mkfifo', [fifo]);
    const reader = readAll(fifo);
    await writeWhole(fifo, Readable.from(['a\n', 'b\n']));
    expect(await reader).toBe('a\nb\n');
    expect(lstatSync(fifo).isFIFO()).toBe(true);
    expect(readdirSync(dir).filter((f) => f.includes('partial'))).toEqual([]);
  });

  it('follows a symlink to a FIFO (/dev/stdout, >(gzip > x.gz)) and leaves the link a link', async () => {
    const fifo = join(dir, 'pipe2');
    execFileSync('mkfifo', [fifo]);
    const link = join(dir, 'stdout-link');
    symlinkSync(fifo, link);
    const reader = readAll(fifo);
    await writeWhole(link, Readable.from(['x\n']));
    expect(await reader).toBe('x\n');
    expect(lstatSync(link).isSymbolicLink()).toBe(true);
    expect(statSync(link).isFIFO()).toBe(true);
  });

  it('replaces the target of a symlink to a regular file whole, and keeps the link', async () => {
    const target = join(dir, 'target.jsonl');
    writeFileSync(target, 'old\n');
    const link = join(dir, 'target-link');
    symlinkSync(target, link);
    await writeWhole(link, Readable.from(['new\n']));
    expect(lstatSync(link).isSymbolicLink()).toBe(true);
    expect(readFileSync(target, 'utf8')).toBe('new\n');
  });

  it('exclusive: never replaces a file that exists, and creates one that does not, whole', async () => {
    const path = join(dir, 'evidence.jsonl');
    writeFileSync(path, 'earlier\n');
    await expect(writeWhole(path, Readable.from(['later\n']), { exclusive: true })).rejects.toMatchObject({ code: 'EEXIST' });
    expect(readFileSync(path, 'utf8')).toBe('earlier\n');
    const fresh = join(dir, 'fresh.jsonl');
    await writeWhole(fresh, Readable.from(['one\n']), { exclusive: true });
    expect(readFileSync(fresh, 'utf8')).toBe('one\n');
    expect(existsSync(fresh)).toBe(true);
    expect(readdirSync(dir).filter((f) => f.includes('partial'))).toEqual([]);
  });

  it('writes into a character device as it is (/dev/full: ENOSPC), never replacing it', async () => {
    await expect(writeWhole('/dev/full', Readable.from(['a\n']))).rejects.toMatchObject({ code: 'ENOSPC' });
    expect(statSync('/dev/full').isCharacterDevice()).toBe(true);
    expect(readdirSync('/dev').filter((f) => f.includes('partial'))).toEqual([]);
  });

  describe('--out naming our own stdout is written through fd 1, whatever it is', () => {
    const MIB = 1024 * 1024;
    it.each(['/dev/stdout', '/dev/fd/1', '/proc/self/fd/1'])('%s on a socket (a supervisor, Node spawn stdio "pipe"): every byte, no ENXIO', async (out) => {
      // 1 MiB: more than a socket buffer holds, so the write must wait for the reader, not fail with EAGAIN.
      const r = await writeInChild(out, MIB);
      expect(r.stderr).toContain('fd1=socket');
      expect(r.stderr, r.stderr).not.toContain('ENXIO');
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout.length).toBe(MIB);
      expect(r.stdout.toString()).toBe(('x'.repeat(1023) + '\n').repeat(1024));
    });

    it('exclusive (audit export) into a socket stdout: written, nothing refused', async () => {
      const r = await writeInChild('/dev/stdout', 4096, { exclusive: true });
      expect(r.stderr).toContain('fd1=socket');
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout.length).toBe(4096);
    });

    it('a pipe stdout (`| cat`) still gets every byte', async () => {
      const r = await writeInChild('/dev/stdout', MIB, { shell: (cmd) => `${cmd} | cat` });
      expect(r.stderr).toContain('fd1=pipe');
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout.length).toBe(MIB);
    });

    it('a stdout redirected to a file (`> x`) is that file, replaced whole as before', async () => {
      const path = join(dir, 'redirected.txt');
      const r = await writeInChild('/dev/stdout', 4096, { shell: (cmd) => `${cmd} > '${path}'` });
      expect(r.stderr).toContain('fd1=file');
      expect(r.code, r.stderr).toBe(0);
      expect(readFileSync(path, 'utf8')).toBe(('x'.repeat(1023) + '\n').repeat(4));
      expect(readdirSync(dir).filter((f) => f.includes('partial'))).toEqual([]);
    });

    it('a reader that goes away fails the write with EPIPE, one error and no hang', async () => {
      const r = await writeInChild('/dev/stdout', 64 * MIB, { shell: (cmd) => `${cmd} | head -c 10 >/dev/null` });
      expect(r.stderr).toContain('fd1=pipe');
      expect(r.stderr).not.toContain('done');
      expect(r.stderr).toContain('EPIPE');
    });
  });
});
