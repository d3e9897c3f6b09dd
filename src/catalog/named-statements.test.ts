import { Kysely, PostgresDialect, sql } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiKeyService } from '../access/api-keys.js';
import { createTestDatabase, PG_ADMIN_URL, postgresAvailable } from '../../test/support/postgres.js';
import { type CatalogDb, openPostgres } from './database.js';
import { migrateToLatest } from './migrations.js';
import { preparedMarker, withNamedStatements } from './named-statements.js';
import { catalogRecord } from './record.js';
import { RecordingRepository } from './recording-repository.js';
import type { Database } from './tables.js';

const available = await postgresAvailable();

/** The prepared statements of the one connection a pool of size 1 holds, and that connection's pid. */
async function prepared(db: Kysely<Database>): Promise<{ pid: number; names: Map<string, number> }> {
  const { rows } = await sql<{ pid: number; name: string | null; runs: number | null }>`
    select pg_backend_pid() as pid, p.name, p.generic_plans + p.custom_plans as runs
    from (select 1) one left join pg_prepared_statements p on true`.execute(db);
  return { pid: rows[0]!.pid, names: new Map(rows.filter((r) => r.name !== null).map((r) => [r.name!, Number(r.runs)])) };
}

const runsOf = (names: Map<string, number>, prefix: string) => [...names].filter(([n]) => n.startsWith(prefix)).map(([, runs]) => runs);

describe.skipIf(!available)('named statements on PostgreSQL', () => {
  let drop: () => Promise<void>;
  let url: string;
  let cat: CatalogDb;
  let repo: RecordingRepository;

  beforeAll(async () => {
    ({ url, drop } = await createTestDatabase());
    // One connection: every query below runs on the connection whose statements it inspects.
    cat = openPostgres(url, 1);
    await migrateToLatest(cat.db, 'postgres');
    repo = new RecordingRepository(cat.db);
    const rec = (f: Record<string, unknown>) => catalogRecord.parse({ source_system: 'avaya_aura', ...f });
    await repo.upsertAll([
      rec({ tenant_id: 'a', call_id: 'call-1', legacy_archive_id: 'L-1', customer_ref: 'SHARED' }),
      rec({ tenant_id: 'a', call_id: 'call-2', legacy_archive_id: 'L-2', customer_ref: 'SHARED' }),
      rec({ tenant_id: 'b', call_id: 'call-1', legacy_archive_id: 'L-1' }),
    ]);
  });

  afterAll(async () => {
    await cat?.close().catch(() => {});
    await drop?.();
  });

  it('prepares the lookup once per connection and keeps its answers through the generic plan', async () => {
    const a1 = (await repo.findByRef('a', 'call-1'))!;
    const b1 = (await repo.findByRef('b', 'call-1'))!;
    expect(a1.id).not.toBe(b1.id);
    // PostgreSQL moves to a generic plan after five executions: the answers must not change.
    for (let i = 0; i < 8; i++) {
      expect((await repo.findByRef('a', 'L-1'))?.id).toBe(a1.id);
      expect((await repo.findByRef('b', 'L-1'))?.id).toBe(b1.id);
      expect(await repo.findByRef('b', 'L-2')).toBeNull();
      expect(await repo.findByRef('a', 'nope')).toBeNull();
      await expect(repo.findByRef('a', 'SHARED')).rejects.toMatchObject({ code: 'recording.ambiguous_ref' });
      expect((await repo.get('a', a1.id))?.callId).toBe('call-1');
      expect(await repo.get('b', a1.id)).toBeNull();
    }
    const { names } = await prepared(cat.db);
    // One server-side statement per lookup shape, run every time (5 × 8 + 2 by ref, 2 × 8 by id).
    expect(runsOf(names, 'catalog_lookup_ref_')).toEqual([42]);
    expect(runsOf(names, 'catalog_lookup_id_')).toEqual([16]);
    // Unmarked statements (this one, the upserts) stay unnamed.
    expect(names.size).toBe(2);
  });

  it('prepares again on a connection the pool opens after the old one was closed', async () => {
    const before = await prepared(cat.db);
    const admin = new pg.Client({ connectionString: PG_ADMIN_URL });
    await admin.connect();
    try {
      await admin.query('select pg_terminate_backend($1)', [before.pid]);
    } finally {
      await admin.end();
    }
    // The idle client learns of its end by an error event; the pool then drops it.
    const pool = cat.pgPool!;
    for (let i = 0; i < 100 && pool.totalCount > 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(pool.totalCount).toBe(0);
    expect((await repo.findByRef('a', 'call-2'))?.callId).toBe('call-2');
    const after = await prepared(cat.db);
    expect(after.pid).not.toBe(before.pid);
    expect(runsOf(after.names, 'catalog_lookup_ref_')).toEqual([1]);
  });

  it('prepares the API key lookup too, and still refuses a revoked key', async () => {
    const keys = new ApiKeyService(cat.db, []);
    const issued = await keys.issue('a', 'alice', ['recordings:read']);
    for (let i = 0; i < 3; i++) expect((await keys.authenticate(issued.key)).id).toBe('alice');
    await keys.revoke(issued.id);
    await expect(keys.authenticate(issued.key)).rejects.toMatchObject({ code: 'auth.invalid_token' });
    expect(runsOf((await prepared(cat.db)).names, 'api_key_by_id_')).toEqual([4]);
  });

  it('survives a column added to recordings after the lookup was prepared', async () => {
    expect((await repo.findByRef('a', 'call-1'))?.callId).toBe('call-1');
    await sql`alter table recordings add column scratch_note text`.execute(cat.db);
    try {
      expect((await repo.findByRef('a', 'call-1'))?.callId).toBe('call-1');
    } finally {
      await sql`alter table recordings drop column scratch_note`.execute(cat.db);
    }
  });

  it('names only marked statements, one name per text, and none past max', async () => {
    const pool = new pg.Pool({ connectionString: url, max: 1 });
    const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool: withNamedStatements(pool, 2) }) });
    try {
      const m = sql.raw(preparedMarker('t_same'));
      expect((await sql<{ x: number }>`${m} select ${1}::int as x`.execute(db)).rows).toEqual([{ x: 1 }]);
      // The same marker on another text: its own name, not pg's "Prepared statements must be unique".
      expect((await sql<{ y: number }>`${m} select ${2}::int as y`.execute(db)).rows).toEqual([{ y: 2 }]);
      await sql`${sql.raw(preparedMarker('t_over'))} select 3`.execute(db); // third text, max 2: unnamed
      await sql`select 4`.execute(db);
      const { names } = await prepared(db);
      expect([...names.keys()].map((n) => n.replace(/_[0-9a-f]{12}$/, '')).sort()).toEqual(['t_same', 't_same']);
    } finally {
      await db.destroy();
    }
    expect(() => preparedMarker('Bad Name */ drop')).toThrow();
  });
});
