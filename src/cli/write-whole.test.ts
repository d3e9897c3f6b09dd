import { execFileSync } from 'node:child_process';
import { createReadStream, existsSync, lstatSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { writeWhole } from './write-whole.js';

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
});
