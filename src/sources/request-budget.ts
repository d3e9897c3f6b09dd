import { createHash } from 'node:crypto';
import type pg from 'pg';
import { type RateLimiterAbstract, RateLimiterCluster, RateLimiterMemory, RateLimiterPostgres, RateLimiterRes } from 'rate-limiter-flexible';
import { AppError } from '../errors.js';
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

/**
 * The store failed (PostgreSQL down, the cluster primary silent): the request is refused as the
 * client rate limiter refuses it (access/rate-limit.ts), 503, never let through unbudgeted. The
 * store's error is kept as text only: its network code (ECONNREFUSED…) must not make the
 * connector take it for its source's network failure, retry it and report the source unreachable.
 */
function storeUnavailable(e: unknown): AppError {
  const code = (e as { code?: unknown } | null)?.code;
  const what = `${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}${typeof code === 'string' ? ` (${code})` : ''}`;
  return new AppError('access.rate_limit_unavailable', "The source's request budget store cannot be reached (PostgreSQL, or the cluster primary); the request is refused", {
    cause: new Error(`request budget store: ${what}`),
  });
}

function limiterBudget(limiterOf: () => Promise<RateLimiterAbstract>, key: string): RequestBudget {
  const limiter = () => limiterOf().catch((e: unknown) => Promise.reject(storeUnavailable(e)));
  return {
    async take(signal) {
      const l = await limiter();
      for (;;) {
        if (signal.aborted) throw abortedError();
        try {
          await l.consume(key);
          return;
        } catch (e) {
          if (!(e instanceof RateLimiterRes)) throw storeUnavailable(e);
          // Spent (or paused after a 429): wait for the window to turn, then compete again.
          await sleep(Math.max(10, e.msBeforeNext), signal);
        }
      }
    },
    async pause(ms) {
      const l = await limiter();
      await l.block(key, Math.max(1, Math.ceil(ms / 1000))).catch((e: unknown) => Promise.reject(storeUnavailable(e)));
    },
  };
}

/** After a store failed to start, the next start is tried no sooner than this: a down database is not hammered. */
const RESTART_AFTER_MS = 1_000;

function cached(make: (max: number, windowMs: number) => Promise<RateLimiterAbstract>): BudgetStore {
  // One limiter per shape. A start that failed is not kept for good: the first use at least
  // RESTART_AFTER_MS after the failure starts another; uses before that get the failure at once.
  const limiters = new Map<string, { limiter: Promise<RateLimiterAbstract>; failedAt?: number }>();
  const limiterOf = (max: number, windowMs: number): Promise<RateLimiterAbstract> => {
    const shape = `${max}/${windowMs}`;
    const known = limiters.get(shape);
    if (known && (known.failedAt === undefined || Date.now() - known.failedAt < RESTART_AFTER_MS)) return known.limiter;
    const entry: { limiter: Promise<RateLimiterAbstract>; failedAt?: number } = { limiter: make(max, windowMs) };
    // Handled here, so a start nobody awaits yet (the connector is built at start-up) is not an unhandled rejection.
    entry.limiter.catch(() => (entry.failedAt = Date.now()));
    limiters.set(shape, entry);
    return entry.limiter;
  };
  return {
    budget(key, max, windowMs) {
      if (max === 0) return UNLIMITED_BUDGET;
      // Started now (e.g. RateLimiterPostgres creates its table), used by every take.
      void limiterOf(max, windowMs);
      // Keys reach the store's table: a digest, not the client id itself.
      return limiterBudget(() => limiterOf(max, windowMs), createHash('sha256').update(key).digest('hex').slice(0, 32));
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
