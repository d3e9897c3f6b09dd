import { createHash } from 'node:crypto';
import type pg from 'pg';
import { type RateLimiterAbstract, RateLimiterCluster, RateLimiterMemory, RateLimiterPostgres, RateLimiterRes } from 'rate-limiter-flexible';
import { abortedError, sleep } from './net.js';

/**
 * A source's request budget: how many API calls its credentials may make per window, shared by
 * every gateway instance (a Genesys OAuth client has one budget, however many processes use it).
 * `take` waits for a slot instead of failing — the caller's own deadline (its signal) bounds the
 * wait; `pause` spends the budget for a while (a 429 seen by one instance holds back all of them).
 */
export interface RequestBudget {
  take(signal: AbortSignal): Promise<void>;
  pause(ms: number): Promise<void>;
}

export const UNLIMITED_BUDGET: RequestBudget = { take: async () => {}, pause: async () => {} };

/** Where budgets are kept: this process's memory (one instance, SQLite) or the catalog's PostgreSQL. */
export interface BudgetStore {
  /** The budget named by `key` (e.g. one Genesys client); max = 0 means no budget. */
  budget(key: string, max: number, windowMs: number): RequestBudget;
}

function limiterBudget(limiterP: Promise<RateLimiterAbstract>, key: string): RequestBudget {
  return {
    async take(signal) {
      const limiter = await limiterP;
      for (;;) {
        if (signal.aborted) throw abortedError();
        try {
          await limiter.consume(key);
          return;
        } catch (e) {
          if (!(e instanceof RateLimiterRes)) throw e;
          // Spent (or paused after a 429): wait for the window to turn, then compete again.
          await sleep(Math.max(10, e.msBeforeNext), signal);
        }
      }
    },
    async pause(ms) {
      const limiter = await limiterP;
      await limiter.block(key, Math.max(1, Math.ceil(ms / 1000)));
    },
  };
}

function cached(make: (max: number, windowMs: number) => Promise<RateLimiterAbstract>): BudgetStore {
  const limiters = new Map<string, Promise<RateLimiterAbstract>>();
  return {
    budget(key, max, windowMs) {
      if (max === 0) return UNLIMITED_BUDGET;
      const shape = `${max}/${windowMs}`;
      let l = limiters.get(shape);
      if (!l) {
        l = make(max, windowMs);
        limiters.set(shape, l);
      }
      // Keys reach the store's table: a digest, not the client id itself.
      return limiterBudget(l, createHash('sha256').update(key).digest('hex').slice(0, 32));
    },
  };
}

const seconds = (ms: number) => Math.max(1, Math.ceil(ms / 1000));

/** One process: budgets in memory (right for a single instance on SQLite). */
export function memoryBudgetStore(): BudgetStore {
  return cached(async (max, windowMs) => new RateLimiterMemory({ points: max, duration: seconds(windowMs), keyPrefix: 'custodian_source' }));
}

/**
 * The workers of one `custodian serve` on SQLite (server.workers > 1): budgets kept by the cluster
 * primary (access/rate-limit.ts clusterLimitStore), reached over IPC. The primary keeps one
 * limiter per key prefix with the options of the first worker that asks, so the prefix names the
 * shape: two budgets of different sizes never share a limiter.
 */
export function clusterBudgetStore(): BudgetStore {
  return cached(async (max, windowMs) => new RateLimiterCluster({ points: max, duration: seconds(windowMs), keyPrefix: `custodian_source_${max}_${seconds(windowMs)}`, timeoutMs: 5_000 }));
}

/** Several instances on one PostgreSQL: budgets in rate-limiter-flexible's table there (created on first use). */
export function postgresBudgetStore(pool: pg.Pool): BudgetStore {
  return cached(
    (max, windowMs) =>
      new Promise<RateLimiterAbstract>((resolve, reject) => {
        const l: RateLimiterPostgres = new RateLimiterPostgres(
          { storeClient: pool, tableName: 'rate_limits', keyPrefix: 'custodian_source', points: max, duration: seconds(windowMs), clearExpiredByTimeout: false },
          (err?: Error) => (err ? reject(err) : resolve(l)),
        );
      }),
  );
}
