/**
 * The gateway alone in a process, for benchmarks that read its RSS and CPU from /proc.
 * Started by bench/lib/gateway.ts spawnGateway() with a JSON spec file ({ doc, seed, workers? });
 * talks over the IPC channel: sends { type: 'ready', url, pids } (and { type: 'pids', pids } when
 * the set changes), answers { id, cmd: 'stats' | 'reset-logs' | 'stop' }.
 *
 * With `workers` > 1 (server.workers) this process is the cluster primary of that many gateway
 * workers, as `custodian serve` runs them (src/cluster/): it seeds the catalog once, forks, and
 * answers for all of them — stats are summed over the primary and the workers (`processes` has
 * each), `pids` lists them all (primary first). The workers run this same file and know it.
 */
import cluster from 'node:cluster';
import { readdirSync, readFileSync } from 'node:fs';
import { openCatalog } from '../src/catalog/database.js';
import { RecordingRepository } from '../src/catalog/recording-repository.js';
import { checkClusterConfig, prepareShared } from '../src/cluster/prepare.js';
import { startPrimary } from '../src/cluster/primary.js';
import { runWorker } from '../src/cluster/worker.js';
import { parseConfig } from '../src/config/load.js';
import type { Config } from '../src/config/schema.js';
import { type Gateway, startGateway } from '../src/main.js';
import { type ChildSpec, type ChildStats, LogTally, auditCounts, seedInto, seedRecordings, tallyLogger } from './lib/gateway.js';

const specPath = process.argv[2];
if (!specPath || !process.send) {
  console.error('usage: started by bench/lib/gateway.ts spawnGateway() (needs an IPC channel and a spec file)');
  process.exit(2);
}
const send = (m: unknown) => process.send?.(m);
/** Primary ↔ worker messages of this file (rate-limiter-flexible and src/cluster use their own channels). */
const BENCH = 'custodian:bench';

function processStats(logs: LogTally, gw?: Gateway): Omit<ChildStats, 'audit'> {
  const mem = process.memoryUsage();
  return {
    rss: mem.rss,
    heapTotal: mem.heapTotal,
    heapUsed: mem.heapUsed,
    external: mem.external,
    arrayBuffers: mem.arrayBuffers,
    fds: readdirSync('/proc/self/fd').length,
    activeHandles: (process as unknown as { _getActiveHandles(): unknown[] })._getActiveHandles().length,
    logs: logs.snapshot(),
    transcoder: { active: gw?.deps.transcoder.active ?? 0, queued: gw?.deps.transcoder.queued ?? 0 },
  };
}

async function single(spec: ChildSpec, config: Config): Promise<void> {
  const logs = new LogTally();
  const gw = await startGateway(config, { logger: tallyLogger(config.logging.level, logs) });
  await seedInto(gw, spec.seed);
  process.on('message', async (m: { id: number; cmd: string }) => {
    switch (m.cmd) {
      case 'stats':
        send({ id: m.id, value: { ...processStats(logs, gw), audit: await auditCounts(gw) } satisfies ChildStats });
        break;
      case 'reset-logs':
        logs.reset();
        send({ id: m.id, value: null });
        break;
      case 'stop':
        await gw.close();
        process.exit(0);
    }
  });
  // The parent went away: do not linger.
  process.on('disconnect', () => void gw.close().finally(() => process.exit(0)));
  send({ type: 'ready', url: gw.url, pids: [process.pid] });
}

/** A cluster worker: the gateway, answering the primary's stats questions. */
async function worker(config: Config): Promise<void> {
  const logs = new LogTally();
  const gw = await runWorker(config, { logger: tallyLogger(config.logging.level, logs) });
  process.on('message', async (m: { channel?: string; id: number; cmd: string }) => {
    if (m?.channel !== BENCH) return;
    if (m.cmd === 'reset-logs') logs.reset();
    const value = m.cmd === 'stats' ? { ...processStats(logs, gw), audit: await auditCounts(gw), pid: process.pid } : null;
    send({ channel: BENCH, id: m.id, value });
  });
}

async function primary(spec: ChildSpec, config: Config): Promise<void> {
  checkClusterConfig(config);
  // Once, before any worker: migrations and keys (as `custodian serve` does), then the seed.
  await prepareShared(config);
  const cat = openCatalog(config);
  await seedRecordings(new RecordingRepository(cat.db), spec.seed);
  await cat.close();
  const logs = new LogTally();
  const pids = (workers: number[]) => [process.pid, ...workers];
  const c = startPrimary(config, { logger: tallyLogger(config.logging.level, logs), onWorkersChanged: (w) => send({ type: 'pids', pids: pids(w) }) });
  let seq = 0;
  const waiting = new Map<number, (v: unknown) => void>();
  cluster.on('message', (_w, m: { channel?: string; id: number; value: unknown }) => {
    if (m?.channel !== BENCH) return;
    waiting.get(m.id)?.(m.value);
    waiting.delete(m.id);
  });
  const askAll = (cmd: string) =>
    Promise.all(
      Object.values(cluster.workers ?? {}).map(
        (w) =>
          new Promise<unknown>((resolve) => {
            const id = ++seq;
            waiting.set(id, resolve);
            w!.send({ channel: BENCH, id, cmd }, () => {});
          }),
      ),
    );
  const stop = () => void c.stop().then((code) => process.exit(code));
  process.on('message', async (m: { id: number; cmd: string }) => {
    switch (m.cmd) {
      case 'stats': {
        const own = processStats(logs);
        const workers = (await askAll('stats')) as (ChildStats & { pid: number })[];
        const sum = (k: 'rss' | 'heapTotal' | 'heapUsed' | 'external' | 'arrayBuffers' | 'fds' | 'activeHandles') => workers.reduce((s, w) => s + w[k], own[k]);
        const merged = new LogTally();
        for (const l of [own.logs, ...workers.map((w) => w.logs)]) for (const [k, n] of Object.entries(l)) merged.counts.set(k, (merged.counts.get(k) ?? 0) + n);
        send({
          id: m.id,
          value: {
            rss: sum('rss'),
            heapTotal: sum('heapTotal'),
            heapUsed: sum('heapUsed'),
            external: sum('external'),
            arrayBuffers: sum('arrayBuffers'),
            fds: sum('fds'),
            activeHandles: sum('activeHandles'),
            logs: merged.snapshot(),
            // One catalog: any worker's count is the whole trail's.
            audit: workers[0]?.audit ?? {},
            transcoder: { active: workers.reduce((s, w) => s + w.transcoder.active, 0), queued: workers.reduce((s, w) => s + w.transcoder.queued, 0) },
            processes: [
              { pid: process.pid, role: 'primary', rss: own.rss, heapUsed: own.heapUsed },
              ...workers.map((w) => ({ pid: w.pid, role: 'worker' as const, rss: w.rss, heapUsed: w.heapUsed })),
            ],
          } satisfies ChildStats,
        });
        break;
      }
      case 'reset-logs':
        logs.reset();
        await askAll('reset-logs');
        send({ id: m.id, value: null });
        break;
      case 'stop':
        stop();
    }
  });
  process.on('disconnect', stop);
  const url = await c.ready;
  send({ type: 'ready', url, pids: pids(c.pids()) });
}

try {
  const spec = JSON.parse(readFileSync(specPath, 'utf8')) as ChildSpec;
  const config = parseConfig(spec.doc, {});
  if (cluster.isWorker) await worker(config);
  else if (config.server.workers > 1) await primary(spec, config);
  else await single(spec, config);
} catch (e) {
  send({ type: 'failed', error: (e as Error).stack ?? String(e) });
  process.exit(1);
}
