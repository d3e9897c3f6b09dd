import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { failure } from '../../../test/support/failure.js';
import { GenesysConnector } from './connector.js';
import type { FileState } from './models.js';
import { startGenesysSimulator, type GenesysSimulator } from './simulator.js';
import { configFor, copyOf, drain } from './test-helpers.js';

/**
 * The circuit breaker is for a source that is unwell (5xx, network, timeouts, a persisting 429).
 * An answer about one recording — its fileState, its missing media link, a 4xx about its id — keeps
 * the code clients see, but must not suspend the reads of every other recording of the source.
 */

const OK = Buffer.from('RIFF-good-recording');
let sim: GenesysSimulator;
let c: GenesysConnector;
const signal = () => new AbortController().signal;

beforeEach(async () => {
  sim = await startGenesysSimulator({
    recordings: [
      { conversationId: 'c-ok', recordingId: 'r-ok', bytes: OK },
      // One recording Genesys could not transcode or decrypt (docs: "fileState ERROR").
      { conversationId: 'c-err', recordingId: 'r-err', fileState: 'ERROR' },
    ],
  });
  c = new GenesysConnector('tenant-a', configFor(sim, { circuit_breaker: { failures: 3, half_open_after_ms: 60_000 } }));
  await c.check(signal());
});

afterEach(async () => {
  await c.close();
  await sim.close();
});

/** The healthy recording is still fetched from Genesys (not refused by an open circuit). */
async function healthyStillServed(): Promise<void> {
  expect(c.stats()).toMatchObject({ circuit: 'closed', circuitOpenings: 0, circuitRejections: 0 });
  const m = await c.open(copyOf('c-ok', 'r-ok'), { signal: signal() });
  expect((await drain(m.body)).equals(OK)).toBe(true);
}

describe('Genesys circuit breaker: answers about one recording are not outages', () => {
  it('a recording in fileState ERROR, asked for again and again: source.bad_gateway each time, the circuit stays closed', async () => {
    for (let i = 0; i < 6; i++) {
      const e = await failure(c.open(copyOf('c-err', 'r-err'), { signal: signal() }));
      expect(e.code).toBe('source.bad_gateway');
      expect(e.extra).toEqual({ file_state: 'ERROR' });
    }
    await healthyStillServed();
  });

  it('an unknown fileState is about that recording too', async () => {
    sim.setFileState('c-err', 'r-err', 'FROZEN' as FileState);
    for (let i = 0; i < 4; i++) expect((await failure(c.open(copyOf('c-err', 'r-err'), { signal: signal() }))).code).toBe('source.bad_gateway');
    await healthyStillServed();
  });

  it('a 4xx about one id (400, 409, 415): source.bad_gateway with the Genesys status, not counted', async () => {
    for (const status of [400, 409, 415, 409]) {
      sim.failNext(1, { status });
      const e = await failure(c.open(copyOf('c-ok', 'r-ok'), { signal: signal() }));
      expect(e.code).toBe('source.bad_gateway');
      expect(e.extra).toMatchObject({ genesys_status: status });
    }
    await healthyStillServed();
  });

  it('a 200 without media links, again and again: source.bad_gateway, not counted', async () => {
    sim.omitMediaUrisNext(4);
    for (let i = 0; i < 4; i++) expect((await failure(c.open(copyOf('c-ok', 'r-ok'), { signal: signal() }))).code).toBe('source.bad_gateway');
    await healthyStillServed();
  });

  it('5xx once retries are spent still count: the same code (source.bad_gateway) from a 500 opens the circuit', async () => {
    sim.failNext(1_000, { status: 500 });
    for (let i = 0; i < 3; i++) {
      const e = await failure(c.open(copyOf('c-ok', 'r-ok'), { signal: signal() }));
      expect(e.code).toBe('source.bad_gateway');
      expect(e.extra).toMatchObject({ genesys_status: 500 });
    }
    expect(c.stats()).toMatchObject({ circuit: 'open', circuitOpenings: 1 });
    expect((await failure(c.open(copyOf('c-ok', 'r-ok'), { signal: signal() }))).extra).toMatchObject({ circuit: 'open' });
  });
});
