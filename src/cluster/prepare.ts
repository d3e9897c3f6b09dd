import { join } from 'node:path';
import { openCatalog } from '../catalog/database.js';
import { migrateToLatest } from '../catalog/migrations.js';
import { ConfigError } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { LocalKeyring } from '../keys/keyring.js';

/**
 * Refuses what several processes cannot share. An in-memory SQLite catalog is private to each
 * process: N workers would be N catalogs and N audit chains.
 */
export function checkClusterConfig(config: Config): void {
  if (config.server.workers > 1 && config.catalog.driver === 'sqlite' && config.catalog.path === ':memory:') {
    throw new ConfigError(`server.workers: ${config.server.workers} workers cannot share catalog.path ":memory:" (each process would have its own catalog and audit chain); use a file or PostgreSQL, or server.workers: 1`);
  }
}

/**
 * What the primary does once, before forking, so the workers never race each other at start:
 * - migrations: kysely's migrator takes no lock on SQLite (its transaction begins deferred, and two
 *   of them upgrading to write locks fail with SQLITE_BUSY), so the workers skip them;
 * - the local keyring: its master and signing keys are made on first use, and a worker reading a
 *   key file another worker has created but not yet written would fail (or sign with a key that
 *   is then replaced). Made here, the workers only ever read them.
 */
export async function prepareShared(config: Config): Promise<void> {
  const catalog = openCatalog(config);
  try {
    await migrateToLatest(catalog.db, catalog.dialect);
  } finally {
    await catalog.close();
  }
  if (config.keys.provider === 'local') await new LocalKeyring(join(config.data_dir, 'keys', 'staging.key')).signingKeyId();
}
