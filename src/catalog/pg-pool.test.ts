import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, postgresAvailable } from '../../test/support/postgres.js';
import { parseConfig } from '../config/load.js';
import { type CatalogDb, openCatalog } from './database.js';

const available = await postgresAvailable();

/** Holds `n` pool connections at once for a moment; returns the backend pids that served them. */
async function holdConnections(cat: CatalogDb, n: number): Promise<Set<number>> {
  const rows = await Promise.all(
    Array.from({ length: n }, () => sql<{ pid: number }>`select pg_backend_pid() as pid, pg_sleep(0.1)`.execute(cat.db)),
  );
  return new Set(rows.map((r) => r.rows[0]!.pid));
}

async function settle(cat: CatalogDb, until: (total: number) => boolean, ms: number): Promise<number> {
  const deadline = Date.now() + ms;
  while (!until(cat.pgPool!.totalCount) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
  return cat.pgPool!.totalCount;
}

/**
 * catalog.pool_min / pool_idle_timeout_ms reach the pool: after a busy moment, connections above
 * the floor close when idle and the floor stays open (with its prepared statements), and 0 keeps
 * them all. Before these settings the pool kept pg's defaults (no floor, 10 s).
 */
describe.skipIf(!available)('the catalog PostgreSQL pool', () => {
  let url: string;
  let drop: () => Promise<void>;
  const open = (more: object) =>
    openCatalog(parseConfig({ catalog: { driver: 'postgres', url: 'env:PG', pool_size: 3, ...more } }, { PG: url }));

  beforeAll(async () => ({ url, drop } = await createTestDatabase()));
  afterAll(async () => drop?.());

  it('closes idle connections down to pool_min after pool_idle_timeout_ms, with TCP keep-alive on', async () => {
    const cat = open({ pool_min: 1, pool_idle_timeout_ms: 150 });
    try {
      expect((await holdConnections(cat, 3)).size).toBe(3);
      expect(cat.pgPool!.totalCount).toBe(3);
      expect(await settle(cat, (t) => t <= 1, 3_000)).toBe(1);
      // and it stays at the floor
      await new Promise((r) => setTimeout(r, 400));
      expect(cat.pgPool!.totalCount).toBe(1);
      expect((cat.pgPool as unknown as { options: { keepAlive?: boolean } }).options.keepAlive).toBe(true);
    } finally {
      await cat.close();
    }
  });

  it('keeps every connection with pool_idle_timeout_ms 0', async () => {
    const cat = open({ pool_min: 0, pool_idle_timeout_ms: 0 });
    try {
      expect((await holdConnections(cat, 3)).size).toBe(3);
      await new Promise((r) => setTimeout(r, 600));
      expect(cat.pgPool!.totalCount).toBe(3);
      // 0 reaches pg-pool as 0 (its "never"), not as its 10 s default
      expect((cat.pgPool as unknown as { options: { idleTimeoutMillis?: number } }).options.idleTimeoutMillis).toBe(0);
    } finally {
      await cat.close();
    }
  });
});
