import type { FastifyPluginAsync } from 'fastify';
import type { AppDeps } from '../deps.js';
import { EvidenceJobs } from './evidence/jobs.js';
import { type EvidenceSigner, keyServiceSigner } from './evidence/signer.js';
import { consoleApiRoutes } from './routes.js';
import { DEFAULT_WEB_DIR, consoleStatic } from './static.js';
import { catalogRevocations, sharedTicketKey } from './ticket-key.js';
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
    // Sealed tickets: any instance checks them with the shared key; revocations are catalog rows.
    const tickets = new MediaTicketStore(sharedTicketKey(deps), catalogRevocations(deps), opts.tickets);
    // The gateway's key service signs (the local keyring's Ed25519 key, or KMS); looked up per package.
    const fixed = opts.signer;
    const getSigner = fixed ? async () => fixed : () => keyServiceSigner(deps.keys);
    const jobs = new EvidenceJobs(deps, getSigner);
    jobs.startWorkers();
    void jobs.purgeLeftovers();
    const sweep = setInterval(() => void tickets.sweep().catch((e: unknown) => deps.logger.warn({ err: e }, 'media ticket sweep failed')), 60_000);
    sweep.unref();
    app.addHook('onClose', async () => {
      clearInterval(sweep);
      await jobs.close();
    });
    await app.register(consoleApiRoutes(deps, { tickets, jobs, signer: getSigner }));
    const oidc = deps.config.console.oidc;
    await app.register(
      consoleStatic(opts.webDir ?? DEFAULT_WEB_DIR, oidc ? { connectOrigins: [...new Set([new URL(oidc.issuer).origin, ...oidc.connect_origins])], callbackPath: oidc.redirect_path } : {}),
    );
  };
}
