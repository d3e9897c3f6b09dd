import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FileState } from '../src/sources/genesys/models.js';
import { type GenesysSimulator, startGenesysSimulator } from '../src/sources/genesys/simulator.js';
import { AUDIO, KEYS, bearer, retrieveBody, startTestGateway, type TestGateway } from './support/gateway.js';
import { genesysSource } from './support/genesys-source.js';
import { type RawResponse, post, raw } from './support/http.js';

/**
 * Bad answers and faults of Genesys Cloud, end to end through the gateway: every request ends in
 * a served recording or a clear problem code, a broken stream is never ended cleanly, the
 * simulator sees no storms, and no token, secret or media link reaches a log line or a body.
 */

const SECRET = 'custodian-sim-secret';
const WRONG_SECRET = 'wrong-secret-0123456789';
const SMALL = readFileSync(join(AUDIO, 'call_mono_pcm16_8k.wav'));
const BIG = readFileSync(join(AUDIO, 'call_stereo_pcm16_8k.wav'));
const conv = (n: number) => `fa000000-0000-4000-8000-${String(n).padStart(12, '0')}`;

describe('Genesys faults through the gateway', () => {
  let sim: GenesysSimulator;
  /** A second Genesys for login faults (down, slow), so they cannot disturb the other cases. */
  let loginSim: GenesysSimulator;
  let gw: TestGateway;
  const responses: RawResponse[] = [];

  const source = (name: string, s: GenesysSimulator, over: Record<string, unknown> = {}) =>
    genesysSource(s, {
      name,
      client_secret: SECRET,
      source_systems: [],
      // The client waits for the answer (no 202 jobs), so each fault shows as the request's own status.
      mode: 'sync',
      timeout_ms: 2_000,
      max_resumes: 0,
      fallback_lookup: false,
      circuit_breaker: { failures: 1_000, half_open_after_ms: 60_000 },
      ...over,
    });

  async function retrieve(ref: string, format = 'original'): Promise<RawResponse> {
    const r = await post(gw, retrieveBody({ target_recording_ref: ref, format_preference: format }));
    responses.push(r);
    return r;
  }

  async function player(ref: string): Promise<RawResponse> {
    const r = await raw(`${gw.url}/api/v1/recordings/${ref}/media`, { headers: bearer(KEYS.acme) });
    responses.push(r);
    return r;
  }

  function problem(r: RawResponse, status: number, code: string): Record<string, unknown> {
    expect(r.status, r.body.toString()).toBe(status);
    expect(r.headers['content-type']).toBe('application/problem+json');
    const body = JSON.parse(r.body.toString()) as Record<string, unknown>;
    expect(body.code).toBe(code);
    return body;
  }

  beforeAll(async () => {
    sim = await startGenesysSimulator({ logLimit: 100_000 });
    loginSim = await startGenesysSimulator();
    for (let i = 0; i < 10; i++) sim.addRecording({ conversationId: conv(i), recordingId: `rec-${i}`, bytes: SMALL, contentType: 'audio/wav' });
    sim.addRecording({ conversationId: conv(50), recordingId: 'rec-big', bytes: BIG, contentType: 'audio/wav' });
    sim.addRecording({ conversationId: conv(60), recordingId: 'rec-odd-state', bytes: SMALL });
    sim.addRecording({ conversationId: conv(80), recordingId: 'rec-bad-secret', bytes: SMALL });
    loginSim.addRecording({ conversationId: conv(70), recordingId: 'rec-login', bytes: SMALL });
    loginSim.addRecording({ conversationId: conv(71), recordingId: 'rec-login-limited', bytes: SMALL });
    gw = await startTestGateway({
      config: (doc) => (doc.auth.rate_limit = { max: 10_000, window_ms: 60_000 }),
      sources: {
        acme: [
          source('genesys', sim),
          source('genesys-bad-secret', sim, { client_secret: WRONG_SECRET }),
          source('genesys-login', loginSim, { timeout_ms: 300 }),
          // Its own token source on the same login endpoint: a 429's wait cannot hold up the others.
          source('genesys-login-limited', loginSim),
        ],
      },
    });
    const cloud = (ref: string, connector: string, c: string, r: string) => ({
      call_id: `2026-01-01T00:00:00Z-${ref}`,
      legacy_archive_id: ref,
      source_system: 'genesys_cloud',
      connector,
      conversation_id: c,
      recording_id: r,
      storage_location: 'GENESYS_CLOUD_ARCHIVE' as const,
    });
    await gw.seed([
      ...Array.from({ length: 10 }, (_, i) => cloud(`gf_${i}`, 'genesys', conv(i), `rec-${i}`)),
      cloud('gf_big', 'genesys', conv(50), 'rec-big'),
      cloud('gf_odd', 'genesys', conv(60), 'rec-odd-state'),
      cloud('gf_bad_secret', 'genesys-bad-secret', conv(80), 'rec-bad-secret'),
      cloud('gf_login', 'genesys-login', conv(70), 'rec-login'),
      cloud('gf_login_limited', 'genesys-login-limited', conv(71), 'rec-login-limited'),
    ]);
  });

  afterAll(async () => {
    await gw?.stop();
    await sim?.close();
    await loginSim?.close();
  });

  it('serves a recording when nothing is wrong (the baseline)', async () => {
    const r = await retrieve('gf_0');
    expect(r.status, r.body.toString()).toBe(200);
    expect(r.body.equals(SMALL)).toBe(true);
  });

  it('a wrong client secret: a clear 502 source.auth_failed, and one login attempt however many requests', async () => {
    const before = sim.requests.filter((e) => e.role === 'login' && e.status === 401).length;
    const concurrent = await Promise.all(Array.from({ length: 10 }, () => retrieve('gf_bad_secret')));
    const sequential: RawResponse[] = [];
    for (let i = 0; i < 5; i++) sequential.push(await player('gf_bad_secret'));
    for (const r of [...concurrent, ...sequential]) {
      const body = problem(r, 502, 'source.auth_failed');
      expect(String(body.detail)).toMatch(/refused/);
      expect(r.body.toString()).not.toContain(WRONG_SECRET);
    }
    const refused = sim.requests.filter((e) => e.role === 'login' && e.status === 401).length - before;
    expect(refused).toBe(1);
    // No API call was made with a token that does not exist.
    expect(sim.requests.filter((e) => e.role === 'api' && e.status === 401)).toHaveLength(0);
  });

  it('a token endpoint that is down: 503 source.unavailable after bounded retries', async () => {
    loginSim.failNext(3, { status: 503, scope: 'login' });
    const before = loginSim.loginAttempts;
    const r = await retrieve('gf_login');
    problem(r, 503, 'source.unavailable');
    expect(r.headers['retry-after']).toMatch(/^\d+$/);
    expect(loginSim.loginAttempts - before).toBe(3);
    expect(loginSim.requests.filter((e) => e.role === 'api')).toHaveLength(0);
  });

  it('a token endpoint that is slow: 504 source.timeout, bounded', async () => {
    // undici's timers are coarse below a second: each 300 ms attempt gives up after about 1 s.
    loginSim.set({ loginDelayMs: 10_000 });
    const before = loginSim.loginAttempts;
    const t0 = Date.now();
    try {
      const r = await retrieve('gf_login');
      const body = problem(r, 504, 'source.timeout');
      expect(String(body.detail)).toMatch(/no answer in time/);
      // product.md: source failures carry Retry-After where a retry can help; a timeout is one (errors.ts isRetryable).
      expect(r.headers['retry-after']).toMatch(/^\d+$/);
      expect(Date.now() - t0).toBeLessThan(6_000);
      expect(loginSim.loginAttempts - before).toBe(3);
    } finally {
      loginSim.set({ loginDelayMs: 0 });
    }
    // Once the endpoint answers again, the same source serves.
    const ok = await retrieve('gf_login');
    expect(ok.status, ok.body.toString()).toBe(200);
  });

  it('a token endpoint answering 429: 503 source.unavailable with its Retry-After, and one login attempt however many requests', async () => {
    // Past what a request waits for (60 s), so the answer comes at once.
    loginSim.failNext(1, { status: 429, scope: 'login', retryAfterS: 120 });
    const before = loginSim.requests.filter((e) => e.role === 'login').length;
    const apiBefore = loginSim.requests.filter((e) => e.role === 'api').length;
    const first = await retrieve('gf_login_limited');
    problem(first, 503, 'source.unavailable');
    expect(first.headers['retry-after']).toBe('120');
    const more = await Promise.all(Array.from({ length: 5 }, () => retrieve('gf_login_limited')));
    for (const r of more) {
      problem(r, 503, 'source.unavailable');
      expect(Number(r.headers['retry-after'])).toBeGreaterThan(100);
    }
    expect(loginSim.requests.filter((e) => e.role === 'login').length - before).toBe(1);
    expect(loginSim.requests.filter((e) => e.role === 'api').length - apiBefore).toBe(0);
  });

  it('malformed JSON from Genesys: 502 source.bad_gateway naming the call, not the body', async () => {
    sim.malformedJsonNext(1);
    const res = await retrieve('gf_2');
    const body = problem(res, 502, 'source.bad_gateway');
    // The source's own error answer: a later try may succeed (the next request below does).
    expect(res.headers['retry-after']).toBe('5');
    expect(String(body.detail)).toMatch(/recording metadata: Genesys answered 200 with a body that is not JSON/);
    // Not retried blindly, and the next request is fine.
    expect((await retrieve('gf_2')).status).toBe(200);
  });

  it('a 200 without mediaUris: 502 source.bad_gateway', async () => {
    sim.omitMediaUrisNext(1);
    const body = problem(await retrieve('gf_3'), 502, 'source.bad_gateway');
    expect(String(body.detail)).toMatch(/without a media link/);
    expect(sim.requests.filter((e) => e.role === 'media' && e.path.length > 0).length).toBeGreaterThan(0);
  });

  it('an unknown fileState: 502 source.bad_gateway carrying the state, no media fetched', async () => {
    sim.setFileState(conv(60), 'rec-odd-state', 'FROZEN' as FileState);
    const mediaBefore = sim.requests.filter((e) => e.role === 'media').length;
    const body = problem(await retrieve('gf_odd'), 502, 'source.bad_gateway');
    expect(body.file_state).toBe('FROZEN');
    expect(String(body.detail)).toMatch(/unknown fileState/);
    expect(sim.requests.filter((e) => e.role === 'media').length).toBe(mediaBefore);
  });

  it('a media link answering HTML: 422 media.undecodable for wav; original bytes are not labelled audio', async () => {
    sim.set({ mediaBody: 'html' });
    try {
      const wav = await retrieve('gf_4', 'wav');
      problem(wav, 422, 'media.undecodable');
      const orig = await retrieve('gf_4', 'original');
      expect(orig.status).toBe(200);
      expect(String(orig.headers['content-type'])).not.toMatch(/^audio\//);
      expect(orig.headers['content-type']).toBe('application/octet-stream');
      expect(orig.headers['x-audio-codec']).toBe('unknown');
      expect(orig.body.toString()).toMatch(/^<!DOCTYPE html>/);
      const play = await player('gf_4');
      expect(String(play.headers['content-type'])).not.toMatch(/^audio\//);
    } finally {
      sim.set({ mediaBody: 'recording' });
    }
  });

  it('truncated media (Content-Length longer than sent): the client transfer is aborted, never ended cleanly', async () => {
    sim.set({ mediaTruncateAfter: 100_000 });
    try {
      const r = await retrieve('gf_big', 'original');
      expect(r.status).toBe(200);
      expect(r.complete).toBe(false);
      expect(r.body.length).toBeLessThan(BIG.length);
      expect(r.trailers['x-content-sha256']).toBeUndefined();
      const p = await player('gf_big');
      expect(p.status).toBe(200);
      expect(Number(p.headers['content-length'])).toBe(BIG.length);
      expect(p.complete).toBe(false);
      expect(p.body.length).toBeLessThan(BIG.length);
      // The audit trail records the broken stream.
      const events = (await gw.deps.auditRepo.query({ tenantId: 'acme', limit: 1000 })).items.filter((e) => e.ref === 'gf_big' && e.action.endsWith('.end'));
      expect(events.length).toBeGreaterThanOrEqual(2);
      for (const e of events) expect(e.outcome).toBe('failed');
    } finally {
      sim.set({ mediaTruncateAfter: undefined });
    }
  });

  it('a rate-limit storm: 50 concurrent requests through a burst of 429s all end clearly, with no thundering herd', async () => {
    await retrieve('gf_5'); // a warm token, so the storm is about the API only
    sim.clearLog();
    sim.rateLimitNext(30, 1);
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => retrieve(`gf_${i % 10}`)));
    const known = new Set(['source.unavailable', 'source.timeout']);
    for (const r of results) {
      if (r.status === 200) {
        expect(r.complete).toBe(true);
        continue;
      }
      expect(known.has(JSON.parse(r.body.toString()).code), r.body.toString()).toBe(true);
    }
    expect(results.filter((r) => r.status === 200).length).toBe(50);
    const api = sim.requests.filter((e) => e.role === 'api');
    const limited = api.filter((e) => e.status === 429);
    expect(limited).toHaveLength(30);
    // While Retry-After runs, nothing reaches the API; afterwards no second wave of 429s.
    const closedAt = Math.min(...limited.map((e) => e.at));
    expect(api.filter((e) => e.at > closedAt + 100 && e.at < closedAt + 900)).toEqual([]);
    expect(api.length).toBeLessThanOrEqual(50 * 2 + 30);
    expect(sim.requests.filter((e) => e.role === 'login')).toHaveLength(0);
  });

  it('no token, secret or media link leaks into the gateway logs, error bodies or the audit trail', async () => {
    const all = [...sim.requests, ...loginSim.requests];
    const tokens = new Set(all.filter((e) => e.role === 'api').map((e) => String(e.headers.authorization ?? '').replace(/^Bearer /, '')).filter((t) => t.length > 10));
    // The log was cleared before the storm: a fresh request adds the current token and link to the sample.
    expect((await retrieve('gf_6')).status).toBe(200);
    for (const e of sim.requests.filter((x) => x.role === 'api')) tokens.add(String(e.headers.authorization).replace(/^Bearer /, ''));
    const linkTokens = new Set(sim.requests.filter((e) => e.role === 'media').map((e) => e.path.slice('/media/'.length)));
    expect(tokens.size).toBeGreaterThan(0);
    expect(linkTokens.size).toBeGreaterThan(0);
    const basics = [SECRET, WRONG_SECRET].map((s) => Buffer.from(`custodian-sim:${s}`).toString('base64'));
    const logs = gw.logs.join('\n');
    expect(logs.length).toBeGreaterThan(1000);
    const bodies = responses.filter((r) => r.status >= 400).map((r) => r.body.toString() + JSON.stringify(r.headers));
    expect(bodies.length).toBeGreaterThan(10);
    const audit = JSON.stringify((await gw.deps.auditRepo.query({ tenantId: 'acme', limit: 1000 })).items);
    for (const [name, text] of [
      ['logs', logs],
      ['error bodies', bodies.join('\n')],
      ['audit trail', audit],
    ] as const) {
      for (const t of tokens) expect(text.includes(t), `${name} contain a bearer token`).toBe(false);
      for (const l of linkTokens) expect(text.includes(l), `${name} contain a media link`).toBe(false);
      expect(text.includes(`${sim.mediaBaseUrl}/media/`), `${name} contain a media URL`).toBe(false);
      for (const s of [SECRET, WRONG_SECRET, ...basics]) expect(text.includes(s), `${name} contain a client secret`).toBe(false);
    }
  });
});
