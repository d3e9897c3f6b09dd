import { IdleWaiters } from '../../jobs/idle-waiters.js';
import { randomUUID } from 'node:crypto';
import { readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Kysely } from 'kysely';
import type { Database } from '../../catalog/tables.js';
import type { AppDeps } from '../../deps.js';
import { AppError, isAppError } from '../../errors.js';
import { Meter } from '../../http/meter.js';
import { EncryptRecords } from '../../keys/chunked-cipher.js';
import { keepLease } from '../../jobs/lease.js';
import { type EvidenceJob, EvidenceJobStore, type NewEvidenceJob } from './job-store.js';
import { buildEvidencePackage, type EvidenceInput, type EvidenceItem, type EvidenceProgress } from './package.js';
import type { EvidenceSigner } from './signer.js';

export type { EvidenceJob, EvidenceJobStatus } from './job-store.js';

const STAGING_PREFIX = 'evidence_';

/** Progress is written to the row this often (and with every heartbeat), so any instance can report it. */
const PROGRESS_EVERY_MS = 1000;

/** The row of a package's job: what any instance needs to build it (recordings by primary key). */
const newJob = (input: EvidenceInput, ctx: { requestEventId: string; httpRequestId: string }): NewEvidenceJob => ({
  id: `evjob_${input.packageId}`,
  principal: input.principal,
  purpose: input.purpose,
  input: {
    packageId: input.packageId,
    createdAt: input.createdAt.toISOString(),
    items: input.items.map((i) => ({ recordingPk: i.recording.id, ref: i.ref, exportEventId: i.exportEventId })),
  },
  ...ctx,
});

/**
 * Evidence packages too large to stream in one response are built in the background into the
 * gateway's encrypted staging (same data keys and record cipher as retrieval jobs) and downloaded
 * when ready; clients poll for progress.
 *
 * Jobs are rows of `evidence_jobs` (migration 0009; job-store.ts), not of the retrieval job table
 * of src/jobs/ (whose rows are single-recording fetches that its worker runs). The row holds what
 * a build needs (principal, purpose, recording ids and their `recording.export` event ids), so any
 * instance's loop here claims it (one UPDATE … RETURNING, SKIP LOCKED on PostgreSQL), builds it
 * under a lease with heartbeats that also write progress, and stores size, digest and the wrapped
 * data key: any instance reports progress and serves the ZIP (the staging directory is shared,
 * like retrieval jobs', docs/OPERATIONS.md). An instance that dies mid-build loses its lease and
 * another one builds the package again; one that shuts down gives its jobs back to the queue.
 * Loops per instance: `jobs.concurrency` (0 = this instance builds none). Staged packages are
 * purged after `jobs.staging_ttl_ms` by whichever instance sweeps first.
 */
export class EvidenceJobs {
  readonly store: EvidenceJobStore;
  private stopped = false;
  private readonly loops: Promise<void>[] = [];
  private readonly idle = new IdleWaiters();
  private readonly running = new Map<string, AbortController>();
  private sweeper: NodeJS.Timeout | undefined;

  constructor(
    private readonly deps: AppDeps,
    private readonly signer: () => Promise<EvidenceSigner>,
  ) {
    this.store = new EvidenceJobStore(deps.catalog);
  }

  /** Starts the claim loops and the expiry sweep of this instance. */
  startWorkers(): void {
    const cfg = this.deps.config.jobs;
    for (let i = 0; i < cfg.concurrency; i++) this.loops.push(this.loop());
    this.sweeper = setInterval(() => void this.sweep().catch((e: unknown) => this.deps.logger.error({ err: e }, 'evidence sweep failed')), Math.min(cfg.staging_ttl_ms, 60_000));
    this.sweeper.unref();
  }

  get(tenantId: string, id: string): Promise<EvidenceJob | null> {
    return this.store.get(tenantId, id);
  }

  /**
   * Queues the job inside the caller's write transaction, with the audit events that name it
   * (console/routes.ts): a row that cannot be written takes the events with it. Call `queued()`
   * once the transaction has committed — a loop woken before then would find nothing to claim.
   */
  startIn(trx: Kysely<Database>, input: EvidenceInput, ctx: { requestEventId: string; httpRequestId: string }): Promise<EvidenceJob> {
    return this.store.createIn(trx, newJob(input, ctx));
  }

  /** Wakes one idle loop of this instance: a job has been queued. */
  queued(): void {
    this.idle.wakeOne();
  }

  private async loop(): Promise<void> {
    const cfg = this.deps.config.jobs;
    while (!this.stopped) {
      let job: EvidenceJob | null = null;
      try {
        job = await this.store.claim(this.deps.instanceId, cfg.lease_ms);
      } catch (e) {
        this.deps.logger.error({ err: e }, 'evidence job claim failed');
      }
      if (job) {
        await this.run(job).catch((e: unknown) => this.deps.logger.error({ err: e, job: job.id }, 'evidence job crashed'));
        continue;
      }
      await this.idle.wait(cfg.poll_interval_ms);
    }
  }

  /** The recordings as they are now (a rebuild on another instance reads the catalog again). */
  private async input(job: EvidenceJob): Promise<EvidenceInput> {
    const items: EvidenceItem[] = [];
    for (const i of job.input.items) {
      const recording = await this.deps.recordings.get(job.tenantId, i.recordingPk);
      if (!recording) throw new AppError('recording.not_found', `recording ${i.ref} is no longer in the catalog`);
      items.push({ recording, ref: i.ref, exportEventId: i.exportEventId });
    }
    return { packageId: job.input.packageId, createdAt: new Date(job.input.createdAt), principal: job.principal, purpose: job.purpose, items };
  }

  private async run(job: EvidenceJob): Promise<void> {
    const cfg = this.deps.config.jobs;
    // The lease is this attempt's (job-store.ts claim), not the instance's.
    const owner = job.leaseOwner;
    if (!owner) throw new Error(`evidence job ${job.id} is run without a lease`);
    const ac = new AbortController();
    this.running.set(job.id, ac);
    if (job.attempts > cfg.max_attempts) {
      await this.store.release(job.id, owner, { code: 'job.failed', detail: `gave up after ${job.attempts - 1} attempts` }, false);
      this.running.delete(job.id);
      await this.audit(job, 'failed', 'job.failed', { attempts: job.attempts - 1 });
      return;
    }
    let progress: EvidenceProgress = job.progress;
    // Heart-beats with progress; aborts the build when the lease is lost or cannot be renewed in time.
    const stopBeat = keepLease({
      leaseMs: cfg.lease_ms,
      heartbeatMs: Math.min(cfg.heartbeat_ms, PROGRESS_EVERY_MS),
      heldUntil: job.leaseUntil ? Date.parse(job.leaseUntil) : null,
      renew: () => this.store.heartbeat(job.id, owner, cfg.lease_ms, progress),
      ac,
      onError: (err) => this.deps.logger.warn({ err, job: job.id }, 'evidence job heartbeat failed'),
    });
    const key = `${STAGING_PREFIX}${randomUUID()}`;
    let dek: Awaited<ReturnType<AppDeps['keys']['generateDataKey']>> | undefined;
    let w: Awaited<ReturnType<AppDeps['staging']['writer']>> | undefined;
    const meter = new Meter();
    try {
      const input = await this.input(job);
      dek = await this.deps.keys.generateDataKey();
      w = await this.deps.staging.writer(key);
      const built = buildEvidencePackage(this.deps, await this.signer(), input, ac.signal, (p) => (progress = p));
      await pipeline(built.stream, meter, new EncryptRecords(dek.plaintext), w.stream, { signal: ac.signal });
      await w.commit();
      const result = await built.done;
      const ready = {
        progress,
        size: meter.bytes,
        sha256: meter.sha256(),
        problems: result.problems.length,
        stagingKey: key,
        dekKeyId: dek.keyId,
        dekWrapped: dek.wrapped,
        expiresAt: new Date(Date.now() + cfg.staging_ttl_ms).toISOString(),
      };
      stopBeat();
      if (!(await this.store.markReady(job.id, owner, ready))) {
        // Another instance took the job over: its package counts, not ours.
        await this.deps.staging.delete(key).catch(() => {});
        return;
      }
      await this.audit({ ...job, size: ready.size, sha256: ready.sha256 }, 'completed', null, { files: result.files.length, problems: result.problems.length, attempt: job.attempts });
    } catch (e) {
      stopBeat();
      await w?.abort().catch(() => {});
      if (this.stopped) {
        // Shutting down: another instance (or this one after the restart) builds it.
        await this.store.release(job.id, owner, null, true).catch(() => {});
        return;
      }
      const code = isAppError(e) ? e.code : ac.signal.aborted ? 'job.failed' : 'source.stream_broken';
      if (ac.signal.aborted && !isAppError(e)) {
        // Lease lost: the new owner reports. Lease not renewable in time: back to the queue, if still ours.
        await this.store.release(job.id, owner, null, true).catch(() => {});
        return;
      }
      this.deps.logger.warn({ job: job.id, code }, 'evidence package failed');
      if (await this.store.release(job.id, owner, { code, detail: (e as Error)?.message ?? String(e) }, false)) await this.audit(job, 'failed', code, {});
    } finally {
      stopBeat();
      dek?.plaintext.fill(0);
      this.running.delete(job.id);
    }
  }

  private async audit(job: Pick<EvidenceJob, 'id' | 'tenantId' | 'principalId' | 'purpose' | 'httpRequestId' | 'requestEventId' | 'size' | 'sha256'>, outcome: 'completed' | 'failed', errorCode: string | null, detail: Record<string, unknown>): Promise<void> {
    try {
      await this.deps.audit.repo.append({
        tenantId: job.tenantId,
        principalId: job.principalId,
        principalKind: 'system',
        callerId: job.principalId,
        httpRequestId: job.httpRequestId,
        action: 'evidence.export.end',
        outcome,
        errorCode,
        bytesSent: job.size,
        sha256: job.sha256,
        relatedEventId: job.requestEventId,
        detail: { package_id: job.id.slice('evjob_'.length), job_id: job.id, purpose: job.purpose, mode: 'job', instance: this.deps.instanceId, ...detail },
      });
    } catch (e) {
      this.deps.logger.error({ err: e, job: job.id }, 'evidence job audit event could not be written');
    }
  }

  /** Ready packages past their TTL: delete the staged file, then mark the row expired. */
  async sweep(): Promise<number> {
    const due = await this.store.dueForExpiry();
    for (const job of due) {
      if (job.stagingKey) await this.deps.staging.delete(job.stagingKey).catch(() => {});
      await this.store.markExpired(job.id);
    }
    return due.length;
  }

  /** Local staging only: files of builds cut by a crash (no row points at them) once past the TTL. */
  async purgeLeftovers(): Promise<void> {
    const dir = this.deps.staging.dir;
    if (!dir) return;
    const names = await readdir(dir).catch(() => [] as string[]);
    const horizon = Date.now() - this.deps.config.jobs.staging_ttl_ms;
    for (const n of names) {
      if (!n.startsWith(STAGING_PREFIX)) continue;
      const s = await stat(join(dir, n)).catch(() => null);
      if (s && s.mtimeMs < horizon) await rm(join(dir, n), { force: true }).catch(() => {});
    }
  }

  async close(): Promise<void> {
    this.stopped = true;
    clearInterval(this.sweeper);
    this.idle.wakeAll();
    for (const ac of this.running.values()) ac.abort(new Error('gateway closing'));
    await Promise.allSettled(this.loops);
  }
}
