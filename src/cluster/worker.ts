import cluster from 'node:cluster';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import { createLogger } from '../logger.js';
import { type Gateway, startGateway } from '../main.js';
import { CHANNEL, type WorkerMessage } from './messages.js';

const tell = (m: WorkerMessage) =>
  new Promise<void>((resolve) => {
    if (!process.send) return resolve();
    process.send(m, undefined, undefined, () => resolve());
  });

/**
 * One worker of `custodian serve` (server.workers > 1): a whole gateway on the shared port. It
 * tells the primary when it listens (or why it could not start, then exits 1), and closes
 * gracefully on SIGTERM/SIGINT (from the primary, or a terminal's Ctrl-C and systemd, which reach
 * every process of the group), exiting 0 once closed.
 */
export async function runWorker(config: Config, opts: { logger?: Logger } = {}): Promise<Gateway> {
  const me = cluster.worker;
  if (!me) throw new Error('runWorker: this process is not a cluster worker');
  const logger = opts.logger ?? createLogger(config.logging.level).child({ worker: me.id });
  let gw: Gateway | undefined;
  let stopAsked = false;
  let closing = false;
  const close = () => {
    stopAsked = true;
    // Asked while still starting: runs once the gateway is up (below).
    if (!gw || closing) return;
    closing = true;
    gw.close().then(
      () => process.exit(0),
      (e: unknown) => {
        logger.error({ err: e }, 'worker shutdown failed');
        process.exit(1);
      },
    );
  };
  // Handled before the gateway starts: a stop during start-up is not lost. `on`, not `once`: the
  // primary's SIGTERM and the group's signal (Ctrl-C, systemd) may both arrive; neither may kill mid-grace.
  process.on('SIGTERM', close);
  process.on('SIGINT', close);
  try {
    gw = await startGateway(config, { logger, clusterWorker: me.id });
  } catch (e) {
    logger.error({ err: e }, 'worker failed to start');
    await tell({ channel: CHANNEL, type: 'failed', reason: e instanceof Error ? e.message : String(e) });
    process.exit(1);
  }
  if (stopAsked) {
    close();
    return gw;
  }
  await tell({ channel: CHANNEL, type: 'ready', url: gw.url });
  return gw;
}
