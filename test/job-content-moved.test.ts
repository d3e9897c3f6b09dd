import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CatalogRecord } from '../src/catalog/record.js';
import { usableCatalogs } from './support/catalogs.js';
import { KEYS, bearer, retrieveBody, startTestGateway, type TestGateway } from './support/gateway.js';
import { post, raw } from './support/http.js';
import { ARN, KMS_REGION, fakeKms } from './support/kms.js';

const WAV = 'call_mono_pcm16_8k.wav';
const K_EXPIRED = ARN('customer-moved-expired');
const K_ACTIVE = ARN('customer-moved-active');

/**
 * A ready job's content is governed by the recording that holds its staged copy NOW — an import
 * that learns the copy's call id moves it to another recording, a merge absorbs its recording —
 * with that recording's retention and the copy's key, as a direct retrieval of the copy would be;
 * what may never be served again (retention over, the copy gone from the catalog) is discarded at
 * once and the job says `expired`. A repeated request_id of a job that ended answers its outcome,
 * and Retry-After says when a queued job's next attempt is.
 */
describe.each(await usableCatalogs())('job content and hand-offs as the catalog changes, on %s', (kind) => {
  let kms: ReturnType<typeof fakeKms>;
  let gw: TestGateway;
  let n = 0;

  beforeAll(async () => {
    kms = fakeKms({ [K_EXPIRED]: 'Enabled', [K_ACTIVE]: 'Enabled' });
    gw = await startTestGateway({
      catalog: kind,
      config: (doc) => {
        doc.keys = { provider: 'aws_kms', aws_kms: { region: KMS_REGION, data_key_id: 'alias/custodian-staging', signing_key_id: 'alias/custodian-audit', access_key_id: 'AKIATEST', secret_access_key: 'test-secret', check_cache_ms: 0 } };
        // The worker runs only when poked: a queued job stays queued until a test says so.
        doc.jobs = { poll_interval_ms: 60_000, heartbeat_ms: 200, lease_ms: 10_000, retry_base_ms: 50, staging_ttl_ms: 60_000 };
      },
    });
  });
  afterAll(async () => {
    await gw?.stop();
    kms?.restore();
  });

  const upsert = (records: Partial<CatalogRecord>[]) => gw.deps.recordings.upsertAll(records.map((r) => ({ tenant_id: 'acme', state: 'AVAILABLE', source_system: 'avaya_aura', ...r }) as CatalogRecord));

  /** A job (of alice's, as KEYS.acme) on `ref`, queued: not run until poked. */
  const queuedJob = async (ref: string, requestId = `req-moved-${++n}`) => {
    const rec = (await gw.deps.recordings.findByRef('acme', ref))!;
    const { job } = await gw.deps.jobs.create({ tenantId: 'acme', principalId: 'alice', callerId: 'alice', requestId, auditLogId: null, ref, recordingPk: rec.id, format: 'original', maxAttempts: 3 });
    return job;
  };
  const settled = async (id: string) => {
    gw.deps.worker?.poke();
    for (let i = 0; i < 400; i++) {
      const now = (await gw.deps.jobs.get('acme', id))!;
      if (now.status === 'ready' || now.status === 'failed') return now;
      await new Promise((r) => setTimeout(r, 25));
    }
    throw new Error(`job ${id} did not settle`);
  };
  const readyJob = async (ref: string) => {
    const job = await settled((await queuedJob(ref)).id);
    expect(job.status, `${job.errorCode} ${job.errorDetail}`).toBe('ready');
    return job;
  };
  const content = (id: string) => raw(`${gw.url}/api/v1/recordings/jobs/${id}/content`, { headers: bearer(KEYS.acme) });
  const status = async (id: string) => {
    const res = await raw(`${gw.url}/api/v1/recordings/status/${id}`, { headers: bearer(KEYS.acme) });
    return { res, body: JSON.parse(res.body.toString()) as Record<string, unknown> };
  };
  const problem = (res: { body: Buffer }) => JSON.parse(res.body.toString()) as { code: string; [k: string]: unknown };
  const contentEvents = async (jobId: string) =>
    (await gw.catalogDb.db.selectFrom('audit_events').selectAll().where('action', '=', 'job.content').orderBy('seq').execute()).filter((e) => String(e.detail ?? '').includes(jobId));

  it('the staged copy moved to a recording past its retention: 410 recording.expired, the job expires and its staged object is deleted', async () => {
    await upsert([
      { call_id: 'c-mx', legacy_archive_id: 'mx_1', locator: WAV, key_id: K_EXPIRED, encryption_status: 'AES_256' },
      { call_id: 'c-mx', source_system: 'verint', legacy_archive_id: 'mx_2', locator: WAV },
      { call_id: 'c-my', source_system: 'verint', legacy_archive_id: 'my_1', locator: WAV, retention_expiry: '2020-01-01T00:00:00Z' },
    ]);
    const job = await readyJob('mx_1');
    expect((await content(job.id)).status).toBe(200);
    // An import learns that mx_1 belongs to call c-my: the copy moves to that (expired) recording.
    await upsert([{ call_id: 'c-my', legacy_archive_id: 'mx_1', locator: WAV }]);
    const direct = await raw(`${gw.url}/api/v1/recordings/mx_1/media?format=original`, { headers: bearer(KEYS.acme) });
    expect(direct.status).toBe(410);

    const c = await content(job.id);
    expect(c.status).toBe(410);
    expect(problem(c).code).toBe('recording.expired');
    expect(c.headers['x-retention-status']).toBe('EXPIRED');
    const st = await status(job.id);
    expect(st.body.status).toBe('expired');
    expect(st.body.content_endpoint).toBeUndefined();
    expect(await gw.deps.staging.size(job.stagingKey!)).toBeNull();
    // The refusal is evidence about the recording the copy is on now.
    const recNow = (await gw.deps.recordings.findByRef('acme', 'my_1'))!;
    const denied = (await contentEvents(job.id)).at(-1)!;
    expect([denied.status, denied.error_code, denied.recording_pk]).toEqual([410, 'recording.expired', recNow.id]);
    // And stays refused, as an expired job.
    const again = await content(job.id);
    expect([again.status, problem(again).code]).toEqual([410, 'job.expired']);
  });

  it('the staged copy moved to an active recording: its key is still checked (422 while disabled), and the content describes the new recording', async () => {
    await upsert([
      { call_id: 'c-ka', legacy_archive_id: 'ka_1', locator: WAV, key_id: K_ACTIVE, encryption_status: 'AES_256' },
      { call_id: 'c-ka', source_system: 'verint', legacy_archive_id: 'ka_2', locator: WAV },
      { call_id: 'c-kb', source_system: 'verint', legacy_archive_id: 'kb_1', locator: WAV, retention_expiry: '2099-01-01T00:00:00Z' },
    ]);
    const job = await readyJob('ka_1');
    await upsert([{ call_id: 'c-kb', legacy_archive_id: 'ka_1', locator: WAV }]);
    const recB = (await gw.deps.recordings.findByRef('acme', 'kb_1'))!;
    expect(recB.copies.some((c) => c.id === job.copyId)).toBe(true);

    kms.setState(K_ACTIVE, 'Disabled');
    try {
      const c = await content(job.id);
      expect(c.status).toBe(422);
      expect(problem(c).code).toBe('key.disabled');
    } finally {
      kms.setState(K_ACTIVE, 'Enabled');
    }
    // A disabled key may be enabled again: the job was not expired by the refusal.
    const ok = await content(job.id);
    expect(ok.status).toBe(200);
    expect(ok.headers['x-retention-status']).toBe('ACTIVE');
    const allowed = (await contentEvents(job.id)).filter((e) => e.outcome === 'allowed').at(-1)!;
    expect(allowed.recording_pk).toBe(recB.id);
  });

  it('the staged copy is in no recording any more (deleted from the catalog): 410 job.expired, the job expires and its staged object is deleted', async () => {
    await upsert([
      { call_id: 'c-del', legacy_archive_id: 'del_1', locator: WAV },
      { call_id: 'c-del', source_system: 'verint', legacy_archive_id: 'del_2', locator: WAV },
    ]);
    const job = await readyJob('del_1');
    await gw.catalogDb.db.deleteFrom('recording_copies').where('id', '=', job.copyId!).execute();
    const c = await content(job.id);
    expect(c.status).toBe(410);
    expect(problem(c).code).toBe('job.expired');
    expect(c.headers['retry-after']).toBeUndefined();
    expect((await status(job.id)).body.status).toBe('expired');
    expect(await gw.deps.staging.size(job.stagingKey!)).toBeNull();
  });

  it('retention lapsed after staging: 410 recording.expired, and the job expires with its staged object deleted (not kept till the TTL)', async () => {
    await upsert([{ call_id: 'c-lapse', source_system: 'verint', legacy_archive_id: 'lapse_1', locator: WAV }]);
    const job = await readyJob('lapse_1');
    await gw.catalogDb.db.updateTable('recordings').set({ retention_expiry: new Date(Date.now() - 1000).toISOString() }).where('call_id', '=', 'c-lapse').execute();
    const c = await content(job.id);
    expect([c.status, problem(c).code, c.headers['x-retention-status']]).toEqual([410, 'recording.expired', 'EXPIRED']);
    const st = await status(job.id);
    expect(st.body.status).toBe('expired');
    expect(st.body.content_endpoint).toBeUndefined();
    expect(await gw.deps.staging.size(job.stagingKey!)).toBeNull();
  });

  it('the staged copy alone past its source delete date (another copy still there): 410 job.expired, as a direct retrieval would no longer try it', async () => {
    await upsert([
      { call_id: 'c-src', legacy_archive_id: 'src_1', locator: WAV },
      { call_id: 'c-src', source_system: 'verint', legacy_archive_id: 'src_2', locator: WAV },
    ]);
    const job = await readyJob('src_1');
    await gw.catalogDb.db.updateTable('recording_copies').set({ source_retention_expiry: new Date(Date.now() - 1000).toISOString() }).where('id', '=', job.copyId!).execute();
    const c = await content(job.id);
    expect([c.status, problem(c).code]).toEqual([410, 'job.expired']);
    expect((await status(job.id)).body.status).toBe('expired');
    expect(await gw.deps.staging.size(job.stagingKey!)).toBeNull();
  });

  it('a recording merged away by an import: its ready job still serves, its queued job runs (jobs follow the survivor)', async () => {
    await upsert([
      { call_id: 'c-mg', legacy_archive_id: 'mg_av', locator: WAV },
      // Copies known by their archive id alone: each filed on a recording of its own.
      { source_system: 'verint', legacy_archive_id: 'mg_n1', locator: WAV },
      { source_system: 'verint', legacy_archive_id: 'mg_n2', locator: WAV },
    ]);
    const survivor = (await gw.deps.recordings.findByRef('acme', 'mg_av'))!;
    const ready = await readyJob('mg_n1');
    const queued = await queuedJob('mg_n2');
    const lone2 = queued.recordingPk;
    // The import learns both copies' call id: they join c-mg, their lone recordings are absorbed.
    await upsert([
      { call_id: 'c-mg', source_system: 'verint', legacy_archive_id: 'mg_n1', locator: WAV },
      { call_id: 'c-mg', source_system: 'verint', legacy_archive_id: 'mg_n2', locator: WAV },
    ]);
    expect(await gw.deps.recordings.get('acme', lone2)).toBeNull();
    expect((await gw.deps.jobs.get('acme', ready.id))!.recordingPk).toBe(survivor.id);
    expect((await gw.deps.jobs.get('acme', queued.id))!.recordingPk).toBe(survivor.id);

    const st = await status(ready.id);
    expect(st.body.status).toBe('ready');
    const c = await content(ready.id);
    expect(c.status).toBe(200);
    expect(c.body.length).toBe(ready.bytesTotal);

    const ran = await settled(queued.id);
    expect([ran.status, ran.errorCode]).toEqual(['ready', null]);
  });

  it('Retry-After of a queued job says when its next attempt is (at least jobs.retry_after_s, at most an hour), on the status and on a repeated request_id', async () => {
    await upsert([{ call_id: 'c-ra', source_system: 'verint', legacy_archive_id: 'ra_1', locator: WAV }]);
    const requestId = `req-ra-${kind}`;
    const job = await queuedJob('ra_1', requestId);
    const runAfter = async (ms: number) => gw.catalogDb.db.updateTable('jobs').set({ run_after: new Date(Date.now() + ms).toISOString() }).where('id', '=', job.id).execute();
    await runAfter(300_000);
    const st = await status(job.id);
    expect(st.body.status).toBe('queued');
    const s = Number(st.res.headers['retry-after']);
    expect(s).toBeGreaterThanOrEqual(295);
    expect(s).toBeLessThanOrEqual(300);

    const again = await post(gw, retrieveBody({ request_id: requestId, target_recording_ref: 'ra_1' }));
    expect(again.status).toBe(202);
    expect(JSON.parse(again.body.toString()).job_id).toBe(job.id);
    expect(Number(again.headers['retry-after'])).toBeGreaterThanOrEqual(295);

    await runAfter(7_200_000);
    expect((await status(job.id)).res.headers['retry-after']).toBe('3600');
    await runAfter(-60_000);
    expect((await status(job.id)).res.headers['retry-after']).toBe(String(gw.config.jobs.retry_after_s));
  });

  it('a repeated request_id of a job that ended answers its outcome: 410 job.expired, or 502 job.failed with its error — no 202, no Retry-After', async () => {
    await upsert([{ call_id: 'c-end', source_system: 'verint', legacy_archive_id: 'end_1', locator: WAV }]);
    const body = (requestId: string) => retrieveBody({ request_id: requestId, target_recording_ref: 'end_1' });

    const expired = await queuedJob('end_1', `req-end-x-${kind}`);
    await gw.catalogDb.db.updateTable('jobs').set({ status: 'expired' }).where('id', '=', expired.id).execute();
    const x = await post(gw, body(`req-end-x-${kind}`));
    expect(x.status).toBe(410);
    expect(problem(x)).toMatchObject({ code: 'job.expired', job_id: expired.id });
    expect(x.headers['retry-after']).toBeUndefined();

    const failed = await queuedJob('end_1', `req-end-f-${kind}`);
    await gw.catalogDb.db.updateTable('jobs').set({ status: 'failed', error_code: 'source.object_missing', error_detail: 'no such object' }).where('id', '=', failed.id).execute();
    const f = await post(gw, body(`req-end-f-${kind}`));
    expect(f.status).toBe(502);
    expect(problem(f)).toMatchObject({ code: 'job.failed', job_id: failed.id, job_error: 'source.object_missing' });
    expect(f.headers['retry-after']).toBeUndefined();

    // A ready one is still the 202 to poll: its status offers the content.
    const ready = await readyJob('end_1');
    const r = await post(gw, body(ready.requestId!));
    expect(r.status).toBe(202);
  });
});
