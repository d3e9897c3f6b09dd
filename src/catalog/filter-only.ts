import { type Kysely, type RawBuilder, SqliteAdapter, sql } from 'kysely';

/**
 * A column to compare in a WHERE clause that must filter rows but never pick the index. On
 * SQLite it is written `+column`, SQLite's own way to keep a term away from index selection; on
 * PostgreSQL it is the plain column (its planner has statistics).
 *
 * Custodian never runs ANALYZE, so SQLite plans every catalog without statistics, and then it
 * guesses that `tenant_id = ?` on an index whose first column is tenant_id matches 10 rows, while
 * `id IN (… 500 ids)` on the primary key matches 500. It chose to read every row of the tenant and
 * test each against the list. For a key list already scoped to the tenant, the tenant comparison
 * stays as a check (every query is scoped by tenant) and the list drives the search.
 */
export function filterOnly<DB>(db: Kysely<DB>, column: string): RawBuilder<string> {
  return db.getExecutor().adapter instanceof SqliteAdapter ? sql<string>`+${sql.ref(column)}` : sql<string>`${sql.ref(column)}`;
}
