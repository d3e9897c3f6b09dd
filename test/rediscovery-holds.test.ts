import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type GenesysSimulator, startGenesysSimulator } from '../src/sources/genesys/simulator.js';
import { usableCatalogs } from './support/catalogs.js';
import { AUDIO, KEYS, bearer, retrieveBody, startTestGateway, type TestGateway } from './support/gateway.js';
import { genesysSource } from './support/genesys-source.js';
import { post, raw } from './support/http.js';

const START = '2023-11-05T10:00:00.000Z';

/**
 * A retrieval's self-heal write-back can place legal holds: the cloud copy a finder found for a
 * known legacy recording (asked by its call id: every legacy copy gone) was filed on another
 * recording, moves to this one, and that recording's holds follow it (HoldRepository.followCopy).
 * The request's audit event counts them (`holds_placed`), as an import's and a sync page's do.
 */
describe.each(await usableCatalogs())('holds placed by a rediscovery write-back, on %s', (kind) => {
  let sim: GenesysSimulator;
  let gw: TestGateway;
  const activeHolds = async (recordingPk: string) => (await gw.deps.holds.list({ tenantId: 'acme', recordingPk, status: 'active', limit: 100 })).items;

  beforeAll(async () => {
    sim = await startGenesysSimulator();
    for (const n of ['9020', '9021']) {
      sim.addRecording({ conversationId: `0d5e6f3c-4f1e-4b5c-9a7d-00000000${n}`, recordingId: `rec-held-${n}`, path: join(AUDIO, 'call_mono_pcm16_8k.wav'), startTime: START, externalTag: `2023-11-05T10:00:00Z-${n}` });
    }
    gw = await startTestGateway({
      catalog: kind,
      sources: { acme: [genesysSource(sim)] },
    });
  });
  afterAll(async () => {
    await gw?.stop();
    await sim?.close();
  });

  it('counts the holds that followed the found copy in the retrieval event (holds_placed)', async () => {
    // The legacy copy of call 9020 is purged; its cloud copy is catalogued, but on another call's recording, which is held.
    await gw.seed([
      { call_id: '2023-11-05T10:00:00Z-9020', legacy_archive_id: 'avaya_9020', locator: 'purged/avaya_9020.wav' },
      { call_id: 'other-call-9020', source_system: 'genesys_cloud', connector: 'genesys', recording_id: 'rec-held-9020', storage_location: 'GENESYS_CLOUD_ARCHIVE', locator: undefined },
    ]);
    const legacy = (await gw.deps.recordings.findByRef('acme', 'avaya_9020'))!;
    const other = (await gw.deps.recordings.findByRef('acme', 'other-call-9020'))!;
    expect(other.id).not.toBe(legacy.id);
    const placed = await raw(`${gw.url}/api/v1/recordings/other-call-9020/holds`, {
      method: 'POST',
      headers: { ...bearer(KEYS.acmeAdmin), 'content-type': 'application/json' },
      body: JSON.stringify({ matter: 'Matter 9020', reason: 'litigation hold' }),
    });
    expect(placed.status, placed.body.toString()).toBe(201);

    const res = await post(gw, retrieveBody({ target_recording_ref: 'avaya_9020', format_preference: 'original' }));
    expect(res.status, res.body.toString()).toBe(200);
    expect(res.headers['x-recording-origin']).toBe('GENESYS_CLOUD');
    // The copy moved to the legacy recording, and the hold followed it.
    expect((await gw.deps.recordings.findByRef('acme', 'rec-held-9020'))?.id).toBe(legacy.id);
    const followed = await activeHolds(legacy.id);
    expect(followed).toHaveLength(1);
    expect(followed[0]).toMatchObject({ matter: 'Matter 9020', createdBy: 'catalog-import' });
    const event = await gw.deps.auditRepo.byId(res.headers['x-audit-event-id'] as string);
    expect(event).toMatchObject({ action: 'recording.retrieve', recordingPk: legacy.id, detail: { rediscovered_by: 'genesys:genesys', holds_placed: 1 } });
  });

  it('says nothing of holds when the write-back placed none', async () => {
    await gw.seed([{ call_id: '2023-11-05T10:00:00Z-9021', legacy_archive_id: 'avaya_9021', locator: 'purged/avaya_9021.wav' }]);
    const res = await post(gw, retrieveBody({ target_recording_ref: 'avaya_9021', format_preference: 'original' }));
    expect(res.status, res.body.toString()).toBe(200);
    const event = await gw.deps.auditRepo.byId(res.headers['x-audit-event-id'] as string);
    expect(event?.detail?.rediscovered_by).toBe('genesys:genesys');
    expect(event?.detail).not.toHaveProperty('holds_placed');
  });
});
