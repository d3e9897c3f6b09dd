import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

/**
 * SQLite's WAL checkpoints, moved off the event loop. By default SQLite checkpoints inside the
 * commit that pushes the WAL past 1000 pages, with an fsync — and better-sqlite3 is synchronous,
 * so that commit (often an audit append before a first byte) stalled the whole gateway: measured
 * up to 0.9 s, about every 330th append (docs/BENCHMARKS.md). The gateway's connection turns
 * auto-checkpoints off; a worker thread with its own connection runs PASSIVE checkpoints on a
 * timer (they never block writers or readers, and copy only what no reader still needs).
 *
 * The worker is plain JavaScript evaluated from a string so it runs the same under node, tsx and
 * vitest, with better-sqlite3 resolved from here.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.path, { fileMustExist: true });
db.pragma('busy_timeout = 1000');
const run = () => {
  try {
    const [r] = db.pragma('wal_checkpoint(PASSIVE)');
    parentPort.postMessage({ type: 'checkpoint', busy: r.busy, log: r.log, checkpointed: r.checkpointed });
  } catch (e) {
    parentPort.postMessage({ type: 'error', message: String(e && e.message || e) });
  }
};
const timer = setInterval(run, workerData.intervalMs);
parentPort.on('message', (m) => {
  if (m === 'now') return run();
  if (m === 'stop') {
    clearInterval(timer);
    try { db.close(); } catch {}
    parentPort.close();
  }
});
`;

export interface WalCheckpointer {
  /** Runs a checkpoint now (tests). */
  now(): void;
  /** Stops the timer and closes the worker's connection. */
  stop(): Promise<void>;
  /** Checkpoints the worker reported (tests, diagnostics). */
  readonly runs: number;
}

export function startWalCheckpointer(path: string, intervalMs = 1_000, onError?: (message: string) => void): WalCheckpointer {
  const driver = createRequire(import.meta.url).resolve('better-sqlite3');
  const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { path, intervalMs, driver } });
  // Never what keeps a process (a CLI command) alive.
  worker.unref();
  let runs = 0;
  worker.on('message', (m: { type: string; message?: string }) => {
    if (m.type === 'checkpoint') runs++;
    else if (m.type === 'error') onError?.(m.message ?? 'checkpoint failed');
  });
  worker.on('error', (e) => onError?.(e.message));
  const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
  let stopping: Promise<void> | undefined;
  return {
    now: () => worker.postMessage('now'),
    get runs() {
      return runs;
    },
    stop: () =>
      (stopping ??= (async () => {
        worker.postMessage('stop');
        const timer = setTimeout(() => void worker.terminate(), 2_000);
        await exited;
        clearTimeout(timer);
      })()),
  };
}
