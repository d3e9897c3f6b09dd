import { probePostgres } from './support/postgres.js';

/** Says loudly, once, when PostgreSQL tests will be skipped; under CI=true they must run. */
export default async function setup(): Promise<void> {
  const pg = await probePostgres();
  if (!pg.ok) {
    if (process.env.CI === 'true') throw new Error(`PostgreSQL is required under CI=true but is not reachable at ${pg.url}: ${pg.error}`);
    // eslint-disable-next-line no-console
    console.warn(`\n!!! PostgreSQL not reachable at ${pg.url} (${pg.error}): PostgreSQL tests are SKIPPED !!!\n`);
  }
}
