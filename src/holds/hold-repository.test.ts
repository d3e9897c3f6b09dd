import { type KyselyPlugin, sql } from 'kysely';
import { writeTransaction } from '../catalog/database.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openTestCatalog, usableCatalogs, type TestCatalog } from '../../test/support/catalogs.js';
import { catalogRecord } from '../catalog/record.js';
import { RecordingRepository } from '../catalog/recording-repository.js';
import { retentionStatus } from '../resolve/retention.js';
import { HoldRepository, IMPORTED_HOLD } from './hold-repository.js';

let n = 0;
const tenant = () => `h${++n}-${Math.random().toString(36).slice(2, 7)}`;

describe.each(await usableCatalogs())('HoldRepository on %s', (kind) => {
  let cat: TestCatalog;
  let holds: HoldRepository;
  let recordings: RecordingRepository;
  beforeAll(async () => {
    cat = await openTestCatalog(kind);
    holds = new HoldRepository(cat.db);
    recordings = new RecordingRepository(cat.db);
  });
  afterAll(async () => cat?.dispose());

  async function recording(t: string, callId: string, extra: Record<string, unknown> = {}) {
    await recordings.upsert(catalogRecord.parse({ tenant_id: t, call_id: callId, source_system: 'avaya_aura', legacy_archive_id: `L-${callId}`, retention_expiry: '2020-01-01T00:00:00Z', ...extra }));
    return (await recordings.findByRef(t, callId))!;
  }

  it('a hold makes an expired recording LEGAL_HOLD in every read, until it is released by two admins', async () => {
    const t = tenant();
    const r = await recording(t, 'c1');
    expect(retentionStatus(r)).toBe('EXPIRED');
    const h = await holds.create({ tenantId: t, recordingPk: r.id, matter: 'Smith v Acme', reason: 'litigation', createdBy: 'root' });
    expect(h).toMatchObject({ status: 'active', matter: 'Smith v Acme', createdBy: 'root', releasedAt: null });
    const held = (await recordings.get(t, r.id))!;
    expect(held.activeHolds).toBe(1);
    expect(held.legalHold).toBe(true); // held: an active hold record (the catalog's flag column no longer holds anything)
    expect(retentionStatus(held)).toBe('LEGAL_HOLD');
    expect(retentionStatus((await recordings.search({ tenantId: t, limit: 10 })).items[0]!)).toBe('LEGAL_HOLD');

    expect(await holds.release(t, h.id, 'root')).toMatchObject({ step: 'release_requested', hold: { status: 'release_requested', releaseRequestedBy: 'root' } });
    // Requested is not released: still held.
    expect(retentionStatus((await recordings.get(t, r.id))!)).toBe('LEGAL_HOLD');
    await expect(holds.release(t, h.id, 'root')).rejects.toMatchObject({ code: 'hold.second_admin_required', status: 409 });
    expect(await holds.release(t, h.id, 'admin2')).toMatchObject({ step: 'released', hold: { status: 'released', releasedBy: 'admin2' } });
    await expect(holds.release(t, h.id, 'admin3')).rejects.toMatchObject({ code: 'hold.already_released' });
    expect(retentionStatus((await recordings.get(t, r.id))!)).toBe('EXPIRED');
    expect(await holds.get(t, h.id)).toMatchObject({ status: 'released', releaseRequestedBy: 'root', releasedBy: 'admin2' });
  });

  it('is tenant-scoped, refuses a second active hold for the same matter, lists by status with keyset pages', async () => {
    const t = tenant();
    const r = await recording(t, 'c2');
    const a = await holds.create({ tenantId: t, recordingPk: r.id, matter: 'M-1', reason: 'r', createdBy: 'root' });
    await expect(holds.create({ tenantId: t, recordingPk: r.id, matter: 'M-1', reason: 'again', createdBy: 'root' })).rejects.toMatchObject({ code: 'hold.duplicate' });
    const b = await holds.create({ tenantId: t, recordingPk: r.id, matter: 'M-2', reason: 'r', createdBy: 'root' });
    const others = await Promise.all(Array.from({ length: 5 }, (_, i) => holds.create({ tenantId: t, recordingPk: r.id, matter: `M-x${i}`, reason: 'r', createdBy: 'root' })));
    expect(await holds.get('someone-else', a.id)).toBeNull();
    await expect(holds.release('someone-else', a.id, 'root')).rejects.toMatchObject({ code: 'hold.not_found' });
    await holds.release(t, a.id, 'root');
    await holds.release(t, a.id, 'admin2');
    // Released, the matter may be held again.
    await holds.create({ tenantId: t, recordingPk: r.id, matter: 'M-1', reason: 'reopened', createdBy: 'root' });
    expect((await holds.list({ tenantId: t, status: 'released', limit: 10 })).items.map((h) => h.id)).toEqual([a.id]);
    const active = (await holds.list({ tenantId: t, status: 'active', limit: 100 })).items;
    expect(active).toHaveLength(7);
    expect(active.map((h) => h.id)).toContain(b.id);
    const seen: string[] = [];
    let after: { createdAt: string; id: string } | undefined;
    for (;;) {
      const page = await holds.list({ tenantId: t, limit: 3, ...(after ? { after } : {}) });
      seen.push(...page.items.map((h) => h.id));
      if (!page.next) break;
      after = page.next;
    }
    expect(seen.sort()).toEqual([a, b, ...others].map((h) => h.id).concat(active.find((h) => h.reason === 'reopened')!.id).sort());
    expect((await holds.activeCounts(t, [r.id])).get(r.id)).toBe(7);
    expect((await holds.list({ tenantId: 'nobody', limit: 10 })).items).toEqual([]);
  });

  it('two admins confirming at once release once; a hold is never deleted, and follows its recording through a catalog merge', async () => {
    const t = tenant();
    const r = await recording(t, 'c3');
    const h = await holds.create({ tenantId: t, recordingPk: r.id, matter: 'M', reason: 'r', createdBy: 'root' });
    await holds.release(t, h.id, 'root');
    const results = await Promise.allSettled([holds.release(t, h.id, 'a2'), holds.release(t, h.id, 'a3')]);
    expect(results.filter((x) => x.status === 'fulfilled')).toHaveLength(1);
    expect(results.filter((x) => x.status === 'rejected').map((x) => (x as PromiseRejectedResult).reason.code)).toEqual(['hold.already_released']);
    await expect(cat.db.deleteFrom('legal_holds').where('id', '=', h.id).execute()).rejects.toThrow(/never deleted/);
    // A held recording cannot be deleted from the catalog either.
    await expect(cat.db.deleteFrom('recordings').where('id', '=', r.id).execute()).rejects.toThrow();
    if (kind === 'postgres') await expect(sql`truncate legal_holds`.execute(cat.db)).rejects.toThrow(/never deleted/);

    // A legacy copy imported alone (no call id) gets its own recording and a hold; a later
    // import links it to its call: the recordings merge and the hold moves along.
    await recordings.upsert(catalogRecord.parse({ tenant_id: t, source_system: 'avaya_aura', legacy_archive_id: 'L-orphan', locator: 'o.wav' }));
    const orphan = (await recordings.findByRef(t, 'L-orphan'))!;
    const oh = await holds.create({ tenantId: t, recordingPk: orphan.id, matter: 'orphan matter', reason: 'r', createdBy: 'root' });
    const target = await recording(t, 'c4', { retention_expiry: null });
    await recordings.upsert(catalogRecord.parse({ tenant_id: t, call_id: 'c4', source_system: 'avaya_aura', legacy_archive_id: 'L-orphan' }));
    expect((await recordings.findByRef(t, 'L-orphan'))!.id).toBe(target.id);
    expect(await holds.get(t, oh.id)).toMatchObject({ recordingPk: target.id, status: 'active' });
    expect(retentionStatus((await recordings.get(t, target.id))!)).toBe('LEGAL_HOLD');
  });

  it('an imported legal_hold: true places one "imported" hold per recording, with the import; false releases nothing', async () => {
    const t = tenant();
    const rec = (callId: string, legacyId: string, legal_hold: boolean) => catalogRecord.parse({ tenant_id: t, call_id: callId, source_system: 'avaya_aura', legacy_archive_id: legacyId, retention_expiry: '2020-01-01T00:00:00Z', legal_hold });
    await recording(t, 'existing');
    // Two copies of one call, a second call, a recording already in the catalog, and one not held.
    const counts = await recordings.upsertAll([rec('a', 'L-a1', true), rec('a', 'L-a2', true), rec('b', 'L-b', true), rec('existing', 'L-existing', true), rec('free', 'L-free', false)]);
    expect(counts).toEqual({ inserted: 3, updated: 1, unchanged: 1, holdsPlaced: 3 });
    const held = await cat.db.selectFrom('legal_holds').selectAll().where('tenant_id', '=', t).execute();
    expect(held).toHaveLength(3);
    for (const h of held) expect(h).toMatchObject({ matter: IMPORTED_HOLD.matter, created_by: IMPORTED_HOLD.createdBy, released_at: null });
    for (const c of ['a', 'b', 'existing']) expect(retentionStatus((await recordings.findByRef(t, c))!)).toBe('LEGAL_HOLD');
    expect(retentionStatus((await recordings.findByRef(t, 'free'))!)).toBe('EXPIRED');
    // Nothing sets the flag column any more.
    expect(await cat.db.selectFrom('recordings').select('id').where('tenant_id', '=', t).where('legal_hold', '!=', 0).execute()).toEqual([]);

    // Again: no second hold. false: nothing released.
    expect((await recordings.upsertAll([rec('a', 'L-a1', true), rec('b', 'L-b', false)])).holdsPlaced).toBe(0);
    expect(await cat.db.selectFrom('legal_holds').select('id').where('tenant_id', '=', t).execute()).toHaveLength(3);
    expect(retentionStatus((await recordings.findByRef(t, 'b'))!)).toBe('LEGAL_HOLD');
  });

  it('a merge of two recordings held for the same matter keeps both holds active (the moved one named after its origin)', async () => {
    const t = tenant();
    // A copy imported alone (no call id) and its call, each with the imported flag: two "imported" holds.
    await recordings.upsert(catalogRecord.parse({ tenant_id: t, source_system: 'avaya_aura', legacy_archive_id: 'L-lone', locator: 'l.wav', legal_hold: true }));
    const lone = (await recordings.findByRef(t, 'L-lone'))!;
    const call = await recording(t, 'c-merge', { legal_hold: true });
    expect(lone.activeHolds).toBe(1);
    expect(call.activeHolds).toBe(1);
    // The copy is linked to its call: the lone recording is absorbed and its hold moves along.
    await recordings.upsert(catalogRecord.parse({ tenant_id: t, call_id: 'c-merge', source_system: 'avaya_aura', legacy_archive_id: 'L-lone', legal_hold: true }));
    const merged = (await recordings.findByRef(t, 'L-lone'))!;
    expect(merged.id).toBe(call.id);
    expect(merged.activeHolds).toBe(2);
    const all = (await holds.list({ tenantId: t, limit: 10 })).items;
    expect(all.map((h) => h.matter).sort()).toEqual([IMPORTED_HOLD.matter, `${IMPORTED_HOLD.matter} (merged from recording ${lone.id})`]);
    expect(all.every((h) => h.recordingPk === call.id && h.status === 'active')).toBe(true);
  });
  it('two admins asking for the release at once: one request, the other told the release is already requested (not released)', async () => {
    const t = tenant();
    const r = await recording(t, 'c-race');
    const h = await holds.create({ tenantId: t, recordingPk: r.id, matter: 'M', reason: 'r', createdBy: 'root' });
    // Admin b read the hold before admin a's request committed: b's conditional update finds the
    // request there. On PostgreSQL a's request commits on another connection between b's read and
    // b's update (the race as it happens under READ COMMITTED); SQLite serialises writers (BEGIN
    // IMMEDIATE), so there b's read is made stale instead — the same interleaving for releaseIn.
    let raced = false;
    const race: KyselyPlugin = {
      transformQuery: (a) => a.node,
      transformResult: async ({ result }) => {
        const row = result.rows[0] as Record<string, unknown> | undefined;
        if (raced || !row || row.id !== h.id || !('release_requested_by' in row)) return result;
        raced = true;
        if (kind === 'postgres') {
          expect(await holds.release(t, h.id, 'a')).toMatchObject({ step: 'release_requested' });
          return result;
        }
        // SQLite: a's request is in the row already (below); b's read is what it was before it.
        return { ...result, rows: [{ ...row, release_requested_by: null, release_requested_at: null }] as typeof result.rows };
      },
    };
    if (kind === 'sqlite') await cat.db.updateTable('legal_holds').set({ release_requested_by: 'a', release_requested_at: new Date().toISOString() }).where('id', '=', h.id).execute();
    const b = writeTransaction(cat.db, (trx) => holds.releaseIn(trx.withPlugin(race), t, h.id, 'b'));
    await expect(b).rejects.toMatchObject({ code: 'hold.release_already_requested', status: 409 });
    expect(raced).toBe(true);
    // Still held, the request a's; b confirms it by asking again, deliberately.
    expect(await holds.get(t, h.id)).toMatchObject({ status: 'release_requested', releaseRequestedBy: 'a', releasedAt: null });
    expect(retentionStatus((await recordings.get(t, r.id))!)).toBe('LEGAL_HOLD');
    expect(await holds.release(t, h.id, 'b')).toMatchObject({ step: 'released', hold: { releaseRequestedBy: 'a', releasedBy: 'b' } });
  });

  it('concurrent release requests by two admins: never "already released" while the hold is only requested', async () => {
    const t = tenant();
    const r = await recording(t, 'c-race2');
    for (let i = 0; i < 15; i++) {
      const h = await holds.create({ tenantId: t, recordingPk: r.id, matter: `M-${i}`, reason: 'r', createdBy: 'root' });
      const results = await Promise.allSettled([holds.release(t, h.id, 'a'), holds.release(t, h.id, 'b')]);
      const steps = results.map((x) => (x.status === 'fulfilled' ? x.value.step : (x.reason as { code: string }).code)).sort();
      // Serialised, the later call confirms (a different admin); interleaved, it is told the release is requested.
      expect([['release_requested', 'released'], ['hold.release_already_requested', 'release_requested']]).toContainEqual(steps);
      const now = (await holds.get(t, h.id))!;
      expect(now.status).toBe(steps.includes('released') ? 'released' : 'release_requested');
    }
  });

  it('an import moving a held copy to another recording: the hold follows the copy (a record of its own), the old recording stays held', async () => {
    const t = tenant();
    // The review's case: c1 held, its only copy L1 re-linked by an import to call c2 (a verint copy of its own).
    const c1 = await recording(t, 'c1', { legacy_archive_id: 'L1' });
    const c2 = await recording(t, 'c2', { source_system: 'verint', legacy_archive_id: 'V2' });
    const copy = c1.copies[0]!;
    const h = await holds.create({ tenantId: t, recordingPk: c1.id, matter: 'Smith v Acme', reason: 'litigation', createdBy: 'root' });
    expect(retentionStatus((await recordings.findByRef(t, 'L1'))!)).toBe('LEGAL_HOLD');

    const counts = await recordings.upsertAll([catalogRecord.parse({ tenant_id: t, call_id: 'c2', source_system: 'avaya_aura', legacy_archive_id: 'L1' })]);
    expect(counts).toMatchObject({ updated: 1, holdsPlaced: 1 });
    const moved = (await recordings.findByRef(t, 'L1'))!;
    expect(moved.id).toBe(c2.id);
    expect(moved.copies.map((c) => c.id).sort()).toEqual([copy.id, c2.copies[0]!.id].sort());
    expect(retentionStatus(moved)).toBe('LEGAL_HOLD');
    const followed = (await holds.list({ tenantId: t, recordingPk: c2.id, limit: 10 })).items;
    expect(followed).toMatchObject([{ matter: 'Smith v Acme', status: 'active', createdBy: IMPORTED_HOLD.createdBy }]);
    expect(followed[0]!.reason).toContain(`copy ${copy.id}`);
    expect(followed[0]!.reason).toContain(`recording ${c1.id}`);
    expect(followed[0]!.reason).toContain(`hold ${h.id}`);
    // Nothing lifted: the original hold stays on c1, active, as it was.
    expect(await holds.get(t, h.id)).toMatchObject({ recordingPk: c1.id, status: 'active', matter: 'Smith v Acme' });
    expect((await recordings.get(t, c1.id))!.activeHolds).toBe(1);

    // The same file again: the copy is there already, nothing more placed.
    expect((await recordings.upsertAll([catalogRecord.parse({ tenant_id: t, call_id: 'c2', source_system: 'avaya_aura', legacy_archive_id: 'L1' })])).holdsPlaced).toBe(0);
    expect((await holds.list({ tenantId: t, recordingPk: c2.id, limit: 10 })).items).toHaveLength(1);
  });

  it('a held copy moving to a recording held for the same matter keeps a hold of its own; released holds stay behind; legal_hold: true still places its own', async () => {
    const t = tenant();
    const from = await recording(t, 'from', { legacy_archive_id: 'L-from', legal_hold: true });
    const to = await recording(t, 'to', { source_system: 'verint', legacy_archive_id: 'V-to' });
    const copy = from.copies[0]!;
    await holds.create({ tenantId: t, recordingPk: from.id, matter: 'M', reason: 'r', createdBy: 'root' });
    await holds.create({ tenantId: t, recordingPk: to.id, matter: 'M', reason: 'r', createdBy: 'root' });
    const gone = await holds.create({ tenantId: t, recordingPk: from.id, matter: 'lifted', reason: 'r', createdBy: 'root' });
    await holds.release(t, gone.id, 'root');
    await holds.release(t, gone.id, 'admin2');
    const asked = await holds.create({ tenantId: t, recordingPk: from.id, matter: 'asked', reason: 'r', createdBy: 'root' });
    await holds.release(t, asked.id, 'root');

    // Moved with the record's own legal_hold: true: "to" gets its imported hold (the flag's), the
    // copy's "imported" and "M" clash with the target's and keep their own, named after the move.
    const counts = await recordings.upsertAll([catalogRecord.parse({ tenant_id: t, call_id: 'to', source_system: 'avaya_aura', legacy_archive_id: 'L-from', legal_hold: true })]);
    const suffix = ` (moved with copy ${copy.id} from recording ${from.id})`;
    const onTo = (await holds.list({ tenantId: t, recordingPk: to.id, limit: 20 })).items;
    expect(onTo.map((h) => h.matter).sort()).toEqual(['M', `M${suffix}`, 'asked', IMPORTED_HOLD.matter, `${IMPORTED_HOLD.matter}${suffix}`].sort());
    expect(onTo.every((h) => h.status === 'active')).toBe(true);
    expect(onTo.find((h) => h.matter === IMPORTED_HOLD.matter)!.reason).toBe(IMPORTED_HOLD.reason);
    // A release requested on the original is not carried over: the new record is released on its own.
    expect(onTo.find((h) => h.matter === 'asked')).toMatchObject({ releaseRequestedBy: null });
    expect(counts.holdsPlaced).toBe(4);
    expect((await holds.list({ tenantId: t, recordingPk: from.id, status: 'active', limit: 20 })).items.map((h) => h.matter).sort()).toEqual(['M', 'asked', IMPORTED_HOLD.matter].sort());
    expect(retentionStatus((await recordings.findByRef(t, 'L-from'))!)).toBe('LEGAL_HOLD');
  });
});
