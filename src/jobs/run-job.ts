import { randomBytes } from 'node:crypto';
import { finished, type Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { AppDeps } from '../deps.js';
import { AppError, isAppError, isRetryable } from '../errors.js';
import { Meter } from '../http/meter.js';
import { EncryptRecords } from '../keys/chunked-cipher.js';
import type { AudioFormat } from '../media/format.js';
import { NoCopyOpened, type OpenedCopy, PREPARING_CODES } from '../resolve/open-copy.js';
import { openRecording } from '../resolve/open-recording.js';
import { retentionStatus } from '../resolve/retention.js';
import { locationOf } from '../sources/registry.js';
import { type Job, retryDelayMs } from './job-repository.js';
import { keepLease } from './lease.js';

/**
 * The abort reason of an attempt stopped because its instance shuts down (worker.ts stop): the
 * attempt did not fail, its job is handed back to the queue at once (JobRepository.handBack).
 */
export class ShutdownAbort extends Error {
  constructor() {
    super('the instance running this attempt is shutting down');
    this.name = 'ShutdownAbort';
  }
}

/** Stops an attempt for shutdown (a no-op on one already aborted: its first reason stands). */
export function abortForShutdown(ac: AbortController): void {
  if (!ac.signal.aborted) ac.abort(new ShutdownAbort());
}

const stoppedForShutdown = (signal: AbortSignal | undefined) => signal?.aborted === true && signal.reason instanceof ShutdownAbort;

/**
 * Which stage of a pipeline failed first. The pipeline destroys every other stage with the first
 * stage's error, so the write stream emits a source's error too (a body cut mid-way, a source
 * reset): only the stage whose failure came first — reported in the order the stages fail, by
 * the same end-of-stream detection the pipeline uses — says where the fault is.
 */
function firstFailure(stages: (Readable | Writable)[]): () => Readable | Writable | undefined {
  let first: Readable | Writable | undefined;
  for (const s of stages) {
    finished(s, (err) => {
      if (err && !first) first = s;
    });
  }
  return () => first;
}

/** The lease owner of this attempt (job-repository.ts claim/create): every write of the attempt is guarded by it. */
function ownerOf(job: Job): string {
  if (!job.leaseOwner) throw new Error(`job ${job.id} is run without a lease`);
  return job.leaseOwner;
}

/**
 * Holds a job's lease while `work` runs: heart-beats with progress, and aborts the work when the
 * lease is lost (another attempt has taken the job over, so this one must not finish it) or can no
 * longer be renewed in time (lease.ts keepLease: an instance that cannot reach the database stops
 * rather than streaming on after its lease lapsed).
 */
async function underLease<T>(deps: AppDeps, job: Job, ac: AbortController, progress: () => { done: number; total: number | null }, work: () => Promise<T>): Promise<T> {
  const cfg = deps.config.jobs;
  const owner = ownerOf(job);
  const stop = keepLease({
    leaseMs: cfg.lease_ms,
    heartbeatMs: cfg.heartbeat_ms,
    heldUntil: job.leaseUntil ? Date.parse(job.leaseUntil) : null,
    renew: () => {
      const p = progress();
      return deps.jobs.heartbeat(job.id, owner, cfg.lease_ms, p.done, p.total);
    },
    ac,
    onError: (err) => deps.logger.warn({ err, job: job.id }, 'job heartbeat failed'),
  });
  try {
    return await work();
  } finally {
    stop();
  }
}

/**
 * Streams an opened copy into encrypted staging and marks the job ready. Used for a fetch that
 * outlived the first-byte budget (the same fetch, continued) and for jobs a worker claimed.
 */
export async function stageOpened(deps: AppDeps, job: Job, opening: Promise<OpenedCopy>, ac: AbortController): Promise<void> {
  let meter: Meter | undefined;
  let total: number | null = null;
  try {
    await underLease(
      deps,
      job,
      ac,
      () => ({ done: meter?.bytes ?? 0, total }),
      async () => {
        const opened = await opening;
        total = opened.prepared.length ?? null;
        const dek = await deps.keys.generateDataKey();
        // Each attempt stages under a key of its own: a stale attempt (lease lapsed, still alive)
        // never writes, overwrites or deletes the object of the attempt that replaced it.
        const key = `${job.id}_${randomBytes(8).toString('hex')}`;
        const w = await deps.staging.writer(key);
        meter = new Meter();
        const encrypt = new EncryptRecords(dek.plaintext);
        let diskError: NodeJS.ErrnoException | undefined;
        w.stream.once('error', (e: NodeJS.ErrnoException) => (diskError = e));
        // A write stream's error is the staging's fault only when it failed first: after a source
        // failed (or the attempt was aborted) it carries the error the pipeline destroyed it with.
        const failedFirst = firstFailure([opened.prepared.body, meter, encrypt, w.stream]);
        try {
          await pipeline(opened.prepared.body, meter, encrypt, w.stream, { signal: ac.signal });
          await w.commit();
        } catch (e) {
          // A partial file is never left behind under any name.
          await w.abort();
          opened.prepared.body.destroy();
          if (diskError && !ac.signal.aborted && failedFirst() === w.stream) {
            throw new AppError('staging.write_failed', `staging could not be written (${diskError.code ?? 'error'})`, { cause: e });
          }
          throw e;
        } finally {
          dek.plaintext.fill(0);
        }
        const ok = await deps.jobs.markReady(job.id, ownerOf(job), {
          stagingKey: key,
          dekKeyId: dek.keyId,
          dekWrapped: dek.wrapped,
          size: meter.bytes,
          sha256: meter.sha256(),
          contentType: opened.prepared.contentType,
          codec: opened.prepared.codec,
          transcoded: opened.prepared.transcoded,
          origin: opened.copy.origin,
          copyId: opened.copy.id,
          expiresAt: new Date(Date.now() + deps.config.jobs.staging_ttl_ms).toISOString(),
          // The source's statements about these bytes (Genesys: whether they may be redacted): the
          // content's events carry them, as a direct retrieval's do (serve-recording.ts).
          sourceDetail: opened.sourceDetail,
        });
        // Another attempt holds the job: ours does not count, and only our own object goes.
        if (!ok) await deps.staging.delete(key);
        deps.metrics.jobs.inc({ outcome: ok ? 'ready' : 'lease_lost' });
      },
    );
  } catch (e) {
    await settleFailure(deps, job, e, ac.signal).catch((err: unknown) => deps.logger.error({ err, job: job.id }, 'could not record the job outcome'));
  }
}

/** Decides between "try again later" and "failed for good", and says why on the job. */
async function settleFailure(deps: AppDeps, job: Job, e: unknown, signal?: AbortSignal): Promise<void> {
  if (stoppedForShutdown(signal)) {
    // Not a failure: the job goes back to the queue now, for another instance (its partial staging was removed above).
    const back = await deps.jobs.handBack(job.id, ownerOf(job));
    deps.metrics.jobs.inc({ outcome: back ? 'shutdown' : 'lease_lost' });
    if (back) deps.logger.info({ job: job.id }, 'job handed back to the queue: the instance is shutting down');
    return;
  }
  const err = e instanceof NoCopyOpened ? e.last : isAppError(e) ? e : new AppError('source.unavailable', (e as Error)?.message ?? 'failed');
  const cfg = deps.config.jobs;
  if (PREPARING_CODES.has(err.code)) {
    // Restores take hours: waiting is not failing, and does not use up attempts.
    const held = await deps.jobs.retryOrFail(job.id, ownerOf(job), { code: err.code, detail: err.message, sourceState: err.code }, cfg.restore_poll_ms, false, true);
    deps.metrics.jobs.inc({ outcome: held ? 'waiting' : 'lease_lost' });
    return;
  }
  const retryable = isRetryable(err) || err.code.startsWith('source.');
  const final = !retryable || job.attempts >= job.maxAttempts;
  const delay = retryDelayMs(cfg.retry_base_ms, job.attempts);
  // An attempt that no longer holds the job (lease lost) changes nothing: the attempt holding it reports.
  const held = await deps.jobs.retryOrFail(job.id, ownerOf(job), { code: err.code, detail: err.message }, delay, final);
  deps.metrics.jobs.inc({ outcome: !held ? 'lease_lost' : final ? 'failed' : 'retry' });
  if (held && final) deps.logger.warn({ job: job.id, code: err.code }, 'job failed');
}

/**
 * One claimed attempt of a job: resolve again (the catalog may have moved), restore if archived,
 * fetch, stage. `ac` aborts it (worker.ts keeps it to stop the attempt at shutdown, abortForShutdown).
 */
export async function executeJob(deps: AppDeps, job: Job, ac = new AbortController()): Promise<void> {
  try {
    const rec = await deps.recordings.get(job.tenantId, job.recordingPk);
    if (!rec) throw new AppError('recording.not_found');
    if (retentionStatus(rec) === 'EXPIRED') throw new AppError('recording.expired');
    // Keys are checked again (a key may have been disabled since the request that queued the job), and
    // a recording whose copies are all gone gets the same finder round as a direct retrieval (open-recording.ts).
    // A rediscovery that filed a copy (open-copy.ts openOrRediscover: `rediscovered_by`) changed the
    // catalog, and may have placed holds: it is audited once the opening settles, opened or not.
    let rediscovery: Record<string, unknown> | undefined;
    const note = (d: Record<string, unknown>) => {
      if (typeof d.rediscovered_by === 'string') rediscovery = d;
      deps.logger.warn({ job: job.id, ...d }, 'job: opening the recording');
    };
    const log = (msg: string, o: object) => deps.logger.warn({ job: job.id, ...o }, msg);
    const opening = openRecording(deps, rec, job.format as AudioFormat, ac.signal, note, log).then(
      async (opened) => {
        if (rediscovery) await auditRediscovery(deps, job, rediscovery);
        return opened;
      },
      async (e: unknown) => {
        if (rediscovery) await auditRediscovery(deps, job, rediscovery);
        if (e instanceof NoCopyOpened && e.last.code === 'source.archived' && !ac.signal.aborted) await startRestore(deps, job, e);
        throw e;
      },
    );
    await stageOpened(deps, job, opening, ac);
  } catch (e) {
    await settleFailure(deps, job, e, ac.signal);
  }
}

/**
 * `recording.rediscovered`: a job's finder round filed the recording's cloud copy (a catalog
 * write-back) and possibly placed holds (`holds_placed`). A request's rediscovery is told in the
 * request's own event; a job has no such event. The write-back has committed and a retry would not
 * repeat it, so an event that cannot be written does not fail the attempt: it is logged in full.
 */
async function auditRediscovery(deps: AppDeps, job: Job, note: Record<string, unknown>): Promise<void> {
  const detail = { job_id: job.id, rediscovered_by: note.rediscovered_by, ...(note.holds_placed ? { holds_placed: note.holds_placed } : {}) };
  await deps.audit.repo
    .append({
      tenantId: job.tenantId,
      principalId: job.principalId,
      principalKind: 'system',
      callerId: job.callerId,
      requestId: job.requestId,
      action: 'recording.rediscovered',
      ref: job.ref,
      recordingPk: job.recordingPk,
      outcome: 'completed',
      detail,
    })
    .catch((err: unknown) => deps.logger.error({ err, job: job.id, tenant: job.tenantId, recording: job.recordingPk, ...detail }, 'could not audit a job\'s rediscovery'));
}

/** An archived copy: ask its source to restore it; the job then waits (restore_poll_ms) and tries again. */
async function startRestore(deps: AppDeps, job: Job, e: NoCopyOpened): Promise<void> {
  const attempt = e.attempts.find((a) => a.code === 'source.archived');
  const rec = await deps.recordings.get(job.tenantId, job.recordingPk);
  const copy = rec?.copies.find((c) => c.id === attempt?.copy_id);
  if (!rec || !copy) return;
  const connector = deps.sources.forCopy(rec.tenantId, copy);
  if (!connector.restore) return;
  const until = new Date(Date.now() + deps.config.jobs.restore_keep_days * 86_400_000);
  await connector.restore(locationOf(copy, rec.conversationId), until, AbortSignal.timeout(30_000));
  await deps.audit.repo.append({
    tenantId: job.tenantId,
    principalId: job.principalId,
    principalKind: 'system',
    callerId: job.callerId,
    requestId: job.requestId,
    action: 'source.restore_requested',
    ref: job.ref,
    recordingPk: job.recordingPk,
    copyId: copy.id,
    origin: copy.origin,
    outcome: 'completed',
    detail: { job_id: job.id, keep_until: until.toISOString() },
  });
}
