import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import { openSqlite } from './database.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('SQLite WAL checkpoints off the event loop', () => {
  it('the gateway connection never checkpoints inside a commit; the worker does, and the WAL is reused', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'custodian-wal-'));
    dirs.push(dir);
    const path = join(dir, 'c.sqlite');
    const cat = openSqlite(path);
    try {
      const { rows } = await sql<{ wal_autocheckpoint: number }>`pragma wal_autocheckpoint`.execute(cat.db);
      expect(rows[0]!.wal_autocheckpoint).toBe(0);
      await sql`create table t (v text)`.execute(cat.db);
      // Well past the default 1000-page auto-checkpoint threshold, commit by commit.
      const blob = 'x'.repeat(8_000);
      for (let i = 0; i < 1_500; i++) await sql`insert into t values (${blob})`.execute(cat.db);
      const grown = statSync(`${path}-wal`).size;
      expect(grown).toBeGreaterThan(1000 * 4096);
      // The worker's checkpoint moves the pages into the database file.
      const before = statSync(path).size;
      await new Promise((r) => setTimeout(r, 2_500));
      expect(statSync(path).size).toBeGreaterThan(before + 1_000 * 4096);
      // After a checkpoint the WAL is written from its start again: it stops growing.
      for (let i = 0; i < 200; i++) await sql`insert into t values (${blob})`.execute(cat.db);
      expect(statSync(`${path}-wal`).size).toBeLessThanOrEqual(grown);
    } finally {
      await cat.close();
    }
  }, 20_000);

  it('closes cleanly (the worker first), leaving no WAL behind', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'custodian-wal-'));
    dirs.push(dir);
    const path = join(dir, 'c.sqlite');
    const cat = openSqlite(path);
    await sql`create table t (v int)`.execute(cat.db);
    await sql`insert into t values (1)`.execute(cat.db);
    await cat.close();
    expect(() => statSync(`${path}-wal`)).toThrow();
  });
});
