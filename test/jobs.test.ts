import { createHash } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type GenesysSimulator, startGenesysSimulator } from '../src/sources/genesys/simulator.js';
import { usableCatalogs } from './support/catalogs.js';
import { AUDIO, KEYS, bearer, pollUntil, retrieveBody, startTestGateway, type TestGateway } from './support/gateway.js';
import { genesysSource } from './support/genesys-source.js';
import { post, raw } from './support/http.js';

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const PCM = readFileSync(join(AUDIO, 'call_mono_pcm16_8k.wav'));
const STEREO = readFileSync(join(AUDIO, 'call_stereo_pcm16_8k.wav'));

/**
 * Asynchronous retrieval: a slow or preparing source answers 202 fast, the same fetch goes on into
 * encrypted staging, the client polls and downloads. Against the Genesys Cloud simulator (slow
 * transcodes, archived recordings) and the real job table on each database.
 */
describe.each(await usableCatalogs())('retrieval jobs on %s', (kind) => {
  let sim: GenesysSimulator;
  let gw: TestGateway;

  beforeAll(async () => {
    sim = await startGenesysSimulator({ restoreDelayMs: 300 });
    sim.addRecording({ conversationId: 'conv-slow', recordingId: 'rec-slow', path: join(AUDIO, 'call_mono_pcm16_8k.wav'), transcodePolls: 8 });
    sim.addRecording({ conversationId: 'conv-arch', recordingId: 'rec-arch', path: join(AUDIO, 'call_stereo_pcm16_8k.wav'), fileState: 'ARCHIVED' });
    sim.addRecording({ conversationId: 'conv-fast', recordingId: 'rec-fast', path: join(AUDIO, 'call_mono_pcm16_8k.wav') });
    sim.addRecording({ conversationId: 'conv-pair', recordingId: 'rec-pair-arch', path: join(AUDIO, 'call_stereo_pcm16_8k.wav'), fileState: 'ARCHIVED' });
    const genesys = genesysSource(sim, { first_byte_budget_ms: 150, transcode_poll: { initial_ms: 100, max_ms: 100, budget_ms: 5_000 } });
    // Same org, a generous budget: copies naming this connector stream directly even on a loaded machine.
    const genesysFast = { ...genesys, name: 'genesys-fast', source_systems: [], first_byte_budget_ms: 20_000 };
    gw = await startTestGateway({
      catalog: kind,
      sources: { acme: [genesys, genesysFast, { name: 'slowfs', type: 'filesystem', root: join(AUDIO), mode: 'async', source_systems: ['nice'] }] },
      config: (doc) => (doc.jobs = { poll_interval_ms: 50, restore_poll_ms: 200, heartbeat_ms: 200, lease_ms: 10_000, retry_base_ms: 50, staging_ttl_ms: 60_000 }),
    });
    await gw.seed([
      { call_id: 'c-slow', source_system: 'genesys_cloud', recording_id: 'rec-slow', conversation_id: 'conv-slow' },
      // The catalog state the sync and the Genesys lookup store for it: Genesys's fileState.
      { call_id: 'c-arch', source_system: 'genesys_cloud', recording_id: 'rec-arch', conversation_id: 'conv-arch', state: 'ARCHIVED' },
      // Archived in Genesys, readable in the legacy archive.
      { call_id: 'c-pair', source_system: 'genesys_cloud', recording_id: 'rec-pair-arch', conversation_id: 'conv-pair', state: 'ARCHIVED' },
      { call_id: 'c-pair', source_system: 'avaya_aura', legacy_archive_id: 'av-pair', locator: 'call_mono_pcm16_8k.wav' },
      { call_id: 'c-fast', source_system: 'genesys_cloud', recording_id: 'rec-fast', conversation_id: 'conv-fast', connector: 'genesys-fast' },
      { call_id: 'c-async', source_system: 'nice', legacy_archive_id: 'n-async', locator: 'call_mono_pcm16_8k.wav' },
    ]);
  });
  afterAll(async () => {
    await gw?.stop();
    await sim?.close();
  });

  it('streams directly when the source answers within the budget', async () => {
    const res = await post(gw, retrieveBody({ target_recording_ref: 'rec-fast', format_preference: 'original' }));
    expect(res.status).toBe(200);
    expect(res.headers['x-recording-origin']).toBe('GENESYS_CLOUD');
    expect(sha256(res.body)).toBe(sha256(PCM));
    // connector counters reach /metrics, per kind
    const metrics = (await raw(`${gw.url}/metrics`)).body.toString();
    expect(metrics).toMatch(/custodian_source_stat\{kind="genesys",stat="logins"\} [1-9]/);
    expect(metrics).toMatch(/custodian_source_stat\{kind="genesys",stat="circuits_open"\} 0/);
  });

  it('answers 202 for a slow source and continues the same fetch into staging; no second upstream fetch', async () => {
    sim.clearLog();
    const body = retrieveBody({ target_recording_ref: 'rec-slow', format_preference: 'original' });
    const res = await post(gw, body);
    expect(res.status, res.body.toString()).toBe(202);
    const accepted = JSON.parse(res.body.toString());
    expect(accepted).toEqual({ status: 202, message: 'Retrieval initiated', job_id: expect.stringMatching(/^job_/), poll_endpoint: `/api/v1/recordings/status/${accepted.job_id}` });
    expect(res.headers.location).toBe(accepted.poll_endpoint);
    expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
    // the same request_id gives the same job
    const again = await post(gw, body);
    expect(JSON.parse(again.body.toString()).job_id).toBe(accepted.job_id);

    const done = await pollUntil(gw, accepted.poll_endpoint, ['ready', 'failed']);
    expect(done).toMatchObject({ status: 'ready', origin: 'GENESYS_CLOUD', bytes_done: PCM.length, bytes_total: PCM.length, sha256: sha256(PCM) });
    const media = sim.requests.filter((r) => r.role === 'media');
    expect(media).toHaveLength(1);

    const content = await raw(`${gw.url}${done.content_endpoint}`, { headers: bearer(KEYS.acme) });
    expect(content.status).toBe(200);
    expect(content.headers['x-recording-origin']).toBe('GENESYS_CLOUD');
    expect(content.headers['content-length']).toBe(String(PCM.length));
    expect(sha256(content.body)).toBe(sha256(PCM));
    const part = await raw(`${gw.url}${done.content_endpoint}`, { headers: { ...bearer(KEYS.acme), range: 'bytes=70000-140000' } });
    expect(part.status).toBe(206);
    expect(part.body.equals(PCM.subarray(70000, 140001))).toBe(true);

    // staged at rest encrypted: no run of the plaintext appears in the staged file
    const key = (await gw.deps.jobs.get('acme', accepted.job_id))!.stagingKey!;
    expect(key.startsWith(`${accepted.job_id}_`)).toBe(true);
    const staged = readdirSync(join(gw.dir, 'staging'));
    expect(staged).toContain(key);
    const cipher = readFileSync(join(gw.dir, 'staging', key));
    expect(cipher.includes(PCM.subarray(1000, 1064))).toBe(false);
    expect(cipher.length).toBeGreaterThan(PCM.length);
  });

  it('hides a job from other principals and tenants (same 404 as none)', async () => {
    const res = await post(gw, retrieveBody({ target_recording_ref: 'c-async', format_preference: 'original' }));
    expect(res.status).toBe(202);
    const { poll_endpoint: poll, job_id: jobId } = JSON.parse(res.body.toString());
    const content = `/api/v1/recordings/jobs/${jobId}/content`;
    expect(JSON.parse((await raw(`${gw.url}${poll}`, { headers: bearer(KEYS.globex) })).body.toString()).code).toBe('job.not_found');
    expect((await raw(`${gw.url}${poll}`, { headers: bearer(KEYS.acmeAdmin) })).status).toBe(200);
    expect(JSON.parse((await raw(`${gw.url}/api/v1/recordings/status/job_00000000-0000-0000-0000-000000000000`, { headers: bearer(KEYS.acme) })).body.toString()).code).toBe('job.not_found');
    expect((await raw(`${gw.url}/api/v1/recordings/status/../../etc`, { headers: bearer(KEYS.acme) })).status).toBe(404);
    const done = await pollUntil(gw, poll, ['ready', 'failed']);
    expect(done.status).toBe('ready');
    // Another reader of the same tenant did not start it: neither its status nor its media, same 404 as none.
    for (const path of [poll, content]) {
      const other = await raw(`${gw.url}${path}`, { headers: bearer(KEYS.acmeReader2) });
      expect(other.status, path).toBe(404);
      expect(JSON.parse(other.body.toString()).code, path).toBe('job.not_found');
    }
    expect((await raw(`${gw.url}${content}`, { headers: bearer(KEYS.acme) })).status).toBe(200);
  });

  it('restores a Genesys copy the catalog marks ARCHIVED, its only copy, as a job: 202, restore requested, then ready', async () => {
    expect((await gw.deps.recordings.findByRef('acme', 'c-arch'))!.copies.map((c) => c.state)).toEqual(['ARCHIVED']);
    const res = await post(gw, retrieveBody({ target_recording_ref: 'c-arch', format_preference: 'original' }));
    expect(res.status, res.body.toString()).toBe(202);
    const { poll_endpoint: poll, job_id: jobId } = JSON.parse(res.body.toString());
    const done = await pollUntil(gw, poll, ['ready', 'failed'], KEYS.acme, 30_000);
    expect(done.status, JSON.stringify(done)).toBe('ready');
    expect(sim.requests.some((r) => r.method === 'PUT' && r.path.includes('rec-arch'))).toBe(true);
    const events = (await gw.deps.auditRepo.query({ tenantId: 'acme', action: 'source.restore_requested', limit: 10 })).items;
    expect(events.some((e) => e.detail?.job_id === jobId)).toBe(true);
    const content = await raw(`${gw.url}${done.content_endpoint}`, { headers: bearer(KEYS.acme) });
    expect(sha256(content.body)).toBe(sha256(STEREO));
  });

  it('serves a readable copy as before when the other copy is ARCHIVED: no Genesys call, no restore', async () => {
    sim.clearLog();
    const res = await post(gw, retrieveBody({ target_recording_ref: 'c-pair', format_preference: 'original' }));
    expect(res.status, res.body.toString()).toBe(200);
    expect(res.headers['x-recording-origin']).toBe('LEGACY_ARCHIVE');
    expect(sha256(res.body)).toBe(sha256(PCM));
    // The archived cloud copy is tried only when nothing readable is left.
    expect(sim.requests.filter((r) => r.path.includes('rec-pair-arch') || r.path.includes('conv-pair'))).toEqual([]);
    const ev = (await gw.deps.auditRepo.query({ tenantId: 'acme', action: 'recording.retrieve', limit: 50 })).items.find((e) => e.id === res.headers['x-audit-event-id']);
    expect(ev?.detail?.fallback_from).toBeUndefined();
  });

  /** A job running under the lease of an instance that died (it never heartbeats or settles): the lease lapses in 300 ms. */
  async function orphanJob(requestId: string, maxAttempts: number) {
    const rec = await gw.deps.recordings.findByRef('acme', 'c-fast');
    const { job } = await gw.deps.jobs.create({
      tenantId: 'acme',
      principalId: 'alice',
      callerId: 'alice',
      requestId,
      auditLogId: null,
      ref: 'c-fast',
      recordingPk: rec!.id,
      format: 'original',
      maxAttempts,
      leaseOwner: 'a-dead-instance',
      leaseMs: 300,
    });
    return job;
  }

  it('a job whose worker died is taken over when its lease lapses', async () => {
    const job = await orphanJob('orphan-1', 3);
    expect(job.status).toBe('running');
    const done = await pollUntil(gw, `/api/v1/recordings/status/${job.id}`, ['ready', 'failed']);
    expect(done.status).toBe('ready');
    expect(done.attempts).toBe(2);
  });

  it('a job whose last attempt died with its instance fails with job.failed, reported like any failed job, and is not taken up again', async () => {
    // The 202 hand-off's attempt was the only one allowed; its instance died (no settle, only a lapse).
    const job = await orphanJob('orphan-last', 1);
    const done = await pollUntil(gw, `/api/v1/recordings/status/${job.id}`, ['ready', 'failed']);
    expect(done).toMatchObject({ status: 'failed', attempts: 1, error: { code: 'job.failed' } });
    expect(gw.logs.some((l) => l.includes('"msg":"job failed"') && l.includes(job.id))).toBe(true);
    const content = await raw(`${gw.url}/api/v1/recordings/jobs/${job.id}/content`, { headers: bearer(KEYS.acme) });
    expect(content.status).toBe(502);
    expect(JSON.parse(content.body.toString())).toMatchObject({ code: 'job.failed', job_error: 'job.failed' });
  });

  it('claims each job exactly once under concurrent workers', async () => {
    const rec = await gw.deps.recordings.findByRef('acme', 'c-fast');
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) {
      const { job } = await gw.deps.jobs.create({ tenantId: 'acme', principalId: 'alice', callerId: null, requestId: `claim-${kind}-${i}`, auditLogId: null, ref: 'c-fast', recordingPk: rec!.id, format: 'original', maxAttempts: 1 });
      ids.push(job.id);
    }
    const claims = await Promise.all(Array.from({ length: 12 }, (_, i) => gw.deps.jobs.claim(`racer-${i}`, 60_000)));
    const claimed = claims.filter((j) => j !== null).map((j) => j!.id);
    expect(new Set(claimed).size).toBe(claimed.length);
  });

  it('purges staged media after its TTL: status expired, content 410', async () => {
    const res = await post(gw, retrieveBody({ target_recording_ref: 'c-async', format_preference: 'wav' }));
    const { poll_endpoint: poll, job_id: jobId } = JSON.parse(res.body.toString());
    await pollUntil(gw, poll, ['ready']);
    // Age the job: its TTL is in the past.
    await gw.catalogDb.db.updateTable('jobs').set({ expires_at: new Date(Date.now() - 1000).toISOString() }).where('id', '=', jobId).execute();
    const { JobWorker } = await import('../src/jobs/worker.js');
    expect(await new JobWorker(gw.deps).sweep()).toBeGreaterThanOrEqual(1);
    expect((await pollUntil(gw, poll, ['expired'])).status).toBe('expired');
    const content = await raw(`${gw.url}/api/v1/recordings/jobs/${jobId}/content`, { headers: bearer(KEYS.acme) });
    expect(content.status).toBe(410);
    expect(JSON.parse(content.body.toString()).code).toBe('job.expired');
    expect(readdirSync(join(gw.dir, 'staging')).filter((f) => f.startsWith(jobId))).toEqual([]);
  });
});
