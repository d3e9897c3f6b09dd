import { randomUUID } from 'node:crypto';
import { type Kysely, type Selectable, sql } from 'kysely';
import { type Dialect, writeTransaction } from '../catalog/database.js';
import type { AuditEventsTable, Database } from '../catalog/tables.js';
import { type ChainedFields, chainHash } from './chain.js';
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

export interface VerifyResult {
  ok: boolean;
  checked: number;
  lastHash: string;
  broken?: { seq: number; id: string; reason: 'hash_mismatch' | 'chain_break' };
}

const n = (v: number | string | null): number | null => (v === null ? null : Number(v));

function toEvent(r: Selectable<AuditEventsTable>): AuditEvent {
  return {
    seq: Number(r.seq),
    id: r.id,
    occurredAt: r.occurred_at,
    tenantId: r.tenant_id,
    principalId: r.principal_id,
    principalKind: r.principal_kind as AuditEvent['principalKind'],
    callerId: r.caller_id,
    requestId: r.request_id,
    auditLogId: r.audit_log_id,
    httpRequestId: r.http_request_id,
    action: r.action,
    ref: r.ref,
    recordingPk: r.recording_pk,
    copyId: r.copy_id,
    origin: r.origin,
    outcome: r.outcome as AuditEvent['outcome'],
    status: n(r.status),
    errorCode: r.error_code,
    bytesSent: n(r.bytes_sent),
    sha256: r.sha256,
    clientIp: r.client_ip,
    userAgent: r.user_agent,
    relatedEventId: r.related_event_id,
    detail: r.detail === null ? null : (JSON.parse(r.detail) as Record<string, unknown>),
    prevHash: r.prev_hash,
    hash: r.hash,
  };
}

function chainedOf(r: Selectable<AuditEventsTable>): ChainedFields {
  return { ...toEvent(r), detail: r.detail };
}

/** All SQL of the audit trail. Appends are serialised so the chain has one order across instances. */
export class AuditRepository {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly dialect: Dialect,
  ) {}

  async append(input: AuditEventInput): Promise<AuditEvent> {
    return writeTransaction(this.db, async (trx) => {
      // One chain, one writer at a time: on PostgreSQL an advisory lock spans instances; on
      // SQLite the transaction holds the database's write lock from its start (BEGIN IMMEDIATE),
      // which also serialises a CLI process appending beside the server.
      if (this.dialect === 'postgres') await sql`select pg_advisory_xact_lock(7431001)`.execute(trx);
      const last = await trx.selectFrom('audit_events').select('hash').orderBy('seq', 'desc').limit(1).executeTakeFirst();
      const fields: ChainedFields = {
        id: input.id ?? randomUUID(),
        occurredAt: new Date().toISOString(),
        tenantId: input.tenantId,
        principalId: input.principalId,
        principalKind: input.principalKind,
        callerId: input.callerId ?? null,
        requestId: input.requestId ?? null,
        auditLogId: input.auditLogId ?? null,
        httpRequestId: input.httpRequestId ?? null,
        action: input.action,
        ref: input.ref ?? null,
        recordingPk: input.recordingPk ?? null,
        copyId: input.copyId ?? null,
        origin: input.origin ?? null,
        outcome: input.outcome,
        status: input.status ?? null,
        errorCode: input.errorCode ?? null,
        bytesSent: input.bytesSent ?? null,
        sha256: input.sha256 ?? null,
        clientIp: input.clientIp ?? null,
        userAgent: input.userAgent ?? null,
        relatedEventId: input.relatedEventId ?? null,
        detail: input.detail ? JSON.stringify(input.detail) : null,
        prevHash: last?.hash ?? GENESIS_HASH,
      };
      const hash = chainHash(fields);
      const row = await trx
        .insertInto('audit_events')
        .values({
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
        })
        .returningAll()
        .executeTakeFirstOrThrow();
      return toEvent(row);
    });
  }

  async query(q: AuditQuery): Promise<{ items: AuditEvent[]; next: number | null }> {
    let query = this.db.selectFrom('audit_events').selectAll().where('tenant_id', '=', q.tenantId);
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

  /**
   * Walks the whole chain in order and reports the first event whose hash does not match its
   * content (an edit) or whose prev_hash does not name its predecessor (a deletion, insertion or
   * reordering). Memory stays flat: pages of rows, not the table.
   */
  async verify(pageSize = 1000): Promise<VerifyResult> {
    let prev = GENESIS_HASH;
    let checked = 0;
    let afterSeq = -1;
    for (;;) {
      const rows = await this.db.selectFrom('audit_events').selectAll().where('seq', '>', afterSeq).orderBy('seq').limit(pageSize).execute();
      for (const r of rows) {
        const seq = Number(r.seq);
        if (r.prev_hash !== prev) return { ok: false, checked, lastHash: prev, broken: { seq, id: r.id, reason: 'chain_break' } };
        if (chainHash(chainedOf(r)) !== r.hash) return { ok: false, checked, lastHash: prev, broken: { seq, id: r.id, reason: 'hash_mismatch' } };
        prev = r.hash;
        checked++;
        afterSeq = seq;
      }
      if (rows.length < pageSize) return { ok: true, checked, lastHash: prev };
    }
  }
}
