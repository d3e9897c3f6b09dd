import { randomBytes } from 'node:crypto';
import pg from 'pg';

/** Tests use the local server unless CUSTODIAN_TEST_PG_URL names another (an admin URL; databases are created in it). */
export const PG_ADMIN_URL = process.env.CUSTODIAN_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

export async function probePostgres(): Promise<{ ok: boolean; url: string; error?: string }> {
  const client = new pg.Client({ connectionString: PG_ADMIN_URL, connectionTimeoutMillis: 2000 });
  try {
    await client.connect();
    await client.query('select 1');
    return { ok: true, url: PG_ADMIN_URL };
  } catch (e) {
    return { ok: false, url: PG_ADMIN_URL, error: (e as Error).message };
  } finally {
    await client.end().catch(() => {});
  }
}

let reachable: Promise<boolean> | undefined;
export function postgresAvailable(): Promise<boolean> {
  reachable ??= probePostgres().then((r) => r.ok);
  return reachable;
}

/** A fresh, empty database for one test file; drop() removes it. */
export async function createTestDatabase(): Promise<{ url: string; drop: () => Promise<void> }> {
  const name = `custodian_t_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: PG_ADMIN_URL });
  await admin.connect();
  await admin.query(`create database ${name}`);
  await admin.end();
  const url = new URL(PG_ADMIN_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: async () => {
      const c = new pg.Client({ connectionString: PG_ADMIN_URL });
      await c.connect();
      await c.query(`drop database if exists ${name} with (force)`);
      await c.end();
    },
  };
}
