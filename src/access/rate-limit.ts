import type pg from 'pg';
import { type RateLimiterAbstract, RateLimiterMemory, RateLimiterPostgres, RateLimiterRes } from 'rate-limiter-flexible';

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
        throw e;
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
