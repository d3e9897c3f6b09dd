import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JobWorker } from '../src/jobs/worker.js';
import { usableCatalogs } from './support/catalogs.js';
import { AUDIO, KEYS, bearer, pollUntil, retrieveBody, startTestGateway, type TestGateway } from './support/gateway.js';
import { post, raw } from './support/http.js';

const PCM = readFileSync(join(AUDIO, 'call_mono_pcm16_8k.wav'));
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/**
 * A retrieval job from the client's side: who may repeat its request_id, its download's validator,
 * and its end at the TTL (helper-38's review F4, F3 for job content, F6).
 */
describe.each(await usableCatalogs())('retrieval job lifecycle on %s', (kind) => {
  let gw: TestGateway;
  const TTL = 2_000;

  beforeAll(async () => {
    gw = await startTestGateway({
      catalog: kind,
      sources: { acme: [{ name: 'queued', type: 'filesystem', root: AUDIO, mode: 'async', source_systems: ['nice'] }] },
      config: (doc) => (doc.jobs = { poll_interval_ms: 50, heartbeat_ms: 200, lease_ms: 10_000, retry_base_ms: 50, staging_ttl_ms: TTL }),
    });
    await gw.seed([{ call_id: 'c-q', source_system: 'nice', legacy_archive_id: 'q_1', locator: 'call_mono_pcm16_8k.wav' }]);
  });
  afterAll(async () => gw?.stop());

  const startJob = async (key = KEYS.acme, body = retrieveBody({ target_recording_ref: 'q_1' })) => {
    const res = await post(gw, body, key);
    expect(res.status, res.body.toString()).toBe(202);
    return JSON.parse(res.body.toString()) as { job_id: string; poll_endpoint: string };
  };

  it("a request_id another principal's job answers is a 409 for anyone but an admin (it was a 202 for a job the caller could not poll)", async () => {
    const body = retrieveBody({ target_recording_ref: 'q_1', caller_id: 'alice' });
    const started = await startJob(KEYS.acmeAdmin, body);
    const repeat = await post(gw, body, KEYS.acme);
    expect(repeat.status, repeat.body.toString()).toBe(409);
    expect(JSON.parse(repeat.body.toString()).code).toBe('request.idempotency_conflict');
    const again = await post(gw, body, KEYS.acmeAdmin);
    expect(again.status).toBe(202);
    expect(JSON.parse(again.body.toString()).job_id).toBe(started.job_id);
  });

  it('job content carries a strong ETag: If-Range with it keeps the Range, any other validator gets the whole file', async () => {
    const { poll_endpoint } = await startJob();
    const done = await pollUntil(gw, poll_endpoint, ['ready', 'failed']);
    expect(done.status).toBe('ready');
    const whole = await raw(`${gw.url}${done.content_endpoint}`, { headers: bearer(KEYS.acme) });
    expect(sha256(whole.body)).toBe(sha256(PCM));
    const etag = whole.headers.etag as string;
    expect(etag).toMatch(/^"[\w-]{27}"$/);
    const part = await raw(`${gw.url}${done.content_endpoint}`, { headers: { ...bearer(KEYS.acme), range: 'bytes=10-19', 'if-range': etag } });
    expect(part.status).toBe(206);
    expect(part.body.equals(PCM.subarray(10, 20))).toBe(true);
    const stale = await raw(`${gw.url}${done.content_endpoint}`, { headers: { ...bearer(KEYS.acme), range: 'bytes=10-19', 'if-range': '"elsewhere"' } });
    expect(stale.status).toBe(200);
    expect(stale.body.equals(PCM)).toBe(true);
  });

  it('past its TTL a job is expired at once, before any sweep; a staged object that cannot be deleted does not keep the others served', async () => {
    const a = await startJob();
    const b = await startJob();
    const ready = await Promise.all([a, b].map((j) => pollUntil(gw, j.poll_endpoint, ['ready', 'failed'])));
    expect(ready.map((r) => r.status)).toEqual(['ready', 'ready']);
    const staging = gw.deps.staging;
    const del = staging.delete.bind(staging);
    const deleted: string[] = [];
    staging.delete = async (key: string) => {
      deleted.push(key);
      throw Object.assign(new Error('AccessDenied'), { code: 'EACCES' });
    };
    try {
      await new Promise((r) => setTimeout(r, Math.max(0, Date.parse(ready[1].expires_at) - Date.now()) + 50));
      for (const j of [a, b]) {
        const status = JSON.parse((await raw(`${gw.url}${j.poll_endpoint}`, { headers: bearer(KEYS.acme) })).body.toString());
        expect(status.status).toBe('expired');
        const content = await raw(`${gw.url}/api/v1/recordings/jobs/${j.job_id}/content`, { headers: bearer(KEYS.acme) });
        expect(content.status).toBe(410);
        expect(JSON.parse(content.body.toString()).code).toBe('job.expired');
      }
      // The sweep: both deletes fail, both rows are expired all the same (their data keys dropped).
      await (gw.deps.worker as JobWorker).sweep();
      expect(deleted.length).toBeGreaterThanOrEqual(2);
      for (const j of [a, b]) expect(await gw.deps.jobs.get('acme', j.job_id)).toMatchObject({ status: 'expired', dekWrapped: null, stagingKey: null });
    } finally {
      staging.delete = del;
    }
  });
});
