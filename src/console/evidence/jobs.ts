import { randomUUID } from 'node:crypto';
import { readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { AppDeps } from '../../deps.js';
import { isAppError } from '../../errors.js';
import { Meter } from '../../http/meter.js';
import { EncryptRecords } from '../../keys/chunked-cipher.js';
import { buildEvidencePackage, type EvidenceInput, type EvidenceProgress } from './package.js';
import type { EvidenceSigner } from './signer.js';

export type EvidenceJobStatus = 'queued' | 'running' | 'ready' | 'failed' | 'expired';

export interface EvidenceJob {
  id: string;
  tenantId: string;
  principalId: string;
  purpose: string;
  status: EvidenceJobStatus;
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

const STAGING_PREFIX = 'evidence_';

/**
 * Evidence packages too large to stream in one response are built in the background into the
 * gateway's encrypted staging (same data keys and record cipher as retrieval jobs) and downloaded
 * when ready; clients poll for progress.
 *
 * The job table of src/jobs/ is not used: its rows are single-recording retrievals that any
 * instance's worker claims and runs (a claimed evidence row would be run as a recording fetch).
 * So these jobs live in the memory of the instance that runs them: progress is exact, but a
 * restart loses unfinished jobs (clients start again) and, with several instances, polling and
 * download need sticky routing for /api/v1/evidence/jobs/*. Staged packages are purged after
 * `jobs.staging_ttl_ms`, and leftovers of a previous process at start-up.
 */
export class EvidenceJobs {
  private readonly jobs = new Map<string, EvidenceJob>();
  private readonly running = new Map<string, AbortController>();
  private readonly inFlight = new Set<Promise<void>>();
  private readonly queue: (() => void)[] = [];
  private active = 0;
  private readonly timers = new Set<NodeJS.Timeout>();

  constructor(
    private readonly deps: AppDeps,
    private readonly signer: () => Promise<EvidenceSigner>,
    private readonly maxConcurrent = 2,
  ) {}

  get(tenantId: string, id: string): EvidenceJob | null {
    const j = this.jobs.get(id);
    return j && j.tenantId === tenantId ? j : null;
  }

  start(input: EvidenceInput, ctx: { requestEventId: string; httpRequestId: string }): EvidenceJob {
    this.prune();
    const job: EvidenceJob = {
      id: `evjob_${input.packageId}`,
      tenantId: input.principal.tenantId,
      principalId: input.principal.id,
      purpose: input.purpose,
      status: 'queued',
      progress: { recordings_total: input.items.length, recordings_done: 0, files_done: 0, bytes_done: 0 },
      requestEventId: ctx.requestEventId,
      httpRequestId: ctx.httpRequestId,
      size: null,
      sha256: null,
      problems: 0,
      stagingKey: null,
      dekKeyId: null,
      dekWrapped: null,
      error: null,
      createdAt: new Date().toISOString(),
      finishedAt: null,
      expiresAt: null,
    };
    this.jobs.set(job.id, job);
    const run = () => {
      this.active++;
      const p = this.run(job, input).finally(() => {
        this.active--;
        this.inFlight.delete(p);
        this.queue.shift()?.();
      });
      this.inFlight.add(p);
    };
    if (this.active < this.maxConcurrent) run();
    else this.queue.push(run);
    return job;
  }

  private async run(job: EvidenceJob, input: EvidenceInput): Promise<void> {
    const ac = new AbortController();
    this.running.set(job.id, ac);
    job.status = 'running';
    const key = `${STAGING_PREFIX}${randomUUID()}`;
    let dek: Awaited<ReturnType<AppDeps['keys']['generateDataKey']>> | undefined;
    let w: Awaited<ReturnType<AppDeps['staging']['writer']>> | undefined;
    const meter = new Meter();
    try {
      dek = await this.deps.keys.generateDataKey();
      w = await this.deps.staging.writer(key);
      const built = buildEvidencePackage(this.deps, await this.signer(), input, ac.signal, (p) => (job.progress = p));
      await pipeline(built.stream, meter, new EncryptRecords(dek.plaintext), w.stream, { signal: ac.signal });
      await w.commit();
      const result = await built.done;
      Object.assign(job, {
        status: 'ready',
        size: meter.bytes,
        sha256: meter.sha256(),
        problems: result.problems.length,
        stagingKey: key,
        dekKeyId: dek.keyId,
        dekWrapped: dek.wrapped,
        finishedAt: new Date().toISOString(),
        expiresAt: new Date(Date.now() + this.deps.config.jobs.staging_ttl_ms).toISOString(),
      } satisfies Partial<EvidenceJob>);
      const t = setTimeout(() => void this.expire(job), this.deps.config.jobs.staging_ttl_ms);
      t.unref();
      this.timers.add(t);
      await this.audit(job, 'completed', null, { files: result.files.length, problems: result.problems.length });
    } catch (e) {
      await w?.abort().catch(() => {});
      const code = isAppError(e) ? e.code : ac.signal.aborted ? 'job.failed' : 'source.stream_broken';
      Object.assign(job, { status: 'failed', error: { code, detail: (e as Error)?.message ?? String(e) }, finishedAt: new Date().toISOString() } satisfies Partial<EvidenceJob>);
      this.deps.logger.warn({ job: job.id, code }, 'evidence package failed');
      await this.audit(job, 'failed', code, {});
    } finally {
      dek?.plaintext.fill(0);
      this.running.delete(job.id);
    }
  }

  private async audit(job: EvidenceJob, outcome: 'completed' | 'failed', errorCode: string | null, detail: Record<string, unknown>): Promise<void> {
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
        detail: { package_id: job.id.slice('evjob_'.length), job_id: job.id, purpose: job.purpose, mode: 'job', ...detail },
      });
    } catch (e) {
      this.deps.logger.error({ err: e, job: job.id }, 'evidence job audit event could not be written');
    }
  }

  private async expire(job: EvidenceJob): Promise<void> {
    if (job.stagingKey) await this.deps.staging.delete(job.stagingKey).catch(() => {});
    Object.assign(job, { status: 'expired', stagingKey: null, dekWrapped: null } satisfies Partial<EvidenceJob>);
  }

  /** Forgets finished jobs a day after they ended, so the map stays small. */
  private prune(): void {
    const horizon = Date.now() - Math.max(this.deps.config.jobs.staging_ttl_ms, 86_400_000);
    for (const [id, j] of this.jobs) if (j.finishedAt && Date.parse(j.finishedAt) < horizon && j.status !== 'ready') this.jobs.delete(id);
  }

  /** Staged packages of a previous process (whose jobs were in its memory) once past the TTL. */
  async purgeLeftovers(): Promise<void> {
    const dir = this.deps.staging.dir;
    const names = await readdir(dir).catch(() => [] as string[]);
    const horizon = Date.now() - this.deps.config.jobs.staging_ttl_ms;
    for (const n of names) {
      if (!n.startsWith(STAGING_PREFIX)) continue;
      const s = await stat(join(dir, n)).catch(() => null);
      if (s && s.mtimeMs < horizon) await rm(join(dir, n), { force: true }).catch(() => {});
    }
  }

  async close(): Promise<void> {
    for (const ac of this.running.values()) ac.abort(new Error('gateway closing'));
    for (const t of this.timers) clearTimeout(t);
    this.queue.length = 0;
    await Promise.allSettled([...this.inFlight]);
  }
}
