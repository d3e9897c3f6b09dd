import net from 'node:net';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, postgresAvailable } from '../../test/support/postgres.js';
import { GenesysConnector } from './genesys/connector.js';
import { startGenesysSimulator } from './genesys/simulator.js';
import { configFor, copyOf, drain } from './genesys/test-helpers.js';
import { type BudgetStore, memoryBudgetStore, postgresBudgetStore, UNLIMITED_BUDGET } from './request-budget.js';

const never = () => new AbortController().signal;
const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A port nothing listens on (yet): connecting to it is refused. */
async function closedPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as net.AddressInfo;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** Listens on `port`: forwards to PostgreSQL ("it is back") or drops every connection at once, counting them. */
async function listenOn(port: number, mode: { forwardTo: URL } | 'drop') {
  const socks = new Set<net.Socket>();
  let connections = 0;
  const server = net.createServer((c) => {
    connections++;
    if (mode === 'drop') return void c.destroy();
    const u = net.connect(Number(mode.forwardTo.port || 5432), mode.forwardTo.hostname);
    socks.add(c);
    socks.add(u);
    c.pipe(u);
    u.pipe(c);
    c.on('error', () => u.destroy());
    u.on('error', () => c.destroy());
  });
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  return {
    connections: () => connections,
    close: () =>
      new Promise<void>((r) => {
        for (const x of socks) x.destroy();
        server.close(() => r());
      }),
  };
}

const outcome = (p: Promise<unknown>) => p.then(() => 'ok', (e: { code?: unknown; status?: unknown }) => `${String(e.code)} ${String(e.status)}`);

/** Takes n slots at once; returns when each was granted, in ms after the start. */
async function takeTimes(takers: { take(s: AbortSignal): Promise<void> }[]): Promise<number[]> {
  const t0 = Date.now();
  return Promise.all(takers.map((b) => b.take(never()).then(() => Date.now() - t0)));
}

describe('request budget (memory)', () => {
  it('a budget of 0 is no budget', () => {
    expect(memoryBudgetStore().budget('k', 0, 60_000)).toBe(UNLIMITED_BUDGET);
  });

  it('grants max slots per window and makes the rest wait for the next window', async () => {
    const b = memoryBudgetStore().budget('genesys:a', 3, 1_000);
    const times = (await takeTimes([b, b, b, b, b])).sort((x, y) => x - y);
    expect(times.slice(0, 3).every((t) => t < 300)).toBe(true);
    expect(times[3]).toBeGreaterThanOrEqual(800);
  });

  it('keys are separate budgets', async () => {
    const store = memoryBudgetStore();
    const times = await takeTimes([store.budget('a', 1, 1_000), store.budget('b', 1, 1_000)]);
    expect(Math.max(...times)).toBeLessThan(300);
  });

  it('pause holds every taker back for the while', async () => {
    const b = memoryBudgetStore().budget('p', 100, 60_000);
    await b.pause(1_000);
    const [t] = await takeTimes([b]);
    expect(t).toBeGreaterThanOrEqual(800);
  });

  it('a waiting take gives up when its caller does', async () => {
    const b = memoryBudgetStore().budget('x', 1, 10_000);
    await b.take(never());
    const ac = new AbortController();
    const waiting = b.take(ac.signal);
    setTimeout(() => ac.abort(), 50);
    await expect(waiting).rejects.toMatchObject({ code: expect.any(String) });
  });
});

describe.runIf(await postgresAvailable())('request budget across instances (PostgreSQL)', () => {
  let db: { url: string; drop: () => Promise<void> };
  const pools: pg.Pool[] = [];
  let a: BudgetStore;
  let b: BudgetStore;

  beforeAll(async () => {
    db = await createTestDatabase();
    // Two pools: two gateway instances on one catalog.
    for (let i = 0; i < 2; i++) {
      const pool = new pg.Pool({ connectionString: db.url, max: 4 });
      // As main.ts does: an idle connection dropped (here by the database's drop at the end) must not be an unhandled error.
      pool.on('error', () => {});
      pools.push(pool);
    }
    a = postgresBudgetStore(pools[0]!);
    b = postgresBudgetStore(pools[1]!);
  });
  afterAll(async () => {
    await Promise.all(pools.map((p) => p.end()));
    await db.drop();
  });

  /** A pool on a port of our own, which the test opens and closes: PostgreSQL down, and back. */
  function poolOn(port: number): pg.Pool {
    const url = new URL(db.url);
    url.hostname = '127.0.0.1';
    url.port = String(port);
    const pool = new pg.Pool({ connectionString: url.toString(), max: 3, connectionTimeoutMillis: 1_000 });
    pool.on('error', () => {});
    pools.push(pool);
    return pool;
  }
  const UNAVAILABLE = 'access.rate_limit_unavailable 503';

  it('a store that cannot start: no unhandled rejection, refused like the rate limiter (503), working again once PostgreSQL is back', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (e: unknown) => void unhandled.push(e);
    process.on('unhandledRejection', onUnhandled);
    const port = await closedPort();
    let front: Awaited<ReturnType<typeof listenOn>> | undefined;
    try {
      // As buildDeps does: the connector asks for its budget while PostgreSQL refuses connections.
      const store = postgresBudgetStore(poolOn(port));
      const budget = store.budget('genesys:down-at-start', 50, 1_000);
      await pause(300);
      expect(unhandled).toEqual([]);
      // The request in hand gets the rate limiter's answer when its store is down.
      expect(await outcome(budget.take(never()))).toBe(UNAVAILABLE);
      // PostgreSQL is back: after the retry interval the same budget, and another of its shape, work.
      front = await listenOn(port, { forwardTo: new URL(db.url) });
      await pause(1_100);
      expect(await outcome(budget.take(never()))).toBe('ok');
      expect(await outcome(store.budget('genesys:another-client', 50, 1_000).take(never()))).toBe('ok');
      await budget.pause(1_000);
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
      await front?.close();
    }
  });

  it('while the store stays down, a budget tries to reach it at most once a second', async () => {
    const port = await closedPort();
    const front = await listenOn(port, 'drop');
    try {
      const budget = postgresBudgetStore(poolOn(port)).budget('genesys:stays-down', 50, 1_000);
      await pause(300);
      expect(front.connections()).toBe(1);
      // A burst of requests: each refused at once, none of them another connection attempt.
      for (let i = 0; i < 10; i++) expect(await outcome(budget.take(never()))).toBe(UNAVAILABLE);
      expect(front.connections()).toBe(1);
      await pause(1_100);
      expect(await outcome(budget.take(never()))).toBe(UNAVAILABLE);
      expect(front.connections()).toBe(2);
    } finally {
      await front.close();
    }
  });

  it('a store lost mid-run refuses like the rate limiter (503), and serves again once it is back', async () => {
    const port = await closedPort();
    let front = await listenOn(port, { forwardTo: new URL(db.url) });
    try {
      const budget = postgresBudgetStore(poolOn(port)).budget('genesys:lost-mid-run', 50, 1_000);
      expect(await outcome(budget.take(never()))).toBe('ok');
      await front.close();
      expect(await outcome(budget.take(never()))).toBe(UNAVAILABLE);
      expect(await outcome(budget.pause(1_000))).toBe(UNAVAILABLE);
      front = await listenOn(port, { forwardTo: new URL(db.url) });
      expect(await outcome(budget.take(never()))).toBe('ok');
    } finally {
      await front.close();
    }
  });

  it('a Genesys request whose budget store is down gets that 503, not "Genesys not reachable" after retries', async () => {
    const sim = await startGenesysSimulator({ recordings: [{ conversationId: 'c1', recordingId: 'r1', bytes: Buffer.alloc(1_000, 7) }] });
    const connector = new GenesysConnector('acme', configFor(sim, { request_budget: { max: 1_000, window_ms: 60_000 } }), postgresBudgetStore(poolOn(await closedPort())));
    try {
      const t0 = Date.now();
      const err = await connector.open(copyOf('c1', 'r1'), { signal: never() }).then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toMatchObject({ code: 'access.rate_limit_unavailable', status: 503 });
      // Refused at once: the store's failure is not mistaken for the API's network failure and retried.
      expect(Date.now() - t0).toBeLessThan(1_000);
      expect(sim.requests.filter((e) => e.role === 'api')).toHaveLength(0);
    } finally {
      await connector.close();
      await sim.close();
    }
  });

  it('two instances share one budget for the same credentials', async () => {
    const key = `genesys:shared:${Date.now()}`;
    const ba = a.budget(key, 3, 2_000);
    const bb = b.budget(key, 3, 2_000);
    const times = (await takeTimes([ba, bb, ba, bb, ba, bb])).sort((x, y) => x - y);
    expect(times.filter((t) => t < 1_000)).toHaveLength(3);
    expect(times[3]).toBeGreaterThanOrEqual(1_500);
  });

  it('a 429 seen by one instance holds back the other (Genesys connectors against the simulator)', async () => {
    const sim = await startGenesysSimulator({ recordings: [{ conversationId: 'c1', recordingId: 'r1', bytes: Buffer.alloc(4_000, 7) }] });
    const cfg = configFor(sim, { request_budget: { max: 1_000, window_ms: 60_000 } });
    // Instance one's store tells the test when its pause has reached PostgreSQL: sharing is as
    // fast as that write, so the other instance is checked from then on.
    let paused!: () => void;
    const pauseShared = new Promise<void>((r) => (paused = r));
    const watched: BudgetStore = {
      budget: (key, max, windowMs) => {
        const inner = a.budget(key, max, windowMs);
        return { take: (s) => inner.take(s), pause: (ms) => inner.pause(ms).finally(paused) };
      },
    };
    const one = new GenesysConnector('acme', cfg, watched);
    const two = new GenesysConnector('acme', cfg, b);
    try {
      await one.check(never());
      await two.check(never());
      sim.clearLog();
      sim.rateLimitNext(1, 1);
      // Instance one meets the 429 (Retry-After: 1 s) and will retry after it.
      const first = one.open(copyOf('c1', 'r1'), { signal: never() }).then((m) => drain(m.body));
      while (!sim.requests.some((e) => e.status === 429)) await new Promise((r) => setTimeout(r, 5));
      const limitedAt = sim.requests.find((e) => e.status === 429)!.at;
      await pauseShared;
      const seen = sim.requests.length;
      // Instance two starts right after: sharing the pause, it sends nothing to the API until the pause has passed.
      const second = two.open(copyOf('c1', 'r1'), { signal: never() }).then((m) => drain(m.body));
      expect((await first).length).toBe(4_000);
      expect((await second).length).toBe(4_000);
      const later = sim.requests.slice(seen).filter((e) => e.role === 'api');
      expect(later.length).toBeGreaterThan(0);
      expect(Math.min(...later.map((e) => e.at)) - limitedAt).toBeGreaterThanOrEqual(800);
    } finally {
      await one.close();
      await two.close();
      await sim.close();
    }
  });
});
