import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type GenesysSimulator, startGenesysSimulator } from '../src/sources/genesys/simulator.js';
import { usableCatalogs } from './support/catalogs.js';
import { AUDIO, KEYS, retrieveBody, startTestGateway, type TestGateway } from './support/gateway.js';
import { genesysSource } from './support/genesys-source.js';
import { post } from './support/http.js';

/**
 * product.md: "The 202 must come back fast (seconds at most) no matter how slow the source is."
 * A ref only Genesys knows is searched there before any copy is opened; in `auto` (and `async`)
 * that search is bounded by the first-byte budget too. One that has not finished by then answers
 * 503 `recording.lookup_pending` and goes on in the background, so the client's retry (same
 * request_id) finds it. The simulator's rate limit (429 with Retry-After, which the connector
 * waits out) makes the analytics query slow.
 */
const BUDGET_MS = 800;
const SLOW_S = 4;

const genesys = (sim: GenesysSimulator, over: Record<string, unknown> = {}) => genesysSource(sim, { first_byte_budget_ms: BUDGET_MS, ...over });

async function timed<T>(f: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const t0 = performance.now();
  const value = await f();
  return { ms: performance.now() - t0, value };
}

async function until(what: string, cond: () => Promise<boolean>, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe.each(await usableCatalogs())('a catalog miss searched in a slow Genesys, on %s', (kind) => {
  let sim: GenesysSimulator;
  let gw: TestGateway;
  /** Analytics queries that asked for `tag`. */
  const queriesFor = (tag: string) => sim.requests.filter((r) => r.path.endsWith('/analytics/conversations/details/query') && r.body.includes(tag)).length;
  const addTagged = (n: number) =>
    sim.addRecording({ conversationId: `3e1d2c4b-5a6f-4b7c-8d9e-0000000${n}`, recordingId: `rec-slow-${n}`, path: join(AUDIO, 'call_mono_pcm16_8k.wav'), startTime: new Date().toISOString(), externalTag: `avaya_${n}` });

  beforeAll(async () => {
    sim = await startGenesysSimulator();
    for (const n of [71001, 71002, 71003, 71004, 71005]) addTagged(n);
    gw = await startTestGateway({ catalog: kind, sources: { acme: [genesys(sim)], globex: [genesys(sim, { mode: 'sync' })] } });
    // Log in once (a fast search), so only the rate limit below makes a search slow.
    const warm = await post(gw, retrieveBody({ target_recording_ref: 'avaya_71005', format_preference: 'json' }));
    expect(warm.status, warm.body.toString()).toBe(200);
  });
  afterAll(async () => {
    await gw?.stop();
    await sim?.close();
  });

  it('answers 503 lookup_pending within the budget, finishes the search in the background, and the retry with the same request_id is served', async () => {
    const body = retrieveBody({ target_recording_ref: 'avaya_71001', format_preference: 'json' });
    sim.rateLimitNext(1, SLOW_S);
    const first = await timed(() => post(gw, body));
    // The answer's time is the promise: checked first, so a failure shows how long the client waited.
    expect(first.ms).toBeLessThan(BUDGET_MS + 1_000);
    expect(first.value.status, first.value.body.toString()).toBe(503);
    expect(JSON.parse(first.value.body.toString()).code).toBe('recording.lookup_pending');
    expect(Number(first.value.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    const pending = (await gw.deps.auditRepo.query({ tenantId: 'acme', limit: 500 })).items.filter((e) => e.httpRequestId === first.value.headers['x-request-id']);
    expect(pending.map((e) => [e.action, e.outcome, e.status, e.errorCode, e.ref])).toEqual([['recording.retrieve', 'failed', 503, 'recording.lookup_pending', 'avaya_71001']]);

    // The search goes on past the answer and files what it found (its write-back).
    await until('the background write-back', async () => !!(await gw.deps.recordings.findByRef('acme', 'avaya_71001')));
    const queries = queriesFor('avaya_71001');
    const again = await post(gw, body);
    expect(again.status, again.body.toString()).toBe(200);
    expect(JSON.parse(again.body.toString()).copies[0].recording_id).toBe('rec-slow-71001');
    // Not searched again, and the event that serves it says it was a self-heal (and which request's search).
    expect(queriesFor('avaya_71001')).toBe(queries);
    const event = await gw.deps.auditRepo.byId(again.headers['x-audit-event-id'] as string);
    expect(event?.detail).toMatchObject({ self_heal: 'genesys:genesys', self_heal_started_by: first.value.headers['x-request-id'] });
  });

  it('runs one search per tenant and ref: a retry while it runs joins it (the same 503), never a second query', async () => {
    sim.rateLimitNext(1, SLOW_S);
    const a = post(gw, retrieveBody({ target_recording_ref: 'avaya_71002', format_preference: 'original' }));
    await new Promise((r) => setTimeout(r, 200));
    const b = post(gw, retrieveBody({ target_recording_ref: 'avaya_71002', format_preference: 'original' }));
    const [ra, rb] = await Promise.all([a, b]);
    expect([ra.status, rb.status]).toEqual([503, 503]);
    expect(JSON.parse(rb.body.toString()).code).toBe('recording.lookup_pending');
    await until('the background write-back', async () => !!(await gw.deps.recordings.findByRef('acme', 'avaya_71002')));
    // One query asked (the 429) and the same query asked again after its Retry-After: one search.
    expect(queriesFor('avaya_71002')).toBe(2);
    const served = await post(gw, retrieveBody({ target_recording_ref: 'avaya_71002', format_preference: 'original' }));
    expect(served.status, served.body.toString()).toBe(200);
    expect(served.headers['x-recording-origin']).toBe('GENESYS_CLOUD');
  });

  it('a ref Genesys does not have: 503 first, then the retry gets the 404 — with the owner tenant’s cross-tenant evidence', async () => {
    await gw.seed([{ tenant_id: 'globex', call_id: 'globex-only-71009', legacy_archive_id: 'avaya_71009', locator: 'call_mono_pcm16_8k.wav' }]);
    const body = retrieveBody({ target_recording_ref: 'avaya_71009', format_preference: 'json' });
    sim.rateLimitNext(1, 2);
    const first = await timed(() => post(gw, body));
    // The answer's time is the promise: checked first, so a failure shows how long the client waited.
    expect(first.ms).toBeLessThan(BUDGET_MS + 1_000);
    expect(first.value.status, first.value.body.toString()).toBe(503);
    await until('the search to ask again after its wait', async () => queriesFor('avaya_71009') >= 2);
    await new Promise((r) => setTimeout(r, 300));
    const again = await post(gw, body);
    expect(again.status, again.body.toString()).toBe(404);
    const owner = (await gw.deps.auditRepo.query({ tenantId: 'globex', limit: 500 })).items.filter((e) => e.action === 'recording.cross_tenant_attempt' && e.ref === 'avaya_71009');
    expect(owner.map((e) => e.httpRequestId)).toEqual([again.headers['x-request-id']]);
  });

  it('in sync mode the client waits for the search, as it asked', async () => {
    sim.addRecording({ conversationId: '3e1d2c4b-5a6f-4b7c-8d9e-000000071007', recordingId: 'rec-slow-71007', path: join(AUDIO, 'call_mono_pcm16_8k.wav'), startTime: new Date().toISOString(), externalTag: 'avaya_71007' });
    const warm = await post(gw, retrieveBody({ caller_id: 'gary', target_recording_ref: 'avaya_71005', format_preference: 'json' }), KEYS.globex);
    expect(warm.status, warm.body.toString()).toBe(200);
    sim.rateLimitNext(1, 2);
    const res = await timed(() => post(gw, retrieveBody({ caller_id: 'gary', target_recording_ref: 'avaya_71007', format_preference: 'json' }), KEYS.globex));
    expect(res.value.status, res.value.body.toString()).toBe(200);
    expect(res.ms).toBeGreaterThan(1_500);
  });
});

describe('a background search, with a gateway of its own', () => {
  it('in async mode too: 503 within the budget, then the retry (same request_id) gets its 202 job', async () => {
    const sim = await startGenesysSimulator();
    sim.addRecording({ conversationId: '3e1d2c4b-5a6f-4b7c-8d9e-000000071010', recordingId: 'rec-slow-71010', path: join(AUDIO, 'call_mono_pcm16_8k.wav'), startTime: new Date().toISOString(), externalTag: 'avaya_71010' });
    const gw = await startTestGateway({ sources: { acme: [genesys(sim, { mode: 'async' })] } });
    try {
      sim.rateLimitNext(1, 2);
      const body = retrieveBody({ target_recording_ref: 'avaya_71010', format_preference: 'original' });
      const first = await timed(() => post(gw, body));
      expect(first.ms).toBeLessThan(BUDGET_MS + 1_000);
      expect(first.value.status, first.value.body.toString()).toBe(503);
      expect(JSON.parse(first.value.body.toString()).code).toBe('recording.lookup_pending');
      await until('the background write-back', async () => !!(await gw.deps.recordings.findByRef('acme', 'avaya_71010')));
      const again = await post(gw, body);
      expect(again.status, again.body.toString()).toBe(202);
      expect(JSON.parse(again.body.toString()).job_id).toBeTruthy();
    } finally {
      await gw.stop();
      await sim.close();
    }
  });


  it('is aborted when the gateway closes: close does not wait out the source', async () => {
    const sim = await startGenesysSimulator();
    sim.addRecording({ conversationId: '3e1d2c4b-5a6f-4b7c-8d9e-000000071008', recordingId: 'rec-slow-71008', path: join(AUDIO, 'call_mono_pcm16_8k.wav'), startTime: new Date().toISOString(), externalTag: 'avaya_71008' });
    const gw = await startTestGateway({ sources: { acme: [genesys(sim)] } });
    try {
      sim.rateLimitNext(1, 30);
      const res = await post(gw, retrieveBody({ target_recording_ref: 'avaya_71008', format_preference: 'json' }));
      expect(res.status, res.body.toString()).toBe(503);
      const closed = await timed(() => gw.close());
      expect(closed.ms).toBeLessThan(5_000);
      expect(queriesAfter(sim, 'avaya_71008')).toBe(1);
    } finally {
      await gw.stop();
      await sim.close();
    }
  });
});

const queriesAfter = (sim: GenesysSimulator, tag: string) => sim.requests.filter((r) => r.path.endsWith('/analytics/conversations/details/query') && r.body.includes(tag)).length;
