import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/** One request as the server saw it: its method, query parameter names (the SDK's x-id left out) and Range. */
export interface SeenRequest {
  method: string;
  query: string[];
  range: string | undefined;
}

export interface RawServer {
  endpoint: string;
  /** Every request received, in order. */
  seen: SeenRequest[];
  /** TCP connections open now. */
  open(): number;
  stop(): Promise<void>;
}

/**
 * A real HTTP server on loopback that answers as `handler` says — or not at all (`() => {}` holds
 * every request open): what an S3 endpoint that accepts and goes silent looks like to a client.
 */
export async function rawServer(handler: (req: IncomingMessage, res: ServerResponse, url: URL) => void): Promise<RawServer> {
  const seen: SeenRequest[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url!, 'http://x');
    seen.push({ method: req.method!, query: [...url.searchParams.keys()].filter((k) => k !== 'x-id'), range: req.headers.range });
    handler(req, res, url);
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    open: () => sockets.size,
    stop: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
