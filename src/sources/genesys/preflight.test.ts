import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { GenesysConnector } from './connector.js';
import { overallStatus, skewOf, type PreflightReport } from './preflight.js';
import { startGenesysSimulator, type GenesysSimulator } from './simulator.js';
import { configFor } from './test-helpers.js';

let sim: GenesysSimulator;
const open: GenesysConnector[] = [];
const signal = () => new AbortController().signal;

function connector(over: Record<string, unknown> = {}): GenesysConnector {
  const c = new GenesysConnector('tenant-a', configFor(sim, over));
  open.push(c);
  return c;
}

const check = (r: PreflightReport, id: string) => r.checks.find((c) => c.id === id);

beforeEach(async () => {
  sim = await startGenesysSimulator({ clients: [{ id: 'custodian-sim', secret: 'custodian-sim-secret', name: 'Custodian prod' }] });
});

afterEach(async () => {
  await Promise.all(open.splice(0).map((c) => c.close()));
  await sim.close();
});

describe('Genesys preflight', () => {
  it('a healthy source: login, identity from tokens/me, every call allowed, link lifetime, no skew', async () => {
    const r = await connector().preflight(signal());
    expect(r).toMatchObject({ reachable: true, credentials: true });
    expect(overallStatus(r.checks)).toBe('ok');
    expect(r.checks.map((c) => [c.id, c.status])).toEqual([
      ['login', 'ok'],
      ['identity', 'ok'],
      ['rights.recordingmetadata', 'ok'],
      ['rights.recordings', 'ok'],
      ['rights.analytics', 'ok'],
      ['rights.restore', 'skip'],
      ['rights.view_sensitive_data', 'ok'],
      ['media_link_ttl', 'ok'],
      ['clock_skew', 'ok'],
    ]);
    expect(check(r, 'identity')?.data).toMatchObject({ client_id: 'custodian-sim', client_name: 'Custodian prod', organization_name: sim.org.name });
    expect(check(r, 'identity')?.detail).toContain('Custodian prod');
    expect(check(r, 'media_link_ttl')?.data).toMatchObject({ recording_playback_url_ttl_min: 60 });
    expect(Math.abs(check(r, 'clock_skew')?.data?.skew_ms as number)).toBeLessThan(1_600);
    // Each gateway call was tried once; recordings with formatId NONE (no transcode, no link).
    const api = sim.requests.filter((e) => e.role === 'api');
    expect(api.map((e) => `${e.method} ${e.path.replace(/[0-9a-f-]{36}/g, '{id}')}`).sort()).toEqual(
      [
        'GET /api/v2/tokens/me',
        'GET /api/v2/authorization/subjects/me',
        'GET /api/v2/conversations/{id}/recordingmetadata',
        'GET /api/v2/conversations/{id}/recordings/{id}',
        'POST /api/v2/analytics/conversations/details/query',
        'GET /api/v2/recording/settings',
      ].sort(),
    );
    expect(api.find((e) => e.path.includes('/recordings/'))?.query).toBe('formatId=NONE');
  });

  it('reports missing rights by their Genesys error code and the permissions the extracts require', async () => {
    sim.set({ clients: [{ id: 'custodian-sim', secret: 'custodian-sim-secret', permissions: ['recording:recording:view'] }] });
    const r = await connector().preflight(signal());
    expect(overallStatus(r.checks)).toBe('fail');
    expect(check(r, 'rights.recordings')?.status).toBe('ok');
    expect(check(r, 'rights.recordingmetadata')?.status).toBe('ok');
    const a = check(r, 'rights.analytics');
    expect(a).toMatchObject({ status: 'fail', code: 'source.auth_failed', data: { genesys_status: 403, genesys_code: 'missing.any.permissions' } });
    expect(a?.detail).toContain('analytics:conversationDetail:view');
    expect(r.credentials).toBe(true);
  });

  it('a wrong secret: reachable, credentials refused, the rest skipped, exactly one login attempt', async () => {
    const r = await connector({ client_secret: 'not-the-secret' }).preflight(signal());
    expect(r).toMatchObject({ reachable: true, credentials: false });
    expect(check(r, 'login')).toMatchObject({ status: 'fail', code: 'source.auth_failed' });
    expect(r.checks.filter((c) => c.id !== 'login').every((c) => c.status === 'skip')).toBe(true);
    expect(sim.loginAttempts).toBe(1);
    expect(JSON.stringify(r)).not.toContain('not-the-secret');
  });

  it('an unreachable Genesys: not reachable, credentials unknown', async () => {
    const c = connector({ timeout_ms: 500 });
    await sim.close();
    const r = await c.preflight(signal());
    expect(r).toMatchObject({ reachable: false, credentials: null });
    expect(check(r, 'login')?.code).toBe('source.unavailable');
    sim = await startGenesysSimulator();
  });

  it('warns about short media links and clock skew (without failing)', async () => {
    sim.set({ mediaLinkTtlMs: 2 * 60_000, clockSkewMs: 30_000 });
    const r = await connector().preflight(signal());
    expect(overallStatus(r.checks)).toBe('warn');
    expect(check(r, 'media_link_ttl')).toMatchObject({ status: 'warn', data: { recording_playback_url_ttl_min: 2 } });
    expect(check(r, 'media_link_ttl')?.detail).toMatch(/expire after 2 min/);
    const skew = check(r, 'clock_skew');
    expect(skew?.status).toBe('warn');
    expect(Math.abs((skew?.data?.skew_ms as number) - 30_000)).toBeLessThan(1_600);
    expect(skew?.detail).toMatch(/ahead by (29|30|31)\.\d s/);
  });

  it('a failing tokens/me (not in the extracts) is a warning only', async () => {
    const c = connector();
    await c.check(signal());
    sim.failNext(1, { status: 404 });
    const r = await c.preflight(signal());
    expect(check(r, 'identity')).toMatchObject({ status: 'warn', data: { genesys_status: 404 } });
    expect(overallStatus(r.checks)).toBe('warn');
  });

  it('skewOf reads the Date header at the middle of the exchange', () => {
    const sentAt = Date.parse('2026-01-01T00:00:10.000Z');
    expect(skewOf({ date: 'Thu, 01 Jan 2026 00:00:40 GMT', sentAt, receivedAt: sentAt + 200 })).toEqual({ skewMs: 30_400, uncertaintyMs: 600 });
    expect(skewOf({ date: undefined, sentAt, receivedAt: sentAt })).toBeUndefined();
  });
});
