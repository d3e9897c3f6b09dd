import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startS3Simulator, type S3Simulator } from '../src/sources/s3/simulator.js';
import { usableCatalogs } from './support/catalogs.js';
import { AUDIO, KEYS, bearer, pollUntil, retrieveBody, startTestGateway, type TestGateway } from './support/gateway.js';
import { post, raw } from './support/http.js';

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const WAV = readFileSync(join(AUDIO, 'call_mono_mulaw_8k.wav'));

/**
 * An S3 archive whose bucket lifecycle moved old recordings to Glacier: the catalog (an import)
 * still says AVAILABLE. A retrieval is a 202 job whose worker asks S3 to restore the object and
 * waits for it; a player's GET says 503 source.archived with Retry-After. Before, the GET's 403
 * InvalidObjectState read as "the source refused this connector's credentials" (503
 * source.unavailable) and no restore was ever asked for.
 */
describe.each(await usableCatalogs())('S3 objects in an archive storage class on %s', (kind) => {
  let s3: S3Simulator;
  let gw: TestGateway;

  beforeAll(async () => {
    s3 = await startS3Simulator({ buckets: ['acme-archive'] });
    for (const key of ['2019/cold-1.wav', '2019/cold-2.wav']) await s3.putObject('acme-archive', key, WAV);
    s3.archive('acme-archive', '2019/cold-1.wav', { restoreMs: 400 });
    s3.archive('acme-archive', '2019/cold-2.wav', { storageClass: 'DEEP_ARCHIVE', restoreMs: 3_600_000 });
    const vault = { name: 'vault', type: 's3', bucket: 'acme-archive', endpoint: s3.endpoint, force_path_style: true, access_key_id: s3.accessKeyId, secret_access_key: s3.secretAccessKey, restore_tier: 'Bulk', source_systems: ['verint_s3'] };
    gw = await startTestGateway({
      catalog: kind,
      sources: { acme: [vault] },
      config: (doc) => (doc.jobs = { poll_interval_ms: 50, restore_poll_ms: 100, heartbeat_ms: 200, lease_ms: 10_000, retry_base_ms: 50, staging_ttl_ms: 60_000, restore_keep_days: 3 }),
    });
    await gw.seed([
      { call_id: 'c-cold-1', source_system: 'verint_s3', legacy_archive_id: 'cold_1', locator: '2019/cold-1.wav' },
      { call_id: 'c-cold-2', source_system: 'verint_s3', legacy_archive_id: 'cold_2', locator: '2019/cold-2.wav' },
    ]);
  });
  afterAll(async () => {
    await gw?.stop();
    await s3?.stop();
  });

  it('a retrieval is a 202 job: the worker asks S3 to restore (tier and days from config, audited), waits, stages the bytes', async () => {
    const res = await post(gw, retrieveBody({ target_recording_ref: 'cold_1', format_preference: 'original' }));
    expect(res.status, res.body.toString()).toBe(202);
    const { poll_endpoint: poll, job_id: jobId } = JSON.parse(res.body.toString());
    const done = await pollUntil(gw, poll, ['ready', 'failed'], KEYS.acme, 30_000);
    expect(done.status, JSON.stringify(done)).toBe('ready');
    expect(s3.restores.filter((r) => r.key === '2019/cold-1.wav')).toEqual([expect.objectContaining({ days: 3, tier: 'Bulk', status: 202 })]);
    const events = (await gw.deps.auditRepo.query({ tenantId: 'acme', action: 'source.restore_requested', limit: 10 })).items;
    expect(events.some((e) => e.detail?.job_id === jobId)).toBe(true);
    const content = await raw(`${gw.url}${done.content_endpoint}`, { headers: bearer(KEYS.acme) });
    expect(sha256(content.body)).toBe(sha256(WAV));
  });

  it('a player GET says 503 source.archived with Retry-After; a job whose restore runs long waits, it does not fail', async () => {
    const media = await raw(`${gw.url}/api/v1/recordings/cold_2/media?format=original`, { headers: bearer(KEYS.acme) });
    expect(media.status, media.body.toString()).toBe(503);
    expect(JSON.parse(media.body.toString())).toMatchObject({ code: 'source.archived', storage_class: 'DEEP_ARCHIVE' });
    expect(media.headers['retry-after']).toBeDefined();

    const res = await post(gw, retrieveBody({ target_recording_ref: 'cold_2', format_preference: 'original' }));
    expect(res.status).toBe(202);
    const { poll_endpoint: poll } = JSON.parse(res.body.toString());
    // Restoring: the job keeps waiting (no attempts used up), and asks S3 once.
    await new Promise((r) => setTimeout(r, 600));
    const status = JSON.parse((await raw(`${gw.url}${poll}`, { headers: bearer(KEYS.acme) })).body.toString());
    expect(['queued', 'running'], JSON.stringify(status)).toContain(status.status);
    expect(s3.restores.filter((r) => r.key === '2019/cold-2.wav').map((r) => r.status)).toEqual([202]);
  });
});
