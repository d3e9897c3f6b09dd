import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { catalogAvailable } from '../../test/support/catalogs.js';
import { createTestDatabase } from '../../test/support/postgres.js';
import { Resolver } from '../resolve/resolver.js';
import { type CatalogDb, openPostgres } from './database.js';
import { migrateToLatest } from './migrations.js';
import { type CatalogRecord, catalogRecord } from './record.js';
import { RecordingRepository } from './recording-repository.js';

const PG = await catalogAvailable('postgres');
const rec = (fields: Record<string, unknown>): CatalogRecord => catalogRecord.parse(fields);
const reasons = (rs: PromiseSettledResult<unknown>[]) => rs.flatMap((r) => (r.status === 'rejected' ? [`${(r.reason as { code?: string }).code} ${(r.reason as Error).message}`] : []));

/**
 * Two instances (two pools on one PostgreSQL) creating the same new recording at once. Each reads
 * "absent" and inserts; without the chunk's advisory locks the second commit failed with 23505
 * (recordings_tenant_call, copies_natural_key). SQLite serialises its writers (BEGIN IMMEDIATE).
 */
describe.skipIf(!PG)('RecordingRepository on postgres: two instances creating the same recording at once', () => {
  let drop: () => Promise<void>;
  let a: CatalogDb;
  let b: CatalogDb;
  beforeAll(async () => {
    const tdb = await createTestDatabase();
    drop = tdb.drop;
    a = openPostgres(tdb.url, 5);
    b = openPostgres(tdb.url, 5);
    await migrateToLatest(a.db, 'postgres');
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
    await drop?.();
  });

  const recordingsOf = async (tenant: string) => a.db.selectFrom('recordings').select(['id', 'call_id']).where('tenant_id', '=', tenant).execute();
  const copiesOf = async (tenant: string) => a.db.selectFrom('recording_copies').select(['id', 'recording_pk']).where('tenant_id', '=', tenant).execute();

  it('same call id and copy: no rejection, one recording per call id, one copy', async () => {
    const ra = new RecordingRepository(a.db);
    const rb = new RecordingRepository(b.db);
    const failures: string[] = [];
    for (let i = 0; i < 20; i++) {
      const r = rec({ tenant_id: 'acme', call_id: `call-${i}`, source_system: 'genesys_cloud', recording_id: `rec-${i}`, conversation_id: `conv-${i}` });
      failures.push(...reasons(await Promise.allSettled([ra.upsertAll([r]), rb.upsertAll([r])])));
    }
    expect(failures).toEqual([]);
    const recs = await recordingsOf('acme');
    expect(recs).toHaveLength(20);
    expect(new Set(recs.map((r) => r.call_id)).size).toBe(20);
    expect(await copiesOf('acme')).toHaveLength(20);
  });

  it('same copy natural key without a call id: no rejection, one recording, one copy', async () => {
    const ra = new RecordingRepository(a.db);
    const rb = new RecordingRepository(b.db);
    const failures: string[] = [];
    for (let i = 0; i < 20; i++) {
      const r = rec({ tenant_id: 'nokey', source_system: 'avaya_aura', legacy_archive_id: `inum-${i}`, locator: `l/${i}.wav` });
      failures.push(...reasons(await Promise.allSettled([ra.upsert(r), rb.upsert(r)])));
    }
    expect(failures).toEqual([]);
    expect(await recordingsOf('nokey')).toHaveLength(20);
    expect(await copiesOf('nokey')).toHaveLength(20);
  });

  it('chunks sharing keys in different orders do not deadlock', async () => {
    const ra = new RecordingRepository(a.db);
    const rb = new RecordingRepository(b.db);
    const batch = Array.from({ length: 300 }, (_, i) => rec({ tenant_id: 'order', call_id: `c-${i}`, source_system: 'genesys_cloud', recording_id: `r-${i}`, conversation_id: `cv-${i}` }));
    const failures = reasons(await Promise.allSettled([ra.upsertAll(batch), rb.upsertAll([...batch].reverse()), ra.upsertAll(batch.filter((_, i) => i % 2 === 0))]));
    expect(failures).toEqual([]);
    expect(await recordingsOf('order')).toHaveLength(300);
    expect(await copiesOf('order')).toHaveLength(300);
  });

  it('an import (bulk lock) racing per-key writers of the same new recordings: no rejection, nothing doubled', async () => {
    const ra = new RecordingRepository(a.db);
    const rb = new RecordingRepository(b.db);
    // 2500 records: a first chunk of 2000 (4000 keys, past the per-key budget: the bulk lock), then 500.
    const batch = Array.from({ length: 2500 }, (_, i) => rec({ tenant_id: 'bulk', call_id: `b-${i}`, source_system: 'avaya_aura', legacy_archive_id: `inum-${i}` }));
    const singles = [0, 1999, 2000, 2499, 1234].map((i) => rb.upsert(batch[i]!));
    const failures = reasons(await Promise.allSettled([ra.upsertAll(batch), ...singles, rb.upsertAll(batch.slice(100, 400))]));
    expect(failures).toEqual([]);
    expect(await recordingsOf('bulk')).toHaveLength(2500);
    expect(await copiesOf('bulk')).toHaveLength(2500);
  });

  it('an import far past the lock table fits (one bulk lock, not one per key)', async () => {
    const batch = Array.from({ length: 20_000 }, (_, i) => rec({ tenant_id: 'big', call_id: `g-${i}`, source_system: 'avaya_aura', legacy_archive_id: `inum-${i}` }));
    const counts = await new RecordingRepository(a.db).upsertAll(batch);
    expect(counts.inserted).toBe(20_000);
  });

  it('two self-heals of the same unknown ref (finder write-back) return the same recording', async () => {
    for (let i = 0; i < 20; i++) {
      const found = { source_system: 'genesys_cloud', call_id: `heal-${i}`, recording_id: `hrec-${i}`, conversation_id: `hconv-${i}` };
      const finder = { name: 'genesys', find: async () => [rec({ tenant_id: 'heal', ...found })] };
      const resA = new Resolver(new RecordingRepository(a.db), () => [finder]);
      const resB = new Resolver(new RecordingRepository(b.db), () => [finder]);
      const signal = new AbortController().signal;
      const rs = await Promise.allSettled([resA.resolve('heal', `hconv-${i}`, signal), resB.resolve('heal', `hconv-${i}`, signal)]);
      expect(reasons(rs)).toEqual([]);
      const [x, y] = rs.map((r) => (r as PromiseFulfilledResult<Awaited<ReturnType<Resolver['resolve']>>>).value.recording);
      expect(x!.id).toBe(y!.id);
      expect(x!.copies).toHaveLength(1);
    }
    expect(await recordingsOf('heal')).toHaveLength(20);
  });
});
