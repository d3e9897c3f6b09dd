import { dirname, join } from 'node:path';
import SQLite from 'better-sqlite3';
import { Kysely, PostgresDialect, SqliteAdapter, SqliteDialect, sql } from 'kysely';
import pg from 'pg';
import { ConfigError } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { makeDirsSync } from '../make-dirs.js';
import { withNamedStatements } from './named-statements.js';
import { withStatementCache } from './statement-cache.js';
import { startWalCheckpointer } from './wal-checkpointer.js';
import type { Database } from './tables.js';

export type Dialect = 'sqlite' | 'postgres';

export interface CatalogDb {
  db: Kysely<Database>;
  dialect: Dialect;
  /** PostgreSQL only: the pool, for stores shared across instances (rate limits). */
  pgPool?: pg.Pool;
  close(): Promise<void>;
}

// PostgreSQL BIGINT (int8) arrives as a string by default; counts here stay far below 2^53.
pg.types.setTypeParser(20, (v) => Number(v));

export function openSqlite(path: string): CatalogDb {
  if (path !== ':memory:') makeDirsSync(dirname(path));
  let sqlite: SQLite.Database | undefined;
  try {
    sqlite = new SQLite(path);
    // WAL lets readers proceed while a writer appends audit events; NORMAL is durable across app crashes.
    sqlite.pragma('journal_mode = WAL');
    sqlite.pragma('synchronous = NORMAL');
    sqlite.pragma('foreign_keys = ON');
    sqlite.pragma('busy_timeout = 5000');
  } catch (e) {
    // Not a database, a directory, no permission: the file the config names, in one line (exit 78).
    sqlite?.close();
    throw new ConfigError(`catalog.path: ${path} cannot be opened as a SQLite catalog (${firstLine(e)})`);
  }
  // Checkpoints run in a worker thread, not inside a commit on the event loop (wal-checkpointer.ts).
  const checkpointer = path === ':memory:' ? undefined : (sqlite.pragma('wal_autocheckpoint = 0'), startWalCheckpointer(path));
  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: withStatementCache(sqlite) }) });
  return {
    db,
    dialect: 'sqlite',
    // The worker's connection first: the last connection to close checkpoints what is left.
    close: async () => {
      await checkpointer?.stop();
      await db.destroy();
    },
  };
}

export interface PoolOptions {
  size?: number;
  /** Kept open however idle (pg-pool's `min`): they keep their prepared statements. */
  min?: number;
  /** Idle time after which a connection above `min` closes; 0 = never. */
  idleTimeoutMs?: number;
}

export function openPostgres(url: string, opts: PoolOptions | number = {}): CatalogDb {
  const { size = 10, min = 0, idleTimeoutMs = 10_000 } = typeof opts === 'number' ? { size: opts } : opts;
  // TCP keep-alive: a connection kept idle for long (pool_min) that a firewall or NAT dropped is
  // found dead by the kernel and replaced, instead of failing the first query after a quiet spell.
  const pool = new pg.Pool({ connectionString: url, max: size, min: Math.min(min, size), idleTimeoutMillis: idleTimeoutMs, keepAlive: true });
  // A dropped idle connection must not crash the process; the pool replaces it.
  pool.on('error', () => {});
  startupErrorsNameTheUrl(pool, url);
  // Statements marked with preparedMarker (the catalog lookup, the API key read) are prepared once per connection.
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool: withNamedStatements(pool) }) });
  return { db, dialect: 'postgres', pgPool: pool, close: () => db.destroy() };
}

/** The catalog's database cannot be reached at start-up (down, starting, network): one line, exit 1. */
export class CatalogUnavailable extends Error {}

/** Connect failures of a server that is down or not yet up (errno, or PostgreSQL's 57P03 cannot_connect_now). */
const TRANSIENT_CONNECT = new Set(['ECONNREFUSED', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNRESET', 'EAI_AGAIN', '57P03']);

function firstLine(e: unknown): string {
  return String((e as Error)?.message ?? e).split('\n')[0]!;
}

/**
 * Until a first connection has succeeded, a failure to connect is the config's (a role or database
 * that does not exist, TLS the server lacks, a URL pg cannot read): one line naming catalog.url
 * and the reason (exit 78), never the URL or its password; a server not listening or not yet
 * up is CatalogUnavailable (exit 1). After that, a lost
 * connection is an outage and keeps its own error.
 */
function startupErrorsNameTheUrl(pool: pg.Pool, url: string): void {
  let connected = false;
  const original = pool.connect.bind(pool) as (...args: unknown[]) => unknown;
  const connect = original as () => Promise<pg.PoolClient>;
  const secrets: string[] = [];
  try {
    const u = new URL(url);
    if (u.password) secrets.push(u.password, decodeURIComponent(u.password));
  } catch {
    // Not a URL: the schema refuses it; nothing here to hide but the whole string.
    secrets.push(url);
  }
  const hide = (text: string) => secrets.filter(Boolean).reduce((t, s) => t.replaceAll(s, '***'), text);
  pool.connect = (async (...args: unknown[]) => {
    // Callback style (not used by kysely or the rate-limit store at start-up): pg's own.
    if (args.length) return original(...args);
    try {
      const client = await connect();
      connected = true;
      return client;
    } catch (e) {
      if (connected) throw e;
      const err = e as NodeJS.ErrnoException & { code?: string };
      const reason = hide(firstLine(e)) || err.code || 'error';
      // A server that is down or starting is an outage, not a mistake in the file: exit 1, which a
      // supervisor restarts (78 says "fix the configuration" and may stop restarts).
      if (err.code && TRANSIENT_CONNECT.has(err.code)) throw new CatalogUnavailable(`catalog.url: PostgreSQL cannot be reached (${reason})`);
      throw new ConfigError(`catalog.url: cannot connect to PostgreSQL (${reason})`);
    }
  }) as typeof pool.connect;
}

export function openCatalog(config: Config): CatalogDb {
  if (config.catalog.driver === 'postgres') {
    const c = config.catalog;
    return openPostgres(c.url.reveal(), { size: c.pool_size, min: c.pool_min, idleTimeoutMs: c.pool_idle_timeout_ms });
  }
  return openSqlite(config.catalog.path ?? join(config.data_dir, 'catalog.sqlite'));
}

/**
 * Runs `fn` in a transaction that will write. On SQLite it begins IMMEDIATE: the write lock is
 * taken before the first read, so a writer in another process (the CLI beside a running server)
 * makes it wait (busy_timeout) instead of failing with "database is locked" when a deferred
 * transaction that has read finds another process has written since. PostgreSQL: a plain transaction.
 */
export async function writeTransaction<T>(db: Kysely<Database>, fn: (trx: Kysely<Database>) => Promise<T>): Promise<T> {
  if (!(db.getExecutor().adapter instanceof SqliteAdapter)) return db.transaction().execute(fn);
  return db.connection().execute(async (conn) => {
    await sql`begin immediate`.execute(conn);
    let result: T;
    try {
      result = await fn(conn);
    } catch (e) {
      await sql`rollback`.execute(conn).catch(() => {});
      throw e;
    }
    await sql`commit`.execute(conn);
    return result;
  });
}
