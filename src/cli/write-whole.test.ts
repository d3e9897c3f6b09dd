import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { writeWhole } from './write-whole.js';

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
});
