import { setMaxListeners } from 'node:events';
import { Agent } from 'undici';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Secret } from '../../config/secret.js';
import { errorCodeOf } from './test-helpers.js';
import { startGenesysSimulator, type GenesysSimulator } from './simulator.js';
import { TokenSource, loginRetryAfterMs as retryAfterOf, refreshMarginMs } from './token-source.js';

let sim: GenesysSimulator;
let agent: Agent;
let clock = 1_000_000;
// One signal shared by up to 100 concurrent callers in these tests: each removes its listener when done.
const signal = new AbortController().signal;
setMaxListeners(200, signal);

function source(secret = 'custodian-sim-secret'): TokenSource {
  return new TokenSource({
    loginBaseUrl: sim.loginBaseUrl,
    clientId: 'custodian-sim',
    clientSecret: new Secret(secret, 'inline'),
    dispatcher: agent,
    timeoutMs: 2_000,
    now: () => clock,
  });
}

beforeEach(async () => {
  sim = await startGenesysSimulator({ tokenLifetimeS: 100 });
  agent = new Agent();
  clock = 1_000_000;
});

afterEach(async () => {
  await agent.close();
  await sim.close();
});

describe('TokenSource', () => {
  it('refreshes 10 % (at most 60 s) before expiry', () => {
    expect(refreshMarginMs(86_400_000)).toBe(60_000);
    expect(refreshMarginMs(300_000)).toBe(30_000);
  });

  it('is single-flight: 100 concurrent callers, one login, one token', async () => {
    const ts = source();
    const tokens = await Promise.all(Array.from({ length: 100 }, () => ts.get(signal)));
    expect(new Set(tokens).size).toBe(1);
    expect(sim.logins).toBe(1);
    expect(ts.logins).toBe(1);
  });

  it('caches, then refreshes ahead of expiry in the background while the old token still serves', async () => {
    const ts = source();
    const t1 = await ts.get(signal);
    clock += 89_000;
    expect(await ts.get(signal)).toBe(t1);
    expect(sim.logins).toBe(1);
    clock += 2_000; // past refreshAt (90 s), before expiry (100 s)
    expect(await ts.get(signal)).toBe(t1);
    await new Promise((r) => setTimeout(r, 50));
    expect(sim.logins).toBe(2);
    const t2 = await ts.get(signal);
    expect(t2).not.toBe(t1);
    clock += 200_000; // far past expiry: a blocking login
    const t3 = await ts.get(signal);
    expect(t3).not.toBe(t2);
    expect(sim.logins).toBe(3);
  });

  it('invalidate(token) ignores a token that a re-login already replaced', async () => {
    const ts = source();
    const t1 = await ts.get(signal);
    ts.invalidate(t1);
    const t2 = await ts.get(signal);
    ts.invalidate(t1); // a late 401 of a request that used t1
    expect(await ts.get(signal)).toBe(t2);
    expect(sim.logins).toBe(2);
  });

  it('a refused login is source.auth_failed and never names the secret', async () => {
    const ts = source('not-the-secret');
    const e = await ts.get(signal).catch((x: unknown) => x as Error);
    expect(errorCodeOf(e)).toBe('source.auth_failed');
    expect(JSON.stringify({ m: (e as Error).message, e })).not.toContain('not-the-secret');
    expect(ts.loginFailures).toBe(1);
  });

  it('a refused login is remembered for refusalHoldMs: callers fail at once, with no login storm; then it is tried again', async () => {
    const ts = new TokenSource({
      loginBaseUrl: sim.loginBaseUrl,
      clientId: 'custodian-sim',
      clientSecret: new Secret('not-the-secret', 'inline'),
      dispatcher: agent,
      timeoutMs: 2_000,
      now: () => clock,
      refusalHoldMs: 10_000,
    });
    const first = await ts.get(signal).catch((x: unknown) => x);
    expect(errorCodeOf(first)).toBe('source.auth_failed');
    const again = await Promise.all(Array.from({ length: 20 }, () => ts.get(signal).catch((x: unknown) => x)));
    for (const e of again) expect(e).toMatchObject({ code: 'source.auth_failed', extra: { genesys_status: 401, refusal_cached: true } });
    expect(sim.loginAttempts).toBe(1);
    clock += 10_001;
    await ts.get(signal).catch(() => {});
    expect(sim.loginAttempts).toBe(2);
    // Fixed credentials (a rotated secret file) are used as soon as the hold ends, and a success clears it.
    sim.set({ clients: [{ id: 'custodian-sim', secret: 'not-the-secret' }] });
    clock += 10_001;
    expect(typeof (await ts.get(signal))).toBe('string');
    expect(sim.loginAttempts).toBe(3);
  });

  it('a 429 from the login endpoint: one request, source.unavailable with its Retry-After, and no login until it has passed', async () => {
    sim.failNext(1, { status: 429, scope: 'login', retryAfterS: 30 });
    const ts = source();
    const first = await ts.get(signal).catch((x: unknown) => x);
    expect(first).toMatchObject({ code: 'source.unavailable', status: 503, headers: { 'Retry-After': '30' }, extra: { genesys_status: 429 } });
    // How long to wait, for a caller that can (the API client holds its requests at its 429 gate).
    expect(retryAfterOf(first)).toBe(30_000);
    expect(sim.loginAttempts).toBe(1);
    expect(ts.loginFailures).toBe(1);
    clock += 10_000;
    const concurrent = await Promise.all(Array.from({ length: 20 }, () => ts.get(signal).catch((x: unknown) => x)));
    for (const e of concurrent) {
      expect(e).toMatchObject({ code: 'source.unavailable', headers: { 'Retry-After': '20' }, extra: { genesys_status: 429 } });
      expect(retryAfterOf(e)).toBe(20_000);
    }
    expect(sim.loginAttempts).toBe(1);
    clock += 20_000;
    expect(typeof (await ts.get(signal))).toBe('string');
    expect(sim.loginAttempts).toBe(2);
  });

  it('a caller that gives up does not cancel the shared login', async () => {
    const ts = source();
    const ac = new AbortController();
    const a = ts.get(ac.signal);
    const b = ts.get(signal);
    ac.abort();
    await expect(a).rejects.toMatchObject({ code: 'source.unavailable' });
    expect(typeof (await b)).toBe('string');
    expect(sim.logins).toBe(1);
  });
});
