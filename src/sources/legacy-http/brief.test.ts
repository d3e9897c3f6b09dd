import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { withSecretContext } from '../../config/secret.js';
import { GenesysConnector } from '../genesys/connector.js';
import { startGenesysSimulator, type GenesysSimulator } from '../genesys/simulator.js';
import { configFor as genesysConfigFor, copyOf as genesysCopyOf } from '../genesys/test-helpers.js';
import { legacyHttpSourceConfig, normaliseLegacyBlock } from './config.js';
import { LegacyHttpConnector } from './connector.js';
import { startLegacySimulator, type LegacySimulator } from './simulator.js';
import { FIXTURE, FIXTURE_PATH, basicOf, copyOf, drain, signal } from './test-helpers.js';

const LEGACY_PASSWORD = 'legacy-only-password';
const GENESYS_SECRET = 'custodian-sim-secret';
const INUM = '800000000000101';

/** The original brief's block, verbatim but for the endpoint (the simulator's). */
const briefBlock = (endpoint: string) =>
  JSON.parse(`{
  "legacy_connector": {
    "provider": "avaya_aura",
    "api_endpoint": "${endpoint}",
    "auth_type": "basic",
    "username": "svc_rec_retrieval",
    "timeout_ms": 30000,
    "max_retries": 3
  }
}`) as Record<string, unknown>;

let legacy: LegacySimulator;
let genesys: GenesysSimulator;
const open: { close(): Promise<void> }[] = [];

beforeEach(async () => {
  legacy = await startLegacySimulator({
    provider: 'avaya_aura',
    users: [{ username: 'svc_rec_retrieval', password: LEGACY_PASSWORD }],
    recordings: [{ id: INUM, ucid: '00001002071523456789', path: FIXTURE_PATH }],
  });
  genesys = await startGenesysSimulator({ recordings: [{ conversationId: 'c-1', recordingId: 'r-1', bytes: FIXTURE }] });
});

afterEach(async () => {
  await Promise.all(open.splice(0).map((c) => c.close()));
  await Promise.all([legacy.close(), genesys.close()]);
});

function briefConnector(): LegacyHttpConnector {
  const entry = normaliseLegacyBlock({ ...briefBlock(legacy.endpoint), name: 'avaya-site-1', password: 'env:AVAYA_PASSWORD' });
  const cfg = withSecretContext({ env: { AVAYA_PASSWORD: LEGACY_PASSWORD }, allowInline: false }, () => legacyHttpSourceConfig.parse(entry));
  const c = new LegacyHttpConnector('tenant-a', cfg);
  open.push(c);
  return c;
}

describe("the original brief's legacy connector, beside Genesys", () => {
  it('the legacy_connector block parses into a working connector', async () => {
    const c = briefConnector();
    expect(c.name).toBe('avaya-site-1');
    expect(c.provider).toBe('avaya_aura');
    await c.check(signal());
    const m = await c.open(copyOf(INUM), { signal: signal() });
    expect((await drain(m.body)).equals(FIXTURE)).toBe(true);
    expect(legacy.requests.every((e) => e.headers.authorization === basicOf('svc_rec_retrieval', LEGACY_PASSWORD))).toBe(true);
  });

  it('the trap: no Genesys token (or secret) ever reaches the legacy host, and no legacy credential reaches Genesys', async () => {
    const legacyC = briefConnector();
    const genesysC = new GenesysConnector('tenant-a', genesysConfigFor(genesys));
    open.push(genesysC);
    // Interleave reads on both sides, including a Genesys re-login and a legacy UCID search.
    for (let i = 0; i < 3; i++) {
      const [g, l] = await Promise.all([genesysC.open(genesysCopyOf('c-1', 'r-1'), { signal: signal() }), legacyC.open(copyOf(null, 'ucid:00001002071523456789'), { signal: signal() })]);
      expect((await drain(g.body)).equals(FIXTURE)).toBe(true);
      expect((await drain(l.body)).equals(FIXTURE)).toBe(true);
      genesys.revokeTokens();
    }
    const bearers = new Set(genesys.requests.filter((e) => e.role === 'api').map((e) => String(e.headers.authorization)));
    expect(bearers.size).toBeGreaterThanOrEqual(2);
    const tokens = [...bearers].map((b) => b.replace(/^Bearer /, ''));
    const basic = basicOf('svc_rec_retrieval', LEGACY_PASSWORD);
    expect(legacy.requests.length).toBe(6);
    for (const e of legacy.requests) {
      const dump = JSON.stringify([e.path, e.query, e.headers, e.body]);
      expect(e.headers.authorization).toBe(basic);
      expect(dump).not.toMatch(/Bearer/i);
      expect(dump).not.toContain(GENESYS_SECRET);
      for (const t of tokens) expect(dump).not.toContain(t);
    }
    for (const e of genesys.requests) {
      const dump = JSON.stringify([e.path, e.query, e.headers, e.body]);
      expect(dump).not.toContain(LEGACY_PASSWORD);
      expect(dump).not.toContain(basic.slice('Basic '.length));
      expect(dump).not.toContain('svc_rec_retrieval');
    }
  });
});
