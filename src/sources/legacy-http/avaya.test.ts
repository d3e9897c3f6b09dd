import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LegacyHttpConnector } from './connector.js';
import { startLegacySimulator, type LegacySimulator } from './simulator.js';
import { FIXTURE, FIXTURE_2, FIXTURE_PATH, basicOf, configFor, copyOf, drain, failure, sha256, signal } from './test-helpers.js';

const UCID = '00001002071523456789';
const INUM_1 = '800000000000101';
const INUM_2 = '800000000000102';
const INUM_3 = '800000000000103';

let sim: LegacySimulator;
const open: LegacyHttpConnector[] = [];

function connector(over: Record<string, unknown> = {}): LegacyHttpConnector {
  const c = new LegacyHttpConnector('tenant-a', configFor(sim, over));
  open.push(c);
  return c;
}

beforeEach(async () => {
  sim = await startLegacySimulator({
    provider: 'avaya_aura',
    recordings: [
      { id: INUM_1, ucid: UCID, segment: 1, path: FIXTURE_PATH },
      { id: INUM_2, ucid: UCID, segment: 2, bytes: FIXTURE_2, contentType: 'audio/x-wav' },
      { id: INUM_3, ucid: 'other-call', bytes: 'RIFF-other' },
    ],
  });
});

afterEach(async () => {
  await Promise.all(open.splice(0).map((c) => c.close()));
  await sim.close();
});

describe('LegacyHttpConnector — avaya_aura against the simulator', () => {
  it('replays a segment by inum, byte for byte, with basic auth and never a Bearer', async () => {
    const c = connector();
    const m = await c.open(copyOf(INUM_1), { signal: signal() });
    expect(sha256(await drain(m.body))).toBe(sha256(FIXTURE));
    expect(m.totalSize).toBe(FIXTURE.length);
    expect(m.contentType).toBe('audio/wav');
    expect(m.range).toBeUndefined();
    expect(c.kind).toBe('legacy-http');
    expect(c.origin).toBe('LEGACY_ARCHIVE');
    expect(sim.requests).toHaveLength(1);
    const req = sim.requests[0];
    expect(req?.path).toBe('/api/v1/recording/replay');
    expect(req?.query).toBe(`inum=${INUM_1}`);
    expect(req?.headers.authorization).toBe(basicOf('custodian', 'custodian-sim-password'));
    for (const e of sim.requests) expect(String(e.headers.authorization)).not.toMatch(/^Bearer/i);
  });

  it('a UCID locator searches (XML) and replays the first segment by <startedat>, whatever the document order', async () => {
    sim.set({ reverseSearchOrder: true });
    const c = connector();
    const m = await c.open(copyOf(null, `ucid:${UCID}`), { signal: signal() });
    expect((await drain(m.body)).equals(FIXTURE)).toBe(true);
    expect(sim.requests.map((e) => `${e.path}?${e.query}`)).toEqual([`/api/v1/recording/searchapi?command=search&ucid=${UCID}`, `/api/v1/recording/replay?inum=${INUM_1}`]);
    for (const e of sim.requests) expect(e.headers.authorization).toBe(basicOf('custodian', 'custodian-sim-password'));
  });

  it('"ucid:<ucid>#2" replays the second segment; segments() lists them in order; a missing segment is object_missing', async () => {
    const c = connector();
    const m = await c.open(copyOf(`ucid:${UCID}#2`), { signal: signal() });
    expect((await drain(m.body)).equals(FIXTURE_2)).toBe(true);
    expect(m.contentType).toBe('audio/x-wav');
    expect(await c.segments(copyOf(`ucid:${UCID}`), signal())).toEqual([
      { inum: INUM_1, order: '2026-03-04T10:15:00.000Z' },
      { inum: INUM_2, order: '2026-03-04T10:16:00.000Z' },
    ]);
    expect(await c.segments(copyOf(`inum:${INUM_3}`), signal())).toEqual([{ inum: INUM_3 }]);
    const e = await failure(c.open(copyOf(`ucid:${UCID}#3`), { signal: signal() }));
    expect(e.code).toBe('source.object_missing');
    expect(e.extra).toMatchObject({ segments: 2 });
  });

  it('an unknown inum or UCID is source.object_missing', async () => {
    const c = connector();
    expect((await failure(c.open(copyOf('999'), { signal: signal() }))).code).toBe('source.object_missing');
    expect((await failure(c.open(copyOf('ucid:no-such-call'), { signal: signal() }))).code).toBe('source.object_missing');
    expect((await failure(c.open(copyOf(null), { signal: signal() }))).code).toBe('source.object_missing');
  });

  it('serves Range: 206 with the exact slice, totalSize and range; a suffix beyond the end is 416 with the size', async () => {
    const c = connector();
    const m = await c.open(copyOf(INUM_1), { range: { start: 44, end: 1_043 }, signal: signal() });
    expect(m.range).toEqual({ start: 44, end: 1_043 });
    expect(m.totalSize).toBe(FIXTURE.length);
    expect((await drain(m.body)).equals(FIXTURE.subarray(44, 1_044))).toBe(true);
    expect(sim.requests[0]?.headers.range).toBe('bytes=44-1043');
    const tail = await c.open(copyOf(INUM_1), { range: { start: 8_000 }, signal: signal() });
    expect(tail.range).toEqual({ start: 8_000, end: FIXTURE.length - 1 });
    expect((await drain(tail.body)).equals(FIXTURE.subarray(8_000))).toBe(true);
    const e = await failure(c.open(copyOf(INUM_1), { range: { start: FIXTURE.length + 5 }, signal: signal() }));
    expect(e.code).toBe('range.not_satisfiable');
    expect(e.status).toBe(416);
    expect(e.extra).toEqual({ size: FIXTURE.length });
    expect(e.headers['Content-Range']).toBe(`bytes */${FIXTURE.length}`);
  });

  it('wrong credentials give source.auth_failed after one request (no retry), naming no secret', async () => {
    const c = connector({ password: 'wrong-password-value' });
    const e = await failure(c.open(copyOf(INUM_1), { signal: signal() }));
    expect(e.code).toBe('source.auth_failed');
    expect(e.status).toBe(502);
    expect(sim.requests).toHaveLength(1);
    expect(JSON.stringify({ m: e.message, x: e.extra, h: e.headers })).not.toMatch(/wrong-password-value|custodian-sim-password|Basic /);
    expect((await failure(c.check(signal()))).code).toBe('source.auth_failed');
  });

  it('a mislabelled answer passes its Content-Type through (the media layer sniffs)', async () => {
    sim.set({ wrongContentType: true });
    const c = connector();
    const m = await c.open(copyOf(INUM_1), { signal: signal() });
    expect(m.contentType).toBe('text/html; charset=utf-8');
    expect((await drain(m.body)).equals(FIXTURE)).toBe(true);
  });

  it('check() is a HEAD of the endpoint with the credentials', async () => {
    const c = connector();
    await c.check(signal());
    expect(sim.requests.map((e) => [e.method, e.path, e.status])).toEqual([['HEAD', '/api/v1/recording', 200]]);
    expect(sim.requests[0]?.headers.authorization).toBe(basicOf('custodian', 'custodian-sim-password'));
  });

  it('a search answer with a DOCTYPE is refused (no entity expansion), as source.bad_gateway', async () => {
    const evil = await startLegacySimulator({ provider: 'generic_http', knobs: { auth: 'none' }, recordings: [] });
    try {
      // Point the search template at a generic simulator path that answers a hostile XML document.
      evil.addRecording({
        id: 'x',
        urlPath: 'search.xml',
        contentType: 'application/xml',
        bytes: '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><searchresults><result><inum>&x;</inum></result></searchresults>',
      });
      const c = new LegacyHttpConnector(
        'tenant-a',
        configFor(sim, { api_endpoint: evil.endpoint, auth_type: 'none', username: undefined, password: undefined, profile: { search_path: '/search.xml?ucid={ucid}' } }),
      );
      open.push(c);
      const e = await failure(c.open(copyOf(`ucid:${UCID}`), { signal: signal() }));
      expect(e.code).toBe('source.bad_gateway');
      expect(e.message).toMatch(/DOCTYPE/);
      expect(evil.requests.map((r) => r.path)).toEqual(['/archive/search.xml']);
    } finally {
      await evil.close();
    }
  });
});
