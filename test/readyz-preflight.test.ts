import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type GenesysSimulator, startGenesysSimulator } from '../src/sources/genesys/simulator.js';
import { startTestGateway, type TestGateway } from './support/gateway.js';
import { genesysSource } from './support/genesys-source.js';
import { raw } from './support/http.js';

/** /readyz runs the doctor's checks (Genesys: login, rights per call, settings, clock), cached per source. */
describe('readiness with the Genesys preflight', () => {
  let sim: GenesysSimulator;
  let gw: TestGateway;
  const api = () => sim.requests.filter((e) => e.role === 'api').length;

  beforeAll(async () => {
    sim = await startGenesysSimulator();
    gw = await startTestGateway({
      sources: {
        acme: [genesysSource(sim, { source_systems: [], readiness_cache_ms: 800 })],
      },
    });
  });
  afterAll(async () => {
    await gw?.stop();
    await sim?.close();
  });

  it('runs the preflight once per cache period, however many probes come', async () => {
    const first = await raw(`${gw.url}/readyz`);
    expect(first.status, first.body.toString()).toBe(200);
    expect(JSON.parse(first.body.toString())).toEqual({ status: 'ready', catalog: true, sources: { total: 3, failing: 0 } });
    const n = api();
    // tokens/me, the three rights probes, the grants (viewSensitiveData), the recording settings
    expect(n).toBe(6);
    const again = await Promise.all(Array.from({ length: 5 }, () => raw(`${gw.url}/readyz`)));
    expect(again.every((r) => r.status === 200)).toBe(true);
    expect(api()).toBe(n);
    await new Promise((r) => setTimeout(r, 900));
    await raw(`${gw.url}/readyz`);
    expect(api()).toBe(2 * n);
    expect(sim.logins).toBe(1);
  });

  it('fails while the OAuth client lacks a right; the body names nothing, the log names the source and the check', async () => {
    sim.set({ clients: [{ id: 'custodian-sim', secret: 'custodian-sim-secret', permissions: ['recording:recording:view'] }] });
    try {
      await new Promise((r) => setTimeout(r, 900));
      const res = await raw(`${gw.url}/readyz`);
      expect(res.status).toBe(503);
      expect(JSON.parse(res.body.toString())).toEqual({ status: 'not_ready', catalog: true, sources: { total: 3, failing: 1 } });
      expect(res.body.toString()).not.toMatch(/acme|globex|genesys|custodian-sim|analytics/);
      const log = gw.logs.join('\n');
      expect(log).toContain('source:acme/genesys');
      expect(log).toContain('rights.analytics');
    } finally {
      sim.set({ clients: [{ id: 'custodian-sim', secret: 'custodian-sim-secret' }] });
    }
    await new Promise((r) => setTimeout(r, 900));
    expect((await raw(`${gw.url}/readyz`)).status).toBe(200);
  });

  it('warnings (a short link lifetime) do not make the gateway unready', async () => {
    sim.set({ mediaLinkTtlMs: 2 * 60_000 });
    try {
      await new Promise((r) => setTimeout(r, 900));
      expect((await raw(`${gw.url}/readyz`)).status).toBe(200);
    } finally {
      sim.set({ mediaLinkTtlMs: 60 * 60_000 });
    }
  });
});
