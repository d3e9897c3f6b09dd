import { createHash } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type LegacySimulator, startLegacySimulator } from '../src/sources/legacy-http/simulator.js';
import { usableCatalogs } from './support/catalogs.js';
import { AUDIO, KEYS, bearer, pollUntil, retrieveBody, startTestGateway, type TestGateway } from './support/gateway.js';
import { post, raw } from './support/http.js';

const FILE = 'call_mono_pcm16_8k.wav';
const PCM = readFileSync(join(AUDIO, FILE));
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const GRACE = 500;
/** close() past the grace period: the aborted attempts' cleanup and the rest of the shutdown. */
const MARGIN = 1500;

const legacy = (sim: LegacySimulator, extra: Record<string, unknown>) => ({ name: 'wan', type: 'legacy-http', provider: 'generic_http', api_endpoint: sim.endpoint, auth_type: 'none', max_retries: 0, source_systems: ['wan'], ...extra });

const stagedFiles = (gw: TestGateway) => readdirSync(join(gw.dir, 'staging'), { withFileTypes: true }).filter((f) => f.name.startsWith('job_')).map((f) => f.name);

/**
 * Shutting down while a job is staging from a slow source: close() waited for the whole fetch
 * (a legacy source at 6 KB/s: 22 s with a 500 ms grace period) — unbounded, growing with the
 * recording's size, past the cluster primary's SIGKILL. Now the running attempts get the grace
 * period, then are aborted: each job goes back to the queue at once, the attempt refunded, its
 * partial staging removed, and another instance on the same catalog finishes it right away.
 */
describe.each(await usableCatalogs())('shutdown with job attempts running, on %s', (kind) => {
  it('a worker-claimed job mid-staging: close() returns within the grace period, the job is queued again as it was, another instance finishes it', async () => {
    const sim = await startLegacySimulator({ provider: 'generic_http', recordings: [{ id: 'slow-1', path: join(AUDIO, FILE) }], knobs: { bytesPerSecond: 6_000, auth: 'none' } });
    const jobs = { poll_interval_ms: 50, heartbeat_ms: 100, lease_ms: 30_000, retry_base_ms: 60_000, staging_ttl_ms: 60_000 };
    const a = await startTestGateway({
      catalog: kind,
      sources: { acme: [legacy(sim, { mode: 'async' })] },
      config: (doc) => {
        doc.server.shutdown_grace_ms = GRACE;
        doc.jobs = jobs;
      },
    });
    let b: TestGateway | undefined;
    try {
      await a.seed([{ call_id: 'c-slow', source_system: 'wan', legacy_archive_id: 'slow-1' }]);
      const res = await post(a, retrieveBody({ target_recording_ref: 'c-slow', format_preference: 'original' }));
      expect(res.status, res.body.toString()).toBe(202);
      const { poll_endpoint, job_id } = JSON.parse(res.body.toString()) as { poll_endpoint: string; job_id: string };
      for (;;) {
        const s = JSON.parse((await raw(`${a.url}${poll_endpoint}`, { headers: bearer(KEYS.acme) })).body.toString());
        if (s.status === 'running' && s.bytes_done > 0) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      const running = (await a.deps.jobs.get('acme', job_id))!;
      expect(running).toMatchObject({ status: 'running', attempts: 1 });
      expect(stagedFiles(a).length).toBe(1);

      const t0 = Date.now();
      await a.close();
      const took = Date.now() - t0;
      expect(took).toBeLessThan(GRACE + MARGIN);

      const back = (await a.deps.jobs.get('acme', job_id))!;
      expect(back).toMatchObject({ status: 'queued', attempts: 0, bytesDone: 0, leaseOwner: null, errorCode: null });
      expect(Date.parse(back.runAfter)).toBeLessThanOrEqual(Date.now());
      expect(stagedFiles(a)).toEqual([]);
      expect(a.logs.some((l) => l.includes('handed back to the queue'))).toBe(true);

      // Another instance on the same catalog takes it up at once (not after lease_ms, nor a backoff).
      sim.set({ bytesPerSecond: 0 });
      b = await startTestGateway({
        catalog: kind,
        sources: { acme: [legacy(sim, { mode: 'async' })] },
        config: (doc) => (doc.jobs = jobs),
        deps: { catalog: { ...a.catalogDb, close: async () => {} } },
      });
      const done = await pollUntil(b, poll_endpoint, ['ready', 'failed'], KEYS.acme, 10_000);
      expect(done).toMatchObject({ status: 'ready', bytes_done: PCM.length, bytes_total: PCM.length });
      expect((await b.deps.jobs.get('acme', job_id))!.attempts).toBe(1);
      const content = await raw(`${b.url}${done.content_endpoint}`, { headers: bearer(KEYS.acme) });
      expect(content.status).toBe(200);
      expect(sha256(content.body)).toBe(sha256(PCM));
    } finally {
      await b?.stop();
      await a.stop();
      await sim.close();
    }
  });

  it('a fetch handed to a 202 job: close() returns within the grace period, the job is queued again with its attempt refunded', async () => {
    const sim = await startLegacySimulator({ provider: 'generic_http', recordings: [{ id: 'slow-2', path: join(AUDIO, FILE) }], knobs: { latencyMs: 300, bytesPerSecond: 6_000, auth: 'none' } });
    const gw = await startTestGateway({
      catalog: kind,
      sources: { acme: [legacy(sim, { mode: 'auto', first_byte_budget_ms: 100 })] },
      config: (doc) => {
        doc.server.shutdown_grace_ms = GRACE;
        doc.jobs = { poll_interval_ms: 50, heartbeat_ms: 100, lease_ms: 30_000, retry_base_ms: 60_000 };
      },
    });
    try {
      await gw.seed([{ call_id: 'c-slow2', source_system: 'wan', legacy_archive_id: 'slow-2' }]);
      const res = await post(gw, retrieveBody({ target_recording_ref: 'c-slow2', format_preference: 'original' }));
      expect(res.status, res.body.toString()).toBe(202);
      const { job_id } = JSON.parse(res.body.toString()) as { job_id: string };
      expect(gw.deps.handedOff.size).toBe(1);
      for (;;) {
        if ((await gw.deps.jobs.get('acme', job_id))!.bytesDone > 0) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      const t0 = Date.now();
      await gw.close();
      expect(Date.now() - t0).toBeLessThan(GRACE + MARGIN);
      expect(gw.deps.handedOff.size).toBe(0);
      expect(await gw.deps.jobs.get('acme', job_id)).toMatchObject({ status: 'queued', attempts: 0, bytesDone: 0, leaseOwner: null, errorCode: null });
      expect(stagedFiles(gw)).toEqual([]);
    } finally {
      await gw.stop();
      await sim.close();
    }
  });

  it('a job that finishes within the grace period is not cut: it becomes ready', async () => {
    const sim = await startLegacySimulator({ provider: 'generic_http', recordings: [{ id: 'slow-3', path: join(AUDIO, FILE) }], knobs: { bytesPerSecond: 200_000, auth: 'none' } });
    const gw = await startTestGateway({
      catalog: kind,
      sources: { acme: [legacy(sim, { mode: 'async' })] },
      config: (doc) => {
        doc.server.shutdown_grace_ms = 5_000;
        doc.jobs = { poll_interval_ms: 50, heartbeat_ms: 100, lease_ms: 30_000 };
      },
    });
    try {
      await gw.seed([{ call_id: 'c-fast', source_system: 'wan', legacy_archive_id: 'slow-3' }]);
      const res = await post(gw, retrieveBody({ target_recording_ref: 'c-fast', format_preference: 'original' }));
      const { job_id } = JSON.parse(res.body.toString()) as { job_id: string };
      for (;;) {
        if ((await gw.deps.jobs.get('acme', job_id))!.status === 'running') break;
        await new Promise((r) => setTimeout(r, 20));
      }
      await gw.close();
      expect(await gw.deps.jobs.get('acme', job_id)).toMatchObject({ status: 'ready', attempts: 1, bytesDone: PCM.length });
    } finally {
      await gw.stop();
      await sim.close();
    }
  });
});
