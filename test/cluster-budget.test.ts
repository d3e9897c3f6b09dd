import cluster from 'node:cluster';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { clusterLimitStore } from '../src/access/rate-limit.js';

/**
 * A source's request budget across the workers of one `custodian serve` on SQLite: kept by the
 * cluster primary (rate-limiter-flexible's RateLimiterClusterMaster), so two workers together
 * stay within it — per-process memory would grant each worker the whole budget.
 */
describe('the request budget across cluster workers (SQLite)', () => {
  it('two workers share one budget: max grants per window in total', async () => {
    clusterLimitStore();
    const max = 4;
    const windowMs = 1_000;
    const t0 = Date.now();
    cluster.setupPrimary({ exec: fileURLToPath(new URL('./support/budget-worker.ts', import.meta.url)), execArgv: ['--import', 'tsx'], silent: false });
    const workers = [0, 1].map(() => cluster.fork({ BUDGET_TEST: JSON.stringify({ max, windowMs, takes: 3, t0 }) }));
    const grants = await Promise.all(
      workers.map(
        (w) =>
          new Promise<number[]>((resolve, reject) => {
            // The limiter's own messages share the channel: wait for ours.
            w.on('message', (m: { granted?: number[] }) => m.granted && resolve(m.granted));
            w.once('exit', (code) => (code ? reject(new Error(`budget worker exited ${code}`)) : undefined));
          }),
      ),
    );
    const all = grants.flat().sort((a, b) => a - b);
    expect(all).toHaveLength(6);
    // The window opens with the first grant: 4 slots in it, the other 2 only once it has turned.
    const first = all[0]!;
    expect(all.filter((t) => t < first + windowMs - 50)).toHaveLength(max);
    expect(all[max]! - first).toBeGreaterThanOrEqual(windowMs - 50);
    // Each worker got some of the first window's slots: they competed for one budget.
    for (const g of grants) expect(g.length).toBe(3);
  }, 30_000);
});
