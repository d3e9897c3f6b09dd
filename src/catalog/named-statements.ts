import { createHash } from 'node:crypto';
import type { PostgresPool, PostgresPoolClient } from 'kysely';
import type pg from 'pg';

const PREFIX = '/* prepared:';
const MARKER_RE = /^\/\* prepared:([a-z][a-z0-9_]*) \*\//;

/**
 * The comment that opts a statement into being prepared once per PostgreSQL connection. Put it
 * first in the SQL text of a hot statement whose text never varies (no IN-lists of varying
 * length): each distinct text becomes a server-side statement on every pooled connection, kept
 * until the connection closes. SQLite ignores it (its statements are kept by statement-cache.ts).
 */
export function preparedMarker(name: string): string {
  const marker = `${PREFIX}${name} */`;
  if (!MARKER_RE.test(marker)) throw new Error(`prepared statement name "${name}": lower case letters, digits and _`);
  return marker;
}

/**
 * A pg pool behind kysely in which statements carrying `preparedMarker` are sent as named
 * statements. Kysely's PostgresDriver sends every query unnamed, so PostgreSQL parses and plans it
 * each time; for the catalog lookup that planning cost more than running it. pg prepares a named
 * statement on the first use on a connection and then sends only Bind/Execute; a connection the
 * pool replaces starts empty and prepares again (pg tracks what each connection has parsed).
 *
 * The name carries a hash of the text: pg refuses one name for two texts on a connection, so two
 * statements given the same marker by mistake get two names instead of failing. Past `max`
 * distinct texts, statements go unnamed: a marker on a varying text must not grow every
 * connection's server-side memory without bound.
 */
export function withNamedStatements(pool: pg.Pool, max = 32): PostgresPool {
  const names = new Map<string, string>();
  const nameOf = (text: string): string | undefined => {
    if (!text.startsWith(PREFIX)) return undefined;
    let name = names.get(text);
    if (name === undefined && names.size < max) {
      const m = MARKER_RE.exec(text);
      if (!m) return undefined;
      name = `${m[1]}_${createHash('sha256').update(text).digest('hex').slice(0, 12)}`;
      names.set(text, name);
    }
    return name;
  };
  // Kysely keeps one connection object per client it is handed (a WeakMap keyed by the client):
  // one wrapper per pg client keeps that so.
  const wrappers = new WeakMap<pg.PoolClient, PostgresPoolClient>();
  const wrap = (client: pg.PoolClient): PostgresPoolClient => {
    let w = wrappers.get(client);
    if (!w) {
      const query = (q: unknown, values?: readonly unknown[]): unknown => {
        if (typeof q !== 'string') return client.query(q as pg.Submittable); // a cursor
        const name = nameOf(q);
        return name ? client.query({ name, text: q, values: values as unknown[] }) : client.query(q, values as unknown[]);
      };
      w = { query: query as PostgresPoolClient['query'], release: (destroy?: boolean) => client.release(destroy) };
      wrappers.set(client, w);
    }
    return w;
  };
  return {
    connect: async () => wrap(await pool.connect()),
    end: () => pool.end(),
  };
}
