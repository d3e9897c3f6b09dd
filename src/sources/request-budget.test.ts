import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, postgresAvailable } from '../../test/support/postgres.js';
import { GenesysConnector } from './genesys/connector.js';
import { startGenesysSimulator } from './genesys/simulator.js';
import { configFor, copyOf, drain } from './genesys/test-helpers.js';
import { type BudgetStore, memoryBudgetStore, postgresBudgetStore, UNLIMITED_BUDGET } from './request-budget.js';

const never = () => new AbortController().signal;

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
