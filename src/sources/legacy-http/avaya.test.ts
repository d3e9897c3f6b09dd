import { readFileSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AppError } from '../../errors.js';
import { wavHeader } from '../../media/wav-header.js';
import { LegacyHttpConnector } from './connector.js';
import { startLegacySimulator, type LegacySimulator } from './simulator.js';
import { FIXTURE, FIXTURE_2, FIXTURE_PATH, basicOf, configFor, copyOf, drain, failure, sha256, signal } from './test-helpers.js';

const UCID = '00001002071523456789';
const INUM_1 = '800000000000101';
const INUM_2 = '800000000000102';
const INUM_3 = '800000000000103';

/** A call of three PCM segments: the reference fixture's data cut in three, segment 2 with a LIST chunk before its data. */
const UCID_3 = '00001002071523450003';
const INUMS_3 = ['800000000000301', '800000000000302', '800000000000303'];
const PCM = readFileSync(new URL('../../../demo/audio/call_mono_pcm16_8k.wav', import.meta.url));
const DATAS = [PCM.subarray(44, 30_044), PCM.subarray(30_044, 90_044), PCM.subarray(90_044)];
const LIST = Buffer.concat([Buffer.from('LIST', 'latin1'), u32(12), Buffer.from('INFOISFT\x00\x00\x00\x00', 'latin1')]);
const SEGMENT_WAVS = DATAS.map((d, i) => segmentWav(PCM.subarray(20, 36), d, i === 1 ? LIST : undefined));
/** What the call must be served as: one header of the summed length, then the data in call order. */
const JOINED = Buffer.concat([wavHeader({ sampleRate: 8000, channels: 1, bitsPerSample: 16, dataLength: PCM.length - 44 }), ...DATAS]);
const DATA_AT = [44, 44 + LIST.length, 44];

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
}

function segmentWav(fmt: Buffer, data: Buffer, extra: Buffer = Buffer.alloc(0)): Buffer {
  const body = Buffer.concat([Buffer.from('fmt ', 'latin1'), u32(fmt.length), fmt, extra, Buffer.from('data', 'latin1'), u32(data.length), data]);
  return Buffer.concat([Buffer.from('RIFF', 'latin1'), u32(4 + body.length), Buffer.from('WAVE', 'latin1'), body]);
}

const replays = (s: LegacySimulator) => s.requests.filter((e) => e.path.endsWith('/replay')).map((e) => `${e.query.replace('inum=', '')} ${e.headers.range ?? 'whole'}`);

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
      ...INUMS_3.map((id, i) => ({ id, ucid: UCID_3, segment: i + 1, bytes: SEGMENT_WAVS[i] })),
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

  it('a UCID locator searches (XML) and refuses to join segments in different formats before any data, naming the segment', async () => {
    sim.set({ reverseSearchOrder: true });
    const c = connector();
    const e = await failure(c.open(copyOf(null, `ucid:${UCID}`), { signal: signal() }));
    expect(e.code).toBe('source.bad_gateway');
    expect(e.status).toBe(502);
    expect(e.extra).toEqual({ segment: 2, inum: INUM_2 });
    expect(e.message).toMatch(/segment 2 of 2 .*another audio format than segment 1 \(format tag 0x0007.* vs format tag 0x0083/);
    // Headers only, in <startedat> order, each a bounded ranged GET with the credentials.
    expect(sim.requests.map((r) => `${r.path}?${r.query}`)).toEqual([
      `/api/v1/recording/searchapi?command=search&ucid=${UCID}`,
      `/api/v1/recording/replay?inum=${INUM_1}`,
      `/api/v1/recording/replay?inum=${INUM_2}`,
    ]);
    expect(replays(sim)).toEqual([`${INUM_1} bytes=0-8191`, `${INUM_2} bytes=0-8191`]);
    for (const r of sim.requests) expect(r.headers.authorization).toBe(basicOf('custodian', 'custodian-sim-password'));
  });

  it('"ucid:<ucid>" serves every segment in <startedat> order as one WAV, whatever the document order', async () => {
    sim.set({ reverseSearchOrder: true });
    const c = connector();
    const m = await c.open(copyOf(null, `ucid:${UCID_3}`), { signal: signal() });
    expect(m.totalSize).toBe(JOINED.length);
    expect(m.contentType).toBe('audio/wav');
    expect(m.range).toBeUndefined();
    const got = await drain(m.body);
    expect(got.equals(JOINED)).toBe(true);
    expect(sha256(got)).toBe(sha256(Buffer.concat([JOINED.subarray(0, 44), ...SEGMENT_WAVS.map((w, i) => w.subarray(DATA_AT[i]))])));
    // Cut in three and joined again, the reference fixture is itself.
    expect(got.equals(PCM)).toBe(true);
    expect(replays(sim)).toEqual([
      ...INUMS_3.map((i) => `${i} bytes=0-8191`),
      ...INUMS_3.map((i, n) => `${i} bytes=${DATA_AT[n]}-${DATA_AT[n]! + DATAS[n]!.length - 1}`),
    ]);
    for (const r of sim.requests) expect(r.headers.authorization).toBe(basicOf('custodian', 'custodian-sim-password'));
  });

  it('a Range on the joined call fetches only the segments it touches, exactly; past the end is 416 with the joined size', async () => {
    const c = connector();
    const boundary = 44 + DATAS[0]!.length;
    const m = await c.open(copyOf(`ucid:${UCID_3}`), { range: { start: boundary - 100, end: boundary + 99 }, signal: signal() });
    expect(m.range).toEqual({ start: boundary - 100, end: boundary + 99 });
    expect(m.totalSize).toBe(JOINED.length);
    expect((await drain(m.body)).equals(JOINED.subarray(boundary - 100, boundary + 100))).toBe(true);
    expect(replays(sim).slice(3)).toEqual([`${INUMS_3[0]} bytes=${44 + DATAS[0]!.length - 100}-${44 + DATAS[0]!.length - 1}`, `${INUMS_3[1]} bytes=${DATA_AT[1]}-${DATA_AT[1]! + 99}`]);
    sim.clearLog();
    const head = await c.open(copyOf(`ucid:${UCID_3}`), { range: { start: 0, end: 43 }, signal: signal() });
    expect((await drain(head.body)).equals(JOINED.subarray(0, 44))).toBe(true);
    expect(replays(sim)).toHaveLength(3); // headers only
    const tail = await c.open(copyOf(`ucid:${UCID_3}`), { range: { start: JOINED.length - 10 }, signal: signal() });
    expect(tail.range).toEqual({ start: JOINED.length - 10, end: JOINED.length - 1 });
    expect((await drain(tail.body)).equals(JOINED.subarray(-10))).toBe(true);
    const e = await failure(c.open(copyOf(`ucid:${UCID_3}`), { range: { start: JOINED.length }, signal: signal() }));
    expect(e.code).toBe('range.not_satisfiable');
    expect(e.headers['Content-Range']).toBe(`bytes */${JOINED.length}`);
  });

  it('a recorder that ignores Range still yields the exact joined bytes', async () => {
    sim.set({ ignoreRange: true });
    const c = connector();
    expect((await drain((await c.open(copyOf(`ucid:${UCID_3}`), { signal: signal() })).body)).equals(JOINED)).toBe(true);
    const m = await c.open(copyOf(`ucid:${UCID_3}`), { range: { start: 30_000, end: 30_099 }, signal: signal() });
    expect((await drain(m.body)).equals(JOINED.subarray(30_000, 30_100))).toBe(true);
  });

  it('a single-segment call is that segment as the recorder has it, Range passed through', async () => {
    const c = connector();
    expect((await drain((await c.open(copyOf('ucid:other-call'), { signal: signal() })).body)).toString()).toBe('RIFF-other');
    const m = await c.open(copyOf('ucid:other-call'), { range: { start: 5, end: 9 }, signal: signal() });
    expect((await drain(m.body)).toString()).toBe('other');
    expect(replays(sim)).toEqual([`${INUM_3} whole`, `${INUM_3} bytes=5-9`]);
  });

  it('a segment breaking midway errors the joined body (never a clean short end), naming the segment', async () => {
    // Header reads (8 KiB) and segment 1 (30 000 bytes) pass; segment 2 (60 000) is cut after 40 000.
    sim.set({ resetAfterBytes: 40_000 });
    const c = connector();
    const m = await c.open(copyOf(`ucid:${UCID_3}`), { signal: signal() });
    let got = 0;
    let err: unknown;
    try {
      for await (const chunk of m.body) got += (chunk as Buffer).length;
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(AppError);
    expect((err as AppError).code).toBe('source.unavailable');
    expect((err as AppError).message).toMatch(/segment 2 of 3/);
    expect(got).toBeLessThan(JOINED.length);
    expect(got).toBeLessThanOrEqual(44 + 30_000 + 40_000);
  });

  it('reads one segment at a time, only as fast as its consumer', async () => {
    const big = Array.from({ length: 3 }, (_, i) => segmentWav(PCM.subarray(20, 36), Buffer.alloc(4 * 1024 * 1024, i + 1)));
    big.forEach((bytes, i) => sim.addRecording({ id: `90000000000000${i}`, ucid: 'big-call', bytes }));
    const c = connector();
    const m = await c.open(copyOf('ucid:big-call'), { signal: signal() });
    const it = m.body[Symbol.asyncIterator]();
    await it.next();
    await new Promise((r) => setTimeout(r, 200));
    // Paused inside segment 1: segments 2 and 3 have had their headers read, not their data.
    expect(replays(sim)).toEqual(['900000000000000 bytes=0-8191', '900000000000001 bytes=0-8191', '900000000000002 bytes=0-8191', `900000000000000 bytes=44-${44 + 4 * 1024 * 1024 - 1}`]);
    let rest = 0;
    for (let r = await it.next(); !r.done; r = await it.next()) rest += (r.value as Buffer).length;
    expect(rest).toBeGreaterThan(3 * 4 * 1024 * 1024 - 64 * 1024);
    expect(replays(sim)).toHaveLength(6);
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
