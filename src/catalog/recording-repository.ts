import { type Kysely, type Selectable, SqliteAdapter, sql } from 'kysely';
import { insertRows } from './bulk-insert.js';
import { writeTransaction } from './database.js';
import { filterOnly } from './filter-only.js';
import { AppError } from '../errors.js';
import { HoldRepository } from '../holds/hold-repository.js';
import { type CatalogRecord, type CrossRefs, type ExportedRecording, startedAtFromCallId, toIso } from './record.js';
import { type Copy, type Recording, type RefKind, originOf } from './model.js';
import type { Database, RecordingCopiesTable, RecordingsTable } from './tables.js';
import { COPY_COLUMNS, type LookupRow, lookupRows } from './lookup.js';
import { newId } from './ids.js';
import { yieldToLoop } from './yield-to-loop.js';

export type UpsertOutcome = 'inserted' | 'updated' | 'unchanged';

/** What an upsert wrote: a count per outcome, and the imported holds its `legal_hold: true` rows placed (HoldRepository.placeImported). */
export type UpsertCounts = Record<UpsertOutcome, number> & { holdsPlaced: number };

export interface SearchQuery {
  tenantId: string;
  callId?: string;
  from?: string;
  to?: string;
  sourceSystem?: string;
  origin?: string;
  state?: string;
  limit: number;
  /** Keyset cursor: the `next` of the previous page of the same kind of search (see SearchCursor). */
  after?: SearchCursor;
}

/**
 * Where the previous page ended. Without a time window pages run in id order and the cursor is
 * the last id; with one (`from` and/or `to`) they run in (started_at, id) order and the cursor is
 * the last item's pair. The two are not interchangeable: search refuses the other kind.
 */
export type SearchCursor = string | WindowCursor;
export interface WindowCursor {
  startedAt: string;
  id: string;
}

/** A time window makes a search page in (started_at, id) order. */
export const isWindowed = (q: Pick<SearchQuery, 'from' | 'to'>): boolean => q.from !== undefined || q.to !== undefined;

const num = (v: number | string | null): number | null => (v === null ? null : Number(v));

/** The cursor after a page's last row (a windowed search only returns rows with a start time). */
const cursorAfter = (r: Selectable<RecordingsTable>, windowed: boolean): SearchCursor => (windowed ? { startedAt: r.started_at!, id: r.id } : r.id);

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

/**
 * A recording as its readers see it. `legalHold` says whether it is held: any active hold record
 * (legal_holds), the imported ones included. The recordings.legal_hold column no longer holds
 * anything: an imported flag is a hold record since migration 0014, and the column stays 0.
 */
function toRecording(r: Selectable<RecordingsTable>, copies: Copy[], activeHolds: number): Recording {
  return {
    id: r.id,
    tenantId: r.tenant_id,
    callId: r.call_id,
    customerRef: r.customer_ref,
    conversationId: r.conversation_id,
    startedAt: r.started_at,
    retentionExpiry: r.retention_expiry,
    legalHold: activeHolds > 0,
    activeHolds,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    copies,
  };
}

/** The rows of one lookup (one per copy, ordered) as a Recording; null when there are none. */
function recordingOf(rows: LookupRow[]): Recording | null {
  const first = rows[0];
  if (!first) return null;
  // Creation order, then id: the order the separate copies query had (ORDER BY created_at, id).
  const copies = rows
    .filter((r) => r.c_id !== null)
    .map(copyOf)
    .sort((a, b) => cmp(a.created_at, b.created_at) || cmp(a.id, b.id))
    .map(toCopy);
  return toRecording(first, copies, Number(first.active_holds));
}

const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** A lookup's rows, refused when the ref matches two recordings. */
function unambiguous(rows: LookupRow[]): LookupRow[] {
  if (new Set(rows.map((r) => r.id)).size > 1) {
    throw new AppError('recording.ambiguous_ref', 'the reference matches more than one recording; use a more specific id');
  }
  return rows;
}

function copyOf(r: LookupRow): Selectable<RecordingCopiesTable> {
  const c = {} as Record<string, unknown>;
  for (const k of Object.keys(r)) if (k.startsWith('c_')) c[k.slice(2)] = r[k as keyof LookupRow];
  return c as unknown as Selectable<RecordingCopiesTable>;
}

/** All SQL of the catalog. Every query is scoped by tenant: there is no unscoped read. */
export class RecordingRepository {
  private readonly holds: HoldRepository;
  constructor(private readonly db: Kysely<Database>) {
    this.holds = new HoldRepository(db);
  }

  /**
   * Resolves any identifier the recording has had, within one tenant. It sits before the first
   * byte of every retrieval, so it is one statement (one round trip on PostgreSQL, one prepare on
   * SQLite): the ref, the recording, its copies and its active holds together (lookup.ts).
   */
  async findByRef(tenantId: string, ref: string): Promise<Recording | null> {
    return recordingOf(unambiguous(await lookupRows(this.db, tenantId, { ref })));
  }

  /**
   * findByRef inside the caller's write transaction, with the recording found kept as found until
   * its commit: a write that acts on what it resolved (a hold placed on it) must not act on a
   * recording an import changed since. PostgreSQL: the recording's call id and its copies' natural
   * keys are locked as a catalog import locks them (lockChunkKeys), then the ref is read again;
   * an import in flight on them is waited for and its result read, and none starts until the
   * commit — one that moves a copy then finds the caller's writes (a hold) and takes them along
   * (HoldRepository.followCopy). A read naming keys not yet locked (the ref moved with its copy to
   * another recording, the recording merged into another) locks those and reads again; once
   * locked, nothing a catalog write does can move the ref's recording, so a second or third read
   * settles it. SQLite: one read, the write transaction already excludes every other writer.
   */
  async findByRefLocked(trx: Kysely<Database>, tenantId: string, ref: string): Promise<Recording | null> {
    for (let round = 0; round < 5; round++) {
      const rows = unambiguous(await lookupRows(trx, tenantId, { ref }));
      const first = rows[0];
      if (!first) return null;
      const keys = rows.filter((r) => r.c_id !== null).map((r) => copyLockKey(tenantId, r.c_source_system!, r.c_source_key!));
      if (first.call_id !== null) keys.push(callLockKey(tenantId, first.call_id));
      if (!(await lockKeys(trx, keys))) return recordingOf(rows);
    }
    // Five reads that each found keys not yet locked: the ref kept moving (a writer without these locks).
    throw new AppError('recording.ambiguous_ref', 'the reference moved between recordings while it was being resolved; ask again');
  }

  /**
   * The only cross-tenant read: which other tenants know this ref. It feeds the audit trail
   * (an attempt on another tenant's recording is evidence for both) and never a response.
   */
  async otherTenantsHoldingRef(ref: string, exceptTenantId: string): Promise<string[]> {
    return (await this.otherTenantsRecordingsOfRef(ref, exceptTenantId)).map((o) => o.tenantId);
  }

  /**
   * otherTenantsHoldingRef with, per tenant, the recording the ref names there (`recordingPk`), so
   * the owner's evidence is found by recording (`?recording=`, an evidence package) as well as by
   * ref; null when the ref names several recordings of that tenant (its own lookup would answer
   * `recording.ambiguous_ref`). Read from the primary key recording_refs_pk alone (value first): one index range.
   */
  async otherTenantsRecordingsOfRef(ref: string, exceptTenantId: string): Promise<{ tenantId: string; recordingPk: string | null }[]> {
    // Distinct (tenant, recording) pairs: at most ten tenants, and two recordings each tell "several".
    const rows = await this.db
      .selectFrom('recording_refs')
      .select(['tenant_id', 'recording_pk'])
      .distinct()
      .where('value', '=', ref)
      .where('tenant_id', '!=', exceptTenantId)
      .orderBy('tenant_id')
      .orderBy('recording_pk')
      .limit(20)
      .execute();
    const byTenant = new Map<string, Set<string>>();
    for (const r of rows) byTenant.set(r.tenant_id, (byTenant.get(r.tenant_id) ?? new Set()).add(r.recording_pk));
    return [...byTenant].slice(0, 10).map(([tenantId, pks]) => ({ tenantId, recordingPk: pks.size === 1 ? [...pks][0]! : null }));
  }

  async get(tenantId: string, id: string): Promise<Recording | null> {
    return recordingOf(await lookupRows(this.db, tenantId, { id }));
  }

  /**
   * The recording that holds the copy `copyId` now (null: the copy is in none any more, deleted).
   * A copy moves between recordings (an import learns its call id, a crosswalk merge): what a ready
   * job staged from it is governed by the recording it is on now — its retention, its holds — not
   * the one the job was started on. Two reads (the copy's recording by primary key, then the
   * lookup): one that moved in between is read again.
   */
  async byCopyId(tenantId: string, copyId: string): Promise<Recording | null> {
    for (let round = 0; round < 3; round++) {
      const row = await this.db.selectFrom('recording_copies').select('recording_pk').where('id', '=', copyId).where(filterOnly(this.db, 'tenant_id'), '=', tenantId).executeTakeFirst();
      if (!row) return null;
      const rec = await this.get(tenantId, row.recording_pk);
      if (rec?.copies.some((c) => c.id === copyId)) return rec;
    }
    throw new AppError('recording.ambiguous_ref', 'the copy moved between recordings while it was being resolved; ask again');
  }

  async search(q: SearchQuery): Promise<{ items: Recording[]; next: SearchCursor | null }> {
    const windowed = isWindowed(q);
    // A cursor of the other order would be misread (an id as a start time, or the reverse) and
    // skip or repeat rows without a word: it is not a cursor of this search.
    if (q.after !== undefined && (typeof q.after === 'string') === windowed) throw new AppError('request.invalid', 'cursor is not one this server issued');
    let query = this.db.selectFrom('recordings').selectAll('recordings').where('recordings.tenant_id', '=', q.tenantId);
    if (q.callId) query = query.where('recordings.call_id', '=', q.callId);
    // A later windowed page starts at the later of `from` and the cursor's start time, written as
    // one bound: given both, SQLite seeks by the first and only filters by the other, so a page
    // deep in the window read it again from `from` (15 ms instead of 0.2 at 200 000 recordings).
    const after = windowed && q.after !== undefined ? (q.after as WindowCursor) : undefined;
    const lower = after === undefined ? q.from : q.from !== undefined && q.from > after.startedAt ? q.from : after.startedAt;
    if (lower !== undefined) query = query.where('recordings.started_at', '>=', lower);
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
    if (windowed) {
      // Paged in (started_at, id) order, read by recordings_tenant_started (tenant_id, started_at).
      // In id order a first page sorted the whole window (SQLite: 300 ms at 200 000 recordings),
      // and later pages walked the tenant's ids testing each start time: a narrow window read the
      // tenant's other rows on every page, and on its last page the rest of the tenant. Now a page
      // reads its own rows. The keyset is `started_at >= a and (started_at > a or id > b)`: the
      // plain bound (above) seeks the index to the previous page's start time on SQLite and
      // PostgreSQL alike, and the OR only settles the rows of that one start time. The index holds
      // no id, so rows of equal start time are sorted by id (SQLite: "USE TEMP B-TREE FOR RIGHT PART
      // — or LAST TERM — OF ORDER BY", PostgreSQL: an incremental sort): one run of ties at a time,
      // never the window. A recording without a start time never matches a window.
      if (after) query = query.where((eb) => eb.or([eb('recordings.started_at', '>', after.startedAt), eb('recordings.id', '>', after.id)]));
      query = query.orderBy('recordings.started_at').orderBy('recordings.id');
    } else {
      if (q.after !== undefined) query = query.where('recordings.id', '>', q.after as string);
      // Served in order by recordings_tenant_id (0011): a page no longer sorts the whole tenant.
      query = query.orderBy('recordings.id');
    }
    const rows = await query.limit(q.limit + 1).execute();
    const page = rows.slice(0, q.limit);
    const ids = page.map((r) => r.id);
    // The page's ids drive the search (copies_recording): with a plain `tenant_id = ?` SQLite
    // without statistics read every copy of the tenant for each page (filter-only.ts): ~100 ms a
    // page at 150 000 copies; a search page is now 2 ms (was 130).
    const copies = ids.length
      ? await this.db.selectFrom('recording_copies').selectAll().where(filterOnly(this.db, 'tenant_id'), '=', q.tenantId).where('recording_pk', 'in', ids).orderBy('created_at').orderBy('id').execute()
      : [];
    const byRec = new Map<string, Copy[]>();
    for (const c of copies) byRec.set(c.recording_pk, [...(byRec.get(c.recording_pk) ?? []), toCopy(c)]);
    const held = await this.holds.activeCounts(q.tenantId, ids);
    return {
      items: page.map((r) => toRecording(r, byRec.get(r.id) ?? [], held.get(r.id) ?? 0)),
      next: rows.length > q.limit ? cursorAfter(page[page.length - 1]!, windowed) : null,
    };
  }

  /**
   * Streams every recording of a tenant (or all tenants) in id order, a page at a time, each with
   * its cross-reference keys (CrossRefs): the export writes them, or a re-import could no longer
   * find a recording by its Genesys externalTag or SIP Call-ID. One more read a page, never more
   * than a page held.
   */
  async *iterate(tenantId: string | null, pageSize = 500): AsyncGenerator<ExportedRecording & { crossRefs: CrossRefs }> {
    let after: SearchCursor | undefined;
    const tenants = tenantId
      ? [tenantId]
      : (await this.db.selectFrom('recordings').select('tenant_id').distinct().orderBy('tenant_id').execute()).map((r) => r.tenant_id);
    for (const t of tenants) {
      after = undefined;
      for (;;) {
        const page = await this.search({ tenantId: t, limit: pageSize, ...(after ? { after } : {}) });
        const refs = await this.crossRefsOf(t, page.items.map((r) => r.id));
        for (const r of page.items) yield { ...r, crossRefs: refs.get(r.id) ?? { external_tag: [], sip_call_id: [] } };
        if (!page.next) break;
        after = page.next;
        await yieldToLoop();
      }
    }
  }

  /**
   * The external_tag and sip_call_id refs of the given recordings of one tenant, each list in code
   * unit order (the same on SQLite and PostgreSQL, whatever the collation). Read by refs_recording,
   * the ids driving the search (no index leads with tenant_id here; it only filters).
   */
  private async crossRefsOf(tenantId: string, ids: string[]): Promise<Map<string, CrossRefs>> {
    const byRec = new Map<string, CrossRefs>();
    if (!ids.length) return byRec;
    const rows = await this.db
      .selectFrom('recording_refs')
      .select(['recording_pk', 'kind', 'value'])
      .where('tenant_id', '=', tenantId)
      .where('recording_pk', 'in', ids)
      .where('kind', 'in', ['external_tag', 'sip_call_id'])
      .execute();
    for (const r of rows) {
      let refs = byRec.get(r.recording_pk);
      if (!refs) byRec.set(r.recording_pk, (refs = { external_tag: [], sip_call_id: [] }));
      refs[r.kind as keyof CrossRefs].push(r.value);
    }
    for (const refs of byRec.values()) for (const list of Object.values(refs)) list.sort(cmp);
    return byRec;
  }

  /**
   * Writes many records atomically: all of them or none. Records are processed in chunks: each
   * chunk reads what it needs in a few queries and writes new rows in bulk, so an import of
   * thousands of records costs tens of round trips, not tens of thousands.
   */
  async upsertAll(records: Iterable<CatalogRecord> | AsyncIterable<CatalogRecord>): Promise<UpsertCounts> {
    return withBulkCache(this.db, () => writeTransaction(this.db, (trx) => this.upsertAllIn(trx, records)));
  }

  /**
   * upsertAll inside the caller's write transaction: the rows commit (or roll back) with its other
   * writes — the holds a record's `legal_hold: true` places too (HoldRepository.placeImported).
   */
  async upsertAllIn(trx: Kysely<Database>, records: Iterable<CatalogRecord> | AsyncIterable<CatalogRecord>): Promise<UpsertCounts> {
    const counts: Record<UpsertOutcome, number> = { inserted: 0, updated: 0, unchanged: 0 };
    let holdsPlaced = 0;
    let chunk: CatalogRecord[] = [];
    const write = async () => {
      const done = await upsertChunk(trx, chunk);
      for (const o of done.outcomes) counts[o]++;
      holdsPlaced += done.holdsPlaced;
      chunk = [];
    };
    for await (const r of records) {
      chunk.push(r);
      if (chunk.length >= CHUNK) await write();
    }
    if (chunk.length) await write();
    return { ...counts, holdsPlaced };
  }

  async upsert(record: CatalogRecord): Promise<UpsertOutcome> {
    return writeTransaction(this.db, async (trx) => (await upsertChunk(trx, [record])).outcomes[0]!);
  }

  /**
   * After a bulk import on PostgreSQL: fresh statistics for the catalog's tables, so the next reads
   * are not planned on tables autovacuum has not analyzed yet (right after a load its estimates are
   * of the empty tables, and it chose a tenant's index over a key list). ANALYZE samples, so this
   * is about a second however large the catalog. SQLite: nothing — custodian never analyzes a
   * SQLite catalog; its statements are written for, and their plans tested on, one without statistics.
   */
  async refreshStatistics(): Promise<void> {
    if (this.db.getExecutor().adapter instanceof SqliteAdapter) return;
    await sql`analyze recordings, recording_copies, recording_refs`.execute(this.db);
  }

  async count(tenantId?: string): Promise<number> {
    let q = this.db.selectFrom('recordings').select((eb) => eb.fn.countAll<number | string>().as('n'));
    if (tenantId) q = q.where('tenant_id', '=', tenantId);
    const row = await q.executeTakeFirstOrThrow();
    return Number(row.n);
  }
}

/**
 * SQLite page cache for a bulk load, in KiB: an upper bound (pages are allocated as the load
 * touches them), enough for the whole of an import of a few hundred thousand records (200 000
 * make a ~360 MiB catalog). better-sqlite3's default is 16 MiB.
 */
const BULK_CACHE_KIB = 1024 * 1024;

/**
 * Runs a bulk write with a large SQLite page cache, then restores the connection's own. An import
 * is one transaction: with the default 16 MiB cache its dirty pages spill to the WAL while it runs,
 * and the random-keyed indexes are read back from disk, page by page, for each insert. The pages
 * are written once at commit instead; the cache is freed when it shrinks back. PostgreSQL: as is.
 */
async function withBulkCache<T>(db: Kysely<Database>, fn: () => Promise<T>): Promise<T> {
  if (!(db.getExecutor().adapter instanceof SqliteAdapter)) return fn();
  const { rows } = await sql<{ cache_size: number }>`pragma cache_size`.execute(db);
  const before = rows[0]?.cache_size ?? -2000;
  const { rows: temp } = await sql<{ temp_store: number }>`pragma temp_store`.execute(db);
  await sql.raw(`pragma cache_size = ${-BULK_CACHE_KIB}`).execute(db);
  // Each multi-row INSERT keeps a statement journal (the prior image of every page it touches, so
  // that a failing row undoes only its statement); in a temp file that was ~3.8 M pwrite calls
  // for 200 000 rows (strace) and a third of the import's CPU time as system time.
  await sql.raw('pragma temp_store = MEMORY').execute(db);
  try {
    return await fn();
  } finally {
    await sql.raw(`pragma cache_size = ${Number(before)}`).execute(db);
    await sql.raw(`pragma temp_store = ${Number(temp[0]?.temp_store ?? 0)}`).execute(db);
  }
}

/**
 * Records per chunk: each chunk costs three reads (copies by natural key, recordings by call id
 * and by id) and a few bulk inserts, so bigger chunks mean fewer statements; the reads' IN lists
 * stay far below SQLite's 32 766 and PostgreSQL's 65 535 parameters.
 */
const CHUNK = 2000;
const REC_COLUMNS: (keyof RecRow)[] = ['id', 'tenant_id', 'call_id', 'customer_ref', 'conversation_id', 'started_at', 'retention_expiry', 'legal_hold', 'created_at', 'updated_at'];
const REF_COLUMNS: (keyof RefRow)[] = ['tenant_id', 'value', 'kind', 'recording_pk'];

/** The copy key the catalog files a record under (copies_natural_key's source_key). */
export function sourceKeyOf(r: CatalogRecord): string {
  return r.recording_id ?? r.legacy_archive_id ?? r.locator!;
}

// Keys of the chunk's maps, several per imported row: joining costs a fraction of JSON.stringify.
// Every part is a non-null column, and two keys could only collide through a NUL inside a part,
// which an imported identifier cannot hold (record.ts refuses control characters).
const keyOf = (...parts: string[]) => parts.join('\u0000');
const uniq = <T>(xs: T[]): T[] => [...new Set(xs)];

type RecRow = Selectable<RecordingsTable>;
type CopyRow = Selectable<RecordingCopiesTable>;
type RefRow = { tenant_id: string; value: string; kind: RefKind; recording_pk: string };

/**
 * The rows one chunk touches, read once and then kept current in memory; pending writes are
 * flushed at the end of the chunk (or earlier, before the rare steps that need the database
 * to be current: a recording's call id changing, a copy moving to another recording).
 */
class ChunkState {
  readonly copies = new Map<string, CopyRow>();
  readonly recsByCall = new Map<string, RecRow>();
  readonly recsById = new Map<string, RecRow>();
  private readonly newRecs = new Map<string, RecRow>();
  private readonly dirtyRecs = new Map<string, RecRow>();
  private readonly newCopies = new Map<string, CopyRow>();
  private readonly dirtyCopies = new Map<string, CopyRow>();
  private readonly refs = new Map<string, RefRow>();
  /** Recordings a record of the chunk said `legal_hold: true` of (id → tenant), placed at the flush. */
  private readonly holdsWanted = new Map<string, string>();
  holdsPlaced = 0;

  constructor(private readonly trx: Kysely<Database>) {}

  async load(records: CatalogRecord[]): Promise<void> {
    const tenants = uniq(records.map((r) => r.tenant_id).filter((t): t is string => typeof t === 'string'));
    if (!tenants.length) return;
    const keys = uniq(records.map(sourceKeyOf).filter((k): k is string => typeof k === 'string'));
    const callIds = uniq(records.map((r) => r.call_id).filter((c): c is string => !!c));
    const systems = uniq(records.map((r) => r.source_system));
    // All three columns of copies_natural_key: with source_key alone beside the tenant, the index
    // narrows only to the tenant, and each chunk scanned every copy the tenant had (an import
    // slowed down as it went; a chunk on a catalog of millions read millions).
    const copies = keys.length
      ? await this.trx.selectFrom('recording_copies').selectAll().where('tenant_id', 'in', tenants).where('source_system', 'in', systems).where('source_key', 'in', keys).execute()
      : [];
    for (const c of copies) this.copies.set(keyOf(c.tenant_id, c.source_system, c.source_key), c);
    const byCall = callIds.length ? await this.trx.selectFrom('recordings').selectAll().where('tenant_id', 'in', tenants).where('call_id', 'in', callIds).execute() : [];
    for (const r of byCall) this.remember(r);
    const missing = uniq(copies.map((c) => c.recording_pk)).filter((id) => !this.recsById.has(id));
    const byId = missing.length ? await this.trx.selectFrom('recordings').selectAll().where('id', 'in', missing).execute() : [];
    for (const r of byId) this.remember(r);
  }

  private remember(r: RecRow): void {
    this.recsById.set(r.id, r);
    if (r.call_id !== null) this.recsByCall.set(keyOf(r.tenant_id, r.call_id), r);
  }

  addRecording(r: RecRow): void {
    this.newRecs.set(r.id, r);
    this.remember(r);
  }

  /** Replaces a recording's row; a change of call id of a stored row is written at once (unique index). */
  async updateRecording(prev: RecRow, next: RecRow): Promise<void> {
    if (prev.call_id !== null && prev.call_id !== next.call_id) this.recsByCall.delete(keyOf(prev.tenant_id, prev.call_id));
    this.remember(next);
    if (this.newRecs.has(next.id)) {
      this.newRecs.set(next.id, next);
      return;
    }
    this.dirtyRecs.set(next.id, next);
    if (prev.call_id !== next.call_id) await this.flush();
  }

  forgetRecording(r: RecRow): void {
    this.recsById.delete(r.id);
    if (r.call_id !== null && this.recsByCall.get(keyOf(r.tenant_id, r.call_id))?.id === r.id) this.recsByCall.delete(keyOf(r.tenant_id, r.call_id));
  }

  setCopy(c: CopyRow, isNew: boolean): void {
    this.copies.set(keyOf(c.tenant_id, c.source_system, c.source_key), c);
    if (isNew || this.newCopies.has(c.id)) this.newCopies.set(c.id, c);
    else this.dirtyCopies.set(c.id, c);
  }

  addRef(r: RefRow): void {
    this.refs.set(keyOf(r.tenant_id, r.value, r.kind, r.recording_pk), r);
  }

  /** The record said `legal_hold: true`: an imported hold, unless the recording ever had one (HoldRepository.placeImported). */
  wantHold(tenantId: string, recordingPk: string): void {
    this.holdsWanted.set(recordingPk, tenantId);
  }

  async flush(): Promise<void> {
    const trx = this.trx;
    await insertRows(trx, 'recordings', REC_COLUMNS, [...this.newRecs.values()]);
    for (const r of this.dirtyRecs.values()) {
      const { id, tenant_id: _t, created_at: _c, ...set } = r;
      await trx.updateTable('recordings').set(set).where('id', '=', id).execute();
    }
    await insertRows(trx, 'recording_copies', COPY_COLUMNS, [...this.newCopies.values()]);
    for (const c of this.dirtyCopies.values()) {
      const { id, tenant_id: _t, source_system: _s, source_key: _k, created_at: _c, ...set } = c;
      await trx.updateTable('recording_copies').set(set).where('id', '=', id).execute();
    }
    await insertRows(trx, 'recording_refs', REF_COLUMNS, [...this.refs.values()], true);
    // After the recordings they name. Written at every flush, so a recording merged away later in
    // the chunk has its hold already, and moves it along (HoldRepository.moveHolds).
    this.holdsPlaced += await HoldRepository.placeImported(trx, this.holdsWanted, new Set(this.newRecs.keys()), new Date().toISOString());
    this.holdsWanted.clear();
    this.newRecs.clear();
    this.dirtyRecs.clear();
    this.newCopies.clear();
    this.dirtyCopies.clear();
    this.refs.clear();
  }
}

/**
 * Keys one transaction locks one by one (below); past it the transaction takes the bulk lock.
 * Advisory locks live in PostgreSQL's shared lock table, sized max_locks_per_transaction ×
 * max_connections (64 × 100 by default; one transaction got 10 000 here, not 13 000): an import
 * of 20 000 records locking its 40 000 keys failed with "out of shared memory".
 * 1000 covers a sync page (100–200 records, two keys each) and a self-heal's few records.
 */
const FINE_LOCK_KEYS = 1000;
/** The catalog's bulk-write lock (shared by per-key writers); the audit chain's is 7431001. */
const BULK_LOCK = 7431002;
/** The per-key locks a transaction holds already (advisory locks are re-entrant; counted once). */
const fineLocksHeld = new WeakMap<object, Set<string>>();
/** Transactions holding the bulk lock exclusively: every catalog writer waits for them, no key needs locking. */
const bulkLockHeld = new WeakSet<object>();

// JSON: unambiguous whatever the parts hold (PostgreSQL text cannot carry keyOf's NUL).
const callLockKey = (tenantId: string, callId: string) => JSON.stringify(['call', tenantId, callId]);
const copyLockKey = (tenantId: string, sourceSystem: string, sourceKey: string) => JSON.stringify(['copy', tenantId, sourceSystem, sourceKey]);

/**
 * PostgreSQL: makes the chunk's read-then-insert atomic per key across instances. Without it two
 * transactions creating the same new recording (same call id, or same copy natural key) both read
 * "absent" under READ COMMITTED and both inserted; the second failed with 23505
 * (recordings_tenant_call, copies_natural_key) and a self-heal answered 500. A transaction-scoped
 * advisory lock per distinct call id and copy natural key (a 64-bit hash of tenant + key,
 * hashtextextended), held to the commit, all taken in one statement in ascending order so two
 * chunks never wait on each other in a cycle; with them the bulk lock, shared. A transaction that
 * would hold more than FINE_LOCK_KEYS of them (an import: 2000 records a chunk) takes the bulk
 * lock exclusively instead: it waits for the per-key writers in flight, and they wait for its
 * commit. A hash collision only makes two unrelated writers wait. SQLite: nothing, BEGIN
 * IMMEDIATE already serialises writers.
 */
export async function lockChunkKeys(trx: Kysely<Database>, records: CatalogRecord[]): Promise<void> {
  const keys: string[] = [];
  for (const r of records) {
    if (typeof r.tenant_id !== 'string') continue;
    if (r.call_id) keys.push(callLockKey(r.tenant_id, r.call_id));
    const sourceKey = sourceKeyOf(r);
    if (typeof sourceKey === 'string') keys.push(copyLockKey(r.tenant_id, r.source_system, sourceKey));
  }
  await lockKeys(trx, keys);
}

/** lockChunkKeys of given keys (callLockKey, copyLockKey); whether it locked any the transaction did not hold already. */
async function lockKeys(trx: Kysely<Database>, wanted: string[]): Promise<boolean> {
  if (trx.getExecutor().adapter instanceof SqliteAdapter || bulkLockHeld.has(trx)) return false;
  const held = fineLocksHeld.get(trx) ?? new Set<string>();
  // Keys this transaction locked before (a sync page locks its keys before reading what it will
  // diff, then upserts them: src/sync/apply.ts) are not counted twice, so that upsert does not
  // switch to the bulk lock while holding per-key ones.
  const keys = new Set(wanted.filter((k) => !held.has(k)));
  if (!keys.size) return false;
  if (held.size + keys.size > FINE_LOCK_KEYS) {
    await sql`select pg_advisory_xact_lock(${BULK_LOCK}::bigint)`.execute(trx);
    bulkLockHeld.add(trx);
    return true;
  }
  for (const k of keys) held.add(k);
  fineLocksHeld.set(trx, held);
  // A volatile function in the select list runs after the ORDER BY (PostgreSQL ≥ 9.6): the bulk
  // lock first, then the keys in ascending order.
  await sql`select case when o = 0 then pg_advisory_xact_lock_shared(k) else pg_advisory_xact_lock(k) end
    from (select 0 as o, ${BULK_LOCK}::bigint as k
          union all select distinct 1, hashtextextended(v, 0) from unnest(${[...keys]}::text[]) as v) as l
    order by o, k`.execute(trx);
  return true;
}

async function upsertChunk(trx: Kysely<Database>, records: CatalogRecord[]): Promise<{ outcomes: UpsertOutcome[]; holdsPlaced: number }> {
  await lockChunkKeys(trx, records);
  const state = new ChunkState(trx);
  await state.load(records);
  const outcomes: UpsertOutcome[] = [];
  for (const r of records) outcomes.push(await upsertOne(trx, state, r));
  await state.flush();
  return { outcomes, holdsPlaced: state.holdsPlaced };
}

/**
 * A recording merged into another (`absorbed` into `survivor`, in the merge's transaction): its
 * retrieval jobs follow it, as its refs and holds do, or a queued job would fail for good with
 * `recording.not_found` and a ready one would lose its recording (routes/jobs.ts reads the staged
 * copy's recording anyway). Only jobs that can still run or be downloaded (queued, running, ready):
 * through jobs_claim (status first), since jobs has no index on recording_pk (nor one SQLite should
 * pick for the tenant: filter-only.ts); a failed or expired
 * job keeps the id it was started on, which still resolves (the absorbed id is a ref of the survivor).
 * Evidence jobs name no recording (their input is JSON): nothing to move.
 */
export async function moveJobs(trx: Kysely<Database>, absorbedPk: string, survivorPk: string, tenantId: string): Promise<void> {
  await trx
    .updateTable('jobs')
    .set({ recording_pk: survivorPk })
    .where('status', 'in', ['queued', 'running', 'ready'])
    .where('recording_pk', '=', absorbedPk)
    .where(filterOnly(trx, 'tenant_id'), '=', tenantId)
    .execute();
}

/**
 * A recording merged into another (`absorbed` into `survivor`, in the merge's transaction): its
 * decoded-audio integrity checks follow it, or a check recorded while the absorbed recording held
 * both compared copies could never be read again (IntegrityRepository.latest is by recording, and
 * the migration report reads it by the ids of recordings that exist), and a merge that brings the
 * checked pair back together would count it never checked. History included: the report's
 * `current()` still ignores a check whose copies are not both the survivor's. By
 * integrity_checks_recording (tenant_id, recording_pk, checked_at), whose leading tenant column the
 * recording_pk term follows, so the tenant comparison stays a plain one.
 */
export async function moveIntegrityChecks(trx: Kysely<Database>, absorbedPk: string, survivorPk: string, tenantId: string): Promise<void> {
  await trx.updateTable('integrity_checks').set({ recording_pk: survivorPk }).where('tenant_id', '=', tenantId).where('recording_pk', '=', absorbedPk).execute();
}

/**
 * Idempotent upsert of one copy record. The logical recording is found by (tenant, call_id),
 * else through the copy's natural key, else created. A field that is absent in the record
 * keeps its stored value, so a partial re-import never erases what is known; so does a null one,
 * except `source_retention_expiry`, which null clears (a source that lifted its delete date).
 */
async function upsertOne(trx: Kysely<Database>, state: ChunkState, r: CatalogRecord): Promise<UpsertOutcome> {
  const now = new Date().toISOString();
  const sourceKey = sourceKeyOf(r);
  const existingCopy = state.copies.get(keyOf(r.tenant_id, r.source_system, sourceKey));

  let rec: RecRow | undefined;
  if (r.call_id) rec = state.recsByCall.get(keyOf(r.tenant_id, r.call_id));
  if (!rec && existingCopy) rec = state.recsById.get(existingCopy.recording_pk);

  // The copy is known under another recording: the record links it to the recording of its call.
  // A recording made for the copy alone (no call id) is merged into that one, so none of its
  // identifiers is lost and none is left pointing at two recordings.
  const movingFrom = existingCopy && rec && existingCopy.recording_pk !== rec.id ? state.recsById.get(existingCopy.recording_pk) : undefined;
  let absorbed: RecRow | undefined;
  if (movingFrom) {
    await state.flush();
    const others = await trx.selectFrom('recording_copies').select('id').where('recording_pk', '=', movingFrom.id).where('id', '!=', existingCopy!.id).limit(1).execute();
    if (movingFrom.call_id === null && others.length === 0) absorbed = movingFrom;
  }

  let outcome: UpsertOutcome = 'unchanged';
  const recFields = {
    call_id: r.call_id ?? rec?.call_id ?? null,
    customer_ref: r.customer_ref ?? rec?.customer_ref ?? absorbed?.customer_ref ?? null,
    conversation_id: r.conversation_id ?? rec?.conversation_id ?? absorbed?.conversation_id ?? null,
    started_at: toIso(r.started_at) ?? rec?.started_at ?? absorbed?.started_at ?? startedAtFromCallId(r.call_id),
    retention_expiry: toIso(r.retention_expiry) ?? rec?.retention_expiry ?? absorbed?.retention_expiry ?? null,
  };
  // legal_hold is no column value any more: `true` places a hold record (wantHold, below), `false`
  // releases nothing (only the four-eyes release does). The column is written 0 (migration 0014).
  let recordingPk: string;
  if (!rec) {
    recordingPk = newId();
    state.addRecording({ id: recordingPk, tenant_id: r.tenant_id, ...recFields, legal_hold: 0, created_at: now, updated_at: now });
    outcome = 'inserted';
  } else {
    recordingPk = rec.id;
    const prev = rec;
    const changed = (Object.keys(recFields) as (keyof typeof recFields)[]).some((k) => String(recFields[k]) !== String(prev[k]));
    if (changed) {
      await state.updateRecording(prev, { ...prev, ...recFields, updated_at: now });
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
    state: r.state ?? existingCopy?.state ?? 'AVAILABLE',
    codec: r.codec ?? existingCopy?.codec ?? null,
    size_bytes: r.size_bytes ?? num(existingCopy?.size_bytes ?? null),
    sha256: r.sha256 ?? existingCopy?.sha256 ?? null,
    encryption_status: r.encryption_status ?? existingCopy?.encryption_status ?? null,
    key_id: r.key_id ?? existingCopy?.key_id ?? null,
    // The one field an explicit null clears (absent keeps, as for every field): a source lifts its
    // delete date (Genesys: the recording PUT removes deleteDate, e.g. for a dispute), and a kept
    // stale date would call the copy deleted there, and the recording EXPIRED, after that date. Only
    // a reader of the source's current truth sends null (the Genesys sync and finder); an import
    // file's null is dropped before it gets here (import.ts), like its other nulls.
    source_retention_expiry: r.source_retention_expiry === undefined ? (existingCopy?.source_retention_expiry ?? null) : toIso(r.source_retention_expiry),
  };
  if (!existingCopy) {
    state.setCopy({ id: newId(), tenant_id: r.tenant_id, source_system: r.source_system, source_key: sourceKey, ...copyFields, created_at: now, updated_at: now }, true);
    if (outcome === 'unchanged') outcome = 'updated';
  } else {
    const changed = (Object.keys(copyFields) as (keyof typeof copyFields)[]).some((k) => String(copyFields[k]) !== String(k === 'size_bytes' ? num(existingCopy.size_bytes) : existingCopy[k]));
    if (changed) {
      state.setCopy({ ...existingCopy, ...copyFields, updated_at: now }, false);
      if (outcome === 'unchanged') outcome = 'updated';
    }
  }

  if (movingFrom) {
    // The record's own legal_hold: true is placed (at this flush) before the moved copy's holds
    // follow it, so a clash of matters renames the followers, never the record's own hold.
    if (r.legal_hold && !absorbed) state.wantHold(r.tenant_id, recordingPk);
    // Write the move before touching the old recording (deleting it cascades to its copies).
    await state.flush();
    if (absorbed) {
      const old = await trx.selectFrom('recording_refs').selectAll().where('recording_pk', '=', absorbed.id).execute();
      for (const ref of old) state.addRef({ tenant_id: ref.tenant_id, value: ref.value, kind: ref.kind as RefKind, recording_pk: recordingPk });
      await state.flush();
      await HoldRepository.moveHolds(trx, absorbed.id, recordingPk, r.tenant_id);
      await moveJobs(trx, absorbed.id, recordingPk, r.tenant_id);
      await moveIntegrityChecks(trx, absorbed.id, recordingPk, r.tenant_id);
      await trx.deleteFrom('recordings').where('id', '=', absorbed.id).execute();
      state.forgetRecording(absorbed);
    } else {
      // The old recording stays, held or not: the moved copy takes its holds along (a record of
      // their own on this recording), or the held audio would be served — or refused, 410 — by the
      // dates of a recording no hold names, while the hold sits on one without that copy.
      state.holdsPlaced += await HoldRepository.followCopy(trx, r.tenant_id, existingCopy!.id, movingFrom.id, recordingPk, now);
      // The old recording keeps its other copies; the moved copy's own ids stop naming it.
      for (const [kind, value, column] of [
        ['recording_id', existingCopy!.genesys_recording_id, 'genesys_recording_id'],
        ['legacy_archive_id', existingCopy!.legacy_archive_id, 'legacy_archive_id'],
      ] as const) {
        if (!value) continue;
        const stillHeld = await trx.selectFrom('recording_copies').select('id').where('recording_pk', '=', movingFrom.id).where(column, '=', value).limit(1).execute();
        if (!stillHeld.length) await trx.deleteFrom('recording_refs').where('recording_pk', '=', movingFrom.id).where('kind', '=', kind).where('value', '=', value).execute();
      }
    }
  }

  const refs: [RefKind, string | null | undefined][] = [
    ['id', recordingPk],
    ['call_id', recFields.call_id],
    ['customer_ref', recFields.customer_ref],
    ['conversation_id', recFields.conversation_id],
    ['recording_id', copyFields.genesys_recording_id],
    ['legacy_archive_id', copyFields.legacy_archive_id],
    ['external_tag', r.external_tag],
    ['sip_call_id', r.sip_call_id],
  ];
  for (const [kind, value] of refs) if (value) state.addRef({ tenant_id: r.tenant_id, kind, value, recording_pk: recordingPk });
  if (r.legal_hold) state.wantHold(r.tenant_id, recordingPk);
  return outcome;
}
