import { createHash, randomBytes } from 'node:crypto';
import { openSync, readFileSync, readSync, readdirSync, rmSync, writeFileSync, writeSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JobWorker } from '../src/jobs/worker.js';
import { RECORD_SEALED } from '../src/keys/chunked-cipher.js';
import { usableCatalogs } from './support/catalogs.js';
import { AUDIO, KEYS, bearer, pollUntil, retrieveBody, startTestGateway, type TestGateway } from './support/gateway.js';
import { post, raw } from './support/http.js';

const PCM = readFileSync(join(AUDIO, 'call_mono_pcm16_8k.wav'));
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/**
 * GET /api/v1/recordings/jobs/{id}/content when the staged media cannot be served: after a key
 * rotation (docs/OPERATIONS.md: the master key replaced, staging purged or not) it never will be
 * again — 410 job.expired, the job expired, not a 503 to retry until the TTL; a staged file whose
 * first record fails authentication is a problem+json 500 staging.corrupt with its audit event,
 * not a connection reset.
 */
describe.each(await usableCatalogs())('staged job content that cannot be served, on %s', (kind) => {
  let gw: TestGateway;

  beforeAll(async () => {
    gw = await startTestGateway({
      catalog: kind,
      sources: { acme: [{ name: 'queued', type: 'filesystem', root: AUDIO, mode: 'async', source_systems: ['nice'] }] },
      config: (doc) => (doc.jobs = { poll_interval_ms: 50, heartbeat_ms: 200, lease_ms: 10_000, retry_base_ms: 50 }),
    });
    await gw.seed([{ call_id: 'c-q', source_system: 'nice', legacy_archive_id: 'q_1', locator: 'call_mono_pcm16_8k.wav' }]);
  });
  afterAll(async () => gw?.stop());

  const readyJob = async () => {
    const res = await post(gw, retrieveBody({ target_recording_ref: 'q_1' }));
    expect(res.status, res.body.toString()).toBe(202);
    const { job_id, poll_endpoint } = JSON.parse(res.body.toString()) as { job_id: string; poll_endpoint: string };
    const done = await pollUntil(gw, poll_endpoint, ['ready', 'failed']);
    expect(done.status).toBe('ready');
    const row = (await gw.deps.jobs.get('acme', job_id))!;
    return { id: job_id, poll: poll_endpoint, content: `${gw.url}/api/v1/recordings/jobs/${job_id}/content`, file: join(gw.dir, 'staging', row.stagingKey!) };
  };

  /** Flips one byte of the sealed file, inside record `index`. */
  const corrupt = (file: string, index: number) => {
    const fd = openSync(file, 'r+');
    const b = Buffer.alloc(1);
    const at = index * RECORD_SEALED + 100;
    readSync(fd, b, 0, 1, at);
    b[0]! ^= 0xff;
    writeSync(fd, b, 0, 1, at);
    closeSync(fd);
  };

  const eventsOf = async (requestId: string) => (await gw.deps.auditRepo.query({ tenantId: 'acme', action: 'job.content', limit: 1000 })).items.filter((e) => e.httpRequestId === requestId);

  it('a staged file corrupt in its first record is a problem+json 500 staging.corrupt, audited, with no "allowed" event', async () => {
    expect(PCM.length).toBeGreaterThan(2 * 65_536);
    const job = await readyJob();
    corrupt(job.file, 0);
    for (const range of [undefined, 'bytes=0-99', 'bytes=100-70000']) {
      const res = await raw(job.content, { headers: { ...bearer(KEYS.acme), ...(range ? { range } : {}) } });
      expect(res.status, res.body.toString()).toBe(500);
      expect(res.headers['content-type']).toBe('application/problem+json');
      const body = JSON.parse(res.body.toString());
      expect(body).toMatchObject({ status: 500, code: 'staging.corrupt' });
      const events = await eventsOf(body.request_id);
      expect(events.map((e) => [e.outcome, e.errorCode])).toEqual([[expect.not.stringMatching(/^allowed$/), 'staging.corrupt']]);
    }
    // The first record a Range touches is the one checked: one past the corrupt record serves.
    const later = await raw(job.content, { headers: { ...bearer(KEYS.acme), range: 'bytes=70000-70099' } });
    expect(later.status).toBe(206);
    expect(later.body.equals(PCM.subarray(70_000, 70_100))).toBe(true);
  });

  it('a later record failing still cuts the transfer mid-stream, as before', async () => {
    const job = await readyJob();
    corrupt(job.file, 1);
    const res = await raw(job.content, { headers: bearer(KEYS.acme) });
    expect(res.status).toBe(200);
    expect(res.complete).toBe(false);
    expect(res.body.length).toBeLessThan(PCM.length);
  });

  describe('after the master key is rotated', () => {
    let b: TestGateway | undefined;
    afterAll(async () => b?.stop());

    it('a ready job is 410 job.expired (and expired), whether the staging was purged or not; never a 503 to retry', async () => {
      const kept = await readyJob();
      const purged = await readyJob();
      const before = await raw(kept.content, { headers: bearer(KEYS.acme) });
      expect(sha256(before.body)).toBe(sha256(PCM));
      // docs/OPERATIONS.md "Key rotation": replace <data_dir>/keys/staging.key (here for a second
      // instance on the same data_dir and catalog, started after it), purge the staging (here: one file).
      // The old instance stops working jobs (its keyring still holds the old key in memory).
      await (gw.deps.worker as JobWorker).stop();
      writeFileSync(join(gw.dir, 'keys', 'staging.key'), randomBytes(32).toString('base64') + '\n', { mode: 0o600 });
      rmSync(purged.file);
      b = await startTestGateway({
        catalog: kind,
        sources: { acme: [{ name: 'queued', type: 'filesystem', root: AUDIO, mode: 'async', source_systems: ['nice'] }] },
        config: (doc) => {
          doc.data_dir = gw.dir;
          doc.jobs = { poll_interval_ms: 50, retry_base_ms: 50 };
        },
        deps: { catalog: { ...gw.catalogDb, close: async () => {} } },
      });
      for (const job of [kept, purged]) {
        for (let i = 0; i < 2; i++) {
          const res = await raw(`${b.url}/api/v1/recordings/jobs/${job.id}/content`, { headers: bearer(KEYS.acme) });
          expect(res.status, res.body.toString()).toBe(410);
          expect(JSON.parse(res.body.toString()).code).toBe('job.expired');
          expect(res.headers['retry-after']).toBeUndefined();
        }
        expect((await pollUntil(b, job.poll, ['expired', 'ready'])).status).toBe('expired');
        expect(await b.deps.jobs.get('acme', job.id)).toMatchObject({ status: 'expired', stagingKey: null, dekWrapped: null });
      }
      // The media it could never read again is gone too.
      expect(readdirSync(join(gw.dir, 'staging')).filter((f) => f.startsWith(kept.id))).toEqual([]);
      // A job staged under the new key is served.
      const res = await post(b, retrieveBody({ target_recording_ref: 'q_1', request_id: 'after-rotation' }));
      expect(res.status, res.body.toString()).toBe(202);
      const { poll_endpoint } = JSON.parse(res.body.toString()) as { poll_endpoint: string };
      const done = await pollUntil(b, poll_endpoint, ['ready', 'failed']);
      expect(done.status).toBe('ready');
      const after = await raw(`${b.url}${done.content_endpoint}`, { headers: bearer(KEYS.acme) });
      expect(after.status).toBe(200);
      expect(sha256(after.body)).toBe(sha256(PCM));
    });
  });
});
