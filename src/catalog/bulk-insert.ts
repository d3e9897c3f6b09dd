import { CompiledQuery, type Kysely, SqliteAdapter } from 'kysely';
import type { Database } from './tables.js';

type Table = 'recordings' | 'recording_copies' | 'recording_refs';

/** Parameters per statement: far below SQLite's 32 766 and PostgreSQL's 65 535. */
const MAX_PARAMS = 8192;

const texts = new Map<string, string>();

/**
 * Inserts many rows of one table with multi-row INSERTs whose SQL text is built once per shape
 * and passed to the driver as is: kysely building and compiling a query of thousands of values
 * per batch cost more than the insert itself. Batches hold a power of two of rows (the largest
 * that fits MAX_PARAMS, then smaller ones for the rest), so one table has at most a dozen
 * distinct statements: on SQLite each is prepared once and kept by the statement cache
 * (statement-cache.ts) instead of being prepared again for every chunk of an import.
 * `ignoreConflicts` is ON CONFLICT DO NOTHING (refs that already exist).
 */
export async function insertRows<R extends object>(db: Kysely<Database>, table: Table, columns: readonly (keyof R & string)[], rows: readonly R[], ignoreConflicts = false): Promise<void> {
  const sqlite = db.getExecutor().adapter instanceof SqliteAdapter;
  const most = 2 ** Math.floor(Math.log2(MAX_PARAMS / columns.length));
  for (let i = 0; i < rows.length; ) {
    const n = Math.min(most, 2 ** Math.floor(Math.log2(rows.length - i)));
    const params: unknown[] = [];
    for (let k = i; k < i + n; k++) for (const c of columns) params.push((rows[k]![c] as unknown) ?? null);
    await db.executeQuery(CompiledQuery.raw(multiRowInsertText(sqlite, table, columns, n, ignoreConflicts ? ' on conflict do nothing' : ''), params));
    i += n;
  }
}

/**
 * `insert into <table> (<columns>) values (…), (…) <tail>` for n rows, with SQLite's `?` or
 * PostgreSQL's `$n` placeholders; the text is built once per shape and kept (also used by the
 * audit trail's group append, whose tail is its RETURNING).
 */
export function multiRowInsertText(sqlite: boolean, table: string, columns: readonly string[], n: number, tail = ''): string {
  const key = `${sqlite}|${table}|${columns.join(',')}|${n}|${tail}`;
  let text = texts.get(key);
  if (!text) {
    let p = 0;
    const row = () => `(${columns.map(() => (sqlite ? '?' : `$${++p}`)).join(', ')})`;
    text = `insert into ${table} (${columns.join(', ')}) values ${Array.from({ length: n }, row).join(', ')}${tail}`;
    texts.set(key, text);
  }
  return text;
}
