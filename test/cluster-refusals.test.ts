import { mkdtempSync, rmSync } from 'node:fs';
import { type AddressInfo, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { alive, logLines, serve, writeConfig } from './support/serve-process.js';

/**
 * `custodian serve` with server.workers: what is refused before forking (exit 78, the field
 * named; src/config/server-workers.test.ts has every bad value), and a cluster that cannot start.
 */
describe('custodian serve refuses what a cluster cannot do', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'custodian-cluster-bad-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('server.workers: "many" → exit 78 naming the field', async () => {
    const s = serve(writeConfig(dir, { data_dir: join(dir, 'data'), server: { port: 0, workers: 'many' } }));
    expect(await s.exited).toBe(78);
    expect(s.out()).toMatch(/server\.workers: must be an integer from 1 to 64, or "auto"/);
  });

  it('an in-memory SQLite catalog with two workers → exit 78 naming server.workers', async () => {
    const s = serve(writeConfig(dir, { data_dir: join(dir, 'data'), server: { port: 0, workers: 2 }, catalog: { driver: 'sqlite', path: ':memory:' } }));
    expect(await s.exited).toBe(78);
    expect(s.out()).toMatch(/server\.workers: 2 workers cannot share catalog\.path ":memory:"/);
  });

  it('gives up with the reason when a worker cannot start (port taken), leaving no worker behind', async () => {
    const taken = createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
    const port = (taken.address() as AddressInfo).port;
    try {
      const s = serve(writeConfig(dir, { data_dir: join(dir, 'data'), server: { port, workers: 2, shutdown_grace_ms: 500 } }));
      expect(await s.exited).toBe(1);
      expect(s.out()).toMatch(/custodian: a worker failed to start 3 times in a row: .*EADDRINUSE/);
      const forked = logLines(s).flatMap((l) => (l.msg === 'worker failed to start; retrying' ? [Number(l.pid)] : []));
      expect(forked.length).toBeGreaterThan(0);
      expect(forked.filter(alive)).toEqual([]);
    } finally {
      taken.close();
    }
  }, 40_000);
});
