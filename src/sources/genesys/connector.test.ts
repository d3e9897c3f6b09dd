import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { failure } from '../../../test/support/failure.js';
import { GenesysConnector } from './connector.js';
import { newCounters } from './api-client.js';
import { errorCodeOf } from './test-helpers.js';
import { pickMediaUri } from './recording-state.js';
import { ResumableMedia } from './resumable-media.js';
import { startGenesysSimulator, type GenesysSimulator, type SimRequestLog } from './simulator.js';
import { bytesOf, configFor, copyOf, drain, sha256 } from './test-helpers.js';

const C1 = 'c1000000-0000-4000-8000-000000000001';
const R1 = 'r1000000-0000-4000-8000-000000000001';
const SECRET = 'custodian-sim-secret';
const MEDIA = bytesOf(256 * 1024, 7);
const BIG = bytesOf(1_000_000, 11);
const CALL_TIME = new Date('2026-03-04T10:15:00.000Z');

let sim: GenesysSimulator;
const open: GenesysConnector[] = [];

function connector(over: Record<string, unknown> = {}): GenesysConnector {
  const c = new GenesysConnector('tenant-a', configFor(sim, over));
  open.push(c);
  return c;
}

const signal = () => new AbortController().signal;

const api = (l: readonly SimRequestLog[]) => l.filter((e) => e.role === 'api');
const media = (l: readonly SimRequestLog[]) => l.filter((e) => e.role === 'media');
const recordingGets = (l: readonly SimRequestLog[]) => api(l).filter((e) => e.method === 'GET' && /\/recordings\/[^/]+$/.test(e.path));

beforeEach(async () => {
  sim = await startGenesysSimulator({
    restoreDelayMs: 50,
    recordings: [
      { conversationId: C1, recordingId: R1, bytes: MEDIA, externalTag: 'LEGACY-42', protocolCallId: 'abc123@sbc.example', startTime: CALL_TIME },
      { conversationId: 'c-big', recordingId: 'r-big', bytes: BIG },
      { conversationId: 'c-arch', recordingId: 'r-arch', bytes: MEDIA, fileState: 'ARCHIVED', archiveDate: '2025-01-01T00:00:00.000Z' },
      { conversationId: 'c-rest', recordingId: 'r-rest', bytes: MEDIA, fileState: 'RESTORING' },
      { conversationId: 'c-exp', recordingId: 'r-exp', fileState: 'DELETED', deleteDate: '2025-06-01T00:00:00.000Z' },
      { conversationId: 'c-del', recordingId: 'r-del', fileState: 'DELETED' },
      { conversationId: 'c-err', recordingId: 'r-err', fileState: 'ERROR' },
      { conversationId: 'c-up', recordingId: 'r-up', fileState: 'UPLOADING' },
    ],
  });
});

afterEach(async () => {
  await Promise.all(open.splice(0).map((c) => c.close()));
  await sim.close();
});

describe('GenesysConnector against the simulator', () => {
  it('reads a recording: metadata, then the recording with formatId, then the media link', async () => {
    const c = connector();
    const m = await c.open(copyOf(C1, R1), { signal: signal() });
    expect(sha256(await drain(m.body))).toBe(sha256(MEDIA));
    expect(m.totalSize).toBe(MEDIA.length);
    expect(m.contentType).toBe('audio/wav');
    const seen = sim.requests.map((e) => `${e.role} ${e.method} ${e.path.split('/').slice(0, 6).join('/')}`);
    expect(seen).toEqual([
      'login POST /oauth/token',
      `api GET /api/v2/conversations/${C1}/recordingmetadata`,
      `api GET /api/v2/conversations/${C1}/recordings`,
      // The client's grants (viewSensitiveData), once per login, before the media.
      'api GET /api/v2/authorization/subjects/me',
      expect.stringMatching(/^media GET \/media\//),
    ]);
    expect(recordingGets(sim.requests)[0]?.query).toBe('formatId=WAV');
    expect(c.kind).toBe('genesys');
    expect(c.origin).toBe('GENESYS_CLOUD');
  });

  it('(b) single-flight: 50 concurrent opens with a cold token make exactly one login', async () => {
    const c = connector();
    const bodies = await Promise.all(Array.from({ length: 50 }, () => c.open(copyOf(C1, R1), { signal: signal() }).then((m) => drain(m.body))));
    for (const b of bodies) expect(b.equals(MEDIA)).toBe(true);
    expect(sim.logins).toBe(1);
    expect(sim.requests.filter((e) => e.role === 'login')).toHaveLength(1);
    expect(c.stats().logins).toBe(1);
  });

  it('(c) a 401 mid-life causes one re-login (for any number of concurrent requests) and success', async () => {
    const c = connector();
    await drain((await c.open(copyOf(C1, R1), { signal: signal() })).body);
    sim.revokeTokens();
    const bodies = await Promise.all(Array.from({ length: 10 }, () => c.open(copyOf(C1, R1), { signal: signal() }).then((m) => drain(m.body))));
    for (const b of bodies) expect(b.equals(MEDIA)).toBe(true);
    expect(sim.logins).toBe(2);
    expect(c.stats().reauths).toBeGreaterThanOrEqual(1);
  });

  it('(c) a 401 that survives a fresh login fails as source.auth_failed after exactly one re-login', async () => {
    const c = connector();
    await c.check(signal());
    sim.failNext(2, { status: 401 });
    const e = await failure(c.open(copyOf(C1, R1), { signal: signal() }));
    expect(errorCodeOf(e)).toBe('source.auth_failed');
    expect(e.status).toBe(502);
    expect(sim.logins).toBe(2);
    expect(api(sim.requests)).toHaveLength(2);
  });

  it('(d) 429: Retry-After is honoured with one shared wait; nothing reaches the API while the gate is closed', async () => {
    const c = connector();
    await c.check(signal());
    sim.clearLog();
    sim.rateLimitNext(3, 1);
    const t0 = Date.now();
    const bodies = await Promise.all(Array.from({ length: 10 }, () => c.open(copyOf(C1, R1), { signal: signal() }).then((m) => drain(m.body))));
    for (const b of bodies) expect(b.equals(MEDIA)).toBe(true);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(950);
    const limited = api(sim.requests).filter((e) => e.status === 429);
    expect(limited).toHaveLength(3);
    const closedAt = Math.min(...limited.map((e) => e.at));
    // Requests already on the wire when the first 429 came back may land just after it (a loaded
    // machine delays them); after that, nothing until the Retry-After has passed.
    const during = api(sim.requests).filter((e) => e.at > closedAt + 400 && e.at < closedAt + 900);
    expect(during).toEqual([]);
    const after = api(sim.requests).filter((e) => e.at >= closedAt + 900);
    expect(after.length).toBeGreaterThanOrEqual(3);
    expect(c.stats().rateLimited).toBe(3);
    expect(c.stats().rateLimitWaits).toBe(1);
  });

  it('(e) 202 while transcoding is polled until the recording is ready', async () => {
    sim.set({ transcodePolls: 3 });
    const c = connector();
    const m = await c.open(copyOf(C1, R1), { signal: signal() });
    expect((await drain(m.body)).equals(MEDIA)).toBe(true);
    expect(recordingGets(sim.requests).map((e) => e.status)).toEqual([202, 202, 202, 200]);
    expect(c.stats().transcodePolls).toBe(3);
  });

  it('(e) 202 bodies carrying a Recording (estimatedTranscodeTimeMs) are polled too', async () => {
    sim.set({ transcodePolls: 2, transcodingBody: 'recording', estimatedTranscodeTimeMs: 20 });
    const c = connector();
    const m = await c.open(copyOf(C1, R1), { signal: signal() });
    expect((await drain(m.body)).equals(MEDIA)).toBe(true);
    expect(recordingGets(sim.requests).map((e) => e.status)).toEqual([202, 202, 200]);
  });

  it('(e) transcoding past the poll budget gives source.media_not_ready with Retry-After', async () => {
    sim.set({ transcodePolls: 1_000 });
    const c = connector({ transcode_poll: { initial_ms: 10, max_ms: 20, budget_ms: 150 } });
    const e = await failure(c.open(copyOf(C1, R1), { signal: signal() }));
    expect(errorCodeOf(e)).toBe('source.media_not_ready');
    expect(e.status).toBe(503);
    expect(e.headers['Retry-After']).toMatch(/^\d+$/);
  });

  it('(f) expiring links and broken transfers: fresh links, Range resumes, every byte exactly once', async () => {
    sim.set({ mediaLinkTtlMs: 200 });
    sim.failNext(1, { status: 403, scope: 'media' }); // the first link is refused as expired
    sim.breakMediaAfter(150_000, 3);
    const c = connector();
    const m = await c.open(copyOf('c-big', 'r-big'), { signal: signal() });
    const got = await drain(m.body);
    expect(got.length).toBe(BIG.length);
    expect(sha256(got)).toBe(sha256(BIG));
    const mediaLog = media(sim.requests);
    expect(mediaLog.map((e) => e.status)).toEqual([403, 200, 206, 206, 206]);
    const ranges = mediaLog.map((e) => e.headers.range);
    expect(ranges.slice(0, 2)).toEqual([undefined, undefined]);
    let next = 0;
    for (const e of mediaLog.slice(2)) {
      next += mediaLog[mediaLog.indexOf(e) - 1]?.bytesSent ?? 0;
      expect(e.headers.range).toBe(`bytes=${next}-${BIG.length - 1}`);
    }
    // Every attempt used a fresh link, minted by another GET of the recording.
    expect(new Set(mediaLog.map((e) => e.path)).size).toBe(mediaLog.length);
    expect(recordingGets(sim.requests)).toHaveLength(mediaLog.length);
    expect(c.stats().resumes).toBe(4);
  });

  it('(f) a link past its TTL answers 403; a fresh link is minted and the read completes', async () => {
    sim.set({ mediaLinkTtlMs: 100 });
    const c = connector();
    const stale = pickMediaUri(await c.api.getRecordingWhenReady(C1, R1, 'WAV', signal()));
    await new Promise((r) => setTimeout(r, 150));
    const counters = newCounters();
    const m = new ResumableMedia({ api: c.api, conversationId: C1, recordingId: R1, format: 'WAV', range: undefined, maxResumes: 1, counters, signal: signal() });
    expect((await drain(await m.start(stale))).equals(MEDIA)).toBe(true);
    expect(media(sim.requests).map((e) => e.status)).toEqual([403, 200]);
    expect(recordingGets(sim.requests)).toHaveLength(2);
    expect(counters.resumes).toBe(1);
  });

  it('(f) a range read survives breaks and delivers exactly the range', async () => {
    sim.breakMediaAfter(70_000, 2);
    const c = connector();
    const m = await c.open(copyOf('c-big', 'r-big'), { range: { start: 1_000, end: 400_999 }, signal: signal() });
    expect(m.range).toEqual({ start: 1_000, end: 400_999 });
    expect(m.totalSize).toBe(BIG.length);
    const got = await drain(m.body);
    expect(got.equals(BIG.subarray(1_000, 401_000))).toBe(true);
    expect(media(sim.requests).map((e) => e.headers.range)).toEqual(['bytes=1000-400999', 'bytes=71000-400999', 'bytes=141000-400999']);
  });

  it('(f) when it cannot resume, the body errors instead of ending short', async () => {
    sim.breakMediaAfter(10_000, 10);
    const c = connector({ max_resumes: 2 });
    const m = await c.open(copyOf('c-big', 'r-big'), { signal: signal() });
    const e = await failure(drain(m.body));
    expect(e.code).toBe('source.unavailable');
    expect(media(sim.requests)).toHaveLength(3);
    // The pre-authorised link is a credential: it appears in no error.
    expect(JSON.stringify({ m: e.message, x: e.extra, h: e.headers })).not.toMatch(/\/media\/|127\.0\.0\.1/);
  });

  it('(g) the secret goes only to the login host, the bearer only to the API host, nothing to the media host', async () => {
    const c = connector();
    await drain((await c.open(copyOf(C1, R1), { signal: signal() })).body);
    sim.revokeTokens();
    await drain((await c.open(copyOf(C1, R1), { signal: signal() })).body);
    const log = sim.requests;
    const logins = log.filter((e) => e.role === 'login');
    expect(logins).toHaveLength(2);
    const basic = `Basic ${Buffer.from(`custodian-sim:${SECRET}`).toString('base64')}`;
    for (const e of logins) {
      expect(e.headers.authorization).toBe(basic);
      expect(e.body).toBe('grant_type=client_credentials');
    }
    const bearers = new Set(api(log).map((e) => e.headers.authorization));
    expect(bearers.size).toBe(2);
    for (const b of bearers) expect(b).toMatch(/^Bearer [A-Za-z0-9_-]{20,}$/);
    const tokensSeen = [...bearers].map((b) => (b as string).slice('Bearer '.length));
    const dump = (e: SimRequestLog) => JSON.stringify([e.path, e.query, e.headers, e.body]);
    for (const e of logins) for (const t of tokensSeen) expect(dump(e)).not.toContain(t);
    for (const e of api(log)) {
      expect(dump(e)).not.toContain(SECRET);
      expect(dump(e)).not.toContain(basic.slice(6));
    }
    expect(media(log).length).toBeGreaterThan(0);
    for (const e of media(log)) {
      expect(e.headers.authorization).toBeUndefined();
      expect(e.headers.cookie).toBeUndefined();
      expect(dump(e)).not.toContain(SECRET);
      expect(dump(e)).not.toContain(basic.slice(6));
      for (const t of tokensSeen) expect(dump(e)).not.toContain(t);
    }
    // Split layout: each host saw only its own routes.
    expect(new Set(logins.map((e) => e.port))).toEqual(new Set([Number(new URL(sim.loginBaseUrl).port)]));
    expect(new Set(media(log).map((e) => e.port))).toEqual(new Set([Number(new URL(sim.mediaBaseUrl).port)]));
  });

  it('(g) a refused login names neither the secret nor the media link', async () => {
    const c = connector({ client_secret: 'wrong-secret-value' });
    const e = await failure(c.open(copyOf(C1, R1), { signal: signal() }));
    expect(errorCodeOf(e)).toBe('source.auth_failed');
    const text = JSON.stringify({ m: e.message, extra: e.extra, headers: e.headers, s: String(e) });
    expect(text).not.toContain('wrong-secret-value');
    expect(text).not.toContain(SECRET);
    expect(sim.requests.filter((r) => r.role === 'api')).toHaveLength(0);
  });

  it('(h) ARCHIVED and RESTORING give distinct codes; no recording GET is made', async () => {
    const c = connector();
    const a = await failure(c.open(copyOf('c-arch', 'r-arch'), { signal: signal() }));
    expect(errorCodeOf(a)).toBe('source.archived');
    expect(a.status).toBe(503);
    expect(a.extra).toMatchObject({ file_state: 'ARCHIVED' });
    const r = await failure(c.open(copyOf('c-rest', 'r-rest'), { signal: signal() }));
    expect(errorCodeOf(r)).toBe('source.restoring');
    expect(recordingGets(sim.requests)).toHaveLength(0);
  });

  it('(h) a restore moves ARCHIVED to RESTORING to RESTORED, then the recording plays', async () => {
    const c = connector();
    const copy = copyOf('c-arch', 'r-arch');
    const until = new Date(Date.now() + 7 * 86_400_000);
    const rec = await c.restore(copy, until, signal());
    expect(rec.fileState).toBe('RESTORING');
    const put = api(sim.requests).find((e) => e.method === 'PUT');
    expect(JSON.parse(put?.body ?? '{}')).toEqual({ archiveDate: until.toISOString() });
    expect(errorCodeOf(await failure(c.open(copy, { signal: signal() })))).toBe('source.restoring');
    await new Promise((r) => setTimeout(r, 80));
    expect((await c.metadata(copy, signal())).fileState).toBe('RESTORED');
    expect((await drain((await c.open(copy, { signal: signal() })).body)).equals(MEDIA)).toBe(true);
  });

  it('(h) DELETED maps to recording.expired past its deleteDate, else recording.not_found; ERROR and UPLOADING map too', async () => {
    const c = connector();
    expect((await failure(c.open(copyOf('c-exp', 'r-exp'), { signal: signal() }))).code).toBe('recording.expired');
    expect((await failure(c.open(copyOf('c-del', 'r-del'), { signal: signal() }))).code).toBe('recording.not_found');
    expect((await failure(c.open(copyOf('c-err', 'r-err'), { signal: signal() }))).code).toBe('source.bad_gateway');
    expect(errorCodeOf(await failure(c.open(copyOf('c-up', 'r-up'), { signal: signal() })))).toBe('source.media_not_ready');
  });

  it('(h) unknown ids give recording.not_found; a copy without Genesys ids gives source.object_missing', async () => {
    const c = connector();
    const e = await failure(c.open(copyOf(C1, 'no-such-recording'), { signal: signal() }));
    expect(e.code).toBe('recording.not_found');
    expect(e.extra).toMatchObject({ genesys_status: 404, genesys_code: 'recording.recording.not.found' });
    expect((await failure(c.open(copyOf('no-such-conversation', R1), { signal: signal() }))).code).toBe('recording.not_found');
    expect((await failure(c.open(copyOf(null, R1), { signal: signal() }))).code).toBe('source.object_missing');
  });

  it('(h) 5xx before the first byte is retried (API and media link)', async () => {
    const c = connector();
    await c.check(signal());
    sim.failNext(2, { status: 503 });
    sim.failNext(1, { status: 500, scope: 'media' });
    const m = await c.open(copyOf(C1, R1), { signal: signal() });
    expect((await drain(m.body)).equals(MEDIA)).toBe(true);
    // metadata (503, 503, 200), recording, the grants read once after the login.
    expect(api(sim.requests).map((e) => e.status)).toEqual([503, 503, 200, 200, 200]);
    expect(media(sim.requests).map((e) => e.status)).toEqual([500, 200]);
    expect(c.stats().retries).toBe(3);
  });

  it('opens its circuit after consecutive outages and then fails fast without calling Genesys', async () => {
    const c = connector({ circuit_breaker: { failures: 2, half_open_after_ms: 60_000 } });
    await c.check(signal());
    sim.failNext(1_000, { status: 503 });
    for (let i = 0; i < 2; i++) expect((await failure(c.open(copyOf(C1, R1), { signal: signal() }))).code).toBe('source.unavailable');
    sim.clearLog();
    const fast = await failure(c.open(copyOf(C1, R1), { signal: signal() }));
    expect(fast.extra).toMatchObject({ circuit: 'open' });
    expect(Number(fast.headers['Retry-After'])).toBeGreaterThan(0);
    expect(api(sim.requests)).toHaveLength(0);
    expect(c.stats()).toMatchObject({ circuit: 'open', circuitOpenings: 1, circuitRejections: 1 });
  });

  it('clients that hang up are not outages: their aborts never open the circuit (polling or logging in)', async () => {
    sim.addRecording({ conversationId: 'c-slow', recordingId: 'r-slow', bytes: MEDIA, transcodePolls: 1_000_000 });
    const c = connector({ circuit_breaker: { failures: 2, half_open_after_ms: 60_000 }, transcode_poll: { initial_ms: 10, max_ms: 40, budget_ms: 60_000 } });
    const hangUp = async (ms: number) => {
      const ac = new AbortController();
      const t = setTimeout(() => ac.abort(), ms);
      const e = await failure(c.open(copyOf('c-slow', 'r-slow'), { signal: ac.signal }));
      clearTimeout(t);
      expect(e.message).toBe('request aborted');
    };
    // While a slow login is on the wire, then (token cached) while Genesys transcodes.
    sim.set({ loginDelayMs: 1_000 });
    await hangUp(100);
    await hangUp(100);
    sim.set({ loginDelayMs: 0 });
    await c.check(signal());
    for (let i = 0; i < 3; i++) await hangUp(100);
    expect(c.stats()).toMatchObject({ circuit: 'closed', circuitOpenings: 0, circuitRejections: 0 });
    // Another client's read of a ready recording reaches Genesys and succeeds.
    sim.clearLog();
    const m = await c.open(copyOf(C1, R1), { signal: signal() });
    expect((await drain(m.body)).equals(MEDIA)).toBe(true);
    expect(api(sim.requests).length).toBeGreaterThan(0);
  });

  it('(d) a 429 from the login endpoint: its Retry-After is waited once, then the read succeeds', async () => {
    sim.failNext(1, { status: 429, scope: 'login', retryAfterS: 1 });
    const c = connector();
    const m = await c.open(copyOf(C1, R1), { signal: signal() });
    expect((await drain(m.body)).equals(MEDIA)).toBe(true);
    const logins = sim.requests.filter((e) => e.role === 'login');
    expect(logins.map((e) => e.status)).toEqual([429, 200]);
    // No backoff storm of 100 ms–2 s retries: the second login waited for the Retry-After.
    expect(logins[1]!.at - logins[0]!.at).toBeGreaterThanOrEqual(950);
    expect(c.stats()).toMatchObject({ rateLimited: 1, rateLimitWaits: 1, retries: 0 });
  });

  it('(d) a login 429 past what a request waits for gives the API 429 answer: source.unavailable with Retry-After, one login', async () => {
    // The API path's answer to the same Retry-After, for comparison.
    const warm = connector();
    await warm.check(signal());
    sim.rateLimitNext(1, 120);
    const apiLimited = await failure(warm.open(copyOf(C1, R1), { signal: signal() }));
    sim.clearLog();
    sim.failNext(1, { status: 429, scope: 'login', retryAfterS: 120 });
    const c = connector();
    const t0 = Date.now();
    const e = await failure(c.open(copyOf(C1, R1), { signal: signal() }));
    expect(Date.now() - t0).toBeLessThan(1_000);
    expect(e.code).toBe('source.unavailable');
    expect(e.status).toBe(503);
    expect(e.headers).toEqual({ 'Retry-After': '120' });
    expect(e.headers).toEqual(apiLimited.headers);
    expect(e.extra).toEqual(apiLimited.extra);
    expect(e.message).toBe(apiLimited.message);
    // Within the Retry-After nothing more is sent to the login endpoint, by a read or a check.
    expect((await failure(c.open(copyOf(C1, R1), { signal: signal() }))).headers['Retry-After']).toMatch(/^1[12]\d$/);
    expect((await failure(c.check(signal()))).code).toBe('source.unavailable');
    expect(sim.requests.filter((e) => e.role === 'login')).toHaveLength(1);
    expect(api(sim.requests)).toHaveLength(0);
  });

  it('(d) a login 429 is waited for no longer than the request itself waits (its signal)', async () => {
    sim.failNext(1, { status: 429, scope: 'login', retryAfterS: 30 });
    const c = connector();
    const t0 = Date.now();
    const e = await failure(c.open(copyOf(C1, R1), { signal: AbortSignal.timeout(300) }));
    expect(Date.now() - t0).toBeLessThan(1_500);
    expect(e.code).toBe('source.unavailable');
    expect(sim.requests.filter((e) => e.role === 'login')).toHaveLength(1);
    // A caller's deadline is not an outage either.
    expect(c.stats().circuit).toBe('closed');
  });

  it('(h) no blind retry after the first byte: with no resumes left a broken transfer errors, nothing is re-fetched', async () => {
    sim.breakMediaAfter(50_000, 1);
    const c = connector({ max_resumes: 0 });
    const m = await c.open(copyOf('c-big', 'r-big'), { signal: signal() });
    const e = await failure(drain(m.body));
    expect(e.code).toBe('source.unavailable');
    expect(media(sim.requests)).toHaveLength(1);
    expect(recordingGets(sim.requests)).toHaveLength(1);
  });

  it('(h) persistent 5xx gives up after the bounded attempts', async () => {
    const c = connector();
    await c.check(signal());
    sim.failNext(10, { status: 503 });
    const e = await failure(c.open(copyOf(C1, R1), { signal: signal() }));
    expect(e.code).toBe('source.unavailable');
    expect(e.extra).toMatchObject({ genesys_status: 503, genesys_code: 'service.unavailable' });
    expect(api(sim.requests)).toHaveLength(3);
  });

  it('(h) a Genesys that is down gives source.unavailable', async () => {
    const down = await startGenesysSimulator();
    const cfg = configFor(down);
    await down.close();
    const c = new GenesysConnector('tenant-a', cfg);
    open.push(c);
    expect((await failure(c.open(copyOf(C1, R1), { signal: signal() }))).code).toBe('source.unavailable');
    expect((await failure(c.check(signal()))).code).toBe('source.unavailable');
  });

  it('a range beyond the end gives range.not_satisfiable with Content-Range', async () => {
    const c = connector();
    const e = await failure(c.open(copyOf(C1, R1), { range: { start: MEDIA.length + 10 }, signal: signal() }));
    expect(e.code).toBe('range.not_satisfiable');
    expect(e.headers['Content-Range']).toBe(`bytes */${MEDIA.length}`);
  });

  it('aborting stops the read: the body closes and no request follows', async () => {
    sim.breakMediaAfter(100_000, 1);
    const c = connector();
    const ac = new AbortController();
    const m = await c.open(copyOf('c-big', 'r-big'), { signal: ac.signal });
    const closed = new Promise<void>((resolve) => m.body.once('close', () => resolve()));
    m.body.once('data', () => ac.abort());
    m.body.resume();
    await closed;
    await new Promise((r) => setTimeout(r, 50));
    expect(media(sim.requests)).toHaveLength(1);
    expect((await failure(c.open(copyOf(C1, R1), { signal: ac.signal }))).code).toBe('source.unavailable');
  });

  it('works against the combined single-port layout (demo)', async () => {
    const one = await startGenesysSimulator({ layout: 'combined', recordings: [{ conversationId: C1, recordingId: R1, bytes: MEDIA }] });
    try {
      expect(one.loginBaseUrl).toBe(one.apiBaseUrl);
      expect(one.mediaBaseUrl).toBe(one.apiBaseUrl);
      const c = new GenesysConnector('tenant-a', configFor(one));
      open.push(c);
      expect((await drain((await c.open(copyOf(C1, R1), { signal: signal() })).body)).equals(MEDIA)).toBe(true);
      expect(one.requests.map((e) => e.role)).toEqual(['login', 'api', 'api', 'api', 'media']);
    } finally {
      await one.close();
    }
  });

  it('(i) the analytics query finds a conversation by externalTag, by conversationId and by SIP Call-ID', async () => {
    const c = connector();
    const interval = { start: new Date('2026-03-04T00:00:00.000Z'), end: new Date('2026-03-05T00:00:00.000Z') };
    const byTag = await c.findConversations({ externalTag: 'LEGACY-42', interval }, signal());
    expect(byTag.map((x) => x.conversationId)).toEqual([C1]);
    expect(byTag[0]?.externalTag).toBe('LEGACY-42');
    const byId = await c.findConversations({ conversationId: C1, interval }, signal());
    expect(byId.map((x) => x.conversationId)).toEqual([C1]);
    const byCall = await c.findConversations({ protocolCallId: 'abc123@sbc.example', interval }, signal());
    expect(byCall.map((x) => x.conversationId)).toEqual([C1]);
    expect(await c.findConversations({ externalTag: 'LEGACY-404', interval }, signal())).toEqual([]);
    const otherDay = { start: new Date('2026-03-10T00:00:00.000Z'), end: new Date('2026-03-11T00:00:00.000Z') };
    expect(await c.findConversations({ externalTag: 'LEGACY-42', interval: otherDay }, signal())).toEqual([]);
    const q = JSON.parse(api(sim.requests)[0]?.body ?? '{}') as Record<string, unknown>;
    expect(q).toMatchObject({
      interval: '2026-03-04T00:00:00.000Z/2026-03-05T00:00:00.000Z',
      conversationFilters: [{ type: 'and', predicates: [{ type: 'dimension', dimension: 'externalTag', operator: 'matches', value: 'LEGACY-42' }] }],
    });
    const recs = await c.listRecordings(C1, signal());
    expect(recs.map((r) => r.id)).toEqual([R1]);
  });
});
