/**
 * A process with an IPC channel standing in for a node:cluster worker, for
 * test/cluster-limiter-timeout.test.ts: asks clusterRateLimiter for one request (the parent plays
 * the primary, or fails to) and reports the outcome and how long it took.
 */
import { clusterRateLimiter } from '../../src/access/rate-limit.js';

const timeoutMs = Number(process.argv[2]);
const limiter = clusterRateLimiter(10, 60_000, 'custodian_principal', timeoutMs);
const t0 = Date.now();
limiter.consume('acme:alice').then(
  (r) => process.send!({ result: r, ms: Date.now() - t0 }, () => process.exit(0)),
  (e: { code?: string; message: string }) => process.send!({ error: e.code ?? e.message, ms: Date.now() - t0 }, () => process.exit(0)),
);
