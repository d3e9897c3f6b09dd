import { randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LegacyHttpConnector } from './connector.js';
import { startLegacySimulator, type LegacySimulator } from './simulator.js';
import { FIXTURE, FIXTURE_PATH, configFor, copyOf, drain, failure, sha256, signal } from './test-helpers.js';

let sim: LegacySimulator;
const BIG = randomBytes(3 * 1024 * 1024);
const open: LegacyHttpConnector[] = [];

function connector(over: Record<string, unknown> = {}): LegacyHttpConnector {
  const c = new LegacyHttpConnector('tenant-a', configFor(sim, over));
  open.push(c);
  return c;
}

beforeEach(async () => {
  sim = await startLegacySimulator({
    provider: 'generic_http',
    recordings: [
      { id: 'REC-0001', path: FIXTURE_PATH, urlPath: '2026/03/04/REC-0001.wav' },
      // Many socket reads long: its last chunk and the response's end arrive apart.
      { id: 'REC-BIG', bytes: BIG },
    ],
  });
});

afterEach(async () => {
  await Promise.all(open.splice(0).map((c) => c.close()));
  await sim.close();
});

describe('LegacyHttpConnector — generic_http against the simulator', () => {
  it('a body read to its end leaves its connection to the next request; a 200 cut to a range does not', async () => {
    const c = connector();
    for (let i = 0; i < 6; i++) {
      expect(sha256(await drain((await c.open(copyOf('REC-BIG'), { signal: signal() })).body))).toBe(sha256(BIG));
      // The pool takes the connection back a moment after the body's end.
      await new Promise((r) => setTimeout(r, 5));
    }
    const ports = sim.requests.map((e) => e.clientPort);
    expect(new Set(ports).size, `client ports ${ports.join(', ')}`).toBe(1);
    // The simulator ignoring Range: the connector cuts the 200 down and lets the rest go, with its connection.
    sim.set({ ignoreRange: true });
    const part = await drain((await c.open(copyOf('REC-0001'), { signal: signal(), range: { start: 0, end: 99 } })).body);
    expect(part.equals(FIXTURE.subarray(0, 100))).toBe(true);
    expect((await drain((await c.open(copyOf('REC-0001'), { signal: signal() })).body)).equals(FIXTURE)).toBe(true);
    expect(sim.requests.at(-1)!.clientPort).not.toBe(ports[0]);
  });

  it('GETs media_url_template with basic auth, byte for byte', async () => {
    const m = await connector().open(copyOf('REC-0001'), { signal: signal() });
    expect(sha256(await drain(m.body))).toBe(sha256(FIXTURE));
    expect(sim.requests.map((e) => e.path)).toEqual(['/archive/recordings/REC-0001.wav']);
    expect(sim.requests[0]?.headers.authorization).toMatch(/^Basic /);
  });

  it('bearer: the configured token, and only it', async () => {
    sim.set({ auth: { bearer: 'legacy-archive-token' } });
    const c = connector({ auth_type: 'bearer', username: undefined, password: undefined, token: 'legacy-archive-token' });
    expect((await drain((await c.open(copyOf('REC-0001'), { signal: signal() })).body)).equals(FIXTURE)).toBe(true);
    expect(sim.requests[0]?.headers.authorization).toBe('Bearer legacy-archive-token');
  });

  it('header: the token in the named header, no Authorization', async () => {
    sim.set({ auth: { header: 'X-Api-Key', value: 'k-123' } });
    const c = connector({ auth_type: 'header', header_name: 'X-Api-Key', token: 'k-123', username: undefined, password: undefined });
    expect((await drain((await c.open(copyOf('REC-0001'), { signal: signal() })).body)).equals(FIXTURE)).toBe(true);
    expect(sim.requests[0]?.headers['x-api-key']).toBe('k-123');
    expect(sim.requests[0]?.headers.authorization).toBeUndefined();
  });

  it('none: no credentials at all', async () => {
    sim.set({ auth: 'none' });
    const c = connector({ auth_type: 'none', username: undefined, password: undefined });
    expect((await drain((await c.open(copyOf('REC-0001'), { signal: signal() })).body)).equals(FIXTURE)).toBe(true);
    expect(sim.requests[0]?.headers.authorization).toBeUndefined();
  });

  it('a locator is a path under api_endpoint; ".." is refused unsent', async () => {
    const c = connector();
    const m = await c.open(copyOf(null, '2026/03/04/REC-0001.wav'), { signal: signal() });
    expect((await drain(m.body)).equals(FIXTURE)).toBe(true);
    expect(sim.requests.map((e) => e.path)).toEqual(['/archive/2026/03/04/REC-0001.wav']);
    expect((await failure(c.open(copyOf(null, '../admin/secrets'), { signal: signal() }))).code).toBe('source.path_refused');
    expect((await failure(c.open(copyOf('a/../../b'), { signal: signal() }))).code).toBe('source.path_refused');
    expect(sim.requests).toHaveLength(1);
  });

  it('ids are percent-encoded: a "?" or "#" cannot change the request', async () => {
    const c = connector();
    await failure(c.open(copyOf('REC-0001.wav?x=1#'), { signal: signal() }));
    expect(sim.requests[0]?.path).toBe('/archive/recordings/REC-0001.wav%3Fx%3D1%23.wav');
    expect(sim.requests[0]?.query).toBe('');
  });

  it('Range: 206, and a source that ignores Range is cut to the range here', async () => {
    const c = connector();
    const m = await c.open(copyOf('REC-0001'), { range: { start: 10, end: 19 }, signal: signal() });
    expect(m.range).toEqual({ start: 10, end: 19 });
    expect((await drain(m.body)).equals(FIXTURE.subarray(10, 20))).toBe(true);
    expect(sim.requests[0]?.status).toBe(206);
    sim.set({ ignoreRange: true });
    const cut = await c.open(copyOf('REC-0001'), { range: { start: 1_000, end: 4_999 }, signal: signal() });
    expect(cut.range).toEqual({ start: 1_000, end: 4_999 });
    expect(cut.totalSize).toBe(FIXTURE.length);
    expect((await drain(cut.body)).equals(FIXTURE.subarray(1_000, 5_000))).toBe(true);
    expect(sim.requests[1]?.status).toBe(200);
    const tail = await c.open(copyOf('REC-0001'), { range: { start: 8_000 }, signal: signal() });
    expect((await drain(tail.body)).equals(FIXTURE.subarray(8_000))).toBe(true);
    expect((await failure(c.open(copyOf('REC-0001'), { range: { start: FIXTURE.length }, signal: signal() }))).code).toBe('range.not_satisfiable');
  });

  it('a 404 is source.object_missing; 403 is source.auth_failed', async () => {
    const c = connector();
    expect((await failure(c.open(copyOf('nope'), { signal: signal() }))).code).toBe('source.object_missing');
    sim.failNext(1, 403);
    expect((await failure(c.open(copyOf('REC-0001'), { signal: signal() }))).code).toBe('source.auth_failed');
  });

  it('check() HEADs the endpoint (or profile.check_path with GET)', async () => {
    await connector().check(signal());
    await connector({ profile: { check_path: '/', check_method: 'GET' } }).check(signal());
    expect(sim.requests.map((e) => `${e.method} ${e.path} ${e.status}`)).toEqual(['HEAD /archive 200', 'GET /archive/ 200']);
  });
});
