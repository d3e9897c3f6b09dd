import type pg from 'pg';
import { AppError } from '../errors.js';
import { type RateLimiterAbstract, RateLimiterCluster, RateLimiterClusterMaster, RateLimiterMemory, RateLimiterPostgres, RateLimiterRes } from 'rate-limiter-flexible';

export interface RateLimiter {
  /** Takes one request from the key's budget; tells how long to wait when it is spent. */
  consume(key: string): Promise<{ ok: true } | { ok: false; retryAfterS: number }>;
}

function wrap(limiter: RateLimiterAbstract): RateLimiter {
  return {
    async consume(key) {
      try {
        await limiter.consume(key);
        return { ok: true };
      } catch (e) {
        if (e instanceof RateLimiterRes) return { ok: false, retryAfterS: Math.max(1, Math.ceil(e.msBeforeNext / 1000)) };
        // The store is down or the primary did not answer: refuse (fail closed), never let it through unlimited.
        throw new AppError('access.rate_limit_unavailable', undefined, { cause: e });
      }
    },
  };
}

/** Per-process limiter (rate-limiter-flexible): right for one instance (SQLite). */
export function memoryRateLimiter(max: number, windowMs: number): RateLimiter {
  if (max === 0) return { consume: async () => ({ ok: true }) };
  return wrap(new RateLimiterMemory({ points: max, duration: Math.ceil(windowMs / 1000) }));
}

/**
 * One budget per principal across the workers of one `custodian serve` (server.workers > 1 on
 * SQLite): rate-limiter-flexible's RateLimiterCluster asks the cluster primary over IPC, where
 * the counters live (clusterLimitStore). Only in a node:cluster worker: it sends to the primary
 * when it is made. A primary that does not answer in `timeoutMs` fails the request (503
 * access.rate_limit_unavailable), never lets it through unlimited.
 */
export function clusterRateLimiter(max: number, windowMs: number, keyPrefix = 'custodian_principal', timeoutMs = 5_000): RateLimiter {
  if (max === 0) return { consume: async () => ({ ok: true }) };
  return wrap(new RateLimiterCluster({ points: max, duration: Math.ceil(windowMs / 1000), keyPrefix, timeoutMs }));
}

/**
 * The primary's side of clusterRateLimiter and clusterBudgetStore: it answers the workers'
 * consume/block messages from memory (one RateLimiterMemory per key prefix, made by the first
 * worker's options). A singleton in the library; must exist before the first worker is forked.
 */
export function clusterLimitStore(): void {
  new RateLimiterClusterMaster();
}

/**
 * One budget per principal across every instance, kept in the catalog's PostgreSQL
 * (rate-limiter-flexible's store; it creates its own table, tolerating concurrent creation).
 */
export async function postgresRateLimiter(pool: pg.Pool, max: number, windowMs: number, keyPrefix = 'custodian_principal'): Promise<RateLimiter> {
  if (max === 0) return { consume: async () => ({ ok: true }) };
  const limiter = await new Promise<RateLimiterPostgres>((resolve, reject) => {
    const l: RateLimiterPostgres = new RateLimiterPostgres(
      { storeClient: pool, tableName: 'rate_limits', keyPrefix, points: max, duration: Math.ceil(windowMs / 1000), clearExpiredByTimeout: false },
      (err?: Error) => (err ? reject(err) : resolve(l)),
    );
  });
  return wrap(limiter);
}
