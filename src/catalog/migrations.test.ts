import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import { CATALOGS, catalogAvailable } from '../../test/support/catalogs.js';
import { createTestDatabase } from '../../test/support/postgres.js';
import { type CatalogDb, openPostgres, openSqlite } from './database.js';
import { migrateTo, migrateToLatest } from './migrations.js';
import { RecordingRepository } from './recording-repository.js';

const AVAILABLE: Record<string, boolean> = {};
for (const k of CATALOGS) AVAILABLE[k] = await catalogAvailable(k);

/** A catalog migrated up to `name` only, so a later migration can be run over rows written before it. */
async function catalogAt(kind: 'sqlite' | 'postgres', name: string): Promise<CatalogDb & { dispose(): Promise<void> }> {
  if (kind === 'sqlite') {
    const dir = mkdtempSync(join(tmpdir(), 'custodian-mig-'));
    const cat = openSqlite(join(dir, 'catalog.sqlite'));
    await migrateTo(cat.db, 'sqlite', name);
    return { ...cat, dispose: async () => (await cat.close(), rmSync(dir, { recursive: true, force: true })) };
  }
  const tdb = await createTestDatabase();
  const cat = openPostgres(tdb.url, 2);
  await migrateTo(cat.db, 'postgres', name);
  return { ...cat, dispose: async () => (await cat.close(), await tdb.drop()) };
}

describe.each(CATALOGS)('migrations (%s)', (kind) => {
  let cat: (CatalogDb & { dispose(): Promise<void> }) | undefined;
  afterEach(async () => {
    await cat?.dispose();
    cat = undefined;
  });

  it.skipIf(!AVAILABLE[kind])('0010 re-keys recording_refs by value and keeps every existing ref', async () => {
    cat = await catalogAt(kind, '0009_evidence_jobs');
    const now = '2024-01-01T00:00:00.000Z';
    const recs = ['r1', 'r2'].map((id) => ({ id, tenant_id: 'acme', call_id: `call-${id}`, customer_ref: null, conversation_id: null, started_at: null, retention_expiry: null, legal_hold: 0, created_at: now, updated_at: now }));
    await cat.db.insertInto('recordings').values(recs).execute();
    await cat.db.insertInto('recordings').values({ ...recs[0]!, id: 'o1', tenant_id: 'other' }).execute();
    const refs = [
      { tenant_id: 'acme', value: 'r1', kind: 'id', recording_pk: 'r1' },
      { tenant_id: 'acme', value: 'call-r1', kind: 'call_id', recording_pk: 'r1' },
      { tenant_id: 'acme', value: 'SHARED', kind: 'customer_ref', recording_pk: 'r1' },
      { tenant_id: 'acme', value: 'r2', kind: 'id', recording_pk: 'r2' },
      { tenant_id: 'acme', value: 'SHARED', kind: 'customer_ref', recording_pk: 'r2' },
      { tenant_id: 'other', value: 'call-r1', kind: 'call_id', recording_pk: 'o1' },
    ];
    await cat.db.insertInto('recording_refs').values(refs).execute();

    expect(await migrateToLatest(cat.db, kind)).toContain('0010_refs_by_value');

    const after = await cat.db.selectFrom('recording_refs').selectAll().execute();
    const key = (r: (typeof refs)[number]) => `${r.tenant_id}|${r.value}|${r.kind}|${r.recording_pk}`;
    expect(after.map(key).sort()).toEqual(refs.map(key).sort());
    const repo = new RecordingRepository(cat.db);
    expect((await repo.findByRef('acme', 'call-r1'))?.id).toBe('r1');
    expect((await repo.findByRef('other', 'call-r1'))?.id).toBe('o1');
    await expect(repo.findByRef('acme', 'SHARED')).rejects.toMatchObject({ code: 'recording.ambiguous_ref' });
    expect(await repo.otherTenantsHoldingRef('call-r1', 'acme')).toEqual(['other']);
    // The key is still the uniqueness rule, and deleting a recording still takes its refs along.
    await expect(cat.db.insertInto('recording_refs').values(refs[0]!).execute()).rejects.toThrow();
    await cat.db.deleteFrom('recordings').where('id', '=', 'r2').execute();
    expect((await cat.db.selectFrom('recording_refs').select('value').where('recording_pk', '=', 'r2').execute()).length).toBe(0);
    // refs_value is gone: the key starts with the value.
    const indexes =
      kind === 'sqlite'
        ? (await sql<{ name: string }>`select name from sqlite_master where type = 'index' and tbl_name = 'recording_refs'`.execute(cat.db)).rows
        : (await sql<{ name: string }>`select indexname as name from pg_indexes where tablename = 'recording_refs'`.execute(cat.db)).rows;
    expect(indexes.map((i) => i.name)).not.toContain('refs_value');
    expect(indexes.map((i) => i.name)).toContain('refs_recording');
  });
});
