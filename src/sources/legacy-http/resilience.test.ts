import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LegacyHttpConnector } from './connector.js';
import { startLegacySimulator, type LegacySimulator } from './simulator.js';
import { FIXTURE, FIXTURE_PATH, configFor, copyOf, drain, failure, signal } from './test-helpers.js';

const INUM = '800000000000101';
/** 135 KB of PCM: long enough to be cut or aborted midway at a slow rate. */
const BIG = Buffer.concat([FIXTURE, FIXTURE, FIXTURE, FIXTURE, FIXTURE, FIXTURE, FIXTURE, FIXTURE, FIXTURE, FIXTURE, FIXTURE, FIXTURE, FIXTURE, FIXTURE, FIXTURE, FIXTURE]);

let sim: LegacySimulator;
const open: LegacyHttpConnector[] = [];

function connector(over: Record<string, unknown> = {}): LegacyHttpConnector {
  const c = new LegacyHttpConnector('tenant-a', configFor(sim, over));
  open.push(c);
  return c;
}

beforeEach(async () => {
  sim = await startLegacySimulator({ provider: 'avaya_aura', recordings: [{ id: INUM, path: FIXTURE_PATH }, { id: 'big', bytes: BIG }] });
});

afterEach(async () => {
  await Promise.all(open.splice(0).map((c) => c.close()));
  await sim.close();
});

const statuses = () => sim.requests.map((e) => e.status);

describe('LegacyHttpConnector — failures, retries, timeouts, circuit breaker, aborts', () => {
  it('5xx before the first byte is retried with backoff, then succeeds', async () => {
    const c = connector({ max_retries: 3 });
    sim.failNext(2, 503);
    const m = await c.open(copyOf(INUM), { signal: signal() });
    expect((await drain(m.body)).equals(FIXTURE)).toBe(true);
    expect(statuses()).toEqual([503, 503, 200]);
    expect(c.stats()).toMatchObject({ retries: 2, requests: 3 });
  });

  it('a UCID search is retried too, then the replay', async () => {
    const s = await startLegacySimulator({ provider: 'avaya_aura', recordings: [{ id: INUM, ucid: 'U1', path: FIXTURE_PATH }] });
    try {
      const c = new LegacyHttpConnector('tenant-a', configFor(s));
      open.push(c);
      s.failNext(1, 502, 'api');
      s.failNext(1, 500, 'media');
      expect((await drain((await c.open(copyOf('ucid:U1'), { signal: signal() })).body)).equals(FIXTURE)).toBe(true);
      expect(s.requests.map((e) => `${e.path.split('/').pop()} ${e.status}`)).toEqual(['searchapi 502', 'searchapi 200', 'replay 500', 'replay 200']);
    } finally {
      await s.close();
    }
  });

  it('5xx beyond max_retries: exactly 1 + max_retries attempts, then bad_gateway (500) or unavailable (503)', async () => {
    const c = connector({ max_retries: 2 });
    sim.failNext(3, 500);
    const e = await failure(c.open(copyOf(INUM), { signal: signal() }));
    expect(e.code).toBe('source.bad_gateway');
    expect(e.extra).toEqual({ source_status: 500 });
    expect(statuses()).toEqual([500, 500, 500]);
    sim.clearLog();
    sim.failNext(3, 503);
    expect((await failure(c.open(copyOf(INUM), { signal: signal() }))).code).toBe('source.unavailable');
    expect(statuses()).toEqual([503, 503, 503]);
    sim.clearLog();
    const none = connector({ max_retries: 0 });
    sim.failNext(1, 504);
    expect((await failure(none.open(copyOf(INUM), { signal: signal() }))).code).toBe('source.timeout');
    expect(statuses()).toEqual([504]);
  });

  it('a transfer reset mid-body errors the body (never a clean short end) and is not retried', async () => {
    sim.set({ resetAfterBytes: 20_000 });
    const c = connector();
    const m = await c.open(copyOf('big'), { signal: signal() });
    let ended = false;
    m.body.on('end', () => {
      ended = true;
    });
    const e = await failure(drain(m.body));
    expect(e.code).toBe('source.unavailable');
    expect(e.message).toMatch(/broke|ended/);
    expect(ended).toBe(false);
    expect(sim.requests).toHaveLength(1);
    expect(JSON.stringify({ m: e.message, x: e.extra })).not.toMatch(/127\.0\.0\.1|replay\?/);
  });

  it('a slow source (latency > timeout_ms) fails fast with source.timeout, retries included', async () => {
    sim.set({ latencyMs: 3_000 });
    const c = connector({ timeout_ms: 300, max_retries: 3 });
    const t0 = Date.now();
    const e = await failure(c.open(copyOf(INUM), { signal: signal() }));
    const took = Date.now() - t0;
    expect(e.code).toBe('source.timeout');
    expect(e.status).toBe(504);
    expect(took).toBeGreaterThanOrEqual(280);
    expect(took).toBeLessThan(1_500);
  });

  it('a slow body is fine: bytes trickle in within the per-chunk timeout', async () => {
    sim.set({ bytesPerSecond: 40_000 });
    const c = connector({ timeout_ms: 500 });
    const m = await c.open(copyOf(INUM), { signal: signal() });
    expect((await drain(m.body)).equals(FIXTURE)).toBe(true);
  });

  it('the circuit opens after consecutive failures (fast source.unavailable, nothing sent), then a trial call closes it', async () => {
    const c = connector({ max_retries: 0, circuit_breaker: { failures: 3, half_open_after_ms: 400 } });
    sim.failNext(3, 503);
    for (let i = 0; i < 3; i++) expect((await failure(c.open(copyOf(INUM), { signal: signal() }))).code).toBe('source.unavailable');
    expect(sim.requests).toHaveLength(3);
    expect(c.stats().circuit).toBe('open');
    const t0 = Date.now();
    const fast = await failure(c.open(copyOf(INUM), { signal: signal() }));
    expect(Date.now() - t0).toBeLessThan(50);
    expect(fast.code).toBe('source.unavailable');
    expect(fast.extra).toEqual({ circuit: 'open' });
    expect(fast.headers['Retry-After']).toBe('1');
    expect((await failure(c.check(signal()))).extra).toEqual({ circuit: 'open' });
    expect(sim.requests).toHaveLength(3);
    await new Promise((r) => setTimeout(r, 450));
    expect((await drain((await c.open(copyOf(INUM), { signal: signal() })).body)).equals(FIXTURE)).toBe(true);
    expect(c.stats()).toMatchObject({ circuit: 'closed', circuitOpenings: 1, circuitRejections: 2 });
  });

  it('not-found, refused credentials and aborts do not open the circuit', async () => {
    const c = connector({ max_retries: 0, circuit_breaker: { failures: 1, half_open_after_ms: 60_000 } });
    expect((await failure(c.open(copyOf('404'), { signal: signal() }))).code).toBe('source.object_missing');
    sim.failNext(1, 401);
    expect((await failure(c.open(copyOf(INUM), { signal: signal() }))).code).toBe('source.auth_failed');
    const ac = new AbortController();
    sim.set({ latencyMs: 500 });
    const p = c.open(copyOf(INUM), { signal: ac.signal });
    setTimeout(() => ac.abort(), 30);
    await failure(p);
    sim.set({ latencyMs: 0 });
    expect(c.stats().circuit).toBe('closed');
    expect((await drain((await c.open(copyOf(INUM), { signal: signal() })).body)).equals(FIXTURE)).toBe(true);
  });

  it('aborting while waiting for headers stops the request at once', async () => {
    sim.set({ latencyMs: 2_000 });
    const c = connector();
    const ac = new AbortController();
    const t0 = Date.now();
    const p = c.open(copyOf(INUM), { signal: ac.signal });
    setTimeout(() => ac.abort(), 50);
    const e = await failure(p);
    expect(e.code).toBe('source.unavailable');
    expect(e.message).toBe('request aborted');
    expect(Date.now() - t0).toBeLessThan(500);
    await new Promise((r) => setTimeout(r, 50));
    expect(sim.requests).toHaveLength(1);
    expect(sim.requests[0]?.clientClosed).toBe(true);
    expect((await failure(c.open(copyOf(INUM), { signal: ac.signal }))).message).toBe('request aborted');
  });

  it('aborting mid-body closes the body and the upstream transfer', async () => {
    sim.set({ bytesPerSecond: 50_000 });
    const c = connector();
    const ac = new AbortController();
    const m = await c.open(copyOf('big'), { signal: ac.signal });
    const closed = new Promise<void>((resolve) => m.body.once('close', () => resolve()));
    m.body.once('data', () => ac.abort());
    m.body.on('error', () => {});
    m.body.resume();
    const t0 = Date.now();
    await closed;
    expect(Date.now() - t0).toBeLessThan(500);
    await new Promise((r) => setTimeout(r, 100));
    const entry = sim.requests[0];
    expect(entry?.clientClosed).toBe(true);
    expect(entry?.bytesSent ?? 0).toBeLessThan(BIG.length);
  });

  it('destroying the body (client went away) stops the upstream transfer too', async () => {
    sim.set({ bytesPerSecond: 50_000 });
    const c = connector();
    const m = await c.open(copyOf('big'), { signal: signal() });
    m.body.once('data', () => m.body.destroy());
    m.body.resume();
    await new Promise<void>((resolve) => m.body.once('close', () => resolve()));
    await new Promise((r) => setTimeout(r, 150));
    expect(sim.requests[0]?.clientClosed).toBe(true);
  });

  it('a source that is down is source.unavailable (after the bounded retries)', async () => {
    const down = await startLegacySimulator({ provider: 'avaya_aura' });
    const cfg = configFor(down, { max_retries: 1 });
    await down.close();
    const c = new LegacyHttpConnector('tenant-a', cfg);
    open.push(c);
    const e = await failure(c.open(copyOf(INUM), { signal: signal() }));
    expect(e.code).toBe('source.unavailable');
    expect(e.message).toMatch(/ECONNREFUSED/);
    expect(c.stats().retries).toBe(1);
    expect((await failure(c.check(signal()))).code).toBe('source.unavailable');
  });

  it('a redirect is not followed: source.bad_gateway, nothing sent to the target', async () => {
    const c = connector({ max_retries: 0 });
    sim.failNext(1, 302);
    const e = await failure(c.open(copyOf(INUM), { signal: signal() }));
    expect(e.code).toBe('source.bad_gateway');
    expect(e.message).toMatch(/redirect/);
    expect(sim.requests).toHaveLength(1);
  });

  it('a closed connector refuses further reads', async () => {
    const c = connector();
    await c.close();
    expect((await failure(c.open(copyOf(INUM), { signal: signal() }))).code).toBe('source.unavailable');
  });
});
