import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { usableCatalogs } from '../support/catalogs.js';
import type { TestGateway } from '../support/gateway.js';
import { CONSOLE_KEY, startConsoleGateway } from './support.js';

const auth = { authorization: `Bearer ${CONSOLE_KEY}` };

/**
 * An evidence package staged before the local master key was rotated (docs/OPERATIONS.md "Key
 * rotation") can never be read again: its download is 410 job.expired and the job expired — not a
 * 503 key.unavailable with Retry-After on every poll until the TTL.
 */
describe.each(await usableCatalogs())('evidence package content after a key rotation (%s)', (kind) => {
  let a: TestGateway | undefined;
  let b: TestGateway | undefined;
  afterAll(async () => {
    await b?.stop();
    await a?.stop();
  });

  it('is 410 job.expired, and the job is expired', async () => {
    a = await startConsoleGateway((doc) => (doc.jobs = { poll_interval_ms: 50 }), { catalog: kind });
    const res = await fetch(`${a.url}/api/v1/evidence`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ refs: ['avaya_8923'], purpose: 'Case 2024-301: rotation', mode: 'job' }),
    });
    expect(res.status).toBe(202);
    const { job_id, poll_endpoint } = (await res.json()) as { job_id: string; poll_endpoint: string };
    const status = async (gw: TestGateway) => (await (await fetch(`${gw.url}${poll_endpoint}`, { headers: auth })).json()) as Record<string, any>;
    let s: Record<string, any> = {};
    for (let i = 0; i < 200 && s.status !== 'ready'; i++) {
      s = await status(a);
      if (s.status === 'failed') throw new Error(JSON.stringify(s));
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(s.status).toBe('ready');
    expect((await fetch(`${a.url}${s.content_endpoint}`, { headers: auth })).status).toBe(200);

    writeFileSync(join(a.dir, 'keys', 'staging.key'), randomBytes(32).toString('base64') + '\n', { mode: 0o600 });
    b = await startConsoleGateway(
      (doc) => {
        doc.data_dir = a!.dir;
        doc.jobs = { concurrency: 0, poll_interval_ms: 50 };
      },
      { catalog: kind, deps: { catalog: { ...a.catalogDb, close: async () => {} } } },
    );
    for (let i = 0; i < 2; i++) {
      const gone = await fetch(`${b.url}${s.content_endpoint}`, { headers: auth });
      expect(gone.status).toBe(410);
      expect(gone.headers.get('retry-after')).toBeNull();
      expect(await gone.json()).toMatchObject({ code: 'job.expired' });
    }
    expect((await status(b)).status).toBe('expired');
  }, 60_000);
});
