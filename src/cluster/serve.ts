import cluster from 'node:cluster';
import type { Config } from '../config/schema.js';
import { createLogger } from '../logger.js';
import { checkTransport, startGateway } from '../main.js';
import { checkClusterConfig, prepareShared } from './prepare.js';
import { startPrimary } from './primary.js';
import { runWorker } from './worker.js';

/**
 * `custodian serve`: one gateway process (server.workers: 1), or a node:cluster primary and
 * server.workers gateway processes on one port. The same command runs in every role: a forked
 * worker comes back here and knows it is one. Resolves with an exit code when the process should
 * exit, or -1 while it serves (signals end it).
 */
export async function serve(config: Config): Promise<number> {
  if (cluster.isWorker) {
    await runWorker(config);
    return -1;
  }
  if (config.server.workers <= 1) {
    const gw = await startGateway(config);
    gw.deps.logger.info({ address: gw.url }, 'custodian listening');
    onSignals(() => gw.close().then(() => 0), 'once');
    return -1;
  }
  return servePrimary(config);
}

async function servePrimary(config: Config): Promise<number> {
  // Refusals that every worker would meet are the primary's to report, once.
  checkClusterConfig(config);
  checkTransport(config);
  const logger = createLogger(config.logging.level).child({ role: 'primary' });
  await prepareShared(config);
  const primary = startPrimary(config, { logger });
  onSignals(() => primary.stop(), 'on');
  primary.ready.then(
    (url) => logger.info({ address: url, workers: config.server.workers, pid: process.pid }, 'custodian listening'),
    () => {},
  );
  const code = await primary.done;
  // stderr in plain words as well as the JSON log: why the service stopped on its own.
  const why = primary.failure();
  if (why) console.error(`custodian: ${why}`);
  return code;
}

/**
 * SIGTERM/SIGINT: close gracefully, then exit with what the close says. One process keeps the old
 * way (`once`: a second Ctrl-C kills at once); the primary ignores repeats, its own deadline
 * SIGKILLs workers that outlive the grace period.
 */
function onSignals(close: () => Promise<number>, mode: 'once' | 'on'): void {
  let closing: Promise<number> | undefined;
  const stop = () => {
    closing ??= close().then(
      (code) => process.exit(code),
      () => process.exit(1),
    );
  };
  process[mode]('SIGINT', stop);
  process[mode]('SIGTERM', stop);
}
