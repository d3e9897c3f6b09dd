import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type GenesysSimulator, startGenesysSimulator } from '../src/sources/genesys/simulator.js';
import { usableCatalogs } from './support/catalogs.js';
import { AUDIO, KEYS, bearer, retrieveBody, startTestGateway, type TestGateway } from './support/gateway.js';
import { genesysSource } from './support/genesys-source.js';
import { post, raw } from './support/http.js';

/**
 * The catalog-lag fallback must not guess: when the analytics query finds several conversations
 * for a ref (a legacy id attached as external tag to two calls, a reused SIP Call-ID), the request
 * gets 409 recording.ambiguous_ref listing the candidates, the refusal is audited, and nothing is
 * written back to the catalog for that ref.
 */
describe.each(await usableCatalogs())('an ambiguous catalog-lag lookup, on %s', (kind) => {
  let sim: GenesysSimulator;
  let gw: TestGateway;
  const A = '1a2b3c4d-0000-4000-8000-00000000000a';
  const B = '1a2b3c4d-0000-4000-8000-00000000000b';
  const C = '1a2b3c4d-0000-4000-8000-00000000000c';
  const D = '1a2b3c4d-0000-4000-8000-00000000000d';
  const wav = join(AUDIO, 'call_mono_pcm16_8k.wav');

  beforeAll(async () => {
    sim = await startGenesysSimulator();
    const now = new Date().toISOString();
    // One legacy id tagged on two calls (a migration that ran twice).
    sim.addRecording({ conversationId: A, recordingId: 'rec-a', path: wav, startTime: now, externalTag: 'avaya_7777' });
    sim.addRecording({ conversationId: B, recordingId: 'rec-b1', path: wav, startTime: now, externalTag: 'avaya_7777' });
    sim.addRecording({ conversationId: B, recordingId: 'rec-b2', path: wav, startTime: now });
    // One SIP Call-ID on two calls.
    sim.addRecording({ conversationId: C, recordingId: 'rec-c', path: wav, startTime: now, protocolCallId: 'dup-call@sbc.example' });
    sim.addRecording({ conversationId: D, recordingId: 'rec-d', path: wav, startTime: now, protocolCallId: 'dup-call@sbc.example' });
    gw = await startTestGateway({
      catalog: kind,
      sources: {
        acme: [genesysSource(sim)],
      },
    });
  });
  afterAll(async () => {
    await gw?.stop();
    await sim?.close();
  });

  async function auditOf(requestId: string) {
    return (await gw.deps.auditRepo.query({ tenantId: 'acme', limit: 1000 })).items.find((e) => e.httpRequestId === requestId);
  }

  it('answers 409 recording.ambiguous_ref with every candidate’s ids, audits it, and writes nothing back', async () => {
    const res = await post(gw, retrieveBody({ target_recording_ref: 'avaya_7777', format_preference: 'wav' }));
    expect(res.status, res.body.toString()).toBe(409);
    expect(res.headers['content-type']).toBe('application/problem+json');
    const body = JSON.parse(res.body.toString());
    expect(body).toMatchObject({ code: 'recording.ambiguous_ref', status: 409, matched_by: 'externalTag' });
    const candidates = (body.candidates as { conversation_id: string; recording_ids: string[] }[]).map((c) => ({ ...c, recording_ids: [...c.recording_ids].sort() }));
    expect(candidates.map((c) => c.conversation_id).sort()).toEqual([A, B]);
    expect(candidates.find((c) => c.conversation_id === B)?.recording_ids).toEqual(['rec-b1', 'rec-b2']);
    expect(candidates.find((c) => c.conversation_id === A)?.recording_ids).toEqual(['rec-a']);
    expect(body.detail).toMatch(/2 conversations/);
    // No media was asked for: only lookups reached Genesys.
    expect(sim.requests.filter((e) => e.role === 'media')).toHaveLength(0);

    const ev = await auditOf(body.request_id);
    expect(ev).toMatchObject({ action: 'recording.retrieve', outcome: 'failed', status: 409, errorCode: 'recording.ambiguous_ref', ref: 'avaya_7777', principalId: 'alice' });

    expect(await gw.deps.recordings.findByRef('acme', 'avaya_7777')).toBeNull();
    expect(await gw.deps.recordings.findByRef('acme', A)).toBeNull();
    expect(await gw.deps.recordings.findByRef('acme', 'rec-b1')).toBeNull();
  });

  it('the player endpoint refuses the same way; asking again still does not guess', async () => {
    const res = await raw(`${gw.url}/api/v1/recordings/avaya_7777/media`, { headers: bearer(KEYS.acme) });
    expect(res.status).toBe(409);
    expect(JSON.parse(res.body.toString()).code).toBe('recording.ambiguous_ref');
    const again = await post(gw, retrieveBody({ target_recording_ref: 'avaya_7777', format_preference: 'json' }));
    expect(again.status).toBe(409);
    expect(await gw.deps.recordings.findByRef('acme', 'avaya_7777')).toBeNull();
  });

  it('a reused SIP Call-ID is ambiguous too', async () => {
    const res = await post(gw, retrieveBody({ target_recording_ref: 'dup-call@sbc.example', format_preference: 'json' }));
    expect(res.status).toBe(409);
    const body = JSON.parse(res.body.toString());
    expect(body.matched_by).toBe('protocolCallId');
    expect(body.candidates.map((c: { conversation_id: string }) => c.conversation_id).sort()).toEqual([C, D]);
    expect(await gw.deps.recordings.findByRef('acme', 'dup-call@sbc.example')).toBeNull();
  });

  it('one of the candidates, asked for by its conversation id, is served and filed', async () => {
    const res = await post(gw, retrieveBody({ target_recording_ref: A, format_preference: 'original' }));
    expect(res.status, res.body.toString()).toBe(200);
    expect(res.headers['x-recording-origin']).toBe('GENESYS_CLOUD');
    expect((await gw.deps.recordings.findByRef('acme', A))?.copies[0]?.genesysRecordingId).toBe('rec-a');
    // The ambiguous tag stays unfiled (the conversation found by id is filed without it).
    expect(await gw.deps.recordings.findByRef('acme', 'avaya_7777')).toBeNull();
  });

  it('another tenant learns nothing: 404, no candidates', async () => {
    const res = await post(gw, retrieveBody({ target_recording_ref: 'avaya_7777', caller_id: 'gary', format_preference: 'json' }), KEYS.globex);
    expect(res.status).toBe(404);
    expect(res.body.toString()).not.toContain(A);
  });
});
