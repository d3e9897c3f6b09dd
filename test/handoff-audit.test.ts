import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditRepository } from '../src/audit/audit-repository.js';
import { type LegacySimulator, startLegacySimulator } from '../src/sources/legacy-http/simulator.js';
import { usableCatalogs } from './support/catalogs.js';
import { AUDIO, retrieveBody, startTestGateway, type TestGateway } from './support/gateway.js';
import { post } from './support/http.js';

/**
 * The 202 hand-off writes the job row and its "allowed" audit event in one commit (one durable
 * write on the way to the 202 instead of two): an audit trail that cannot be written refuses the
 * access (503 audit.unavailable) and leaves no job behind; a job without its evidence never exists.
 */
describe.each(await usableCatalogs())('202 hand-off and its audit event on %s', (kind) => {
  let sim: LegacySimulator;
  let gw: TestGateway;

  beforeAll(async () => {
    sim = await startLegacySimulator({
      provider: 'generic_http',
      recordings: [{ id: 'slow-1', path: join(AUDIO, 'call_mono_mulaw_8k.wav') }],
      knobs: { latencyMs: 600, auth: 'none' },
    });
    gw = await startTestGateway({
      catalog: kind,
      sources: { acme: [{ name: 'wan', type: 'legacy-http', provider: 'generic_http', api_endpoint: sim.endpoint, auth_type: 'none', first_byte_budget_ms: 100, source_systems: ['wan'] }] },
    });
    await gw.seed([{ call_id: 'c-slow', source_system: 'wan', legacy_archive_id: 'slow-1' }]);
  });
  afterAll(async () => {
    await gw?.stop();
    await sim?.close();
  });

  const jobs = () => gw.deps.catalog.db.selectFrom('jobs').select(['id']).execute();

  it('an audit write that fails refuses the 202 and leaves no job', async () => {
    const repo = gw.deps.audit.repo as AuditRepository & { appendIn: AuditRepository['appendIn'] };
    const real = repo.appendIn.bind(repo);
    repo.appendIn = () => Promise.reject(new Error('audit store unavailable'));
    try {
      const res = await post(gw, retrieveBody({ request_id: `r-fail-${kind}`, target_recording_ref: 'c-slow', format_preference: 'original' }));
      expect(res.status, res.body.toString()).toBe(503);
      expect(JSON.parse(res.body.toString())).toMatchObject({ code: 'audit.unavailable' });
      expect(await jobs()).toEqual([]);
      expect(gw.deps.handedOff.size).toBe(0);
    } finally {
      repo.appendIn = real;
    }
  });

  it('a 202 has its job and its allowed event, naming each other', async () => {
    const res = await post(gw, retrieveBody({ request_id: `r-ok-${kind}`, target_recording_ref: 'c-slow', format_preference: 'original' }));
    expect(res.status, res.body.toString()).toBe(202);
    const { job_id } = JSON.parse(res.body.toString());
    expect((await jobs()).map((j) => j.id)).toEqual([job_id]);
    const ev = await gw.deps.auditRepo.byId(res.headers['x-audit-event-id'] as string);
    expect(ev).toMatchObject({ outcome: 'allowed', status: 202, detail: { job_id, job_created: true } });
  });
});
