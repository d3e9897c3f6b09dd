import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type GenesysSimulator, startGenesysSimulator } from '../src/sources/genesys/simulator.js';
import { usableCatalogs } from './support/catalogs.js';
import { AUDIO, KEYS, bearer, startTestGateway, type TestGateway } from './support/gateway.js';
import { genesysSource } from './support/genesys-source.js';
import { raw } from './support/http.js';

const START = '2023-11-05T10:00:00.000Z';

/**
 * A queued job's rediscovery — every legacy copy gone, the cloud copy found by the call id and filed
 * on the recording (a catalog write-back that may place holds) — is audited as
 * `recording.rediscovered`: a job has no request event to carry `rediscovered_by`, and it was only logged.
 */
describe.each(await usableCatalogs())('a job\'s rediscovery is audited, on %s', (kind) => {
  let sim: GenesysSimulator;
  let gw: TestGateway;

  beforeAll(async () => {
    sim = await startGenesysSimulator();
    for (const n of ['9030', '9031']) {
      sim.addRecording({ conversationId: `0d5e6f3c-4f1e-4b5c-9a7d-00000000${n}`, recordingId: `rec-job-${n}`, path: join(AUDIO, 'call_mono_pcm16_8k.wav'), startTime: START, externalTag: `2023-11-05T10:00:00Z-${n}` });
    }
    gw = await startTestGateway({ catalog: kind, sources: { acme: [genesysSource(sim)] } });
  });
  afterAll(async () => {
    await gw?.stop();
    await sim?.close();
  });

  async function runJob(ref: string, recordingPk: string): Promise<string> {
    const { job } = await gw.deps.jobs.create({ tenantId: 'acme', principalId: 'alice', callerId: null, requestId: 'req-' + ref, auditLogId: null, ref, recordingPk, format: 'original', maxAttempts: 1 });
    gw.deps.worker?.poke();
    let status = job.status;
    for (let i = 0; i < 200 && !['ready', 'failed'].includes(status); i++) {
      await new Promise((r) => setTimeout(r, 50));
      status = (await gw.deps.jobs.get('acme', job.id))!.status;
    }
    expect(status).toBe('ready');
    return job.id;
  }
  const rediscovered = async (recordingPk: string) => (await gw.deps.auditRepo.query({ tenantId: 'acme', recordingPk, action: 'recording.rediscovered', limit: 10 })).items;

  it('records the write-back and the holds it placed (holds_placed), under the job\'s principal', async () => {
    await gw.seed([
      { call_id: '2023-11-05T10:00:00Z-9030', legacy_archive_id: 'avaya_9030', locator: 'purged/avaya_9030.wav' },
      { call_id: 'other-call-9030', source_system: 'genesys_cloud', connector: 'genesys', recording_id: 'rec-job-9030', storage_location: 'GENESYS_CLOUD_ARCHIVE', locator: undefined },
    ]);
    const legacy = (await gw.deps.recordings.findByRef('acme', 'avaya_9030'))!;
    const placed = await raw(`${gw.url}/api/v1/recordings/other-call-9030/holds`, {
      method: 'POST',
      headers: { ...bearer(KEYS.acmeAdmin), 'content-type': 'application/json' },
      body: JSON.stringify({ matter: 'Matter 9030', reason: 'litigation hold' }),
    });
    expect(placed.status, placed.body.toString()).toBe(201);

    const jobId = await runJob('avaya_9030', legacy.id);
    expect((await gw.deps.recordings.findByRef('acme', 'rec-job-9030'))?.id).toBe(legacy.id);
    const events = await rediscovered(legacy.id);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({
      tenantId: 'acme',
      principalId: 'alice',
      principalKind: 'system',
      requestId: 'req-avaya_9030',
      ref: 'avaya_9030',
      recordingPk: legacy.id,
      outcome: 'completed',
      detail: { job_id: jobId, rediscovered_by: 'genesys:genesys', holds_placed: 1 },
    });
  });

  it('says nothing of holds when the write-back placed none, and a job that needs no finder records nothing', async () => {
    await gw.seed([{ call_id: '2023-11-05T10:00:00Z-9031', legacy_archive_id: 'avaya_9031', locator: 'purged/avaya_9031.wav' }]);
    const rec = (await gw.deps.recordings.findByRef('acme', 'avaya_9031'))!;
    await runJob('avaya_9031', rec.id);
    const events = await rediscovered(rec.id);
    expect(events).toHaveLength(1);
    expect(events[0]?.detail?.rediscovered_by).toBe('genesys:genesys');
    expect(events[0]?.detail).not.toHaveProperty('holds_placed');
    // The cloud copy is filed now: a second job opens it directly, with no finder round to record.
    await runJob('avaya_9031', rec.id);
    expect(await rediscovered(rec.id)).toHaveLength(1);
  });
});
