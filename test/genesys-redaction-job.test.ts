import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GenesysSimulator } from '../src/sources/genesys/simulator.js';
import { usableCatalogs } from './support/catalogs.js';
import { allowedAndEnd } from './support/audit-events.js';
import { AUDIO, KEYS, bearer, pollUntil, retrieveBody, startTestGateway, type TestGateway } from './support/gateway.js';
import { redactionSource, startRedactionSimulator } from './support/genesys-source.js';
import { post, raw, type RawResponse } from './support/http.js';

/**
 * A job's content is audited as a direct retrieval is: the source's statements about the bytes
 * (Genesys: `sensitive_data`, `sensitive_data_basis`, docs/AUDIT.md) are heard by the staging
 * attempt, kept with the job (jobs.source_detail, migration 0015) and carried by the `job.content`
 * events — both for a fetch handed over to staging (202 of a slow transcode) and for a job a
 * worker ran (a source in `mode: async`).
 */
describe.each(await usableCatalogs())("sensitive-data statements in a job's content events, on %s", (kind) => {
  let sim: GenesysSimulator;
  let gw: TestGateway;
  beforeAll(async () => {
    sim = await startRedactionSimulator();
    const wav = join(AUDIO, 'call_mono_pcm16_8k.wav');
    sim.addRecording({ conversationId: 'conv-slow', recordingId: 'rec-slow', path: wav, transcodePolls: 6 });
    sim.addRecording({ conversationId: 'conv-async', recordingId: 'rec-async', path: wav });
    sim.addRecording({ conversationId: 'conv-old', recordingId: 'rec-old', path: wav });
    gw = await startTestGateway({
      catalog: kind,
      sources: {
        acme: [
          // Slow to transcode (past the first-byte budget): a 202 whose fetch goes on into staging.
          redactionSource(sim, 'slow', 'partial', { first_byte_budget_ms: 150, transcode_poll: { initial_ms: 100, max_ms: 100, budget_ms: 5_000 } }),
          // Every retrieval a job, run by the worker.
          redactionSource(sim, 'queued', 'full', { mode: 'async' }),
        ],
      },
      config: (doc) => (doc.jobs = { poll_interval_ms: 50, restore_poll_ms: 200, heartbeat_ms: 200, lease_ms: 10_000, retry_base_ms: 50, staging_ttl_ms: 60_000 }),
    });
    await gw.seed([
      { call_id: 'call-slow', source_system: 'genesys_cloud', connector: 'slow', recording_id: 'rec-slow', conversation_id: 'conv-slow', storage_location: 'GENESYS_CLOUD', locator: undefined },
      { call_id: 'call-async', source_system: 'genesys_cloud', connector: 'queued', recording_id: 'rec-async', conversation_id: 'conv-async', storage_location: 'GENESYS_CLOUD', locator: undefined },
      { call_id: 'call-old', source_system: 'genesys_cloud', connector: 'queued', recording_id: 'rec-old', conversation_id: 'conv-old', storage_location: 'GENESYS_CLOUD', locator: undefined },
    ]);
  });
  afterAll(async () => {
    await gw?.stop();
    await sim?.close();
  });

  const eventsOf = (res: RawResponse) => allowedAndEnd(gw, res);

  /** Retrieves `ref` as a job, waits for it and downloads its content: the content's events and the job. */
  async function jobContent(ref: string, before?: (jobId: string) => Promise<void>) {
    const accepted = await post(gw, retrieveBody({ target_recording_ref: ref, format_preference: 'original' }));
    expect(accepted.status, accepted.body.toString()).toBe(202);
    const { poll_endpoint: poll, job_id: jobId } = JSON.parse(accepted.body.toString()) as { poll_endpoint: string; job_id: string };
    const done = (await pollUntil(gw, poll, ['ready', 'failed'])) as { status: string; content_endpoint: string };
    expect(done.status).toBe('ready');
    await before?.(jobId);
    const content = await raw(`${gw.url}${done.content_endpoint}`, { headers: bearer(KEYS.acme) });
    expect(content.status, content.body.toString()).toBe(200);
    const events = await eventsOf(content);
    expect(events.allowed.action).toBe('job.content');
    return { ...events, jobId };
  }

  it('a fetch handed over to staging (202): the staging attempt’s statement, on the allowed and .end events', async () => {
    const { allowed, end, jobId } = await jobContent('call-slow');
    for (const ev of [allowed, end]) expect(ev.detail, JSON.stringify(ev.detail)).toMatchObject({ job_id: jobId, sensitive_data: 'may_be_redacted', sensitive_data_basis: 'grants' });
    expect((await gw.deps.jobs.get('acme', jobId))?.sourceDetail).toEqual({ sensitive_data: 'may_be_redacted', sensitive_data_basis: 'grants' });
  });

  it("a job the worker ran: the worker's fetch's statement", async () => {
    const { allowed, end } = await jobContent('call-async');
    for (const ev of [allowed, end]) expect(ev.detail).toMatchObject({ sensitive_data: 'unredacted', sensitive_data_basis: 'grants' });
  });

  it('a job staged without statements (before 0015) or with a damaged one: its content is served, saying nothing of them', async () => {
    const { allowed } = await jobContent('call-old', async (jobId) => {
      await gw.deps.catalog.db.updateTable('jobs').set({ source_detail: null }).where('id', '=', jobId).execute();
    });
    expect(allowed.detail).not.toHaveProperty('sensitive_data');
    const jobId = String(allowed.detail?.job_id);
    await gw.deps.catalog.db.updateTable('jobs').set({ source_detail: '{not json' }).where('id', '=', jobId).execute();
    expect((await gw.deps.jobs.get('acme', jobId))?.sourceDetail).toBeNull();
    await gw.deps.catalog.db.updateTable('jobs').set({ source_detail: JSON.stringify({ sensitive_data: 'unredacted', nested: { x: 1 } }) }).where('id', '=', jobId).execute();
    expect((await gw.deps.jobs.get('acme', jobId))?.sourceDetail).toEqual({ sensitive_data: 'unredacted' });
  });
});
