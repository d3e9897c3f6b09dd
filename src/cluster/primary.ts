import cluster, { type Worker } from 'node:cluster';
import type { Logger } from 'pino';
import { clusterLimitStore } from '../access/rate-limit.js';
import type { Config } from '../config/schema.js';
import { type WorkerMessage, isMessage } from './messages.js';

export interface PrimaryOptions {
  logger: Logger;
  /** Failed starts in a row of one worker before the primary gives up (default 3). */
  maxStartFailures?: number;
  /** First restart delay; doubled per failure up to maxBackoffMs (defaults 200 ms, 30 s). */
  backoffMs?: number;
  maxBackoffMs?: number;
  /** Beyond server.shutdown_grace_ms, how long workers may take to finish closing before SIGKILL (default 15 s). */
  closeMarginMs?: number;
  /** The worker pids changed (a benchmark sums CPU and RSS over them). */
  onWorkersChanged?: (pids: number[]) => void;
}

export interface ClusterPrimary {
  /** The URL the workers listen on, once every worker is listening; rejects with ClusterStartError. */
  ready: Promise<string>;
  /** Pids of the live workers. */
  pids(): number[];
  /** Graceful shutdown of every worker; resolves with the exit code once all have exited. */
  stop(): Promise<number>;
  /** Resolves with the exit code when the cluster has ended: 0 after a clean stop, 1 after giving up or killing. */
  done: Promise<number>;
  /** Why it gave up (a worker kept failing to start), if it did. */
  failure(): string | undefined;
}

/** The workers could not be started: `message` is the reason (the last failed worker's own). */
export class ClusterStartError extends Error {
  override name = 'ClusterStartError';
}

/** A worker that stayed up this long has recovered: its next crash restarts after the base delay again. */
const STABLE_MS = 60_000;

interface Slot {
  worker?: Worker;
  ready: boolean;
  readyAt: number;
  startFailures: number;
  backoffMs: number;
  lastReason?: string;
  timer?: NodeJS.Timeout;
}

/**
 * The cluster primary of `custodian serve` (server.workers > 1): forks the workers (each a whole
 * gateway sharing the port), restarts one that dies with backoff, gives up when a worker cannot
 * start several times in a row, and on stop() sends each SIGTERM (a graceful shutdown) and waits
 * (then SIGKILL past the grace period and a margin). It serves no request itself: it accepts connections
 * and hands them to the workers (node:cluster's round robin) and, on SQLite, keeps the shared
 * rate-limit counters (rate-limiter-flexible's RateLimiterClusterMaster).
 *
 * The workers run this process's own entry point with its arguments (cluster's default), so
 * `custodian serve --config f` forks `custodian serve --config f`, which knows it is a worker.
 */
export function startPrimary(config: Config, opts: PrimaryOptions): ClusterPrimary {
  if (!cluster.isPrimary) throw new Error('startPrimary: this process is a cluster worker');
  const log = opts.logger;
  const maxStartFailures = opts.maxStartFailures ?? 3;
  const baseBackoff = opts.backoffMs ?? 200;
  const maxBackoff = opts.maxBackoffMs ?? 30_000;
  const closeMargin = opts.closeMarginMs ?? 15_000;
  // Before any worker exists: a worker's first consume is sent while it starts.
  if (config.catalog.driver === 'sqlite') clusterLimitStore();
  // Read by node:cluster at the first fork (server.worker_scheduling).
  cluster.schedulingPolicy = config.server.worker_scheduling === 'os' ? cluster.SCHED_NONE : cluster.SCHED_RR;

  const slots: Slot[] = Array.from({ length: config.server.workers }, () => ({ ready: false, readyAt: 0, startFailures: 0, backoffMs: baseBackoff }));
  const live = new Set<Worker>();
  let url = '';
  let stopping: Promise<number> | undefined;
  let gaveUp: string | undefined;
  let killed = false;
  let allExited: (() => void) | undefined;

  let resolveReady!: (url: string) => void;
  let rejectReady!: (e: Error) => void;
  const ready = new Promise<string>((res, rej) => ((resolveReady = res), (rejectReady = rej)));
  // A caller that only awaits `done` must not see an unhandled rejection.
  ready.catch(() => {});
  let initial = true;
  // Settles when stop() has finished, whoever called it (a signal, or giving up).
  let resolveDone!: (code: number) => void;
  const done = new Promise<number>((res) => (resolveDone = res));

  const pids = () => [...live].flatMap((w) => (w.process.pid ? [w.process.pid] : []));
  const changed = () => opts.onWorkersChanged?.(pids());

  const fork = (slot: Slot) => {
    slot.timer = undefined;
    if (stopping) return;
    const w = cluster.fork();
    slot.worker = w;
    slot.ready = false;
    live.add(w);
    changed();
    w.on('message', (m: unknown) => {
      if (!isMessage<WorkerMessage>(m)) return;
      if (m.type === 'failed') slot.lastReason = m.reason;
      if (m.type === 'ready') {
        slot.ready = true;
        slot.readyAt = Date.now();
        slot.startFailures = 0;
        slot.lastReason = undefined;
        url = m.url;
        log.info({ worker: w.id, pid: w.process.pid }, 'worker listening');
        if (initial && !stopping && slots.every((s) => s.ready)) {
          initial = false;
          resolveReady(url);
        }
      }
    });
    w.once('exit', (code, signal) => onExit(slot, w, code, signal));
  };

  const onExit = (slot: Slot, w: Worker, code: number | null, signal: string | null) => {
    live.delete(w);
    if (slot.worker === w) slot.worker = undefined;
    changed();
    if (stopping) {
      if (live.size === 0) allExited?.();
      return;
    }
    const how = signal ? `signal ${signal}` : `code ${code}`;
    if (!slot.ready) {
      slot.startFailures++;
      const reason = slot.lastReason ?? `exited (${how}) before listening`;
      if (slot.startFailures >= maxStartFailures) {
        gaveUp = `a worker failed to start ${slot.startFailures} times in a row: ${reason}`;
        log.fatal({ worker: w.id, pid: w.process.pid, reason }, 'giving up: a worker cannot start');
        void stop();
        return;
      }
      log.warn({ worker: w.id, pid: w.process.pid, reason, attempt: slot.startFailures, restart_in_ms: slot.backoffMs }, 'worker failed to start; retrying');
    } else {
      if (Date.now() - slot.readyAt > STABLE_MS) slot.backoffMs = baseBackoff;
      log.error({ worker: w.id, pid: w.process.pid, exit: how, restart_in_ms: slot.backoffMs }, 'worker died unexpectedly; restarting it');
    }
    slot.ready = false;
    const delay = slot.backoffMs;
    slot.backoffMs = Math.min(maxBackoff, slot.backoffMs * 2);
    slot.timer = setTimeout(() => fork(slot), delay);
  };

  const stop = (): Promise<number> =>
    (stopping ??= (async () => {
      for (const s of slots) clearTimeout(s.timer);
      log.info({ pids: pids() }, 'stopping the workers');
      const exited = new Promise<void>((res) => (live.size === 0 ? res() : (allExited = res)));
      // A signal, not a message: a worker still loading has no listener yet and would lose a message;
      // a signal either ends it before it serves (default action) or reaches runWorker's handler.
      for (const w of live) w.process.kill('SIGTERM');
      // Each worker cuts its streams after the grace period; what it still does after the margin is killed.
      const deadline = setTimeout(() => {
        killed = live.size > 0;
        if (killed) log.error({ pids: pids() }, 'workers did not exit in time; killing them');
        for (const w of live) w.process.kill('SIGKILL');
      }, config.server.shutdown_grace_ms + closeMargin);
      await exited;
      clearTimeout(deadline);
      if (initial) rejectReady(new ClusterStartError(gaveUp ?? 'stopped before every worker was listening'));
      const code = gaveUp || killed ? 1 : 0;
      log.info({ exit_code: code }, 'every worker has exited');
      resolveDone(code);
      return code;
    })());

  // Should the primary itself die (an uncaught error), its workers go with it. (They also exit
  // when its IPC channel closes: node:cluster does that in every worker.)
  process.once('exit', () => {
    for (const w of live) w.process.kill('SIGKILL');
  });

  for (const s of slots) fork(s);
  return { ready, pids, stop, done, failure: () => gaveUp };
}
