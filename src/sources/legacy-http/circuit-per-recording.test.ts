import { afterEach, beforeEach, expect, it } from 'vitest';
import { LegacyHttpConnector } from './connector.js';
import { startLegacySimulator, type LegacySimulator } from './simulator.js';
import { FIXTURE, FIXTURE_PATH, configFor, copyOf, drain, failure, signal } from './test-helpers.js';

/**
 * Legacy recorders already count only failures marked as source-wide (http.ts sourceFailure):
 * an answer about one recording — a 4xx about its id, a missing file — keeps its code and leaves
 * the breaker alone, as for Genesys (circuit.ts notAnOutage). Guards that consistency.
 */
const INUM = '800000000000101';
let sim: LegacySimulator;
let c: LegacyHttpConnector;

beforeEach(async () => {
  sim = await startLegacySimulator({ provider: 'avaya_aura', recordings: [{ id: INUM, path: FIXTURE_PATH }] });
  c = new LegacyHttpConnector('tenant-a', configFor(sim, { max_retries: 0, circuit_breaker: { failures: 2, half_open_after_ms: 60_000 } }));
});

afterEach(async () => {
  await c.close();
  await sim.close();
});

it('4xx answers about one recording (400, 409, 415) and a missing one do not open the circuit; 5xx do', async () => {
  for (const status of [400, 409, 415, 409]) {
    sim.failNext(1, status);
    const e = await failure(c.open(copyOf(INUM), { signal: signal() }));
    expect(e.code).toBe('source.bad_gateway');
    expect(e.extra).toEqual({ source_status: status });
  }
  for (let i = 0; i < 3; i++) expect((await failure(c.open(copyOf('404'), { signal: signal() }))).code).toBe('source.object_missing');
  expect(c.stats()).toMatchObject({ circuit: 'closed', circuitOpenings: 0 });
  expect((await drain((await c.open(copyOf(INUM), { signal: signal() })).body)).equals(FIXTURE)).toBe(true);
  // The same client-facing code from a 500 is an outage.
  sim.failNext(2, 500);
  for (let i = 0; i < 2; i++) expect((await failure(c.open(copyOf(INUM), { signal: signal() }))).code).toBe('source.bad_gateway');
  expect(c.stats()).toMatchObject({ circuit: 'open', circuitOpenings: 1 });
});
