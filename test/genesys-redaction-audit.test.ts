import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GenesysSimulator } from '../src/sources/genesys/simulator.js';
import { usableCatalogs } from './support/catalogs.js';
import { AUDIO, KEYS, bearer, startTestGateway, type TestGateway } from './support/gateway.js';
import { redactionSource, startRedactionSimulator } from './support/genesys-source.js';
import { raw } from './support/http.js';

/**
 * Without recording:recording:viewSensitiveData Genesys may serve a recording redacted, and says
 * nothing about it in the answer: the retrieval's events say which the gateway's client could get
 * (docs/AUDIT.md `sensitive_data`), from the source's own facts (SourceMedia.auditDetail) through
 * the serving path to the `allowed` and `.end` events.
 */
describe.each(await usableCatalogs())('sensitive-data redaction in the retrieval events, on %s', (kind) => {
  let sim: GenesysSimulator;
  let gw: TestGateway;
  beforeAll(async () => {
    sim = await startRedactionSimulator();
    for (const n of [1, 2]) sim.addRecording({ conversationId: `conv-red-${n}`, recordingId: `rec-red-${n}`, path: join(AUDIO, 'call_mono_pcm16_8k.wav') });
    gw = await startTestGateway({ catalog: kind, sources: { acme: [redactionSource(sim, 'full', 'full'), redactionSource(sim, 'partial', 'partial')] } });
    await gw.seed([
      { call_id: 'call-red-full', source_system: 'genesys_cloud', connector: 'full', recording_id: 'rec-red-1', conversation_id: 'conv-red-1', storage_location: 'GENESYS_CLOUD', locator: undefined },
      { call_id: 'call-red-partial', source_system: 'genesys_cloud', connector: 'partial', recording_id: 'rec-red-2', conversation_id: 'conv-red-2', storage_location: 'GENESYS_CLOUD', locator: undefined },
    ]);
  });
  afterAll(async () => {
    await gw?.stop();
    await sim?.close();
  });

  const events = async (ref: string) => {
    const res = await raw(`${gw.url}/api/v1/recordings/${ref}/media?format=original`, { headers: bearer(KEYS.acme) });
    expect(res.status, res.body.toString()).toBe(200);
    const allowed = await gw.deps.auditRepo.byId(res.headers['x-audit-event-id'] as string);
    return { allowed };
  };

  it('a client holding viewSensitiveData everywhere: unredacted', async () => {
    const { allowed } = await events('call-red-full');
    expect(allowed?.detail, JSON.stringify(allowed?.detail)).toMatchObject({ sensitive_data: 'unredacted' });
  });

  it('a client without it: may_be_redacted', async () => {
    const { allowed } = await events('call-red-partial');
    expect(allowed?.detail).toMatchObject({ sensitive_data: 'may_be_redacted' });
  });
});
