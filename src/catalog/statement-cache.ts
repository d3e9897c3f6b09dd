import type SQLite from 'better-sqlite3';
import type { SqliteDatabase, SqliteStatement } from 'kysely';

/**
 * better-sqlite3 behind kysely with its prepared statements kept. Kysely's SQLite driver prepares
 * every query anew; on the request path (key lookup, ref lookup, audit append) compiling the same
 * few statements again cost about as much as running them. Statements are keyed by their SQL text,
 * the least recently used dropped past `max` (queries with IN-lists of varying length make distinct
 * texts). A statement still being iterated by a streamed query is busy: a fresh one is prepared.
 */
export function withStatementCache(sqlite: SQLite.Database, max = 512): SqliteDatabase {
  const cache = new Map<string, SQLite.Statement>();
  return {
    close: () => sqlite.close(),
    prepare(text: string): SqliteStatement {
      const hit = cache.get(text);
      if (hit && !hit.busy) {
        // Re-insert: Map order is the recency order.
        cache.delete(text);
        cache.set(text, hit);
        return hit as unknown as SqliteStatement;
      }
      const stmt = sqlite.prepare(text);
      if (!hit) {
        cache.set(text, stmt);
        if (cache.size > max) cache.delete(cache.keys().next().value as string);
      }
      return stmt as unknown as SqliteStatement;
    },
  };
}
