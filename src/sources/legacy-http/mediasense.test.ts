import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LegacyHttpConnector } from './connector.js';
import { sessionCookie } from './mediasense-profile.js';
import { startLegacySimulator, type LegacySimRequestLog, type LegacySimulator } from './simulator.js';
import { FIXTURE, FIXTURE_2, FIXTURE_PATH, configFor, copyOf, drain, failure, sha256, signal } from './test-helpers.js';

const SID = '1a2b3c4d5e6f0001';
const PASSWORD = 'custodian-sim-password';

let sim: LegacySimulator;
const open: LegacyHttpConnector[] = [];

function connector(over: Record<string, unknown> = {}, on: LegacySimulator = sim): LegacyHttpConnector {
  const c = new LegacyHttpConnector('tenant-a', configFor(on, over));
  open.push(c);
  return c;
}

const SIGN_IN = '/ora/authenticationService/authentication/signIn';
const QUERY = '/ora/queryService/query/getSessionBySessionId';
const signIns = (l: readonly LegacySimRequestLog[]) => l.filter((e) => e.path === SIGN_IN);
const media = (l: readonly LegacySimRequestLog[]) => l.filter((e) => e.path.startsWith('/recordedMedia/'));
const cookieOf = (e: LegacySimRequestLog | undefined) => /JSESSIONID=([0-9A-F]+)/.exec(String(e?.headers.cookie ?? ''))?.[1];

beforeEach(async () => {
  sim = await startLegacySimulator({
    provider: 'cisco_mediasense',
    recordings: [
      { id: SID, path: FIXTURE_PATH },
      { id: 'two-tracks', tracks: [{ bytes: 'video', mediaType: 'VIDEO' }, { bytes: FIXTURE }, { bytes: FIXTURE_2 }] },
      { id: 'active', bytes: 'x', sessionState: 'ACTIVE' },
      { id: 'errored', bytes: 'x', sessionState: 'CLOSED_ERROR' },
      { id: 'pruned', bytes: 'x', sessionState: 'PRUNED' },
    ],
  });
});

afterEach(async () => {
  await Promise.all(open.splice(0).map((c) => c.close()));
  await sim.close();
});

describe('LegacyHttpConnector — cisco_mediasense against the simulator', () => {
  it('signs in, queries the session and downloads the audio track with the JSESSIONID, byte for byte', async () => {
    const c = connector();
    const m = await c.open(copyOf(SID), { signal: signal() });
    expect(sha256(await drain(m.body))).toBe(sha256(FIXTURE));
    expect(m.totalSize).toBe(FIXTURE.length);
    expect(sim.requests.map((e) => `${e.method} ${e.path}`)).toEqual([`POST ${SIGN_IN}`, `POST ${QUERY}`, `GET /recordedMedia/oramedia/wav/${SID}-0.wav`]);
    const [signIn, query, download] = sim.requests;
    expect(JSON.parse(signIn?.body ?? '')).toEqual({ requestParameters: { username: 'custodian', password: PASSWORD } });
    expect(signIn?.headers.cookie).toBeUndefined();
    expect(JSON.parse(query?.body ?? '')).toEqual({ requestParameters: { sessionId: SID } });
    expect(cookieOf(query)).toMatch(/^[0-9A-F]{32}$/);
    expect(cookieOf(download)).toBe(cookieOf(query));
    // The password travels in the sign-in body only; no static Authorization header at all.
    for (const e of sim.requests) expect(e.headers.authorization).toBeUndefined();
    for (const e of sim.requests.slice(1)) expect(JSON.stringify(e)).not.toContain(PASSWORD);
    expect(c.stats()).toMatchObject({ signIns: 1, reauths: 0 });
  });

  it('single-flight: 25 concurrent opens make exactly one sign-in', async () => {
    const c = connector();
    const bodies = await Promise.all(Array.from({ length: 25 }, () => c.open(copyOf(SID), { signal: signal() }).then((m) => drain(m.body))));
    for (const b of bodies) expect(b.equals(FIXTURE)).toBe(true);
    expect(sim.signIns).toBe(1);
    expect(signIns(sim.requests)).toHaveLength(1);
  });

  it('after the session expires from idleness, one re-sign-in (for any number of concurrent requests) and success', async () => {
    // Idle time long enough that a loaded machine does not expire the session again mid-test.
    sim.set({ sessionIdleMs: 1_000 });
    const c = connector();
    await drain((await c.open(copyOf(SID), { signal: signal() })).body);
    await new Promise((r) => setTimeout(r, 1_200));
    sim.clearLog();
    const bodies = await Promise.all(Array.from({ length: 8 }, () => c.open(copyOf(SID), { signal: signal() }).then((m) => drain(m.body))));
    for (const b of bodies) expect(b.equals(FIXTURE)).toBe(true);
    expect(sim.signIns).toBe(2);
    expect(signIns(sim.requests)).toHaveLength(1);
    // MediaSense says "expired" with HTTP 200 and responseCode 4021; the old cookie never comes back after the new one.
    const queries = sim.requests.filter((e) => e.path === QUERY);
    expect(queries.length).toBe(16);
    expect(c.stats().reauths).toBeGreaterThanOrEqual(1);
    const fresh = cookieOf(sim.requests.find((e) => e.seq > (signIns(sim.requests)[0]?.seq ?? 0) && e.path === QUERY));
    for (const e of media(sim.requests)) expect(cookieOf(e)).toBe(fresh);
  });

  it('a sign-in that fails with a 5xx is retried (still one shared sign-in for concurrent opens)', async () => {
    sim.failNext(1, 503, 'signin');
    const c = connector();
    const bodies = await Promise.all(Array.from({ length: 5 }, () => c.open(copyOf(SID), { signal: signal() }).then((m) => drain(m.body))));
    for (const b of bodies) expect(b.equals(FIXTURE)).toBe(true);
    expect(signIns(sim.requests).map((e) => e.status)).toEqual([503, 200]);
    expect(c.stats()).toMatchObject({ signIns: 1, signInFailures: 1 });
  });

  it('a 401 on the download signs in again once and repeats the download', async () => {
    const c = connector();
    await c.check(signal());
    sim.failNext(1, 401, 'media');
    const m = await c.open(copyOf(SID), { signal: signal() });
    expect((await drain(m.body)).equals(FIXTURE)).toBe(true);
    expect(media(sim.requests).map((e) => e.status)).toEqual([401, 200]);
    expect(sim.signIns).toBe(2);
  });

  it('a 401 that survives a fresh sign-in is source.auth_failed', async () => {
    const c = connector();
    await c.check(signal());
    sim.failNext(2, 401, 'media');
    const e = await failure(c.open(copyOf(SID), { signal: signal() }));
    expect(e.code).toBe('source.auth_failed');
    expect(sim.signIns).toBe(2);
  });

  it('a refused sign-in (responseCode 4010) is source.auth_failed and names neither password nor cookie', async () => {
    const c = connector({ password: 'not-the-password' });
    const e = await failure(c.open(copyOf(SID), { signal: signal() }));
    expect(e.code).toBe('source.auth_failed');
    expect(e.extra).toMatchObject({ mediasense_code: 4010 });
    expect(JSON.stringify({ m: e.message, x: e.extra, h: e.headers })).not.toMatch(/not-the-password|JSESSIONID=/);
    expect(sim.requests.map((r) => r.path)).toEqual([SIGN_IN]);
    expect((await failure(c.check(signal()))).code).toBe('source.auth_failed');
  });

  it('track: first picks the lowest-numbered AUDIO track, a number that track; the default merges both', async () => {
    const first = await connector({ profile: { track: 'first' } }).open(copyOf('two-tracks'), { signal: signal() });
    expect((await drain(first.body)).equals(FIXTURE)).toBe(true);
    expect(media(sim.requests).map((e) => e.path)).toEqual(['/recordedMedia/oramedia/wav/two-tracks-1.wav']);
    // Default `all`: the G.729 track and the µ-law track as one stereo WAV (mediasense-tracks.test.ts has the details).
    const both = await connector().open(copyOf('two-tracks'), { signal: signal() });
    const wav = await drain(both.body);
    expect(wav.length).toBe(both.totalSize);
    expect(wav.readUInt16LE(22)).toBe(2);
    const second = await connector({ profile: { track: 2 } }).open(copyOf('two-tracks'), { signal: signal() });
    expect((await drain(second.body)).equals(FIXTURE_2)).toBe(true);
    expect((await failure(connector({ profile: { track: 0 } }).open(copyOf('two-tracks'), { signal: signal() }))).code).toBe('source.bad_gateway');
  });

  it('only CLOSED_NORMAL sessions play: ACTIVE → media_not_ready, PRUNED → object_missing, CLOSED_ERROR → bad_gateway, unknown → object_missing', async () => {
    const c = connector();
    const active = await failure(c.open(copyOf('active'), { signal: signal() }));
    expect(active.code).toBe('source.media_not_ready');
    expect(active.extra).toEqual({ session_state: 'ACTIVE' });
    expect(active.headers['Retry-After']).toBe('60');
    expect((await failure(c.open(copyOf('pruned'), { signal: signal() }))).code).toBe('source.object_missing');
    const errored = await failure(c.open(copyOf('errored'), { signal: signal() }));
    expect(errored.code).toBe('source.bad_gateway');
    expect(errored.message).toMatch(/CLOSED_ERROR/);
    expect((await failure(c.open(copyOf('no-such-session'), { signal: signal() }))).code).toBe('source.object_missing');
    expect(media(sim.requests)).toHaveLength(0);
  });

  it('Range on the track download: 206 slice', async () => {
    const c = connector();
    const m = await c.open(copyOf(SID), { range: { start: 100, end: 199 }, signal: signal() });
    expect(m.range).toEqual({ start: 100, end: 199 });
    expect((await drain(m.body)).equals(FIXTURE.subarray(100, 200))).toBe(true);
    expect(media(sim.requests)[0]?.headers.range).toBe('bytes=100-199');
  });

  it('the session never reaches another origin: a downloadUrl elsewhere is refused unsent', async () => {
    const elsewhere = await startLegacySimulator({ provider: 'cisco_mediasense', recordings: [{ id: SID, path: FIXTURE_PATH }] });
    try {
      sim.set({ downloadBaseUrl: elsewhere.baseUrl });
      const c = connector();
      const e = await failure(c.open(copyOf(SID), { signal: signal() }));
      expect(e.code).toBe('source.bad_gateway');
      expect(e.message).toMatch(/allow_download_origins/);
      expect(e.message).not.toContain(elsewhere.baseUrl);
      expect(elsewhere.requests).toHaveLength(0);
      expect(media(sim.requests)).toHaveLength(0);
    } finally {
      await elsewhere.close();
    }
  });

  it('MediaSense media on its own port (as 8446 beside 8440): refused unless listed in allow_download_origins, then sent the session', async () => {
    const split = await startLegacySimulator({ provider: 'cisco_mediasense', separateMediaPort: true, recordings: [{ id: SID, path: FIXTURE_PATH }] });
    try {
      expect(split.mediaBaseUrl).not.toBe(split.baseUrl);
      const refused = await failure(connector({}, split).open(copyOf(SID), { signal: signal() }));
      expect(refused.code).toBe('source.bad_gateway');
      expect(split.requests.filter((e) => e.listener === 'media')).toHaveLength(0);
      const c = connector({ profile: { allow_download_origins: [split.mediaBaseUrl] } }, split);
      const m = await c.open(copyOf(SID), { signal: signal() });
      expect((await drain(m.body)).equals(FIXTURE)).toBe(true);
      const onMedia = split.requests.filter((e) => e.listener === 'media');
      expect(onMedia).toHaveLength(1);
      expect(cookieOf(onMedia[0])).toMatch(/^[0-9A-F]{32}$/);
      // The sign-in (password) only ever went to the API port.
      for (const e of onMedia) expect(e.body).toBe('');
      expect(signIns(split.requests).every((e) => e.listener === 'api')).toBe(true);
    } finally {
      await split.close();
    }
  });

  it('session_transport header sends the JSESSIONID as a header instead of a cookie', async () => {
    const c = connector({ profile: { session_transport: 'header' } });
    expect((await drain((await c.open(copyOf(SID), { signal: signal() })).body)).equals(FIXTURE)).toBe(true);
    for (const e of sim.requests.slice(1)) {
      expect(e.headers.cookie).toBeUndefined();
      expect(e.headers.jsessionid).toMatch(/^[0-9A-F]{32}$/);
    }
  });

  it('check() signs in once and then reuses the session', async () => {
    const c = connector();
    await c.check(signal());
    await c.check(signal());
    expect(sim.signIns).toBe(1);
  });

  it('reads the session cookie strictly from Set-Cookie', () => {
    expect(sessionCookie(['other=1', 'JSESSIONID=ABC123; Path=/; Secure; HttpOnly'], 'JSESSIONID')).toBe('ABC123');
    expect(sessionCookie(['JSESSIONID="Q1"; Path=/'], 'JSESSIONID')).toBe('Q1');
    expect(sessionCookie(['JSESSIONIDSSO=X; Path=/'], 'JSESSIONID')).toBeUndefined();
    expect(sessionCookie(['JSESSIONID=a b; Path=/'], 'JSESSIONID')).toBeUndefined();
    expect(sessionCookie(['JSESSIONID=; Path=/'], 'JSESSIONID')).toBeUndefined();
  });
});
