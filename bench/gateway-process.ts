/**
 * The gateway alone in a process, for benchmarks that read its RSS and CPU from /proc.
 * Started by bench/lib/gateway.ts spawnGateway() with a JSON spec file ({ doc, seed }); talks
 * over the IPC channel: sends { type: 'ready', url }, answers { id, cmd: 'stats' | 'reset-logs' | 'stop' }.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { parseConfig } from '../src/config/load.js';
import { startGateway } from '../src/main.js';
import { type ChildSpec, LogTally, auditCounts, seedInto, tallyLogger } from './lib/gateway.js';

const specPath = process.argv[2];
if (!specPath || !process.send) {
  console.error('usage: started by bench/lib/gateway.ts spawnGateway() (needs an IPC channel and a spec file)');
  process.exit(2);
}
const send = (m: unknown) => process.send?.(m);

try {
  const spec = JSON.parse(readFileSync(specPath, 'utf8')) as ChildSpec;
  const config = parseConfig(spec.doc, {});
  const logs = new LogTally();
  const gw = await startGateway(config, { logger: tallyLogger(config.logging.level, logs) });
  await seedInto(gw, spec.seed);
  process.on('message', async (m: { id: number; cmd: string }) => {
    switch (m.cmd) {
      case 'stats': {
        const mem = process.memoryUsage();
        send({
          id: m.id,
          value: {
            rss: mem.rss,
            heapUsed: mem.heapUsed,
            external: mem.external,
            arrayBuffers: mem.arrayBuffers,
            fds: readdirSync('/proc/self/fd').length,
            activeHandles: (process as unknown as { _getActiveHandles(): unknown[] })._getActiveHandles().length,
            logs: logs.snapshot(),
            audit: await auditCounts(gw),
            transcoder: { active: gw.deps.transcoder.active, queued: gw.deps.transcoder.queued },
          },
        });
        break;
      }
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
  send({ type: 'ready', url: gw.url });
} catch (e) {
  send({ type: 'failed', error: (e as Error).stack ?? String(e) });
  process.exit(1);
}
