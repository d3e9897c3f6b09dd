import { CompiledQuery, type Kysely, type Selectable, sql } from 'kysely';
import { multiRowInsertText } from '../catalog/bulk-insert.js';
import { type Dialect, writeTransaction } from '../catalog/database.js';
import { filterOnly } from '../catalog/filter-only.js';
import { newId } from '../catalog/ids.js';
import { yieldToLoop } from '../catalog/yield-to-loop.js';
import type { AuditEventsTable, Database } from '../catalog/tables.js';
import type { AuditCheckpointsTable } from '../catalog/tables.js';
import type { KeyService } from '../keys/keyring.js';
import { type ChainedFields, chainHash, storableText } from './chain.js';
import { type Checkpoint, type CheckpointFields, canonicalCheckpoint } from './checkpoint.js';
import { type AuditEvent, type AuditEventInput, GENESIS_HASH } from './event.js';

export interface AuditQuery {
  tenantId: string;
  from?: string;
  to?: string;
  principalId?: string;
  recordingPk?: string;
  outcome?: string;
  action?: string;
  limit: number;
  /** Keyset cursor: the seq of the last event of the previous page. */
  afterSeq?: number;
}

/**
 * Why a trail fails verification: an edited field (`hash_mismatch`); a deleted, inserted or
 * reordered row (`chain_break`); a checkpoint whose signature does not verify
 * (`checkpoint_forged`); a chain rebuilt under a valid checkpoint (`checkpoint_mismatch`); fewer
 * events than a valid checkpoint covers (`truncated`).
 */
export type BreakReason = 'hash_mismatch' | 'chain_break' | 'checkpoint_forged' | 'checkpoint_mismatch' | 'truncated';

export interface VerifyResult {
  ok: boolean;
  /** Events whose hash and link were confirmed, from the start. */
  checked: number;
  lastHash: string;
  /** Checkpoints whose signature, hash and count were confirmed. */
  checkpoints: number;
  /** The first broken link: the event's seq (for a checkpoint, the seq it covers) and id (null when no event stands there). */
  broken?: { seq: number; id: string | null; reason: BreakReason; checkpointId?: number; detail?: string };
}

export interface VerifyOptions {
  pageSize?: number;
  /** false: the hash chain alone (what an attacker who rebuilt it can also pass). */
  checkpoints?: boolean;
}

/** An event as stored: `detail` is the JSON text exactly as hashed. What an export carries. */
export type StoredEvent = ChainedFields & { seq: number; hash: string };

export interface ExportQuery {
  /** One tenant's events; absent: the whole chain between the bounds (contiguous). */
  tenantId?: string | null;
  from?: string;
  to?: string;
  /** Events up to this seq only: an export is a snapshot of the trail when it started. */
  throughSeq: number;
}

const n = (v: number | string | null): number | null => (v === null ? null : Number(v));

/**
 * Events per page of a scan (verify, the checkpointer's re-check, export). The scan yields to the
 * event loop between pages (yield-to-loop.ts), so a page is the longest a running gateway waits on
 * it: ~20 µs an event on SQLite, read and re-hashed. Pages of 250 held every request in flight for
 * 6–10 ms (median of 7 runs 8.8 ms) each time the checkpointer re-checked its 1 000 events — at
 * two events a retrieval, one retrieval in ~125 met it, squarely in the TTFB p99; pages of 64:
 * 1.3–2.3 ms, for the same total (15–25 ms per 1 000 either way, measured on the AMD bench host).
 */
const SCAN_PAGE = 64;

/**
 * An event as read back. `detail` is stored as JSON text; a row whose text is not JSON was edited
 * outside custodian (its hash no longer matches, and verify says so): it reads as `detail: null`
 * with the stored text in `detailUnreadable`, so one tampered row never fails a read of the trail.
 */
export type ReadEvent = AuditEvent & { detailUnreadable?: string };

/** The stored detail text as an object, or `unreadable` when it is not JSON (an edited row). */
function parseDetail(text: string | null): { detail: Record<string, unknown> | null } | { detail: null; unreadable: string } {
  if (text === null) return { detail: null };
  try {
    return { detail: JSON.parse(text) as Record<string, unknown> };
  } catch {
    return { detail: null, unreadable: text };
  }
}

function toEvent(r: Selectable<AuditEventsTable>): ReadEvent {
  const d = parseDetail(r.detail);
  return {
    seq: Number(r.seq),
    ...chainedOf(r),
    detail: d.detail,
    hash: r.hash,
    ...('unreadable' in d ? { detailUnreadable: d.unreadable } : {}),
  };
}

/** The hashed fields of a row, as stored: `detail` is hashed as text, so it is never parsed here. */
function chainedOf(r: Selectable<AuditEventsTable>): ChainedFields {
  return {
    id: r.id,
    occurredAt: r.occurred_at,
    tenantId: r.tenant_id,
    principalId: r.principal_id,
    principalKind: r.principal_kind as ChainedFields['principalKind'],
    callerId: r.caller_id,
    requestId: r.request_id,
    auditLogId: r.audit_log_id,
    httpRequestId: r.http_request_id,
    action: r.action,
    ref: r.ref,
    recordingPk: r.recording_pk,
    copyId: r.copy_id,
    origin: r.origin,
    outcome: r.outcome as ChainedFields['outcome'],
    status: n(r.status),
    errorCode: r.error_code,
    bytesSent: n(r.bytes_sent),
    sha256: r.sha256,
    clientIp: r.client_ip,
    userAgent: r.user_agent,
    relatedEventId: r.related_event_id,
    detail: r.detail,
    prevHash: r.prev_hash,
  };
}

function toCheckpoint(r: Selectable<AuditCheckpointsTable>): Checkpoint {
  return {
    id: Number(r.id),
    lastSeq: Number(r.last_seq),
    lastHash: r.last_hash,
    eventCount: Number(r.event_count),
    createdAt: r.created_at,
    keyId: r.key_id,
    algorithm: r.algorithm,
    signature: r.signature,
  };
}

/** The stored form of an event, field order as hashed (seq first, hash last). */
export function storedEvent(r: Selectable<AuditEventsTable>): StoredEvent {
  const { prevHash, ...rest } = chainedOf(r);
  // Key order as exports have always written it (`hash` before `prevHash`): consumers read fields by name.
  return { seq: Number(r.seq), ...rest, hash: r.hash, prevHash };
}

/** Most events one group commit carries. */
const GROUP_MAX = 256;

/** A row as an append writes it: every column but seq. */
type EventRow = Omit<Selectable<AuditEventsTable>, 'seq'>;

/** All SQL of the audit trail. Appends are serialised so the chain has one order across instances. */
export class AuditRepository {
  private readonly listeners = new Set<(e: AuditEvent) => void>();

  /** `keys` verifies checkpoint signatures; a repository without it can append and check the plain chain only. */
  constructor(
    private readonly db: Kysely<Database>,
    private readonly dialect: Dialect,
    private readonly keys?: Pick<KeyService, 'verify'>,
  ) {}

  /** Called after each committed append (the checkpointer counts them). Returns the unsubscribe. */
  onAppend(listener: (e: AuditEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Appends one event in its own commit — shared with the appends that arrive while another
   * commit is in flight (group commit): one transaction, one chain lock and one durable flush for
   * the whole group, in arrival order. Under concurrency on PostgreSQL one commit per event was
   * the ceiling (~800 appends/s at 50 concurrent, p50 58 ms). Each caller still learns of its own
   * event only once it has committed; if a group fails, its events are retried one by one so one
   * bad event never refuses the others.
   */
  append(input: AuditEventInput): Promise<AuditEvent> {
    return this.appendTogether([input])[0]!;
  }

  /**
   * Appends several events as `append` does each, queued at once so they ride the same group
   * commit (one transaction, one durable flush) unless the group fails and they are retried one by
   * one. One promise per input, in order: each may fail on its own. A request whose refusal is also
   * evidence for another tenant writes both this way, so that second event costs a row in the same
   * commit rather than a commit of its own — a delay the caller could time (http/evidence.ts).
   */
  appendTogether(inputs: AuditEventInput[]): Promise<AuditEvent>[] {
    const queued = inputs.map((input) => new Promise<AuditEvent>((resolve, reject) => void this.#pending.push({ input, resolve, reject })));
    if (!this.#flushing && inputs.length) {
      this.#flushing = true;
      // SQLite commits synchronously, so no append can arrive while one is in flight: each was its
      // own transaction (two per retrieval). Waiting for the end of this event-loop turn lets the
      // appends of every request handled in it — other sockets' callbacks — share one commit; it
      // costs a request nothing when it is alone. PostgreSQL's commits are real I/O: start now.
      if (this.dialect === 'sqlite') setImmediate(() => void this.#flush());
      else void this.#flush();
    }
    return queued;
  }

  readonly #pending: { input: AuditEventInput; resolve: (e: AuditEvent) => void; reject: (e: unknown) => void }[] = [];
  #flushing = false;

  async #flush(): Promise<void> {
    this.#flushing = true;
    try {
      while (this.#pending.length) {
        const group = this.#pending.splice(0, GROUP_MAX);
        try {
          const events = await this.#commit(group.map((g) => g.input));
          group.forEach((g, i) => g.resolve(events[i]!));
        } catch (e) {
          if (group.length === 1) {
            group[0]!.reject(e);
            continue;
          }
          for (const g of group) await this.#commit([g.input]).then(([ev]) => g.resolve(ev!), g.reject);
        }
      }
    } finally {
      this.#flushing = false;
    }
  }

  async #commit(inputs: AuditEventInput[]): Promise<AuditEvent[]> {
    const events = await writeTransaction(this.db, (trx) => this.insertEvents(trx, inputs));
    this.published(events);
    return events;
  }

  /**
   * Appends inside the caller's write transaction (writeTransaction), so the events commit or roll
   * back with the changes they describe. The chain stays in commit order: on PostgreSQL the
   * advisory lock taken here is held until that transaction ends (append last, keep it short);
   * on SQLite the transaction already holds the write lock. Call `published` after the commit.
   */
  async appendIn(trx: Kysely<Database>, input: AuditEventInput): Promise<AuditEvent> {
    return this.insertEvent(trx, input);
  }

  /** Tells the listeners (the checkpointer) about events that have committed. */
  published(events: AuditEvent[]): void {
    for (const ev of events) {
      for (const l of this.listeners) {
        try {
          l(ev);
        } catch {
          // A listener never fails an append that has committed.
        }
      }
    }
  }

  private async insertEvent(trx: Kysely<Database>, input: AuditEventInput): Promise<AuditEvent> {
    return (await this.insertEvents(trx, [input]))[0]!;
  }

  /** Chains and inserts events in order: one lock, one read of the head, one multi-row INSERT. */
  private async insertEvents(trx: Kysely<Database>, inputs: AuditEventInput[]): Promise<AuditEvent[]> {
    // One chain, one writer at a time: on PostgreSQL an advisory lock spans instances; on
    // SQLite the transaction holds the database's write lock from its start (BEGIN IMMEDIATE),
    // which also serialises a CLI process appending beside the server.
    if (this.dialect === 'postgres') await sql`select pg_advisory_xact_lock(7431001)`.execute(trx);
    const last = (await trx.executeQuery<{ hash: string }>(CompiledQuery.raw('select hash from audit_events order by seq desc limit 1', []))).rows[0];
    let prevHash = last?.hash ?? GENESIS_HASH;
    const rows = inputs.map((input): EventRow => {
      const fields: ChainedFields = {
        // Time-ordered: the unique index on id grows at its right edge instead of taking a page miss per event.
        id: input.id ?? newId(),
        occurredAt: new Date().toISOString(),
        // Text from clients and tokens as the database will store it (chain.ts storableText).
        tenantId: storableText(input.tenantId),
        principalId: storableText(input.principalId),
        principalKind: input.principalKind,
        callerId: storableText(input.callerId ?? null),
        requestId: storableText(input.requestId ?? null),
        auditLogId: storableText(input.auditLogId ?? null),
        httpRequestId: storableText(input.httpRequestId ?? null),
        action: storableText(input.action),
        ref: storableText(input.ref ?? null),
        recordingPk: input.recordingPk ?? null,
        copyId: input.copyId ?? null,
        origin: input.origin ?? null,
        outcome: input.outcome,
        status: input.status ?? null,
        errorCode: input.errorCode ?? null,
        bytesSent: input.bytesSent ?? null,
        sha256: input.sha256 ?? null,
        clientIp: storableText(input.clientIp ?? null),
        userAgent: storableText(input.userAgent ?? null),
        relatedEventId: input.relatedEventId ?? null,
        detail: input.detail ? JSON.stringify(input.detail) : null,
        prevHash,
      };
      const hash = chainHash(fields);
      prevHash = hash;
      return {
        id: fields.id,
        occurred_at: fields.occurredAt,
        tenant_id: fields.tenantId,
        principal_id: fields.principalId,
        principal_kind: fields.principalKind,
        caller_id: fields.callerId,
        request_id: fields.requestId,
        audit_log_id: fields.auditLogId,
        http_request_id: fields.httpRequestId,
        action: fields.action,
        ref: fields.ref,
        recording_pk: fields.recordingPk,
        copy_id: fields.copyId,
        origin: fields.origin,
        outcome: fields.outcome,
        status: fields.status,
        error_code: fields.errorCode,
        bytes_sent: fields.bytesSent,
        sha256: fields.sha256,
        client_ip: fields.clientIp,
        user_agent: fields.userAgent,
        related_event_id: fields.relatedEventId,
        detail: fields.detail,
        prev_hash: fields.prevHash,
        hash,
      };
    });
    // The columns are the row's own keys (built above in one literal, the same order for every row).
    const columns = Object.keys(rows[0]!) as (keyof EventRow)[];
    const params: unknown[] = [];
    for (const r of rows) for (const c of columns) params.push(r[c]);
    // The text is built once per group size and handed to the driver as is (on SQLite the
    // statement cache then prepares it once): building and compiling it with the query builder
    // for every group, with RETURNING of every column, was about a third of an append's CPU —
    // and an append sits before the first byte of every retrieval. Only seq and id come back:
    // the rest is what was just written.
    const text = multiRowInsertText(this.dialect === 'sqlite', 'audit_events', columns, rows.length, ' returning seq, id');
    const numbered = (await trx.executeQuery<{ seq: number | string; id: string }>(CompiledQuery.raw(text, params))).rows
      .map((r) => ({ seq: Number(r.seq), id: r.id }))
      .sort((x, y) => x.seq - y.seq);
    // The chain is the seq order: the rows must have taken their seqs in the order they were
    // chained (one multi-row INSERT does). Anything else rolls the group back.
    if (numbered.length !== rows.length || numbered.some((e, i) => e.id !== rows[i]!.id)) {
      throw new Error('audit events were not numbered in chain order');
    }
    return rows.map((r, i) => toEvent({ ...r, seq: numbered[i]!.seq }));
  }

  async query(q: AuditQuery): Promise<{ items: AuditEvent[]; next: number | null }> {
    // Pages in seq order by audit_tenant_seq (0011). One recording's few events are found by
    // audit_recording, the tenant only filters: with a time window SQLite without statistics
    // took audit_tenant_time and read the tenant's whole window instead (filter-only.ts).
    const tenant = q.recordingPk ? filterOnly(this.db, 'tenant_id') : sql.ref<string>('tenant_id');
    let query = this.db.selectFrom('audit_events').selectAll().where(tenant, '=', q.tenantId);
    if (q.from) query = query.where('occurred_at', '>=', q.from);
    if (q.to) query = query.where('occurred_at', '<', q.to);
    if (q.principalId) query = query.where('principal_id', '=', q.principalId);
    if (q.recordingPk) query = query.where('recording_pk', '=', q.recordingPk);
    if (q.outcome) query = query.where('outcome', '=', q.outcome);
    if (q.action) query = query.where('action', '=', q.action);
    if (q.afterSeq !== undefined) query = query.where('seq', '>', q.afterSeq);
    const rows = await query.orderBy('seq').limit(q.limit + 1).execute();
    const items = rows.slice(0, q.limit).map(toEvent);
    return { items, next: rows.length > q.limit ? items[items.length - 1]!.seq : null };
  }

  async byId(id: string): Promise<AuditEvent | null> {
    const row = await this.db.selectFrom('audit_events').selectAll().where('id', '=', id).executeTakeFirst();
    return row ? toEvent(row) : null;
  }

  /** The chain head: the last committed event. */
  async head(): Promise<{ seq: number; hash: string } | null> {
    const r = await this.db.selectFrom('audit_events').select(['seq', 'hash']).orderBy('seq', 'desc').limit(1).executeTakeFirst();
    return r ? { seq: Number(r.seq), hash: r.hash } : null;
  }

  /** Rows with afterSeq < seq <= throughSeq, in order, a page at a time. */
  private async *rows(afterSeq: number, throughSeq: number | null, pageSize: number): AsyncGenerator<Selectable<AuditEventsTable>> {
    let after = afterSeq;
    for (;;) {
      let q = this.db.selectFrom('audit_events').selectAll().where('seq', '>', after);
      if (throughSeq !== null) q = q.where('seq', '<=', throughSeq);
      const page = await q.orderBy('seq').limit(pageSize).execute();
      yield* page;
      if (page.length < pageSize) return;
      after = Number(page[page.length - 1]!.seq);
      await yieldToLoop();
    }
  }

  /**
   * Walks the whole chain in order and reports the first event whose hash does not match its
   * content (an edit) or whose prev_hash does not name its predecessor (a deletion, insertion or
   * reordering). With checkpoints (the default) it also checks each checkpoint's signature and
   * that the chain at its seq has its hash and count: a chain rebuilt after an edit passes the
   * first test but not this one. Memory stays flat: pages of rows, not the table.
   */
  async verify(opts: number | VerifyOptions = {}): Promise<VerifyResult> {
    const { pageSize = SCAN_PAGE, checkpoints: withCheckpoints = true } = typeof opts === 'number' ? { pageSize: opts } : opts;
    const cps = withCheckpoints ? await this.checkpoints() : [];
    const keys = this.keys;
    if (cps.length && !keys) throw new Error('verifying audit checkpoints needs the key service');
    const signed = (c: Checkpoint) => keys!.verify(Buffer.from(canonicalCheckpoint(c)), c.signature, c.keyId);
    let prev = GENESIS_HASH;
    let checked = 0;
    let confirmed = 0;
    let i = 0;
    const fail = (broken: NonNullable<VerifyResult['broken']>): VerifyResult => ({ ok: false, checked, lastHash: prev, checkpoints: confirmed, broken });
    const forged = (c: Checkpoint) => fail({ seq: c.lastSeq, id: null, reason: 'checkpoint_forged', checkpointId: c.id, detail: 'the checkpoint signature does not verify' });

    for await (const r of this.rows(-1, null, pageSize)) {
      const seq = Number(r.seq);
      if (r.prev_hash !== prev) return fail({ seq, id: r.id, reason: 'chain_break' });
      if (chainHash(chainedOf(r)) !== r.hash) {
        // The operator's walk says when the edit left text that is not even JSON.
        return fail({ seq, id: r.id, reason: 'hash_mismatch', ...('unreadable' in parseDetail(r.detail) ? { detail: 'the stored detail is not valid JSON' } : {}) });
      }
      // A checkpoint names a seq the chain went past without an event there: rows were removed or renumbered and the chain rebuilt.
      if (i < cps.length && cps[i]!.lastSeq < seq) {
        const c = cps[i]!;
        if (!(await signed(c))) return forged(c);
        return fail({ seq: c.lastSeq, id: null, reason: 'checkpoint_mismatch', checkpointId: c.id, detail: 'the chain has no event at the seq the checkpoint covers' });
      }
      prev = r.hash;
      checked++;
      while (i < cps.length && cps[i]!.lastSeq === seq) {
        const c = cps[i]!;
        if (!(await signed(c))) return forged(c);
        if (c.lastHash !== r.hash || c.eventCount !== checked) {
          return fail({
            seq,
            id: r.id,
            reason: 'checkpoint_mismatch',
            checkpointId: c.id,
            detail: c.lastHash !== r.hash ? 'the event hash differs from the signed one' : `the checkpoint counts ${c.eventCount} events through this seq, the chain ${checked}`,
          });
        }
        confirmed++;
        i++;
      }
    }
    // Checkpoints beyond the end: the tail was cut off (unless the checkpoint itself is a forgery).
    if (i < cps.length) {
      const c = cps[i]!;
      if (!(await signed(c))) return forged(c);
      return fail({ seq: c.lastSeq, id: null, reason: 'truncated', checkpointId: c.id, detail: `a checkpoint covers ${c.eventCount} events through seq ${c.lastSeq}; the chain ends after ${checked}` });
    }
    return { ok: true, checked, lastHash: prev, checkpoints: confirmed };
  }

  /**
   * Checks the links and hashes of the events after `from` (a trusted point, or the start) up to
   * `throughSeq`: the checkpointer never signs a chain it has not checked since its last signature.
   */
  async verifySegment(from: { seq: number; hash: string } | null, throughSeq: number, pageSize = SCAN_PAGE): Promise<{ ok: true; count: number; lastHash: string } | { ok: false; seq: number; reason: BreakReason }> {
    let prev = from?.hash ?? GENESIS_HASH;
    let count = 0;
    for await (const r of this.rows(from?.seq ?? -1, throughSeq, pageSize)) {
      if (r.prev_hash !== prev) return { ok: false, seq: Number(r.seq), reason: 'chain_break' };
      if (chainHash(chainedOf(r)) !== r.hash) return { ok: false, seq: Number(r.seq), reason: 'hash_mismatch' };
      prev = r.hash;
      count++;
    }
    return { ok: true, count, lastHash: prev };
  }

  /** Every checkpoint in chain order. */
  async checkpoints(): Promise<Checkpoint[]> {
    const rows = await this.db.selectFrom('audit_checkpoints').selectAll().orderBy('last_seq').orderBy('id').execute();
    return rows.map(toCheckpoint);
  }

  async latestCheckpoint(): Promise<Checkpoint | null> {
    const r = await this.db.selectFrom('audit_checkpoints').selectAll().orderBy('last_seq', 'desc').orderBy('id', 'desc').limit(1).executeTakeFirst();
    return r ? toCheckpoint(r) : null;
  }

  /** Stores a signed checkpoint; null when one for the same seq exists already (another instance was first). */
  async insertCheckpoint(c: CheckpointFields & { signature: string }): Promise<Checkpoint | null> {
    const row = await this.db
      .insertInto('audit_checkpoints')
      .values({
        last_seq: c.lastSeq,
        last_hash: c.lastHash,
        event_count: c.eventCount,
        created_at: c.createdAt,
        key_id: c.keyId,
        algorithm: c.algorithm,
        signature: c.signature,
      })
      .onConflict((oc) => oc.column('last_seq').doNothing())
      .returningAll()
      .executeTakeFirst();
    return row ? toCheckpoint(row) : null;
  }

  /** Bounds of an export: the first and last seq whose time lies in [from, to), up to throughSeq. */
  private async seqBounds(q: ExportQuery): Promise<{ first: number; last: number } | null> {
    let lo = this.db.selectFrom('audit_events').select('seq').where('seq', '<=', q.throughSeq);
    if (q.from) lo = lo.where('occurred_at', '>=', q.from);
    if (q.to) lo = lo.where('occurred_at', '<', q.to);
    const first = await lo.orderBy('seq').limit(1).executeTakeFirst();
    const last = await lo.orderBy('seq', 'desc').limit(1).executeTakeFirst();
    return first && last ? { first: Number(first.seq), last: Number(last.seq) } : null;
  }

  /**
   * Events for an export, in chain order. Without a tenant the run is contiguous (every event
   * between the first and the last in the time window, so each links to the one before); with a
   * tenant, only that tenant's events in the window.
   */
  async *exportEvents(q: ExportQuery, pageSize = SCAN_PAGE): AsyncGenerator<StoredEvent> {
    if (!q.tenantId) {
      const bounds = await this.seqBounds(q);
      if (!bounds) return;
      for await (const r of this.rows(bounds.first - 1, bounds.last, pageSize)) yield storedEvent(r);
      return;
    }
    let after = -1;
    for (;;) {
      // A page is a seq range of audit_tenant_seq (0011); it used to sort the whole tenant, an export quadratic.
      let query = this.db.selectFrom('audit_events').selectAll().where('tenant_id', '=', q.tenantId).where('seq', '>', after).where('seq', '<=', q.throughSeq);
      if (q.from) query = query.where('occurred_at', '>=', q.from);
      if (q.to) query = query.where('occurred_at', '<', q.to);
      const page = await query.orderBy('seq').limit(pageSize).execute();
      for (const r of page) yield storedEvent(r);
      if (page.length < pageSize) return;
      after = Number(page[page.length - 1]!.seq);
      await yieldToLoop();
    }
  }
}
