import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import SQLite from 'better-sqlite3';
import pg from 'pg';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config/load.js';
import { buildDeps } from '../src/main.js';
import { createTestDatabase, postgresAvailable } from './support/postgres.js';

/**
 * buildDeps opens the catalog first (its pool on PostgreSQL, its connection and WAL checkpointer on
 * SQLite), migrates, makes the sources, and only then reads auth.jwt's keys and sets up the rate
 * limiter. A step that fails there left everything before it open: a CLI command's process stayed
 * alive on the pool (pool_min connections are never let go), and the SQLite file kept its
 * connections. Each case below fails after the catalog is up, with real configuration.
 */
const silent = pino({ level: 'silent' });
const pgUp = await postgresAvailable();

/** A config whose auth.jwt key passes the schema (a non-empty string) but is no public key: JwtVerifier.create refuses it. */
function configWith(dir: string, catalog: Record<string, unknown>) {
  const root = join(dir, 'archive');
  mkdirSync(root, { recursive: true });
  return parseConfig(
    {
      data_dir: join(dir, 'data'),
      allow_inline_secrets: true,
      catalog,
      logging: { level: 'warn' },
      auth: { jwt: { issuer: 'https://idp.example', audience: 'custodian', public_keys: ['not a PEM public key'] } },
      tenants: [{ id: 'acme', sources: [{ name: 'archive', type: 'filesystem', root, source_systems: ['avaya_aura'] }] }],
    },
    {},
  );
}

describe('buildDeps that fails after the catalog is open', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'custodian-build-deps-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('SQLite: rethrows the step\'s own error and leaves the catalog file closed', async () => {
    const path = join(dir, 'catalog.sqlite');
    const config = configWith(dir, { driver: 'sqlite', path });
    await expect(buildDeps(config, { logger: silent })).rejects.toThrow(/^auth\.jwt\.public_keys\[0\]: not a public key/);
    // It was opened and migrated before the failure…
    expect(existsSync(path)).toBe(true);
    // …and closed after it: the last connection to close checkpoints and removes the WAL, and
    // leaving WAL mode needs the file to itself ("database is locked" while another connection is open).
    expect(existsSync(`${path}-wal`), 'the WAL is still there: a connection is open').toBe(false);
    const db = new SQLite(path, { timeout: 200 });
    try {
      expect(db.pragma('journal_mode = DELETE', { simple: true })).toBe('delete');
      expect(db.prepare("select count(*) as n from sqlite_master where name = 'recordings'").get()).toEqual({ n: 1 });
    } finally {
      db.close();
    }
  });

  it.runIf(pgUp)('PostgreSQL: rethrows the step\'s own error and ends the pool (no connection left)', async () => {
    const { url, drop } = await createTestDatabase();
    // The pool's connections carry this name, so they can be counted from outside.
    const app = `custodian-build-deps-${process.pid}-${Date.now()}`;
    const named = new URL(url);
    named.searchParams.set('application_name', app);
    try {
      const config = configWith(dir, { driver: 'postgres', url: named.toString(), pool_min: 2 });
      await expect(buildDeps(config, { logger: silent })).rejects.toThrow(/^auth\.jwt\.public_keys\[0\]: not a public key/);
      const admin = new pg.Client({ connectionString: url });
      await admin.connect();
      try {
        // The migrations ran (the pool was used)…
        const { rows: migrated } = await admin.query("select count(*)::int as n from information_schema.tables where table_name = 'recordings'");
        expect(migrated[0].n).toBe(1);
        // …and no connection of that pool is left (pool.end() waits for its clients to close).
        const { rows } = await admin.query('select count(*)::int as n from pg_stat_activity where application_name = $1', [app]);
        expect(rows[0].n, 'connections of the failed build still open').toBe(0);
      } finally {
        await admin.end();
      }
    } finally {
      await drop();
    }
  });
});
