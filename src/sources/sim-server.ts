import type { Server } from 'node:http';

/**
 * Helpers every simulator (Genesys, legacy recorders, OIDC provider) shares.
 */

/** Stops listening and cuts keep-alive sockets (clients' agents would otherwise hold close() open). */
export function closeServers(servers: Server[]): Promise<void> {
  return Promise.all(
    servers.map(
      (s) =>
        new Promise<void>((resolve) => {
          s.close(() => resolve());
          s.closeAllConnections();
        }),
    ),
  ).then(() => undefined);
}

/** The value after `--name` on the command line of a simulator started standalone. */
export function cliArg(name: string, argv: string[] = process.argv): string | undefined {
  const i = argv.indexOf(name);
  return i > 0 ? argv[i + 1] : undefined;
}
