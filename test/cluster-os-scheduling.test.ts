import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Served, alive, logLines, serve, until, workersSeen, writeConfig } from './support/serve-process.js';

/**
 * server.worker_scheduling: "os" — the workers accept on the shared socket themselves (node:cluster
 * SCHED_NONE) instead of the primary handing each connection over. The kernel decides who gets a
 * connection, so this checks that it serves and stops cleanly, not how evenly it spreads.
 */
describe('custodian serve with server.worker_scheduling: os', () => {
  let dir: string;
  let srv: Served;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'custodian-cluster-os-'));
  });
  afterAll(async () => {
    for (const pid of [srv?.child.pid, ...(srv ? workersSeen(srv).values() : [])]) if (pid && alive(pid)) process.kill(pid, 'SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves on one port from both workers and stops cleanly', async () => {
    srv = serve(writeConfig(dir, { data_dir: join(dir, 'data'), server: { port: 0, workers: 2, worker_scheduling: 'os', shutdown_grace_ms: 500 } }));
    const url = await until('custodian listening', srv, () => logLines(srv).find((l) => l.msg === 'custodian listening')?.address as string | undefined);
    expect(workersSeen(srv).size).toBe(2);
    const answers = await Promise.all(Array.from({ length: 30 }, () => fetch(`${url}/healthz`, { headers: { connection: 'close' } })));
    expect(answers.map((r) => r.status)).toEqual(Array(30).fill(200));
    for (const r of answers) expect(['1', '2']).toContain(r.headers.get('x-custodian-worker'));
    const workers = [...workersSeen(srv).values()];
    srv.child.kill('SIGTERM');
    expect(await srv.exited).toBe(0);
    expect(workers.filter(alive)).toEqual([]);
  }, 60_000);
});
