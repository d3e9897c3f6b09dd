import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type CatalogDb, openPostgres, openSqlite } from '../../src/catalog/database.js';
import { migrateToLatest } from '../../src/catalog/migrations.js';
import { createTestDatabase, postgresAvailable } from './postgres.js';

export interface TestCatalog extends CatalogDb {
  /** Connection settings to hand to a config document (`catalog:` block). */
  catalogConfig: Record<string, unknown>;
  dispose(): Promise<void>;
}

/**
 * Every catalog test runs against each real database: `describe.each(CATALOGS)` with
 * `const cat = await openTestCatalog(kind)`. PostgreSQL is skipped (loudly, by global-setup)
 * only where no server is reachable and CI is not set.
 */
export const CATALOGS = ['sqlite', 'postgres'] as const;
export type CatalogKind = (typeof CATALOGS)[number];

export async function catalogAvailable(kind: CatalogKind): Promise<boolean> {
  return kind === 'sqlite' || (await postgresAvailable());
}

export async function openTestCatalog(kind: CatalogKind): Promise<TestCatalog> {
  if (kind === 'sqlite') {
    const dir = mkdtempSync(join(tmpdir(), 'custodian-cat-'));
    const path = join(dir, 'catalog.sqlite');
    const cat = openSqlite(path);
    await migrateToLatest(cat.db, 'sqlite');
    return {
      ...cat,
      catalogConfig: { driver: 'sqlite', path },
      dispose: async () => {
        await cat.close().catch(() => {});
        rmSync(dir, { recursive: true, force: true });
      },
    };
  }
  const tdb = await createTestDatabase();
  const cat = openPostgres(tdb.url, 5);
  await migrateToLatest(cat.db, 'postgres');
  return {
    ...cat,
    catalogConfig: { driver: 'postgres', url: tdb.url },
    dispose: async () => {
      await cat.close().catch(() => {});
      await tdb.drop();
    },
  };
}

/** The catalogs this machine can test: `describe.each(await usableCatalogs())`. global-setup warns loudly (or fails under CI) when PostgreSQL is missing. */
export async function usableCatalogs(): Promise<CatalogKind[]> {
  const kinds: CatalogKind[] = [];
  for (const k of CATALOGS) if (await catalogAvailable(k)) kinds.push(k);
  return kinds;
}
