import type { FastifyPluginAsync } from 'fastify';
import type { AppDeps } from '../deps.js';
import { EvidenceJobs } from './evidence/jobs.js';
import { type EvidenceSigner, keyServiceSigner } from './evidence/signer.js';
import { consoleApiRoutes } from './routes.js';
import { DEFAULT_WEB_DIR, consoleStatic } from './static.js';
import { MediaTicketStore, type TicketStoreOptions } from './tickets.js';

export interface ConsoleOptions {
  /** The built console (default: web/dist of this checkout). */
  webDir?: string;
  tickets?: TicketStoreOptions;
  /** Instead of the KeyService's signing key (tests). */
  signer?: EvidenceSigner;
}

/**
 * The auditor console: static files under /console/ and the API endpoints it adds (whoami, media
 * tickets, waveform, evidence packages). One line in app.ts registers it.
 */
export function consolePlugin(deps: AppDeps, opts: ConsoleOptions = {}): FastifyPluginAsync {
  return async (app) => {
    const tickets = new MediaTicketStore(opts.tickets);
    // The gateway's key service signs (the local keyring's Ed25519 key, or KMS); looked up per package.
    const fixed = opts.signer;
    const getSigner = fixed ? async () => fixed : () => keyServiceSigner(deps.keys);
    const jobs = new EvidenceJobs(deps, getSigner);
    void jobs.purgeLeftovers();
    const sweep = setInterval(() => tickets.sweep(), 60_000);
    sweep.unref();
    app.addHook('onClose', async () => {
      clearInterval(sweep);
      await jobs.close();
    });
    await app.register(consoleApiRoutes(deps, { tickets, jobs, signer: getSigner }));
    await app.register(consoleStatic(opts.webDir ?? DEFAULT_WEB_DIR));
  };
}
