import { readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { IdleWaiters } from './idle-waiters.js';
import type { AppDeps } from '../deps.js';
import { abortForShutdown, executeJob } from './run-job.js';

/**
 * Claims due jobs from the job table and runs them, `concurrency` at a time; also purges staged
 * media past its TTL. Any instance may run it: claims are atomic, leases expire, so a job whose
 * instance died is picked up by another. `stop` hands the jobs still running here back to the queue.
 */
export class JobWorker {
  private stopped = false;
  private stopping: Promise<void> | undefined;
  private readonly loops: Promise<void>[] = [];
  /** The abort of each attempt this worker's loops are running. */
  private readonly running = new Set<AbortController>();
  private readonly idle = new IdleWaiters();
  private sweeper: NodeJS.Timeout | undefined;

  constructor(private readonly deps: AppDeps) {}

  start(): void {
    const cfg = this.deps.config.jobs;
    for (let i = 0; i < cfg.concurrency; i++) this.loops.push(this.loop());
    this.sweeper = setInterval(
      () =>
        void this.sweep()
          .then(() => this.purgeLeftovers())
          .catch((e: unknown) => this.deps.logger.error({ err: e }, 'staging sweep failed')),
      Math.min(cfg.staging_ttl_ms, 60_000),
    );
    this.sweeper.unref();
  }

  /** New work exists (a job was queued here): skip the rest of the poll wait. */
  poke(): void {
    this.idle.wakeOne();
  }

  private async loop(): Promise<void> {
    const cfg = this.deps.config.jobs;
    while (!this.stopped) {
      let job;
      try {
        job = await this.deps.jobs.claim(this.deps.instanceId, cfg.lease_ms, {
          retryBaseMs: cfg.retry_base_ms,
          // An attempt that died with its process never settled its job: the claim did, as that
          // attempt would have (run-job.ts settleFailure), and it is reported the same way.
          onGaveUp: (j) => {
            this.deps.metrics.jobs.inc({ outcome: 'failed' });
            this.deps.logger.warn({ job: j.id, code: j.errorCode, attempts: j.attempts }, 'job failed');
          },
        });
      } catch (e) {
        this.deps.logger.error({ err: e }, 'job claim failed');
      }
      if (job) {
        if (this.stopped && job.leaseOwner) {
          // A claim that was under way when stop() came: its job goes back without a start.
          await this.deps.jobs.handBack(job.id, job.leaseOwner).catch((e: unknown) => this.deps.logger.error({ err: e, job: job.id }, 'job could not be handed back'));
          continue;
        }
        const ac = new AbortController();
        this.running.add(ac);
        await executeJob(this.deps, job, ac)
          .catch((e: unknown) => this.deps.logger.error({ err: e, job: job.id }, 'job crashed'))
          .finally(() => this.running.delete(ac));
        continue;
      }
      await this.idle.wait(cfg.poll_interval_ms);
    }
  }

  async sweep(): Promise<number> {
    const due = await this.deps.jobs.dueForExpiry();
    for (const job of due) {
      // One object that cannot be deleted (a store outage, a permission) must not keep this and
      // every later due job served: the row is expired regardless — markExpired drops the wrapped
      // data key, so what is left behind can no longer be decrypted — and the failure is logged.
      if (job.stagingKey) {
        await this.deps.staging.delete(job.stagingKey).catch((err: unknown) => this.deps.logger.warn({ err, job: job.id }, 'staged media could not be deleted at its TTL; its data key is dropped'));
      }
      await this.deps.jobs.markExpired(job.id);
    }
    return due.length;
  }

  /**
   * Local staging only: files of attempts cut by a crash — a temp file, or an object staged by an
   * attempt that died before marking its job ready — which no row points at and no later attempt
   * reuses (each attempt stages under a key of its own). Purged once untouched for twice the TTL:
   * a ready job's file is swept at its TTL by `sweep`, an attempt still writing touches its file.
   * (S3 staging: the bucket's lifecycle rule, docs/OPERATIONS.md.)
   */
  async purgeLeftovers(): Promise<number> {
    const dir = this.deps.staging.dir;
    if (!dir) return 0;
    const names = await readdir(dir).catch(() => [] as string[]);
    const horizon = Date.now() - 2 * this.deps.config.jobs.staging_ttl_ms;
    let purged = 0;
    for (const n of names) {
      if (!n.startsWith('job_')) continue;
      const s = await stat(join(dir, n)).catch(() => null);
      if (s && s.mtimeMs < horizon) {
        await rm(join(dir, n), { force: true }).catch(() => {});
        purged++;
      }
    }
    return purged;
  }

  /**
   * Stops claiming at once; the attempts running in this process — claimed by this worker, or
   * fetches handed to a 202 job (`deps.handedOff`) — get `graceMs` to finish, then are aborted for
   * shutdown: each removes its partial staging and hands its job back to the queue, due at once
   * with the attempt refunded (JobRepository.handBack), so another instance takes it up now rather
   * than after `jobs.lease_ms`. Resolves when every attempt has settled: bounded by the grace
   * period and an aborted attempt's cleanup, not by the size or speed of a source.
   */
  stop(graceMs = 0): Promise<void> {
    return (this.stopping ??= (async () => {
      this.stopped = true;
      clearInterval(this.sweeper);
      this.idle.wakeAll();
      const settled = () => Promise.allSettled([...this.loops, ...[...this.deps.handedOff].map((h) => h.done)]);
      let timer: NodeJS.Timeout | undefined;
      const graceOver = new Promise<void>((r) => (timer = setTimeout(r, graceMs)));
      await Promise.race([settled(), graceOver]);
      clearTimeout(timer);
      for (const ac of this.running) abortForShutdown(ac);
      for (const h of this.deps.handedOff) abortForShutdown(h.abort);
      await settled();
    })());
  }
}
