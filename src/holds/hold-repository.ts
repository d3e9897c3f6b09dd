import { randomUUID } from 'node:crypto';
import { type Kysely, type Selectable, SqliteAdapter, sql } from 'kysely';
import { writeTransaction } from '../catalog/database.js';
import { filterOnly } from '../catalog/filter-only.js';
import type { Database, LegalHoldsTable } from '../catalog/tables.js';
import { AppError } from '../errors.js';

export type HoldStatus = 'active' | 'release_requested' | 'released';

/** A legal hold: it keeps a recording served and undeletable whatever its retention says, until two admins lift it. */
export interface LegalHold {
  id: string;
  tenantId: string;
  recordingPk: string;
  matter: string;
  reason: string;
  createdBy: string;
  createdAt: string;
  releaseRequestedBy: string | null;
  releaseRequestedAt: string | null;
  releasedBy: string | null;
  releasedAt: string | null;
  status: HoldStatus;
}

export interface HoldQuery {
  tenantId: string;
  /** active: not released (a release may be requested); released: lifted. */
  status?: 'active' | 'released';
  recordingPk?: string;
  limit: number;
  /** Keyset cursor: [created_at, id] of the last hold of the previous page. */
  after?: { createdAt: string; id: string };
}

export interface NewHold {
  tenantId: string;
  recordingPk: string;
  matter: string;
  reason: string;
  createdBy: string;
}

/**
 * The hold an imported catalog record's `legal_hold: true` becomes (docs/AUDIT.md): a record like
 * any other, released only by the four-eyes release. The matter is the stable name by which an
 * import (and migration 0014) knows it already placed one: a recording that ever had a hold of
 * this matter, active or released, is not held again by an import.
 */
export const IMPORTED_HOLD = {
  matter: 'imported',
  reason: "the imported catalog record's legal_hold flag",
  createdBy: 'catalog-import',
} as const;

/** Imported holds per statement: 11 columns, far below either dialect's parameter limit. */
const IMPORT_BATCH = 500;

export interface ReleaseStep {
  step: 'release_requested' | 'released';
  hold: LegalHold;
}

function toHold(r: Selectable<LegalHoldsTable>): LegalHold {
  return {
    id: r.id,
    tenantId: r.tenant_id,
    recordingPk: r.recording_pk,
    matter: r.matter,
    reason: r.reason,
    createdBy: r.created_by,
    createdAt: r.created_at,
    releaseRequestedBy: r.release_requested_by,
    releaseRequestedAt: r.release_requested_at,
    releasedBy: r.released_by,
    releasedAt: r.released_at,
    status: r.released_at ? 'released' : r.release_requested_by ? 'release_requested' : 'active',
  };
}

/** A unique-index violation on either dialect. */
function isUniqueViolation(e: unknown): boolean {
  const err = e as { code?: string; message?: string };
  return err?.code === '23505' || err?.code === 'SQLITE_CONSTRAINT_UNIQUE' || /UNIQUE constraint failed/.test(err?.message ?? '');
}

/** A hold an import places (created_by the import: IMPORTED_HOLD.createdBy), active. */
function importHold(tenantId: string, recordingPk: string, matter: string, reason: string, now: string) {
  return {
    id: randomUUID(),
    tenant_id: tenantId,
    recording_pk: recordingPk,
    matter,
    reason,
    created_by: IMPORTED_HOLD.createdBy,
    created_at: now,
    released_by: null,
    released_at: null,
    release_requested_by: null,
    release_requested_at: null,
  };
}

/** Inserts holds in batches of IMPORT_BATCH; returns how many. */
async function insertHolds(trx: Kysely<Database>, rows: ReturnType<typeof importHold>[]): Promise<number> {
  for (let i = 0; i < rows.length; i += IMPORT_BATCH) await trx.insertInto('legal_holds').values(rows.slice(i, i + IMPORT_BATCH)).execute();
  return rows.length;
}

/** All SQL of legal holds. Every query is scoped by tenant. */
export class HoldRepository {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly now: () => Date = () => new Date(),
  ) {}

  async create(h: NewHold): Promise<LegalHold> {
    return this.createIn(this.db, h);
  }

  /**
   * `create` inside the caller's write transaction (writeTransaction): the route appends the
   * placement's audit event there too (appendIn), so a hold never exists without its evidence.
   */
  async createIn(trx: Kysely<Database>, h: NewHold): Promise<LegalHold> {
    const row = {
      id: randomUUID(),
      tenant_id: h.tenantId,
      recording_pk: h.recordingPk,
      matter: h.matter,
      reason: h.reason,
      created_by: h.createdBy,
      created_at: this.now().toISOString(),
      released_by: null,
      released_at: null,
      release_requested_by: null,
      release_requested_at: null,
    };
    try {
      await trx.insertInto('legal_holds').values(row).execute();
    } catch (e) {
      // One active hold per (recording, matter): the partial unique index decides, also under races.
      if (isUniqueViolation(e)) throw new AppError('hold.duplicate', `the recording already has an active hold for matter "${h.matter}"`);
      throw e;
    }
    return toHold(row);
  }

  async get(tenantId: string, id: string): Promise<LegalHold | null> {
    const r = await this.db.selectFrom('legal_holds').selectAll().where('tenant_id', '=', tenantId).where('id', '=', id).executeTakeFirst();
    return r ? toHold(r) : null;
  }

  async list(q: HoldQuery): Promise<{ items: LegalHold[]; next: { createdAt: string; id: string } | null }> {
    // A recording's holds are found by holds_recording, the tenant only filters: with a plain
    // `tenant_id = ?` SQLite without statistics walked every hold of the tenant (filter-only.ts).
    const tenant = q.recordingPk ? filterOnly(this.db, 'tenant_id') : sql.ref<string>('tenant_id');
    let query = this.db.selectFrom('legal_holds').selectAll().where(tenant, '=', q.tenantId);
    if (q.status === 'active') query = query.where('released_at', 'is', null);
    if (q.status === 'released') query = query.where('released_at', 'is not', null);
    if (q.recordingPk) query = query.where('recording_pk', '=', q.recordingPk);
    if (q.after) {
      const { createdAt, id } = q.after;
      query = query.where((eb) => eb.or([eb('created_at', '>', createdAt), eb.and([eb('created_at', '=', createdAt), eb('id', '>', id)])]));
    }
    const rows = await query.orderBy('created_at').orderBy('id').limit(q.limit + 1).execute();
    const items = rows.slice(0, q.limit).map(toHold);
    const last = items[items.length - 1];
    return { items, next: rows.length > q.limit && last ? { createdAt: last.createdAt, id: last.id } : null };
  }

  /** Active holds per recording, for retention (any active hold is LEGAL_HOLD). */
  async activeCounts(tenantId: string, recordingPks: string[]): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    if (!recordingPks.length) return out;
    const rows = await this.db
      .selectFrom('legal_holds')
      .select(['recording_pk', (eb) => eb.fn.countAll<number | string>().as('n')])
      .where('tenant_id', '=', tenantId)
      .where('recording_pk', 'in', recordingPks)
      .where('released_at', 'is', null)
      .groupBy('recording_pk')
      .execute();
    for (const r of rows) out.set(r.recording_pk, Number(r.n));
    return out;
  }

  /**
   * A recording merged into another (catalog import, crosswalk) takes its holds along: a hold never
   * points at nothing, and none is lifted by a merge. An active hold whose matter the survivor also
   * holds (two copies each imported with `legal_hold: true`: two "imported" holds) cannot keep its
   * matter (one active hold per recording and matter), so it moves as "<matter> (merged from
   * recording <id>)": still active, released like any other. By holds_recording; the tenant, when
   * given, only filters (filter-only.ts).
   */
  static async moveHolds(trx: Kysely<Database>, fromRecordingPk: string, toRecordingPk: string, tenantId?: string): Promise<void> {
    const clash = await trx
      .selectFrom('legal_holds as h')
      .select(['h.id', 'h.matter'])
      .$if(tenantId !== undefined, (q) => q.where(filterOnly(trx, 'h.tenant_id'), '=', tenantId!))
      .where('h.recording_pk', '=', fromRecordingPk)
      .where('h.released_at', 'is', null)
      .where((eb) =>
        eb.exists(
          eb
            .selectFrom('legal_holds as k')
            .select('k.id')
            .where('k.recording_pk', '=', toRecordingPk)
            .where('k.released_at', 'is', null)
            .whereRef('k.tenant_id', '=', 'h.tenant_id')
            .whereRef('k.matter', '=', 'h.matter'),
        ),
      )
      .execute();
    for (const c of clash) await trx.updateTable('legal_holds').set({ matter: `${c.matter} (merged from recording ${fromRecordingPk})` }).where('id', '=', c.id).execute();
    await trx
      .updateTable('legal_holds')
      .set({ recording_pk: toRecordingPk })
      .$if(tenantId !== undefined, (q) => q.where(filterOnly(trx, 'tenant_id'), '=', tenantId!))
      .where('recording_pk', '=', fromRecordingPk)
      .execute();
  }

  /**
   * A copy an import moves to another recording (the record links it to another call, and its old
   * recording stays: it has a call id, or other copies) takes the holds on it along: each active
   * hold of the old recording is placed on the new one too, as a record of its own — matter as it
   * was, reason naming the copy, the old recording and the hold, `created_by` `catalog-import`
   * (IMPORTED_HOLD) — so the held audio stays served under a hold wherever the catalog files it,
   * and the old hold stays where it was, active (a move lifts nothing; docs/AUDIT.md). A matter the
   * new recording already holds keeps a hold of its own, "<matter> (moved with copy <id> from
   * recording <id>)", as a merge does; one held under that very name already is not placed twice.
   * A release requested on the old hold is not carried: the new record is released on its own,
   * by two admins. On PostgreSQL the old recording's row is locked first: a hold being placed on
   * it (its insert takes a key-share lock on the row) commits before the holds are read, or waits
   * for the move. Returns how many holds were placed.
   */
  static async followCopy(trx: Kysely<Database>, tenantId: string, copyId: string, fromRecordingPk: string, toRecordingPk: string, now: string): Promise<number> {
    if (!(trx.getExecutor().adapter instanceof SqliteAdapter)) await trx.selectFrom('recordings').select('id').where('id', '=', fromRecordingPk).forUpdate().execute();
    const active = (recordingPk: string) =>
      trx.selectFrom('legal_holds').selectAll().where(filterOnly(trx, 'tenant_id'), '=', tenantId).where('recording_pk', '=', recordingPk).where('released_at', 'is', null).orderBy('created_at').orderBy('id').execute();
    const held = await active(fromRecordingPk);
    if (!held.length) return 0;
    const taken = new Set((await active(toRecordingPk)).map((h) => h.matter));
    const rows = [];
    for (const h of held) {
      const matter = taken.has(h.matter) ? `${h.matter} (moved with copy ${copyId} from recording ${fromRecordingPk})` : h.matter;
      if (taken.has(matter)) continue;
      taken.add(matter);
      rows.push(importHold(tenantId, toRecordingPk, matter, `moved with copy ${copyId} from recording ${fromRecordingPk}, held there by hold ${h.id} (matter "${h.matter}"): the hold follows the copy`, now));
    }
    return insertHolds(trx, rows);
  }

  /**
   * The holds an import's `legal_hold: true` places, inside the import's transaction (catalog
   * import and sync, recording-repository.ts): one IMPORTED_HOLD per recording (recording id →
   * tenant) that has never had a hold of that matter, active or released — a re-import places no
   * second hold and does not re-place one two admins released. `fresh` are recordings this
   * import created (they can have no hold: not looked up). One read and one multi-row insert per
   * batch, only when some record said `legal_hold: true`. Returns how many were placed.
   */
  static async placeImported(trx: Kysely<Database>, wanted: ReadonlyMap<string, string>, fresh: ReadonlySet<string>, now: string): Promise<number> {
    if (!wanted.size) return 0;
    const known = [...wanted.keys()].filter((pk) => !fresh.has(pk));
    const had = new Set<string>();
    for (let i = 0; i < known.length; i += IMPORT_BATCH) {
      const pks = known.slice(i, i + IMPORT_BATCH);
      const rows = await trx
        .selectFrom('legal_holds')
        .select('recording_pk')
        .where(filterOnly(trx, 'tenant_id'), 'in', [...new Set(pks.map((pk) => wanted.get(pk)!))])
        .where('recording_pk', 'in', pks)
        .where('matter', '=', IMPORTED_HOLD.matter)
        .execute();
      for (const r of rows) had.add(r.recording_pk);
    }
    const rows = [...wanted].filter(([pk]) => !had.has(pk)).map(([pk, tenant]) => importHold(tenant, pk, IMPORTED_HOLD.matter, IMPORTED_HOLD.reason, now));
    return insertHolds(trx, rows);
  }

  /**
   * Four-eyes release. The first call by an admin records a release request; a call by another
   * admin confirms it and lifts the hold. The requester confirming their own request is refused
   * (409 hold.second_admin_required), as is any call on a released hold (409 hold.already_released).
   * Conditional updates make concurrent calls safe: exactly one request, exactly one release; a
   * request that loses the race to another is 409 hold.release_already_requested (the hold is
   * requested, not released, and the losing call confirms nothing).
   */
  async release(tenantId: string, id: string, principalId: string): Promise<ReleaseStep> {
    return writeTransaction(this.db, (trx) => this.releaseIn(trx, tenantId, id, principalId));
  }

  /** The refusal of a release request that found the hold changed since it was read. */
  private async changedMeanwhile(trx: Kysely<Database>, tenantId: string, id: string): Promise<AppError> {
    const now = await trx.selectFrom('legal_holds').selectAll().where('tenant_id', '=', tenantId).where('id', '=', id).executeTakeFirst();
    if (!now) return new AppError('hold.not_found');
    if (now.released_at) return new AppError('hold.already_released', `released by ${now.released_by} at ${now.released_at}`);
    return new AppError(
      'hold.release_already_requested',
      `the release was requested by ${now.release_requested_by} at ${now.release_requested_at} while this call was made; the hold stays held until an administrator other than ${now.release_requested_by} confirms it by asking again`,
    );
  }

  /** `release` inside the caller's write transaction, beside the step's audit event (as `createIn`). */
  async releaseIn(trx: Kysely<Database>, tenantId: string, id: string, principalId: string): Promise<ReleaseStep> {
    const r = await trx.selectFrom('legal_holds').selectAll().where('tenant_id', '=', tenantId).where('id', '=', id).executeTakeFirst();
    if (!r) throw new AppError('hold.not_found');
    if (r.released_at) throw new AppError('hold.already_released', `released by ${r.released_by} at ${r.released_at}`);
    const at = this.now().toISOString();
    if (!r.release_requested_by) {
      const done = await trx
        .updateTable('legal_holds')
        .set({ release_requested_by: principalId, release_requested_at: at })
        .where('id', '=', id)
        .where('release_requested_by', 'is', null)
        .where('released_at', 'is', null)
        .executeTakeFirst();
      // Another call requested the release (or it was even released) between the read above and
      // this update: only PostgreSQL's concurrent transactions get here (SQLite's writers are
      // serialised). Answer with what the hold now is — requested is not released, and this call
      // confirms nothing: the hold stays held until an admin other than the requester asks again.
      if (Number(done.numUpdatedRows) !== 1) throw await this.changedMeanwhile(trx, tenantId, id);
      return { step: 'release_requested' as const, hold: toHold({ ...r, release_requested_by: principalId, release_requested_at: at }) };
    }
    if (r.release_requested_by === principalId) {
      throw new AppError('hold.second_admin_required', `the release was requested by ${principalId}; another administrator must confirm it`);
    }
    const done = await trx
      .updateTable('legal_holds')
      .set({ released_by: principalId, released_at: at })
      .where('id', '=', id)
      .where('released_at', 'is', null)
      .where('release_requested_by', '=', r.release_requested_by)
      .executeTakeFirst();
    if (Number(done.numUpdatedRows) !== 1) throw new AppError('hold.already_released');
    return { step: 'released' as const, hold: toHold({ ...r, released_by: principalId, released_at: at }) };
  }
}
