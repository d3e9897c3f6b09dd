import { randomUUID } from 'node:crypto';
import { type Kysely, type Selectable, sql } from 'kysely';
import type { Dialect } from '../catalog/database.js';
import type { Database, JobsTable } from '../catalog/tables.js';
import { attemptOwner } from './lease.js';

export type JobStatus = 'queued' | 'running' | 'ready' | 'failed' | 'expired';

export interface Job {
  id: string;
  tenantId: string;
  principalId: string;
  callerId: string | null;
  requestId: string | null;
  auditLogId: string | null;
  ref: string;
  recordingPk: string;
  format: string;
  status: JobStatus;
  origin: string | null;
  attempts: number;
  maxAttempts: number;
  runAfter: string;
  leaseOwner: string | null;
  leaseUntil: string | null;
  bytesDone: number;
  bytesTotal: number | null;
  errorCode: string | null;
  errorDetail: string | null;
  sourceState: string | null;
  copyId: string | null;
  contentType: string | null;
  codec: string | null;
  transcoded: boolean | null;
  sha256: string | null;
  stagingKey: string | null;
  dekKeyId: string | null;
  dekWrapped: string | null;
  expiresAt: string | null;
  createdAt: string;
  updatedAt: string;
  /** The request asked for include_metadata: the content carries X-Recording-Metadata. */
  includeMetadata: boolean;
  /** What the source stated about the staged bytes (SourceMedia.auditDetail), for the content's audit events; null when nothing. */
  sourceDetail: SourceDetail | null;
}

/** A source's statements about bytes it served, as SourceMedia.auditDetail carries them. */
export type SourceDetail = Readonly<Record<string, string | number | boolean>>;

export interface NewJob {
  tenantId: string;
  principalId: string;
  callerId: string | null;
  requestId: string | null;
  auditLogId: string | null;
  ref: string;
  recordingPk: string;
  format: string;
  maxAttempts: number;
  includeMetadata?: boolean;
  /**
   * A job whose fetch is already under way in this process starts as running under its lease: the
   * owner of that first attempt. The 202 hand-off passes its instance id, which no claim ever
   * produces (a claim's owner carries a nonce of its own, `claim`), so the two are told apart.
   */
  leaseOwner?: string;
  leaseMs?: number;
}

export interface StagedResult {
  stagingKey: string;
  dekKeyId: string;
  dekWrapped: string;
  size: number;
  sha256: string;
  contentType: string;
  codec: string;
  transcoded: boolean;
  origin: string;
  copyId: string;
  expiresAt: string;
  /** The opened copy's SourceMedia.auditDetail (OpenedCopy.sourceDetail). */
  sourceDetail?: SourceDetail | undefined;
}

export interface ClaimOptions {
  /**
   * The backoff base of a failed attempt (`jobs.retry_base_ms`). An attempt whose lease lapsed
   * (its process died, so it never settled the job) is a failed attempt: its job is taken up again
   * `retryDelayMs(retryBaseMs, attempts)` after the lapse. 0 (the default): at once.
   */
  retryBaseMs?: number;
  /** Told of each job this claim failed for good: its last attempt's lease lapsed with no attempt left. */
  onGaveUp?: (job: Job) => void | Promise<void>;
}

const TEN_MINUTES = 600_000;

/** The wait before the next attempt after `attempts` failed ones: base × 2^(attempts-1), at most 10 minutes. */
export function retryDelayMs(retryBaseMs: number, attempts: number): number {
  return Math.min(retryBaseMs * 2 ** Math.max(0, attempts - 1), TEN_MINUTES);
}

/** How many lapsed leases one claim settles at most (the rest by the next claims). */
const LAPSED_PER_CLAIM = 20;

const iso = (ms: number) => new Date(ms).toISOString();
const n = (v: number | string | null): number | null => (v === null ? null : Number(v));

/**
 * A ready job past its TTL is expired, whether or not a sweep has deleted its media yet: the sweep
 * runs once a minute at most, and a delete that fails must not keep the media served.
 */
export function statusAt<S extends string>(status: S, expiresAt: string | null, now = Date.now()): S | 'expired' {
  return status === 'ready' && expiresAt !== null && Date.parse(expiresAt) <= now ? 'expired' : status;
}

function toJob(r: Selectable<JobsTable>): Job {
  return {
    id: r.id,
    tenantId: r.tenant_id,
    principalId: r.principal_id,
    callerId: r.caller_id,
    requestId: r.request_id,
    auditLogId: r.audit_log_id,
    ref: r.ref,
    recordingPk: r.recording_pk,
    format: r.format,
    status: statusAt(r.status as JobStatus, r.expires_at),
    origin: r.origin,
    attempts: Number(r.attempts),
    maxAttempts: Number(r.max_attempts),
    runAfter: r.run_after,
    leaseOwner: r.lease_owner,
    leaseUntil: r.lease_until,
    bytesDone: Number(r.bytes_done),
    bytesTotal: n(r.bytes_total),
    errorCode: r.error_code,
    errorDetail: r.error_detail,
    sourceState: r.source_state,
    copyId: r.copy_id,
    contentType: r.content_type,
    codec: r.codec,
    transcoded: r.transcoded === null ? null : Number(r.transcoded) === 1,
    sha256: r.sha256,
    stagingKey: r.staging_key,
    dekKeyId: r.dek_key_id,
    dekWrapped: r.dek_wrapped,
    expiresAt: r.expires_at,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    includeMetadata: Number(r.include_metadata) === 1,
    sourceDetail: sourceDetailOf(r.source_detail),
  };
}

/**
 * The stored source_detail, plain values only (what auditDetail may hold). A row this code did not
 * write (hand-edited, damaged) gives null rather than failing every read of the job: the statements
 * are evidence to add, and a job that cannot be read cannot be polled or expired either.
 */
function sourceDetailOf(text: string | null): SourceDetail | null {
  if (!text) return null;
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return null;
  const out = Object.entries(v).filter(([, x]) => typeof x === 'string' || typeof x === 'number' || typeof x === 'boolean');
  return out.length ? (Object.fromEntries(out) as SourceDetail) : null;
}

/**
 * The job table is both the queue and the resource clients poll (pg-boss style: the database is
 * the queue). All of its SQL is here. Writes that belong to a running attempt are guarded by the
 * lease owner, so a worker that lost its lease cannot overwrite the attempt that replaced it.
 */
export class JobRepository {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly dialect: Dialect,
  ) {}

  /**
   * Creates the job, or returns the existing one for the same (tenant, request_id): request_id is
   * the idempotency key. `db` may be a caller's write transaction (the 202 hand-off writes the job
   * and its audit event in one commit).
   */
  async create(j: NewJob, db: Kysely<Database> = this.db): Promise<{ job: Job; created: boolean }> {
    const now = Date.now();
    const id = `job_${randomUUID()}`;
    const running = j.leaseOwner !== undefined;
    const inserted = await db
      .insertInto('jobs')
      .values({
        id,
        tenant_id: j.tenantId,
        principal_id: j.principalId,
        caller_id: j.callerId,
        request_id: j.requestId,
        audit_log_id: j.auditLogId,
        ref: j.ref,
        recording_pk: j.recordingPk,
        format: j.format,
        status: running ? 'running' : 'queued',
        attempts: running ? 1 : 0,
        max_attempts: j.maxAttempts,
        run_after: iso(now),
        lease_owner: j.leaseOwner ?? null,
        lease_until: running ? iso(now + (j.leaseMs ?? 30_000)) : null,
        bytes_done: 0,
        include_metadata: j.includeMetadata ? 1 : 0,
        created_at: iso(now),
        updated_at: iso(now),
      })
      .onConflict((oc) => oc.doNothing())
      .executeTakeFirst();
    if (Number(inserted.numInsertedOrUpdatedRows ?? 0) > 0) return { job: (await this.get(j.tenantId, id, db))!, created: true };
    const existing = j.requestId ? await this.byRequestId(j.tenantId, j.requestId, db) : null;
    if (!existing) throw new Error('job insert ignored without a conflicting request_id');
    return { job: existing, created: false };
  }

  async get(tenantId: string, id: string, db: Kysely<Database> = this.db): Promise<Job | null> {
    const r = await db.selectFrom('jobs').selectAll().where('tenant_id', '=', tenantId).where('id', '=', id).executeTakeFirst();
    return r ? toJob(r) : null;
  }

  async byRequestId(tenantId: string, requestId: string, db: Kysely<Database> = this.db): Promise<Job | null> {
    const r = await db.selectFrom('jobs').selectAll().where('tenant_id', '=', tenantId).where('request_id', '=', requestId).executeTakeFirst();
    return r ? toJob(r) : null;
  }

  /**
   * Claims one due job — queued and due — in a single statement, so two workers never claim the
   * same job. The lease belongs to this attempt, not to the instance: its owner is
   * `<instanceId>:<nonce>`, returned as `leaseOwner`, which the attempt passes to heartbeat,
   * markReady and retryOrFail. Another claim loop of the same instance that re-claims the job after
   * the lease lapsed is thereby another owner, and the stale attempt's writes change nothing.
   *
   * Running jobs whose lease lapsed (the attempt's process died: it never settled the job) are
   * settled first, as a failed attempt would have been (`settleLapsed`): queued again after the
   * backoff while attempts remain, failed for good (`job.failed`) after the last.
   */
  async claim(instanceId: string, leaseMs: number, opts: ClaimOptions = {}): Promise<Job | null> {
    await this.settleLapsed(opts);
    const now = Date.now();
    const owner = attemptOwner(instanceId);
    const due = this.db.selectFrom('jobs').select('id').where('status', '=', 'queued').where('run_after', '<=', iso(now)).orderBy('run_after').limit(1);
    const picked = this.dialect === 'postgres' ? due.forUpdate().skipLocked() : due;
    const row = await this.db
      .updateTable('jobs')
      .set((eb) => ({
        status: 'running',
        lease_owner: owner,
        lease_until: iso(now + leaseMs),
        attempts: eb('attempts', '+', 1),
        // bytes_done is the current attempt's progress: each attempt fetches from the start.
        bytes_done: 0,
        updated_at: iso(now),
      }))
      .where('id', '=', (eb) => eb.selectFrom(picked.as('due')).select('due.id'))
      .returningAll()
      .executeTakeFirst();
    return row ? toJob(row) : null;
  }

  /**
   * Running jobs whose lease lapsed: their attempt stopped without an outcome (its process crashed
   * or was killed, or it stalled past its lease). That attempt counts as failed — without this a
   * job whose fetch kills its process every time would be taken up forever. While attempts remain
   * the job is queued again, due `retryDelayMs` after the lapse; after the last it fails for good
   * with `job.failed`. Each row is settled by one guarded UPDATE (still running, same owner, lease
   * still lapsed), so an attempt that renewed in the meantime keeps its job, and of two instances
   * settling the same row only one does.
   */
  private async settleLapsed(opts: ClaimOptions): Promise<void> {
    const now = Date.now();
    const lapsed = await this.db
      .selectFrom('jobs')
      .select(['id', 'attempts', 'max_attempts', 'lease_owner', 'lease_until'])
      .where('status', '=', 'running')
      .where('lease_until', '<', iso(now))
      .orderBy('lease_until')
      .limit(LAPSED_PER_CLAIM)
      .execute();
    for (const r of lapsed) {
      const attempts = Number(r.attempts);
      const final = attempts >= Number(r.max_attempts);
      const lapsedAt = Date.parse(r.lease_until!);
      const update = this.db
        .updateTable('jobs')
        .set(
          final
            ? {
                status: 'failed',
                lease_owner: null,
                lease_until: null,
                error_code: 'job.failed',
                error_detail: `gave up after ${attempts} attempts: the last one stopped without an outcome (its lease lapsed: the instance running it died or stalled)`,
                updated_at: iso(now),
              }
            : { status: 'queued', lease_owner: null, lease_until: null, run_after: iso(lapsedAt + retryDelayMs(opts.retryBaseMs ?? 0, attempts)), bytes_done: 0, updated_at: iso(now) },
        )
        .where('id', '=', r.id)
        .where('status', '=', 'running')
        .where('lease_owner', r.lease_owner === null ? 'is' : '=', r.lease_owner)
        .where('lease_until', '<', iso(now));
      if (!final) {
        await update.execute();
        continue;
      }
      const failed = await update.returningAll().executeTakeFirst();
      if (failed && opts.onGaveUp) await opts.onGaveUp(toJob(failed));
    }
  }

  /** Extends the lease; false means the lease was lost (another worker took the job over). */
  async heartbeat(id: string, owner: string, leaseMs: number, bytesDone?: number, bytesTotal?: number | null): Promise<boolean> {
    const now = Date.now();
    const r = await this.db
      .updateTable('jobs')
      .set({
        lease_until: iso(now + leaseMs),
        updated_at: iso(now),
        ...(bytesDone !== undefined ? { bytes_done: bytesDone } : {}),
        ...(bytesTotal !== undefined ? { bytes_total: bytesTotal } : {}),
      })
      .where('id', '=', id)
      .where('lease_owner', '=', owner)
      .where('status', '=', 'running')
      .executeTakeFirst();
    return Number(r.numUpdatedRows) > 0;
  }

  async markReady(id: string, owner: string, s: StagedResult): Promise<boolean> {
    const r = await this.db
      .updateTable('jobs')
      .set({
        status: 'ready',
        lease_owner: null,
        lease_until: null,
        staging_key: s.stagingKey,
        dek_key_id: s.dekKeyId,
        dek_wrapped: s.dekWrapped,
        bytes_done: s.size,
        bytes_total: s.size,
        sha256: s.sha256,
        content_type: s.contentType,
        codec: s.codec,
        transcoded: s.transcoded ? 1 : 0,
        origin: s.origin,
        copy_id: s.copyId,
        expires_at: s.expiresAt,
        source_detail: s.sourceDetail && Object.keys(s.sourceDetail).length ? JSON.stringify(s.sourceDetail) : null,
        error_code: null,
        error_detail: null,
        updated_at: iso(Date.now()),
      })
      .where('id', '=', id)
      .where('lease_owner', '=', owner)
      .where('status', '=', 'running')
      .executeTakeFirst();
    return Number(r.numUpdatedRows) > 0;
  }

  /**
   * Puts the job back in the queue after `delayMs` (a retry, or a source still preparing), or fails
   * it for good. Only the attempt holding the running job may: false when it no longer does.
   */
  async retryOrFail(id: string, owner: string, e: { code: string; detail: string; sourceState?: string | null }, delayMs: number, final: boolean, refundAttempt = false): Promise<boolean> {
    const now = Date.now();
    const r = await this.db
      .updateTable('jobs')
      .set((eb) => ({
        // Waiting for a source (a restore) is not a failed attempt.
        attempts: refundAttempt ? eb('attempts', '-', 1) : eb.ref('attempts'),
        status: final ? 'failed' : 'queued',
        lease_owner: null,
        lease_until: null,
        run_after: iso(now + delayMs),
        // Queued again, no attempt is fetching: no progress is shown (a failed job keeps its last attempt's).
        ...(final ? {} : { bytes_done: 0 }),
        error_code: e.code,
        error_detail: e.detail.slice(0, 500),
        ...(e.sourceState !== undefined ? { source_state: e.sourceState } : {}),
        updated_at: iso(now),
      }))
      .where('id', '=', id)
      .where('lease_owner', '=', owner)
      .where('status', '=', 'running')
      .executeTakeFirst();
    return Number(r.numUpdatedRows) > 0;
  }

  /**
   * An attempt stopped because its instance shuts down (worker.ts stop): it did not fail, so the
   * job is queued again at once — no backoff, the attempt refunded (not counted against
   * max_attempts), its error fields left as they were — for another instance to claim now rather
   * than when the lease would have lapsed. Only the attempt holding the running job may: false when
   * it no longer does.
   */
  async handBack(id: string, owner: string): Promise<boolean> {
    const now = Date.now();
    const r = await this.db
      .updateTable('jobs')
      .set((eb) => ({
        attempts: eb('attempts', '-', 1),
        status: 'queued',
        lease_owner: null,
        lease_until: null,
        run_after: iso(now),
        bytes_done: 0,
        updated_at: iso(now),
      }))
      .where('id', '=', id)
      .where('lease_owner', '=', owner)
      .where('status', '=', 'running')
      .executeTakeFirst();
    return Number(r.numUpdatedRows) > 0;
  }

  /** Jobs whose staged media passed its TTL: the caller deletes the staged file, then marks them expired. */
  async dueForExpiry(limit = 100): Promise<Job[]> {
    const rows = await this.db.selectFrom('jobs').selectAll().where('status', '=', 'ready').where('expires_at', '<=', iso(Date.now())).limit(limit).execute();
    return rows.map(toJob);
  }

  async markExpired(id: string): Promise<void> {
    await this.db
      .updateTable('jobs')
      .set({ status: 'expired', staging_key: null, dek_wrapped: null, updated_at: iso(Date.now()) })
      .where('id', '=', id)
      .where('status', '=', 'ready')
      .execute();
  }

  async countByStatus(): Promise<Record<string, number>> {
    const rows = await this.db
      .selectFrom('jobs')
      .select(['status', sql<number | string>`count(*)`.as('n')])
      .groupBy('status')
      .execute();
    return Object.fromEntries(rows.map((r) => [r.status, Number(r.n)]));
  }
}
