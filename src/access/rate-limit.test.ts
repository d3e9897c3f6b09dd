import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isAppError } from '../errors.js';
import { createTestDatabase, postgresAvailable } from '../../test/support/postgres.js';
import { postgresRateLimiter } from './rate-limit.js';

const pgOk = await postgresAvailable();

describe.skipIf(!pgOk)('rate limiter whose store goes away', () => {
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => db?.drop());

  it('refuses with 503 access.rate_limit_unavailable (fail closed), not an internal error', async () => {
    const pool = new pg.Pool({ connectionString: db.url, max: 2 });
    pool.on('error', () => {});
    const limiter = await postgresRateLimiter(pool, 5, 60_000);
    expect(await limiter.consume('acme:p1')).toEqual({ ok: true });
    await pool.end();
    const err = await limiter.consume('acme:p1').catch((e: unknown) => e);
    expect(isAppError(err) && err.code).toBe('access.rate_limit_unavailable');
  });
});
