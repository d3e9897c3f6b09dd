import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, it } from 'vitest';
import { type CatalogDb, openPostgres, openSqlite } from '../../src/catalog/database.js';
import { migrateToLatest } from '../../src/catalog/migrations.js';
import { RecordingRepository } from '../../src/catalog/recording-repository.js';
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

/** Which catalogs this machine can test, by kind: `const AVAILABLE = await catalogsAvailable()` at module top. */
export async function catalogsAvailable(): Promise<Record<CatalogKind, boolean>> {
  const available = {} as Record<CatalogKind, boolean>;
  for (const k of CATALOGS) available[k] = await catalogAvailable(k);
  return available;
}

export interface OpenedCatalog {
  cat: TestCatalog;
  repo: RecordingRepository;
}

export interface BlockCatalog extends Readonly<OpenedCatalog> {
  /** `it` where the catalog is available, `it.skip` where it is not. */
  readonly test: typeof it | typeof it.skip;
}

/**
 * One catalog for a `describe.each(CATALOGS)` block, called inside the block: opens it (and a
 * RecordingRepository on it) in beforeAll, disposes of it in afterAll, and skips every `test` of the
 * block where `available[kind]` is false. `cat` and `repo` exist only once beforeAll has run: read
 * them through the returned object (`c.repo`, not destructured), or copy them in `onReady`, which
 * runs in that beforeAll:
 *
 *   let repo: RecordingRepository;
 *   const { test } = catalogForBlock(kind, AVAILABLE, (c) => { repo = c.repo; });
 */
export function catalogForBlock(
  kind: CatalogKind,
  available: Record<CatalogKind, boolean>,
  onReady?: (opened: OpenedCatalog) => void | Promise<void>,
): BlockCatalog {
  let opened: OpenedCatalog | undefined;
  beforeAll(async () => {
    if (!available[kind]) return;
    const cat = await openTestCatalog(kind);
    opened = { cat, repo: new RecordingRepository(cat.db) };
    await onReady?.(opened);
  });
  afterAll(async () => {
    await opened?.cat.dispose();
  });
  const ready = (): OpenedCatalog => {
    if (!opened) throw new Error(`the ${kind} catalog is not open (read it inside a test or a later hook)`);
    return opened;
  };
  return {
    get cat() {
      return ready().cat;
    },
    get repo() {
      return ready().repo;
    },
    test: available[kind] ? it : it.skip,
  };
}
