import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditRepository } from '../src/audit/audit-repository.js';
import { type GenesysSimulator, startGenesysSimulator } from '../src/sources/genesys/simulator.js';
import { genesysSource } from '../src/sync/test-helpers.js';
import { usableCatalogs } from './support/catalogs.js';
import { KEYS, bearer, startTestGateway, type TestGateway } from './support/gateway.js';
import { withTrailDown } from './support/trail-down.js';
import { raw } from './support/http.js';

/**
 * README / docs/ERRORS.md: "If no audit event can be written, access is refused (503
 * audit.unavailable)". Every audited route other than the retrieval path, with the trail down:
 * the answer is that refusal as problem+json, never a 500 and never the data whose read went
 * unaudited (the retrieval path and the 202 hand-off have their own tests: handoff-audit.test.ts).
 */
describe.each(await usableCatalogs())('routes refuse with 503 audit.unavailable when the trail cannot be written, on %s', (kind) => {
  let gw: TestGateway;
  let sim: GenesysSimulator;
  let holdId: string;

  beforeAll(async () => {
    sim = await startGenesysSimulator({});
    gw = await startTestGateway({ catalog: kind, sources: { acme: [genesysSource(sim)] } });
    sim.addRecording({ conversationId: 'conv-pair', recordingId: 'rec-pair', path: join(gw.roots.acme!, 'call_mono_pcm16_8k.wav'), contentType: 'audio/wav' });
    await gw.seed([
      { call_id: 'c-plain', legacy_archive_id: 'plain_1', locator: 'call_mono_pcm16_8k.wav' },
      { call_id: 'c-held', legacy_archive_id: 'held_1', locator: 'call_mono_pcm16_8k.wav' },
      // A legacy copy and a cloud copy: the integrity check has something to compare before it audits.
      { call_id: 'c-pair', source_system: 'avaya_aura', connector: 'archive', locator: 'call_mono_mulaw_8k.wav', legacy_archive_id: 'av-pair' },
      { call_id: 'c-pair', source_system: 'genesys_cloud', connector: 'genesys', recording_id: 'rec-pair', conversation_id: 'conv-pair' },
    ]);
    const placed = await raw(`${gw.url}/api/v1/recordings/held_1/holds`, {
      method: 'POST',
      headers: { ...bearer(KEYS.acmeAdmin), 'content-type': 'application/json' },
      body: JSON.stringify({ matter: 'M-held', reason: 'r' }),
    });
    expect(placed.status, placed.body.toString()).toBe(201);
    holdId = JSON.parse(placed.body.toString()).id;
  });
  afterAll(async () => {
    await gw?.stop();
    await sim?.close();
  });

  /** Both ways into the trail fail: the group-committed append and the in-transaction one. */
  const trailDown = <T>(fn: () => Promise<T>): Promise<T> => withTrailDown(gw.deps.audit.repo as AuditRepository, fn);

  it.each([
    ['audit events', 'GET', '/api/v1/audit/events', () => KEYS.acmeAuditor],
    ['audit verify', 'GET', '/api/v1/audit/verify', () => KEYS.acmeAuditor],
    ['audit signing key', 'GET', '/api/v1/audit/signing-key', () => KEYS.acmeAuditor],
    ['catalog search', 'GET', '/api/v1/recordings', () => KEYS.acme],
    ['hold list', 'GET', '/api/v1/holds', () => KEYS.acmeAuditor],
    ['hold placement', 'POST', '/api/v1/recordings/plain_1/holds', () => KEYS.acmeAdmin],
    ['hold release', 'POST', '/api/v1/holds/:hold/release', () => KEYS.acmeAdmin],
    ['migration report', 'GET', '/api/v1/reports/migration', () => KEYS.acmeAuditor],
    ['integrity check', 'POST', '/api/v1/recordings/c-pair/integrity', () => KEYS.acmeAuditor],
  ] as const)('%s (%s %s) → 503 audit.unavailable, no payload', async (_name, method, path, key) => {
    const body = method === 'GET' ? undefined : path.endsWith('/holds') ? JSON.stringify({ matter: 'M-down', reason: 'r' }) : '{}';
    const r = await trailDown(() =>
      raw(`${gw.url}${path.replace(':hold', holdId)}`, {
        method,
        headers: { ...bearer(key()), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        ...(body === undefined ? {} : { body }),
      }),
    );
    expect(r.status, r.body.toString()).toBe(503);
    expect(r.headers['content-type']).toBe('application/problem+json');
    expect(r.headers['retry-after']).toMatch(/^\d+$/);
    expect(r.headers['x-audit-event-id']).toBeUndefined();
    const problem = JSON.parse(r.body.toString()) as Record<string, unknown>;
    expect(problem.code).toBe('audit.unavailable');
    // The problem's members and nothing else: no items, chain, key, report, verdict or hold.
    expect(Object.keys(problem).sort()).toEqual(['code', 'detail', 'request_id', 'status', 'title', 'type']);
  });

  it('an integrity check refused for want of evidence keeps no verdict', async () => {
    const checks = () => gw.catalogDb.db.selectFrom('integrity_checks').select('id').execute();
    const before = (await checks()).length;
    const r = await trailDown(() => raw(`${gw.url}/api/v1/recordings/c-pair/integrity`, { method: 'POST', headers: { ...bearer(KEYS.acmeAuditor), 'content-type': 'application/json' }, body: '{}' }));
    expect(r.status, r.body.toString()).toBe(503);
    expect((await checks()).length).toBe(before);
    // With the trail back, the same check is kept with its event.
    const ok = await raw(`${gw.url}/api/v1/recordings/c-pair/integrity`, { method: 'POST', headers: { ...bearer(KEYS.acmeAuditor), 'content-type': 'application/json' }, body: '{}' });
    expect(ok.status, ok.body.toString()).toBe(200);
    expect((await checks()).length).toBe(before + 1);
  });
});
