import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeTransaction } from '../src/catalog/database.js';
import type { CatalogRecord } from '../src/catalog/record.js';
import { usableCatalogs } from './support/catalogs.js';
import { KEYS, bearer, startTestGateway, type TestGateway } from './support/gateway.js';
import { raw } from './support/http.js';

const WAV = 'call_mono_pcm16_8k.wav';

/**
 * A hold placed while an import moves the copy it names. The route resolves the ref before its
 * transaction; an import committing in between (or in flight when the route writes) re-links the
 * copy to another call's recording. The hold must land where the copy now is — not on the old
 * recording, which no longer has it (the held audio then served by the dates of a recording no
 * hold names), nor on a recording the import merged away (a foreign-key failure, 500).
 * The interleavings are made deterministic: the import runs inside the route's resolve (between
 * its resolve and its transaction), or holds its transaction open until the route waits on a lock.
 */
describe.each(await usableCatalogs())('a hold placed while an import moves its copy, on %s', (kind) => {
  let gw: TestGateway;
  const record = (r: Partial<CatalogRecord>) => ({ state: 'AVAILABLE', legal_hold: false, source_system: 'avaya_aura', tenant_id: 'acme', locator: WAV, ...r }) as CatalogRecord;
  const placeHold = (ref: string, matter: string) =>
    raw(`${gw.url}/api/v1/recordings/${ref}/holds`, {
      method: 'POST',
      headers: { ...bearer(KEYS.acmeAdmin), 'content-type': 'application/json' },
      body: JSON.stringify({ matter, reason: 'litigation hold' }),
    });
  const idOf = async (ref: string) => (await gw.deps.recordings.findByRef('acme', ref))!.id;
  const activeHolds = async (recordingPk: string) => (await gw.deps.holds.list({ tenantId: 'acme', recordingPk, status: 'active', limit: 100 })).items.map((h) => h.matter);

  /** PostgreSQL: transactions of this test's database waiting on a lock. */
  const waiting = async () =>
    Number(
      (
        await sql<{ n: string }>`select count(*) as n from pg_locks l join pg_stat_activity a on a.pid = l.pid
          where not l.granted and a.datname = current_database()`.execute(gw.catalogDb.db)
      ).rows[0]!.n,
    );
  const until = async (cond: () => Promise<boolean>) => {
    for (let i = 0; i < 400; i++) if (await cond()) return;
    else await new Promise((r) => setTimeout(r, 25));
    throw new Error('timed out waiting');
  };

  /** Runs `between` once, after the route's resolve returns and before its transaction starts. */
  const betweenResolveAndInsert = (between: () => Promise<unknown>) => {
    const resolver = gw.deps.resolver;
    const real = resolver.resolve.bind(resolver);
    resolver.resolve = async (...args) => {
      const out = await real(...args);
      resolver.resolve = real;
      await between();
      return out;
    };
  };

  beforeAll(async () => {
    gw = await startTestGateway({ catalog: kind });
  });
  afterAll(async () => gw?.stop());

  it('an import committing between the resolve and the insert: the hold lands on the recording that now has the copy', async () => {
    await gw.seed([
      { call_id: 'race-1-old', legacy_archive_id: 'race_1_x' },
      { call_id: 'race-1-new', legacy_archive_id: 'race_1_other' },
    ]);
    const old = await idOf('race_1_x');
    const now = await idOf('race-1-new');
    betweenResolveAndInsert(() => gw.deps.recordings.upsertAll([record({ call_id: 'race-1-new', legacy_archive_id: 'race_1_x' })]));

    const res = await placeHold('race_1_x', 'Matter 1');
    expect(res.status, res.body.toString()).toBe(201);
    expect(await idOf('race_1_x')).toBe(now);
    expect(JSON.parse(res.body.toString()).recording_id).toBe(now);
    expect(await activeHolds(now)).toEqual(['Matter 1']);
    // The old recording stays (it has a call id), without the copy and without a hold.
    expect(await activeHolds(old)).toEqual([]);
    const event = await gw.deps.auditRepo.byId(res.headers['x-audit-event-id'] as string);
    expect(event).toMatchObject({ action: 'hold.create', recordingPk: now });
  });

  it('an import merging the recording away between the resolve and the insert: the hold lands on the survivor, not a 500', async () => {
    // No call id and one copy: the import's move absorbs it into the call's recording.
    await gw.seed([{ legacy_archive_id: 'race_2_x' }, { call_id: 'race-2-new', legacy_archive_id: 'race_2_other' }]);
    const absorbed = await idOf('race_2_x');
    const survivor = await idOf('race-2-new');
    betweenResolveAndInsert(() => gw.deps.recordings.upsertAll([record({ call_id: 'race-2-new', legacy_archive_id: 'race_2_x' })]));

    const res = await placeHold(absorbed, 'Matter 2');
    expect(res.status, res.body.toString()).toBe(201);
    expect(JSON.parse(res.body.toString()).recording_id).toBe(survivor);
    expect(await activeHolds(survivor)).toEqual(['Matter 2']);
  });

  // SQLite: writers are serialised (BEGIN IMMEDIATE); the route cannot write while an import is open.
  it.skipIf(kind !== 'postgres')('PostgreSQL: an import in flight when the route writes — the route waits for its commit, then holds the copy where the import put it', async () => {
    await gw.seed([
      { call_id: 'race-3-old', legacy_archive_id: 'race_3_x' },
      { call_id: 'race-3-new', legacy_archive_id: 'race_3_other' },
    ]);
    const old = await idOf('race_3_x');
    const now = await idOf('race-3-new');
    const db = gw.catalogDb.db;
    let commit!: () => void;
    const gate = new Promise<void>((r) => (commit = r));
    let moved!: () => void;
    const copyMoved = new Promise<void>((r) => (moved = r));
    const importing = writeTransaction(db, async (trx) => {
      await gw.deps.recordings.upsertAllIn(trx, [record({ call_id: 'race-3-new', legacy_archive_id: 'race_3_x' })]);
      moved();
      await gate;
    });
    await copyMoved;

    const placing = placeHold('race_3_x', 'Matter 3');
    // The route is waiting on a lock the open import holds (whichever: it must not write past it).
    await until(async () => (await waiting()) > 0);
    commit();
    await importing;

    const res = await placing;
    expect(res.status, res.body.toString()).toBe(201);
    expect(JSON.parse(res.body.toString()).recording_id).toBe(now);
    expect(await activeHolds(now)).toEqual(['Matter 3']);
    expect(await activeHolds(old)).toEqual([]);
  });

  it.skipIf(kind !== 'postgres')('PostgreSQL: a hold placed before an in-flight import reaches the copy is followed by it (the import waits for the route)', async () => {
    await gw.seed([
      { call_id: 'race-4-old', legacy_archive_id: 'race_4_x' },
      { call_id: 'race-4-new', legacy_archive_id: 'race_4_other' },
    ]);
    const old = await idOf('race_4_x');
    const now = await idOf('race-4-new');
    // The route's transaction is open, its hold written, its commit not yet made: an import of the copy starts then.
    let importing: Promise<unknown> | undefined;
    const repo = gw.deps.holds;
    const realCreateIn = repo.createIn.bind(repo);
    repo.createIn = async (trx, h) => {
      repo.createIn = realCreateIn;
      const out = await realCreateIn(trx, h);
      importing = gw.deps.recordings.upsertAll([record({ call_id: 'race-4-new', legacy_archive_id: 'race_4_x' })]);
      await until(async () => (await waiting()) > 0);
      return out;
    };
    const res = await placeHold('race_4_x', 'Matter 4');
    expect(res.status, res.body.toString()).toBe(201);
    expect(JSON.parse(res.body.toString()).recording_id).toBe(old);
    await importing;
    // The import read the holds after the route committed: the hold followed the copy.
    expect(await activeHolds(old)).toEqual(['Matter 4']);
    expect(await activeHolds(now)).toEqual(['Matter 4']);
  });
});
