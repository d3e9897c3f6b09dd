import type { Generated, Kysely, Selectable, Updateable } from 'kysely';
import type { Principal } from '../../access/principal.js';
import type { Scope } from '../../config/schema.js';
import type { CatalogDb } from '../../catalog/database.js';
import type { Database } from '../../catalog/tables.js';
import { statusAt } from '../../jobs/job-repository.js';
import { attemptOwner } from '../../jobs/lease.js';
import type { EvidenceProgress } from './package.js';

export type EvidenceJobStatus = 'queued' | 'running' | 'ready' | 'failed' | 'expired';

/** What a worker on any instance needs to (re)build the package: recordings by primary key, not Recording objects. */
export interface StoredEvidenceInput {
  packageId: string;
  createdAt: string;
  items: { recordingPk: string; ref: string; exportEventId: string }[];
}

export interface EvidenceJob {
  id: string;
  tenantId: string;
  principalId: string;
  principal: Principal;
  purpose: string;
  input: StoredEvidenceInput;
  status: EvidenceJobStatus;
  attempts: number;
  /** The attempt holding the lease (claim): its heartbeat, markReady and release pass it. */
  leaseOwner: string | null;
  leaseUntil: string | null;
  progress: EvidenceProgress;
  /** The audit event of the request that started the job. */
  requestEventId: string;
  httpRequestId: string;
  size: number | null;
  sha256: string | null;
  problems: number;
  stagingKey: string | null;
  dekKeyId: string | null;
  dekWrapped: string | null;
  error: { code: string; detail: string } | null;
  createdAt: string;
  finishedAt: string | null;
  expiresAt: string | null;
}

/** Table 0009_evidence_jobs (src/catalog/migrations.ts); typed here, where all its SQL lives. */
interface EvidenceJobsTable {
  id: string;
  tenant_id: string;
  principal_id: string;
  principal_json: string;
  purpose: string;
  input_json: string;
  status: string;
  attempts: Generated<number>;
  lease_owner: string | null;
  lease_until: string | null;
  progress_json: string;
  size: number | string | null;
  sha256: string | null;
  problems: Generated<number>;
  staging_key: string | null;
  dek_key_id: string | null;
  dek_wrapped: string | null;
  error_code: string | null;
  error_detail: string | null;
  request_event_id: string;
  http_request_id: string;
  created_at: string;
  updated_at: string;
  finished_at: string | null;
  expires_at: string | null;
}

type Db = Kysely<{ evidence_jobs: EvidenceJobsTable }>;

/** What a new job is made of (EvidenceJobs.start builds it from the request's package input). */
export interface NewEvidenceJob {
  id: string;
  principal: Principal;
  purpose: string;
  input: StoredEvidenceInput;
  requestEventId: string;
  httpRequestId: string;
}

const iso = (ms: number) => new Date(ms).toISOString();

function toJob(r: Selectable<EvidenceJobsTable>): EvidenceJob {
  const p = JSON.parse(r.principal_json) as { id: string; tenantId: string; kind: Principal['kind']; scopes: Scope[]; credentialId: string | null };
  return {
    id: r.id,
    tenantId: r.tenant_id,
    principalId: r.principal_id,
    principal: { ...p, scopes: new Set(p.scopes) },
    purpose: r.purpose,
    input: JSON.parse(r.input_json) as StoredEvidenceInput,
    status: statusAt(r.status as EvidenceJobStatus, r.expires_at),
    attempts: Number(r.attempts),
    leaseOwner: r.lease_owner,
    leaseUntil: r.lease_until,
    progress: JSON.parse(r.progress_json) as EvidenceProgress,
    requestEventId: r.request_event_id,
    httpRequestId: r.http_request_id,
    size: r.size === null ? null : Number(r.size),
    sha256: r.sha256,
    problems: Number(r.problems),
    stagingKey: r.staging_key,
    dekKeyId: r.dek_key_id,
    dekWrapped: r.dek_wrapped,
    error: r.error_code ? { code: r.error_code, detail: r.error_detail ?? '' } : null,
    createdAt: r.created_at,
    finishedAt: r.finished_at,
    expiresAt: r.expires_at,
  };
}

/**
 * The evidence job table: queue and poll resource at once, like src/jobs/job-repository.ts (the
 * same claim and lease rules), for packages instead of single recordings. Writes of a running
 * attempt are guarded by the lease owner, so an instance that lost its lease cannot finish a job
 * another instance took over.
 */
export class EvidenceJobStore {
  private readonly db: Db;
  constructor(private readonly catalog: CatalogDb) {
    this.db = catalog.db.withTables<{ evidence_jobs: EvidenceJobsTable }>() as unknown as Db;
  }

  async create(j: NewEvidenceJob): Promise<EvidenceJob> {
    return this.createIn(this.catalog.db, j);
  }

  /**
   * Inserts the job inside the caller's write transaction (catalog/database.ts writeTransaction),
   * so the row commits with the audit events that name it — the request's `evidence.export` and
   * each `recording.export` — or none of them does (console/routes.ts).
   */
  async createIn(trx: Kysely<Database>, j: NewEvidenceJob): Promise<EvidenceJob> {
    const db = trx.withTables<{ evidence_jobs: EvidenceJobsTable }>() as unknown as Db;
    const now = iso(Date.now());
    const p = j.principal;
    const row = await db
      .insertInto('evidence_jobs')
      .values({
        id: j.id,
        tenant_id: p.tenantId,
        principal_id: p.id,
        principal_json: JSON.stringify({ id: p.id, tenantId: p.tenantId, kind: p.kind, scopes: [...p.scopes], credentialId: p.credentialId }),
        purpose: j.purpose,
        input_json: JSON.stringify(j.input),
        status: 'queued',
        progress_json: JSON.stringify({ recordings_total: j.input.items.length, recordings_done: 0, files_done: 0, bytes_done: 0 } satisfies EvidenceProgress),
        request_event_id: j.requestEventId,
        http_request_id: j.httpRequestId,
        created_at: now,
        updated_at: now,
      })
      .returningAll()
      .executeTakeFirstOrThrow();
    return toJob(row);
  }

  async get(tenantId: string, id: string): Promise<EvidenceJob | null> {
    const r = await this.db.selectFrom('evidence_jobs').selectAll().where('tenant_id', '=', tenantId).where('id', '=', id).executeTakeFirst();
    return r ? toJob(r) : null;
  }

  /**
   * One queued job, or a running one whose lease lapsed (its instance died), in one statement. The
   * lease belongs to this attempt (`<instanceId>:<nonce>`, returned as `leaseOwner`), so a stale
   * attempt of the same instance cannot renew, fail or finish a job another loop re-claimed.
   */
  async claim(instanceId: string, leaseMs: number): Promise<EvidenceJob | null> {
    const now = Date.now();
    const owner = attemptOwner(instanceId);
    const due = this.db
      .selectFrom('evidence_jobs')
      .select('id')
      .where((eb) => eb.or([eb('status', '=', 'queued'), eb.and([eb('status', '=', 'running'), eb('lease_until', '<', iso(now))])]))
      .orderBy('created_at')
      .limit(1);
    const picked = this.catalog.dialect === 'postgres' ? due.forUpdate().skipLocked() : due;
    const row = await this.db
      .updateTable('evidence_jobs')
      .set((eb) => ({ status: 'running', lease_owner: owner, lease_until: iso(now + leaseMs), attempts: eb('attempts', '+', 1), updated_at: iso(now) }))
      .where('id', '=', (eb) => eb.selectFrom(picked.as('due')).select('due.id'))
      .returningAll()
      .executeTakeFirst();
    return row ? toJob(row) : null;
  }

  /** Extends the lease and records progress; false: the lease was lost. */
  async heartbeat(id: string, owner: string, leaseMs: number, progress: EvidenceProgress): Promise<boolean> {
    const now = Date.now();
    return this.updateHeld(id, owner, { lease_until: iso(now + leaseMs), progress_json: JSON.stringify(progress), updated_at: iso(now) });
  }

  async markReady(id: string, owner: string, r: { progress: EvidenceProgress; size: number; sha256: string; problems: number; stagingKey: string; dekKeyId: string; dekWrapped: string; expiresAt: string }): Promise<boolean> {
    const now = iso(Date.now());
    return this.updateHeld(id, owner, {
      status: 'ready',
      lease_owner: null,
      lease_until: null,
      progress_json: JSON.stringify(r.progress),
      size: r.size,
      sha256: r.sha256,
      problems: r.problems,
      staging_key: r.stagingKey,
      dek_key_id: r.dekKeyId,
      dek_wrapped: r.dekWrapped,
      error_code: null,
      error_detail: null,
      finished_at: now,
      expires_at: r.expiresAt,
      updated_at: now,
    });
  }

  /** Fails the job for good, or (`requeue`) gives it back to the queue, e.g. when this instance shuts down mid-build. */
  async release(id: string, owner: string, e: { code: string; detail: string } | null, requeue: boolean): Promise<boolean> {
    const now = iso(Date.now());
    return this.updateHeld(id, owner, {
      status: requeue ? 'queued' : 'failed',
      lease_owner: null,
      lease_until: null,
      error_code: e?.code ?? null,
      error_detail: e ? e.detail.slice(0, 500) : null,
      ...(requeue ? {} : { finished_at: now }),
      updated_at: now,
    });
  }

  /** Updates a job this attempt still holds (running, under its lease); false: the lease was lost. */
  private async updateHeld(id: string, owner: string, set: Updateable<EvidenceJobsTable>): Promise<boolean> {
    const res = await this.db.updateTable('evidence_jobs').set(set).where('id', '=', id).where('lease_owner', '=', owner).where('status', '=', 'running').executeTakeFirst();
    return Number(res.numUpdatedRows) > 0;
  }

  async dueForExpiry(limit = 100): Promise<EvidenceJob[]> {
    const rows = await this.db.selectFrom('evidence_jobs').selectAll().where('status', '=', 'ready').where('expires_at', '<=', iso(Date.now())).limit(limit).execute();
    return rows.map(toJob);
  }

  async markExpired(id: string): Promise<void> {
    await this.db
      .updateTable('evidence_jobs')
      .set({ status: 'expired', staging_key: null, dek_wrapped: null, updated_at: iso(Date.now()) })
      .where('id', '=', id)
      .where('status', '=', 'ready')
      .execute();
  }
}
