import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { parseConfig } from '../../config/load.js';
import { GenesysConnector } from './connector.js';
import { overallStatus, sensitiveDataCheck, type GrantState, type PreflightReport } from './preflight.js';
import { startGenesysSimulator, type GenesysSimulator } from './simulator.js';
import { configFor, copyOf, drain } from './test-helpers.js';

/**
 * `view_sensitive_data`: the operator's declaration of recording:recording:viewSensitiveData.
 * It stands in for grants Genesys will not show a client-credentials token (the audit event then
 * says `sensitive_data_basis: declared`); readable grants still decide the event, and the
 * preflight reports a declaration they contradict.
 */

const VIEW = 'recording:recording:view';
const SENSITIVE = 'recording:recording:viewSensitiveData';
const ORIGINAL = 'RIFF-original-card-number-4111';
const REDACTED = 'RIFF-redacted-card-number-####';

let sim: GenesysSimulator;
const open: GenesysConnector[] = [];
const signal = () => new AbortController().signal;

function connector(clientId: string, declared: string): GenesysConnector {
  const c = new GenesysConnector('tenant-a', configFor(sim, { client_id: clientId, client_secret: 's', view_sensitive_data: declared }));
  open.push(c);
  return c;
}

beforeEach(async () => {
  sim = await startGenesysSimulator({
    clients: [
      { id: 'full', secret: 's', permissions: [VIEW, SENSITIVE, 'analytics:conversationDetail:view'] },
      { id: 'no-sensitive', secret: 's', permissions: [VIEW, 'analytics:conversationDetail:view'] },
    ],
    recordings: [{ conversationId: 'c-pci', recordingId: 'r-pci', bytes: ORIGINAL, redactedBytes: REDACTED }],
  });
});

afterEach(async () => {
  await Promise.all(open.splice(0).map((c) => c.close()));
  await sim.close();
});

const checkOf = (r: PreflightReport) => r.checks.find((x) => x.id === 'rights.view_sensitive_data');
const grantReads = () => sim.requests.filter((e) => e.path === '/api/v2/authorization/subjects/me').length;

async function retrieve(c: GenesysConnector): Promise<{ bytes: string; detail: unknown }> {
  const m = await c.open(copyOf('c-pci', 'r-pci'), { signal: signal() });
  return { bytes: (await drain(m.body)).toString(), detail: m.auditDetail };
}

describe('view_sensitive_data declared, grants unreadable (a user-only route for client credentials)', () => {
  beforeEach(() => sim.set({ authzSubjectMe: 'user_context_required' }));

  it('granted: retrievals say unredacted on the declaration; the preflight is ok, "declared"', async () => {
    const c = connector('full', 'granted');
    expect(await retrieve(c)).toEqual({ bytes: ORIGINAL, detail: { sensitive_data: 'unredacted', sensitive_data_basis: 'declared' } });
    const chk = checkOf(await c.preflight(signal()));
    expect(chk).toMatchObject({ status: 'ok', data: { sensitive_data: 'unredacted', sensitive_data_basis: 'declared', declared: 'granted', genesys_status: 400 } });
    expect(chk?.detail).toMatch(/^declared granted/);
  });

  it('not_granted: retrievals say may_be_redacted on the declaration; the preflight is ok (the operator knows)', async () => {
    const c = connector('no-sensitive', 'not_granted');
    expect(await retrieve(c)).toEqual({ bytes: REDACTED, detail: { sensitive_data: 'may_be_redacted', sensitive_data_basis: 'declared' } });
    expect(checkOf(await c.preflight(signal()))).toMatchObject({ status: 'ok', data: { sensitive_data: 'may_be_redacted', sensitive_data_basis: 'declared' } });
  });

  it('auto: may_be_redacted with basis unknown, and the preflight warns', async () => {
    const c = connector('full', 'auto');
    expect((await retrieve(c)).detail).toEqual({ sensitive_data: 'may_be_redacted', sensitive_data_basis: 'unknown' });
    expect(checkOf(await c.preflight(signal()))).toMatchObject({ status: 'warn', data: { sensitive_data_basis: 'unknown' } });
  });

  it('with a declaration, refused grants are asked again hourly like known ones, not every minute', async () => {
    // Two minutes on (past the minute after which unreadable grants are asked again without a declaration).
    const later = () => {
      const real = Date.now.bind(Date);
      vi.spyOn(Date, 'now').mockImplementation(() => real() + 120_000);
    };
    try {
      const declared = connector('full', 'granted');
      const auto = connector('full', 'auto');
      await retrieve(declared);
      await retrieve(auto);
      expect(grantReads()).toBe(2);
      later();
      expect((await retrieve(declared)).detail).toEqual({ sensitive_data: 'unredacted', sensitive_data_basis: 'declared' });
      expect(grantReads()).toBe(2);
      await retrieve(auto);
      expect(grantReads()).toBe(3);
    } finally {
      vi.restoreAllMocks();
    }
  });
});

describe('view_sensitive_data declared, grants readable', () => {
  it('granted but not held: the grants decide the event (may_be_redacted, basis grants) and the preflight fails', async () => {
    const c = connector('no-sensitive', 'granted');
    expect(await retrieve(c)).toEqual({ bytes: REDACTED, detail: { sensitive_data: 'may_be_redacted', sensitive_data_basis: 'grants' } });
    const r = await c.preflight(signal());
    const chk = checkOf(r);
    expect(chk).toMatchObject({ status: 'fail', data: { sensitive_data: 'may_be_redacted', sensitive_data_basis: 'grants', declared: 'granted' } });
    expect(chk?.detail).toMatch(/declared granted .* but the client's grants hold it nowhere/);
    expect(overallStatus(r.checks)).toBe('fail');
  });

  it('granted and held: unredacted from the grants, ok', async () => {
    const c = connector('full', 'granted');
    expect(await retrieve(c)).toEqual({ bytes: ORIGINAL, detail: { sensitive_data: 'unredacted', sensitive_data_basis: 'grants' } });
    expect(checkOf(await c.preflight(signal()))).toMatchObject({ status: 'ok', data: { sensitive_data_basis: 'grants', declared: 'granted' } });
  });

  it('not_granted but held everywhere: unredacted from the grants; the preflight warns (the declaration is out of date)', async () => {
    const c = connector('full', 'not_granted');
    expect(await retrieve(c)).toEqual({ bytes: ORIGINAL, detail: { sensitive_data: 'unredacted', sensitive_data_basis: 'grants' } });
    const chk = checkOf(await c.preflight(signal()));
    expect(chk).toMatchObject({ status: 'warn', data: { sensitive_data: 'unredacted', sensitive_data_basis: 'grants', declared: 'not_granted' } });
    expect(chk?.detail).toMatch(/correct the declaration/);
  });

  it('not_granted and not held: ok, may_be_redacted from the grants', async () => {
    const c = connector('no-sensitive', 'not_granted');
    expect((await retrieve(c)).detail).toEqual({ sensitive_data: 'may_be_redacted', sensitive_data_basis: 'grants' });
    expect(checkOf(await c.preflight(signal()))).toMatchObject({ status: 'ok' });
  });
});

describe('a declaration against grants held only in some divisions', () => {
  it('granted fails (recordings elsewhere may come back redacted); not_granted is ok; the grants decide may_be_redacted', () => {
    const some: GrantState = { held: 'some_divisions', divisions: ['d1'] };
    expect(sensitiveDataCheck(some, 'granted')).toMatchObject({ status: 'fail', data: { sensitive_data: 'may_be_redacted', sensitive_data_basis: 'grants', divisions: ['d1'] } });
    expect(sensitiveDataCheck(some, 'granted').detail).toMatch(/only in division\(s\) d1/);
    expect(sensitiveDataCheck(some, 'not_granted')).toMatchObject({ status: 'ok', data: { sensitive_data: 'may_be_redacted', sensitive_data_basis: 'grants' } });
    expect(sensitiveDataCheck(some)).toMatchObject({ status: 'warn' });
  });
});

describe('view_sensitive_data config', () => {
  const source = (extra: Record<string, unknown>) => ({
    tenants: [{ id: 'acme', sources: [{ name: 'gc', type: 'genesys', environment: 'mypurecloud.ie', client_id: 'a', client_secret: 'env:S', ...extra }] }],
  });
  it('defaults to auto; anything but auto, granted or not_granted is refused with one line naming the field', () => {
    const cfg = parseConfig(source({}), { S: 'x' });
    expect((cfg.tenants[0]?.sources[0] as { view_sensitive_data?: string }).view_sensitive_data).toBe('auto');
    expect(() => parseConfig(source({ view_sensitive_data: 'yes' }), { S: 'x' })).toThrow(
      /tenants\[0\]\.sources\[0\]\.view_sensitive_data: Invalid option: expected one of "auto"\|"granted"\|"not_granted"/,
    );
  });
});
