/**
 * The per-principal rate limit of `server.workers` on SQLite is kept by the cluster primary
 * (clusterRateLimiter → RateLimiterCluster over IPC). A primary that does not answer must fail
 * the request closed (503 access.rate_limit_unavailable), never let it through unlimited.
 * The child process stands in for a worker; this test plays the primary.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';

const CHILD = fileURLToPath(new URL('./support/cluster-limiter-child.ts', import.meta.url));
const CHANNEL = 'rate_limiter_flexible'; // rate-limiter-flexible's IPC channel name
type Outcome = { result?: unknown; error?: string; ms: number };

let child: ChildProcess | undefined;
afterEach(() => child?.kill('SIGKILL'));

/** Starts the "worker"; `primary` sees each message it sends and may answer. */
function start(timeoutMs: number, primary: (msg: any, reply: (m: unknown) => void) => void): Promise<Outcome> {
  const c = fork(CHILD, [String(timeoutMs)], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  child = c;
  return new Promise((resolve, reject) => {
    c.on('message', (m: any) => {
      if (m?.channel === CHANNEL) primary(m, (r) => c.send(r as never));
      else resolve(m as Outcome);
    });
    c.once('exit', (code) => reject(new Error(`child exited (${code}) without an outcome`)));
  });
}

describe('cluster rate limiter when the primary does not answer', () => {
  it('no answer at all (not even to init): refused with access.rate_limit_unavailable after the timeout', async () => {
    const out = await start(400, () => {});
    expect(out.error).toBe('access.rate_limit_unavailable');
    expect(out.ms).toBeGreaterThanOrEqual(380);
  });

  it('init answered, then the primary stalls: the consume is refused, not let through', async () => {
    const seen: string[] = [];
    const out = await start(400, (m, reply) => {
      seen.push(m.type ?? m.func);
      if (m.type === 'init') reply({ channel: CHANNEL, type: 'init', keyPrefix: m.opts.keyPrefix });
    });
    expect(seen).toEqual(['init', 'consume']);
    expect(out.error).toBe('access.rate_limit_unavailable');
    expect(out.ms).toBeGreaterThanOrEqual(380);
  });

  it('a primary that answers is obeyed (the harness itself works): allowed', async () => {
    const out = await start(2000, (m, reply) => {
      if (m.type === 'init') reply({ channel: CHANNEL, type: 'init', keyPrefix: m.opts.keyPrefix });
      else if (m.func === 'consume') reply({ channel: CHANNEL, keyPrefix: m.keyPrefix, promiseId: m.promiseId, type: 'resolve', data: { remainingPoints: 9, msBeforeNext: 60_000, consumedPoints: 1, isFirstInDuration: true } });
    });
    expect(out.result).toEqual({ ok: true });
  });
});
