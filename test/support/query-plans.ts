import SQLite from 'better-sqlite3';
import { type CompiledQuery, Kysely, SqliteDialect } from 'kysely';
import type { Database } from '../../src/catalog/tables.js';

export interface PlannedStatement {
  sql: string;
  /** SQLite's EXPLAIN QUERY PLAN, one `detail` per step (e.g. "SEARCH r USING INDEX … (id=?)"). */
  plan: string[];
}

/**
 * Runs `fn` against the SQLite catalog file at `path` and returns each statement it ran with the
 * plan SQLite chooses for it there. A test catalog has never been analyzed, like every catalog
 * custodian creates (custodian does not run ANALYZE): these are the plans production gets, and
 * they do not depend on how many rows the test wrote.
 */
export async function plannedStatements(path: string, fn: (db: Kysely<Database>) => Promise<unknown>): Promise<PlannedStatement[]> {
  const sqlite = new SQLite(path);
  const ran: CompiledQuery[] = [];
  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: sqlite }), log: (e) => void ran.push(e.query) });
  try {
    await fn(db);
    return ran
      .filter((q) => /^\s*(\/\*.*?\*\/\s*)?(select|insert|update|delete|with)\b/is.test(q.sql))
      .map((q) => ({
        sql: q.sql,
        plan: (sqlite.prepare(`explain query plan ${q.sql}`).all(...q.parameters) as { detail: string }[]).map((r) => r.detail),
      }));
  } finally {
    await db.destroy();
  }
}

/** The statements whose SQL matches `re` (at least one, or the test is not testing what it says). */
export function statementsLike(all: PlannedStatement[], re: RegExp): PlannedStatement[] {
  const found = all.filter((s) => re.test(s.sql));
  if (!found.length) throw new Error(`no statement matches ${re}; ran:\n${all.map((s) => s.sql).join('\n')}`);
  return found;
}
