import { type Kysely, SqliteAdapter, sql } from 'kysely';
import type { Database } from '../catalog/tables.js';
import type { ApplyItem, SyncContext } from './apply.js';

/** A catalog copy the source no longer has. */
export interface GoneCopy {
  source_system: string;
  source_key: string;
  legacy_archive_id: string | null;
  locator: string | null;
}

/**
 * Locators compare in byte order, as the walk orders them (PostgreSQL would use the database's
 * collation). Index copies_locator (migration 0012) is in that collation: change both together.
 */
export function locatorRef(db: Kysely<Database>) {
  return db.getExecutor().adapter instanceof SqliteAdapter ? sql<string>`c.locator` : sql<string>`c.locator collate "C"`;
}

/**
 * Live copies (not DELETED) of this source and source_system whose locator lies in (after, through]
 * (either bound open when null) and starts with `prefix`: what a walk of that range must have seen.
 */
export async function copiesInLocatorRange(ctx: SyncContext, sourceSystem: string, prefix: string, after: string | null, through: string | null): Promise<GoneCopy[]> {
  let q = ctx.db
    .selectFrom('recording_copies as c')
    .select(['c.source_system', 'c.source_key', 'c.legacy_archive_id', 'c.locator'])
    .where('c.tenant_id', '=', ctx.tenantId)
    .where('c.connector', '=', ctx.source)
    .where('c.source_system', '=', sourceSystem)
    .where('c.state', '!=', 'DELETED')
    // Also what lets SQLite use the partial index copies_locator (`where locator is not null`).
    .where('c.locator', 'is not', null);
  const loc = locatorRef(ctx.db);
  if (after !== null) q = q.where(loc, '>', after);
  if (through !== null) q = q.where(loc, '<=', through);
  if (prefix) {
    q = q.where(loc, '>=', prefix);
    // Bounded above too: the last call of a prefixed walk (no `through`) read every copy of the
    // source system from the prefix to the end of copies_locator and dropped the rest here.
    const end = afterPrefix(prefix);
    if (end !== null) q = q.where(loc, '<', end);
  }
  const rows = await q.execute();
  return rows.filter((r) => r.locator!.startsWith(prefix));
}

/**
 * The least string above every string that starts with `prefix`, in code point order — which is
 * UTF-8 byte order, SQLite's BINARY and PostgreSQL's "C" — or null when there is none (a prefix
 * of U+10FFFF only). The last code point is raised by one (past the surrogates, which UTF-8 lacks).
 */
export function afterPrefix(prefix: string): string | null {
  const cps = [...prefix];
  while (cps.length) {
    const last = cps.pop()!.codePointAt(0)!;
    if (last < 0x10ffff) return cps.join('') + String.fromCodePoint(last + 1 === 0xd800 ? 0xe000 : last + 1);
  }
  return null;
}

/** Live copies of this source and source_system whose recorded start (sync_facts) lies in [from, to). */
export async function copiesStartedIn(ctx: SyncContext, sourceSystem: string, from: string, to: string): Promise<GoneCopy[]> {
  return ctx.db
    .selectFrom('recording_copies as c')
    .innerJoin('sync_facts as f', (j) => j.onRef('f.tenant_id', '=', 'c.tenant_id').onRef('f.source_system', '=', 'c.source_system').onRef('f.source_key', '=', 'c.source_key'))
    .select(['c.source_system', 'c.source_key', 'c.legacy_archive_id', 'c.locator'])
    .where('c.tenant_id', '=', ctx.tenantId)
    .where('c.connector', '=', ctx.source)
    .where('c.source_system', '=', sourceSystem)
    .where('c.state', '!=', 'DELETED')
    .where('f.started_at', '>=', from)
    .where('f.started_at', '<', to)
    .execute();
}

/** Items marking gone copies DELETED (never removed): the natural key is rebuilt so the same copy row is updated and the change audited old → new. */
export function deletedItems(ctx: SyncContext, gone: GoneCopy[], why: string): ApplyItem[] {
  // A key that is neither the copy's archive id nor its locator cannot be named without changing another column: left alone.
  return gone
    .filter((g) => g.legacy_archive_id === g.source_key || g.locator === g.source_key)
    .map((g) => ({
      origin: `${g.locator ?? g.source_key} (${why})`,
      record: {
        source_system: g.source_system,
        connector: ctx.source,
        ...(g.legacy_archive_id === g.source_key ? { legacy_archive_id: g.source_key } : { locator: g.source_key }),
        state: 'DELETED',
      },
    }));
}
