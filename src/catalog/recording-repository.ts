import { randomUUID } from 'node:crypto';
import type { Kysely, Selectable, Transaction } from 'kysely';
import { AppError } from '../errors.js';
import { type CatalogRecord, startedAtFromCallId, toIso } from './record.js';
import { type Copy, type Recording, type RefKind, originOf } from './model.js';
import type { Database, RecordingCopiesTable, RecordingsTable } from './tables.js';

export type UpsertOutcome = 'inserted' | 'updated' | 'unchanged';

export interface SearchQuery {
  tenantId: string;
  callId?: string;
  from?: string;
  to?: string;
  sourceSystem?: string;
  origin?: string;
  state?: string;
  limit: number;
  /** Opaque keyset cursor: the id of the last item of the previous page. */
  after?: string;
}

const num = (v: number | string | null): number | null => (v === null ? null : Number(v));

function toCopy(r: Selectable<RecordingCopiesTable>): Copy {
  return {
    id: r.id,
    recordingPk: r.recording_pk,
    tenantId: r.tenant_id,
    sourceSystem: r.source_system,
    origin: r.origin === 'GENESYS_CLOUD' ? 'GENESYS_CLOUD' : 'LEGACY_ARCHIVE',
    connector: r.connector,
    storageLocation: r.storage_location,
    locator: r.locator,
    genesysRecordingId: r.genesys_recording_id,
    legacyArchiveId: r.legacy_archive_id,
    state: r.state,
    codec: r.codec,
    sizeBytes: num(r.size_bytes),
    sha256: r.sha256,
    encryptionStatus: r.encryption_status,
    keyId: r.key_id,
    sourceRetentionExpiry: r.source_retention_expiry,
  };
}

function toRecording(r: Selectable<RecordingsTable>, copies: Copy[]): Recording {
  return {
    id: r.id,
    tenantId: r.tenant_id,
    callId: r.call_id,
    customerRef: r.customer_ref,
    conversationId: r.conversation_id,
    startedAt: r.started_at,
    retentionExpiry: r.retention_expiry,
    legalHold: Number(r.legal_hold) === 1,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    copies,
  };
}

/** All SQL of the catalog. Every query is scoped by tenant: there is no unscoped read. */
export class RecordingRepository {
  constructor(private readonly db: Kysely<Database>) {}

  /** Resolves any identifier the recording has had, within one tenant. */
  async findByRef(tenantId: string, ref: string): Promise<Recording | null> {
    const rows = await this.db
      .selectFrom('recording_refs')
      .select('recording_pk')
      .distinct()
      .where('tenant_id', '=', tenantId)
      .where('value', '=', ref)
      .limit(2)
      .execute();
    if (rows.length === 0) return null;
    if (rows.length > 1) {
      throw new AppError('recording.ambiguous_ref', 'the reference matches more than one recording; use a more specific id');
    }
    return this.get(tenantId, rows[0]!.recording_pk);
  }

  /**
   * The only cross-tenant read: which other tenants know this ref. It feeds the audit trail
   * (an attempt on another tenant's recording is evidence for both) and never a response.
   */
  async otherTenantsHoldingRef(ref: string, exceptTenantId: string): Promise<string[]> {
    const rows = await this.db.selectFrom('recording_refs').select('tenant_id').distinct().where('value', '=', ref).where('tenant_id', '!=', exceptTenantId).limit(10).execute();
    return rows.map((r) => r.tenant_id);
  }

  async get(tenantId: string, id: string): Promise<Recording | null> {
    const rec = await this.db.selectFrom('recordings').selectAll().where('tenant_id', '=', tenantId).where('id', '=', id).executeTakeFirst();
    if (!rec) return null;
    const copies = await this.db
      .selectFrom('recording_copies')
      .selectAll()
      .where('tenant_id', '=', tenantId)
      .where('recording_pk', '=', id)
      .orderBy('created_at')
      .orderBy('id')
      .execute();
    return toRecording(rec, copies.map(toCopy));
  }

  async search(q: SearchQuery): Promise<{ items: Recording[]; next: string | null }> {
    let query = this.db.selectFrom('recordings').selectAll('recordings').where('recordings.tenant_id', '=', q.tenantId);
    if (q.callId) query = query.where('recordings.call_id', '=', q.callId);
    if (q.from) query = query.where('recordings.started_at', '>=', q.from);
    if (q.to) query = query.where('recordings.started_at', '<', q.to);
    if (q.sourceSystem || q.origin || q.state) {
      query = query.where((eb) =>
        eb.exists(
          eb
            .selectFrom('recording_copies as c')
            .select('c.id')
            .whereRef('c.recording_pk', '=', 'recordings.id')
            .$if(!!q.sourceSystem, (s) => s.where('c.source_system', '=', q.sourceSystem!))
            .$if(!!q.origin, (s) => s.where('c.origin', '=', q.origin!))
            .$if(!!q.state, (s) => s.where('c.state', '=', q.state!)),
        ),
      );
    }
    if (q.after) query = query.where('recordings.id', '>', q.after);
    const rows = await query.orderBy('recordings.id').limit(q.limit + 1).execute();
    const page = rows.slice(0, q.limit);
    const ids = page.map((r) => r.id);
    const copies = ids.length
      ? await this.db.selectFrom('recording_copies').selectAll().where('tenant_id', '=', q.tenantId).where('recording_pk', 'in', ids).orderBy('created_at').orderBy('id').execute()
      : [];
    const byRec = new Map<string, Copy[]>();
    for (const c of copies) byRec.set(c.recording_pk, [...(byRec.get(c.recording_pk) ?? []), toCopy(c)]);
    return {
      items: page.map((r) => toRecording(r, byRec.get(r.id) ?? [])),
      next: rows.length > q.limit ? page[page.length - 1]!.id : null,
    };
  }

  /** Streams every recording of a tenant (or all tenants) in id order, a page at a time. */
  async *iterate(tenantId: string | null, pageSize = 500): AsyncGenerator<Recording> {
    let after: string | undefined;
    const tenants = tenantId
      ? [tenantId]
      : (await this.db.selectFrom('recordings').select('tenant_id').distinct().orderBy('tenant_id').execute()).map((r) => r.tenant_id);
    for (const t of tenants) {
      after = undefined;
      for (;;) {
        const page = await this.search({ tenantId: t, limit: pageSize, ...(after ? { after } : {}) });
        yield* page.items;
        if (!page.next) break;
        after = page.next;
      }
    }
  }

  /** Writes many records atomically: all of them or none. */
  async upsertAll(records: Iterable<CatalogRecord> | AsyncIterable<CatalogRecord>): Promise<Record<UpsertOutcome, number>> {
    const counts: Record<UpsertOutcome, number> = { inserted: 0, updated: 0, unchanged: 0 };
    await this.db.transaction().execute(async (trx) => {
      for await (const r of records) counts[await upsertIn(trx, r)]++;
    });
    return counts;
  }

  async upsert(record: CatalogRecord): Promise<UpsertOutcome> {
    return this.db.transaction().execute((trx) => upsertIn(trx, record));
  }

  async count(tenantId?: string): Promise<number> {
    let q = this.db.selectFrom('recordings').select((eb) => eb.fn.countAll<number | string>().as('n'));
    if (tenantId) q = q.where('tenant_id', '=', tenantId);
    const row = await q.executeTakeFirstOrThrow();
    return Number(row.n);
  }
}

function sourceKeyOf(r: CatalogRecord): string {
  return r.recording_id ?? r.legacy_archive_id ?? r.locator!;
}

/**
 * Idempotent upsert of one copy record. The logical recording is found by (tenant, call_id),
 * else through the copy's natural key, else created. A field that is absent in the record
 * keeps its stored value, so a partial re-import never erases what is known.
 */
async function upsertIn(trx: Transaction<Database>, r: CatalogRecord): Promise<UpsertOutcome> {
  const now = new Date().toISOString();
  const sourceKey = sourceKeyOf(r);
  const existingCopy = await trx
    .selectFrom('recording_copies')
    .selectAll()
    .where('tenant_id', '=', r.tenant_id)
    .where('source_system', '=', r.source_system)
    .where('source_key', '=', sourceKey)
    .executeTakeFirst();

  let rec: Selectable<RecordingsTable> | undefined;
  if (r.call_id) {
    rec = await trx.selectFrom('recordings').selectAll().where('tenant_id', '=', r.tenant_id).where('call_id', '=', r.call_id).executeTakeFirst();
  }
  if (!rec && existingCopy) {
    rec = await trx.selectFrom('recordings').selectAll().where('id', '=', existingCopy.recording_pk).executeTakeFirst();
  }

  let outcome: UpsertOutcome = 'unchanged';
  const recFields = {
    call_id: r.call_id ?? rec?.call_id ?? null,
    customer_ref: r.customer_ref ?? rec?.customer_ref ?? null,
    conversation_id: r.conversation_id ?? rec?.conversation_id ?? null,
    started_at: toIso(r.started_at) ?? rec?.started_at ?? startedAtFromCallId(r.call_id),
    retention_expiry: toIso(r.retention_expiry) ?? rec?.retention_expiry ?? null,
    legal_hold: r.legal_hold ? 1 : Number(rec?.legal_hold ?? 0),
  };
  let recordingPk: string;
  if (!rec) {
    recordingPk = randomUUID();
    await trx.insertInto('recordings').values({ id: recordingPk, tenant_id: r.tenant_id, ...recFields, created_at: now, updated_at: now }).execute();
    outcome = 'inserted';
  } else {
    recordingPk = rec.id;
    const changed = (Object.keys(recFields) as (keyof typeof recFields)[]).some((k) => String(recFields[k]) !== String(k === 'legal_hold' ? Number(rec![k]) : rec![k]));
    if (changed) {
      await trx.updateTable('recordings').set({ ...recFields, updated_at: now }).where('id', '=', rec.id).execute();
      outcome = 'updated';
    }
  }

  const copyFields = {
    recording_pk: recordingPk,
    origin: originOf(r.source_system),
    connector: r.connector ?? existingCopy?.connector ?? null,
    storage_location: r.storage_location ?? existingCopy?.storage_location ?? null,
    locator: r.locator ?? existingCopy?.locator ?? null,
    genesys_recording_id: r.recording_id ?? existingCopy?.genesys_recording_id ?? null,
    legacy_archive_id: r.legacy_archive_id ?? existingCopy?.legacy_archive_id ?? null,
    state: r.state,
    codec: r.codec ?? existingCopy?.codec ?? null,
    size_bytes: r.size_bytes ?? num(existingCopy?.size_bytes ?? null),
    sha256: r.sha256 ?? existingCopy?.sha256 ?? null,
    encryption_status: r.encryption_status ?? existingCopy?.encryption_status ?? null,
    key_id: r.key_id ?? existingCopy?.key_id ?? null,
    source_retention_expiry: toIso(r.source_retention_expiry) ?? existingCopy?.source_retention_expiry ?? null,
  };
  if (!existingCopy) {
    await trx
      .insertInto('recording_copies')
      .values({ id: randomUUID(), tenant_id: r.tenant_id, source_system: r.source_system, source_key: sourceKey, ...copyFields, created_at: now, updated_at: now })
      .execute();
    if (outcome === 'unchanged') outcome = 'updated';
  } else {
    const changed = (Object.keys(copyFields) as (keyof typeof copyFields)[]).some((k) => String(copyFields[k]) !== String(k === 'size_bytes' ? num(existingCopy.size_bytes) : existingCopy[k]));
    if (changed) {
      await trx.updateTable('recording_copies').set({ ...copyFields, updated_at: now }).where('id', '=', existingCopy.id).execute();
      if (outcome === 'unchanged') outcome = 'updated';
    }
  }

  const refs: [RefKind, string | null | undefined][] = [
    ['id', recordingPk],
    ['call_id', recFields.call_id],
    ['customer_ref', recFields.customer_ref],
    ['conversation_id', recFields.conversation_id],
    ['recording_id', copyFields.genesys_recording_id],
    ['legacy_archive_id', copyFields.legacy_archive_id],
  ];
  const values = refs.filter(([, v]) => !!v).map(([kind, value]) => ({ tenant_id: r.tenant_id, kind, value: value!, recording_pk: recordingPk }));
  await trx.insertInto('recording_refs').values(values).onConflict((oc) => oc.doNothing()).execute();
  return outcome;
}
