import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditRepository } from '../src/audit/audit-repository.js';
import { type GenesysSimulator, startGenesysSimulator } from '../src/sources/genesys/simulator.js';
import { type LegacySimulator, startLegacySimulator } from '../src/sources/legacy-http/simulator.js';
import { usableCatalogs } from './support/catalogs.js';
import { AUDIO, retrieveBody, startTestGateway, type TestGateway } from './support/gateway.js';
import { genesysSource } from './support/genesys-source.js';
import { withTrailDown } from './support/trail-down.js';
import { post } from './support/http.js';

/**
 * The 202 hand-off writes the job row and its "allowed" audit event in one commit (one durable
 * write on the way to the 202 instead of two): an audit trail that cannot be written refuses the
 * access (503 audit.unavailable) and leaves no job behind; a job without its evidence never exists.
 * The same for each way to a 202: a slow source (the fetch handed over), a source configured
 * `mode: async`, and a source still preparing the bytes (archived in Genesys Cloud).
 */
describe.each(await usableCatalogs())('202 hand-off and its audit event on %s', (kind) => {
  let sim: LegacySimulator;
  let genesys: GenesysSimulator;
  let gw: TestGateway;

  beforeAll(async () => {
    sim = await startLegacySimulator({
      provider: 'generic_http',
      recordings: [{ id: 'slow-1', path: join(AUDIO, 'call_mono_mulaw_8k.wav') }],
      knobs: { latencyMs: 600, auth: 'none' },
    });
    genesys = await startGenesysSimulator({ restoreDelayMs: 300 });
    genesys.addRecording({ conversationId: 'conv-arch', recordingId: 'rec-arch', path: join(AUDIO, 'call_mono_pcm16_8k.wav'), fileState: 'ARCHIVED' });
    gw = await startTestGateway({
      catalog: kind,
      sources: {
        acme: [
          { name: 'wan', type: 'legacy-http', provider: 'generic_http', api_endpoint: sim.endpoint, auth_type: 'none', first_byte_budget_ms: 100, source_systems: ['wan'] },
          { name: 'queued', type: 'filesystem', root: AUDIO, mode: 'async', source_systems: ['nice'] },
          genesysSource(genesys, { first_byte_budget_ms: 20_000 }),
        ],
      },
      config: (doc) => (doc.jobs = { poll_interval_ms: 50, restore_poll_ms: 200, heartbeat_ms: 200, lease_ms: 10_000, retry_base_ms: 50, staging_ttl_ms: 60_000 }),
    });
    await gw.seed([
      { call_id: 'c-slow', source_system: 'wan', legacy_archive_id: 'slow-1' },
      { call_id: 'c-async', source_system: 'nice', legacy_archive_id: 'q-1', locator: 'call_mono_pcm16_8k.wav' },
      { call_id: 'c-arch', source_system: 'genesys_cloud', recording_id: 'rec-arch', conversation_id: 'conv-arch' },
    ]);
  });
  afterAll(async () => {
    await gw?.stop();
    await sim?.close();
    await genesys?.close();
  });

  const jobs = () => gw.deps.catalog.db.selectFrom('jobs').select(['id']).execute();
  const jobsOf = (requestId: string) => gw.deps.catalog.db.selectFrom('jobs').select(['id']).where('request_id', '=', requestId).execute();
  const staged = () => {
    const dir = join(gw.dir, 'staging');
    return existsSync(dir) ? readdirSync(dir) : [];
  };

  /** The trail refuses every write, grouped or in a caller's transaction. */
  const withAuditDown = <T>(fn: () => Promise<T>): Promise<T> => withTrailDown(gw.deps.audit.repo as AuditRepository, fn);

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

  it.each([
    ['a source configured mode: async', 'c-async'],
    ['a source still preparing the bytes', 'c-arch'],
  ])('%s: an audit write that fails refuses the 202, and no job exists or stages anything', async (_what, ref) => {
    const requestId = `r-fail-${ref}-${kind}`;
    const res = await withAuditDown(() => post(gw, retrieveBody({ request_id: requestId, target_recording_ref: ref, format_preference: 'original' })));
    expect(res.status, res.body.toString()).toBe(503);
    expect(JSON.parse(res.body.toString())).toMatchObject({ code: 'audit.unavailable' });
    expect(await jobsOf(requestId)).toEqual([]);
    // The worker polls every 50 ms: a job that had slipped through would be claimed and staged by now.
    gw.deps.worker?.poke();
    await new Promise((r) => setTimeout(r, 400));
    expect(await jobsOf(requestId)).toEqual([]);
    // Staged objects are named by their job (and its attempt): each belongs to a job of another request (with its evidence).
    const known = new Set((await jobs()).map((j) => j.id));
    expect(staged().filter((f) => !known.has(f.match(/^job_[0-9a-f-]{36}/)?.[0] ?? f))).toEqual([]);
  });

  it.each([
    ['a source configured mode: async', 'c-async'],
    ['a source still preparing the bytes', 'c-arch'],
  ])('%s: the 202 has its job and exactly one allowed event naming it', async (_what, ref) => {
    const requestId = `r-ok-${ref}-${kind}`;
    const res = await post(gw, retrieveBody({ request_id: requestId, target_recording_ref: ref, format_preference: 'original' }));
    expect(res.status, res.body.toString()).toBe(202);
    const { job_id, poll_endpoint } = JSON.parse(res.body.toString());
    expect(poll_endpoint).toBe(`/api/v1/recordings/status/${job_id}`);
    expect(res.headers['location']).toBe(poll_endpoint);
    expect(res.headers['retry-after']).toBe(String(gw.config.jobs.retry_after_s));
    expect((await jobsOf(requestId)).map((j) => j.id)).toEqual([job_id]);
    const events = (await gw.deps.auditRepo.query({ tenantId: 'acme', limit: 1000 })).items.filter((e) => e.requestId === requestId);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ id: res.headers['x-audit-event-id'], outcome: 'allowed', status: 202, detail: { job_id, job_created: true } });
  });
});
