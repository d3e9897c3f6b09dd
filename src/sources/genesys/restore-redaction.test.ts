import { request } from 'undici';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { GenesysConnector } from './connector.js';
import { findOperation, loadGenesysOpenApi } from './openapi-check.js';
import { grantStateOf, overallStatus } from './preflight.js';
import { startGenesysSimulator, type GenesysSimulator } from './simulator.js';
import { configFor, copyOf, drain } from './test-helpers.js';

/**
 * The PUT of a recording (restore) with the rights recording.yml's description asks, what the
 * connector's restore sends, and the sensitive-data redaction the gateway records.
 */

const doc = loadGenesysOpenApi();
const VIEW = 'recording:recording:view';
const RESTORE = 'recording:recording:restore';
const EDIT = 'recording:recording:editRetention';
const SENSITIVE = 'recording:recording:viewSensitiveData';
const DELETE_DATE = '2031-05-06T07:08:09.000Z';
const ORIGINAL = 'RIFF-original-card-number-4111';
const REDACTED = 'RIFF-redacted-card-number-####';

let sim: GenesysSimulator;
const open: GenesysConnector[] = [];
const signal = () => new AbortController().signal;

function connector(clientId = 'custodian-sim', secret = 'custodian-sim-secret'): GenesysConnector {
  const c = new GenesysConnector('tenant-a', configFor(sim, { client_id: clientId, client_secret: secret }));
  open.push(c);
  return c;
}

beforeEach(async () => {
  sim = await startGenesysSimulator({
    restoreDelayMs: 30,
    clients: [
      { id: 'custodian-sim', secret: 'custodian-sim-secret' },
      { id: 'restore-only', secret: 's', permissions: [RESTORE] },
      { id: 'view-only', secret: 's', permissions: [VIEW] },
      { id: 'view-restore', secret: 's', permissions: [VIEW, RESTORE] },
      { id: 'view-edit', secret: 's', permissions: [VIEW, EDIT] },
      { id: 'no-sensitive', secret: 's', permissions: [VIEW, 'analytics:conversationDetail:view'] },
    ],
    recordings: [
      { conversationId: 'c-arch', recordingId: 'r-arch', bytes: 'x', fileState: 'ARCHIVED', archiveDate: '2025-01-01T00:00:00Z', deleteDate: DELETE_DATE },
      { conversationId: 'c-ok', recordingId: 'r-ok', bytes: 'x', deleteDate: DELETE_DATE },
      { conversationId: 'c-pci', recordingId: 'r-pci', bytes: ORIGINAL, redactedBytes: REDACTED },
    ],
  });
});

afterEach(async () => {
  await Promise.all(open.splice(0).map((c) => c.close()));
  await sim.close();
});

async function tokenOf(id: string, secret = 's'): Promise<string> {
  const r = await request(`${sim.loginBaseUrl}/oauth/token`, {
    method: 'POST',
    headers: { authorization: `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
    body: 'grant_type=client_credentials',
  });
  return ((await r.body.json()) as { access_token: string }).access_token;
}

async function put(client: string, c: string, r: string, body: unknown): Promise<{ status: number; code?: string }> {
  const res = await request(`${sim.apiBaseUrl}/api/v2/conversations/${c}/recordings/${r}`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${await tokenOf(client)}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const json = (await res.body.json()) as { code?: string };
  if (res.statusCode >= 400) {
    // Every refusal is a code the extract lists for the PUT and that status.
    const op = findOperation(doc, 'PUT', `/api/v2/conversations/${c}/recordings/${r}`);
    expect(Object.keys(op?.op.responses[String(res.statusCode)]?.['x-inin-error-codes'] ?? {})).toContain(json.code);
  }
  return { status: res.statusCode, ...(json.code ? { code: json.code } : {}) };
}

const later = (days: number) => new Date(Date.now() + days * 86_400_000).toISOString();

describe('simulator: PUT …/recordings/{recordingId} rights (recording.yml)', () => {
  it('view is always required; restore for an ARCHIVED recording; editRetention for any other date change', async () => {
    expect(await put('restore-only', 'c-arch', 'r-arch', { archiveDate: later(7), deleteDate: DELETE_DATE })).toEqual({ status: 403, code: 'missing.any.permissions' });
    expect(await put('view-only', 'c-arch', 'r-arch', { archiveDate: later(7), deleteDate: DELETE_DATE })).toEqual({
      status: 403,
      code: 'recording.recording.restore.permission.check.failed',
    });
    expect(await put('view-only', 'c-ok', 'r-ok', { archiveDate: later(7), deleteDate: DELETE_DATE })).toEqual({
      status: 403,
      code: 'recording.recording.edit.retention.permission.check.failed',
    });
    expect((await put('view-edit', 'c-ok', 'r-ok', { archiveDate: later(7), deleteDate: DELETE_DATE })).status).toBe(200);
  });

  it('a restore that leaves the deleteDate out is read as removing it: a retention edit that restore alone does not allow', async () => {
    expect(await put('view-restore', 'c-arch', 'r-arch', { archiveDate: later(7) })).toEqual({
      status: 403,
      code: 'recording.recording.edit.retention.permission.check.failed',
    });
    expect((await put('view-restore', 'c-arch', 'r-arch', { archiveDate: later(7), deleteDate: DELETE_DATE })).status).toBe(200);
  });
});

describe('connector restore', () => {
  it('restores with view and restore only, sending the deleteDate back unchanged', async () => {
    const c = connector('view-restore', 's');
    const until = new Date(Date.now() + 7 * 86_400_000);
    const rec = await c.restore(copyOf('c-arch', 'r-arch'), until, signal());
    expect(rec.fileState).toBe('RESTORING');
    const body = JSON.parse(sim.requests.find((e) => e.method === 'PUT')?.body ?? 'null') as unknown;
    expect(body).toEqual({ archiveDate: until.toISOString(), deleteDate: DELETE_DATE });
    expect((await c.metadata(copyOf('c-arch', 'r-arch'), signal())).deleteDate).toBe(DELETE_DATE);
  });

  it('does not PUT a recording that is not ARCHIVED (that would be a retention edit): its metadata comes back', async () => {
    const c = connector();
    const rec = await c.restore(copyOf('c-ok', 'r-ok'), new Date(Date.now() + 86_400_000), signal());
    expect(rec.fileState).toBe('AVAILABLE');
    expect(sim.requests.filter((e) => e.method === 'PUT')).toHaveLength(0);
  });
});

describe('sensitive data redaction', () => {
  const grants = () => sim.requests.filter((e) => e.path === '/api/v2/authorization/subjects/me');

  it('a client with viewSensitiveData gets the original media, recorded unredacted; the grants are read once per login', async () => {
    const c = connector();
    const a = await c.open(copyOf('c-pci', 'r-pci'), { signal: signal() });
    expect((await drain(a.body)).toString()).toBe(ORIGINAL);
    expect(a.auditDetail).toEqual({ sensitive_data: 'unredacted', sensitive_data_basis: 'grants' });
    const b = await c.open(copyOf('c-pci', 'r-pci'), { signal: signal(), range: { start: 5 } });
    expect((await drain(b.body)).toString()).toBe(ORIGINAL.slice(5));
    expect(b.auditDetail).toEqual({ sensitive_data: 'unredacted', sensitive_data_basis: 'grants' });
    expect(grants()).toHaveLength(1);
    // A fresh login (tokens revoked) reads them again: roles may have changed.
    sim.revokeTokens();
    await drain((await c.open(copyOf('c-pci', 'r-pci'), { signal: signal() })).body);
    expect(grants()).toHaveLength(2);
  });

  it('a client without it gets redacted media, recorded may_be_redacted; the preflight warns (not fails)', async () => {
    const c = connector('no-sensitive', 's');
    const m = await c.open(copyOf('c-pci', 'r-pci'), { signal: signal() });
    expect((await drain(m.body)).toString()).toBe(REDACTED);
    expect(m.auditDetail).toEqual({ sensitive_data: 'may_be_redacted', sensitive_data_basis: 'grants' });
    const r = await c.preflight(signal());
    const chk = r.checks.find((x) => x.id === 'rights.view_sensitive_data');
    expect(chk).toMatchObject({ status: 'warn', data: { sensitive_data: 'may_be_redacted' } });
    expect(chk?.detail).toMatch(/not held/);
    expect(overallStatus(r.checks)).toBe('warn');
  });

  it('grants that cannot be read (a user-only route for client credentials) count as may_be_redacted; the preflight warns with what Genesys said', async () => {
    sim.set({ authzSubjectMe: 'user_context_required' });
    const c = connector();
    const m = await c.open(copyOf('c-pci', 'r-pci'), { signal: signal() });
    expect((await drain(m.body)).toString()).toBe(ORIGINAL);
    expect(m.auditDetail).toEqual({ sensitive_data: 'may_be_redacted', sensitive_data_basis: 'unknown' });
    const r = await c.preflight(signal());
    expect(r.checks.find((x) => x.id === 'rights.view_sensitive_data')).toMatchObject({ status: 'warn', data: { genesys_status: 400 } });
    expect(overallStatus(r.checks)).toBe('warn');
  });

  it('batch downloads leave recordings with sensitive data out for a client without the permission', async () => {
    sim.set({ batchPolls: 0 });
    const c = connector('no-sensitive', 's');
    const out = await c.batchDownload([{ conversationId: 'c-pci', recordingId: 'r-pci' }], signal(), { initial_ms: 5, max_ms: 5, budget_ms: 1_000 });
    expect(out[0]).toMatchObject({ results: [], errors: ['Recording contains sensitive data'] });
  });

  it('grantStateOf: wildcards, divisions and conditions', () => {
    const g = (division: string, policy: Record<string, unknown>) => ({ division: { id: division }, role: { policies: [policy] } });
    expect(grantStateOf({ grants: [g('*', { domain: 'recording', entityName: 'recording', actions: ['view', 'viewSensitiveData'] })] }, SENSITIVE)).toEqual({ held: 'all_divisions' });
    expect(grantStateOf({ grants: [g('*', { domain: 'recording', entityName: '*', actions: ['*'] })] }, SENSITIVE)).toEqual({ held: 'all_divisions' });
    expect(grantStateOf({ grants: [g('d1', { domain: 'recording', entityName: 'recording', actions: ['viewSensitiveData'] })] }, SENSITIVE)).toEqual({ held: 'some_divisions', divisions: ['d1'] });
    expect(grantStateOf({ grants: [g('*', { domain: 'recording', entityName: 'recording', actions: ['viewSensitiveData'], condition: 'x' })] }, SENSITIVE)).toEqual({ held: 'no' });
    expect(grantStateOf({ grants: [g('*', { domain: 'recording', entityName: 'screenRecording', actions: ['viewSensitiveData'] })] }, SENSITIVE)).toEqual({ held: 'no' });
    expect(grantStateOf({}, SENSITIVE)).toEqual({ held: 'no' });
  });
});
