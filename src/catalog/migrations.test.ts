import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import { CATALOGS, catalogsAvailable } from '../../test/support/catalogs.js';
import { createTestDatabase } from '../../test/support/postgres.js';
import { type CatalogDb, openPostgres, openSqlite } from './database.js';
import { migrateTo, migrateToLatest } from './migrations.js';
import { RecordingRepository } from './recording-repository.js';
import { catalogRecord } from './record.js';
import { HoldRepository, IMPORTED_HOLD } from '../holds/hold-repository.js';
import { retentionStatus } from '../resolve/retention.js';

const AVAILABLE = await catalogsAvailable();

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

  it.skipIf(!AVAILABLE[kind])('0014 turns each imported legal_hold flag into an "imported" hold record and clears the flag', async () => {
    cat = await catalogAt(kind, '0013_jobs_include_metadata');
    const now = '2024-01-01T00:00:00.000Z';
    const row = (id: string, tenant: string, legal_hold: number) => ({ id, tenant_id: tenant, call_id: `call-${id}`, customer_ref: null, conversation_id: null, started_at: null, retention_expiry: '2020-01-01T00:00:00.000Z', legal_hold, created_at: now, updated_at: now });
    // More flagged recordings than one page of the migration, across two tenants.
    const bulk = Array.from({ length: 1100 }, (_, i) => row(`bulk-${String(i).padStart(4, '0')}`, i % 2 ? 'acme' : 'other', 1));
    const recs = [row('h1', 'acme', 1), row('h2', 'other', 1), row('free', 'acme', 0), row('both', 'acme', 1), ...bulk];
    for (let i = 0; i < recs.length; i += 200) await cat.db.insertInto('recordings').values(recs.slice(i, i + 200)).execute();
    const refs = recs.flatMap((r) => [
      { tenant_id: r.tenant_id, value: r.id, kind: 'id', recording_pk: r.id },
      { tenant_id: r.tenant_id, value: r.call_id, kind: 'call_id', recording_pk: r.id },
    ]);
    for (let i = 0; i < refs.length; i += 200) await cat.db.insertInto('recording_refs').values(refs.slice(i, i + 200)).execute();
    const hold = (id: string, recording_pk: string, matter: string) => ({ id, tenant_id: 'acme', recording_pk, matter, reason: 'r', created_by: 'root', created_at: now, released_by: null, released_at: null, release_requested_by: null, release_requested_at: null });
    // h1 has a hold of another matter; "both" already has an active hold named "imported" (placed through the API).
    await cat.db.insertInto('legal_holds').values([hold('00000000-0000-4000-8000-000000000001', 'h1', 'Smith v Acme'), hold('00000000-0000-4000-8000-000000000002', 'both', 'imported')]).execute();

    expect(await migrateToLatest(cat.db, kind)).toContain('0014_imported_holds');

    expect(await cat.db.selectFrom('recordings').select('id').where('legal_hold', '!=', 0).execute()).toEqual([]);
    const imported = await cat.db.selectFrom('legal_holds').selectAll().where('matter', '=', IMPORTED_HOLD.matter).execute();
    const byRec = new Map(imported.map((h) => [h.recording_pk, h]));
    expect(imported).toHaveLength(recs.length - 1); // every flagged recording, "both" keeping the one it had
    expect(byRec.get('both')).toMatchObject({ id: '00000000-0000-4000-8000-000000000002', created_by: 'root' });
    expect(byRec.has('free')).toBe(false);
    for (const r of recs.filter((r) => r.legal_hold && r.id !== 'both')) {
      const h = byRec.get(r.id)!;
      expect(h).toMatchObject({ tenant_id: r.tenant_id, created_by: IMPORTED_HOLD.createdBy, released_at: null, release_requested_by: null });
      expect(h.reason).toMatch(/legal_hold/);
      expect(h.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    }

    const repo = new RecordingRepository(cat.db);
    const h1 = (await repo.findByRef('acme', 'call-h1'))!;
    expect(h1).toMatchObject({ legalHold: true, activeHolds: 2 });
    expect(retentionStatus(h1)).toBe('LEGAL_HOLD');
    expect(retentionStatus((await repo.findByRef('acme', 'call-free'))!)).toBe('EXPIRED');

    // Released by two admins like any hold; the flag no longer holds it, and a re-import of the flag does not either.
    const holds = new HoldRepository(cat.db);
    const h2 = byRec.get('h2')!;
    await holds.release('other', h2.id, 'root');
    await holds.release('other', h2.id, 'carol');
    expect(retentionStatus((await repo.findByRef('other', 'call-h2'))!)).toBe('EXPIRED');
    await repo.upsert(catalogRecord.parse({ tenant_id: 'other', call_id: 'call-h2', source_system: 'avaya_aura', legacy_archive_id: 'L-h2', legal_hold: true }));
    const again = (await repo.findByRef('other', 'call-h2'))!;
    expect(again).toMatchObject({ legalHold: false, activeHolds: 0 });
    expect(retentionStatus(again)).toBe('EXPIRED');
    expect(await cat.db.selectFrom('legal_holds').select('id').where('recording_pk', '=', 'h2').execute()).toEqual([{ id: h2.id }]);
  });
});
