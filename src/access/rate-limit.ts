import { RateLimiterMemory, RateLimiterRes } from 'rate-limiter-flexible';

export interface RateLimiter {
  /** Takes one request from the key's budget; tells how long to wait when it is spent. */
  consume(key: string): Promise<{ ok: true } | { ok: false; retryAfterS: number }>;
}

/** Per-process limiter (rate-limiter-flexible). A shared store (PostgreSQL/Redis) replaces it for several instances. */
export function memoryRateLimiter(max: number, windowMs: number): RateLimiter {
  if (max === 0) return { consume: async () => ({ ok: true }) };
  const limiter = new RateLimiterMemory({ points: max, duration: Math.ceil(windowMs / 1000) });
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
