/**
 * The floor of the design, measured beside custodian in the stream benchmark: the least any
 * gateway built like custodian could do — one Node process, one event loop, undici to the origin
 * as the legacy-http connector uses it, the body written to the client as it arrives — with
 * nothing else: no catalog, no audit, no auth, no sniffing. Two routes:
 *
 *   /plain/<path>  → origin/<path>, bytes passed through
 *   /sha/<path>    → the same, with a SHA-256 of every byte sent (what custodian's audit must
 *                    record for each download, src/http/meter.ts)
 *
 * custodian ÷ `/sha` is what custodian's own work costs; `/sha` ÷ nginx is the ceiling of the
 * design on this machine. Run as a child process (so its CPU is read from /proc like the gateway's):
 *
 *   node --import tsx bench/lib/bare-proxy.ts <origin-url>      (prints {"port": N} on IPC)
 */
import { createHash } from 'node:crypto';
import { type IncomingMessage, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pipeline } from 'node:stream/promises';
import { Agent, request } from 'undici';

const origin: string = process.argv[2] ?? '';
if (!origin) throw new Error('usage: bare-proxy.ts <origin-url>');
// The legacy-http connector's agent settings (src/sources/legacy-http/connector.ts).
const agent = new Agent({ connect: { timeout: 30_000 }, keepAliveTimeout: 10_000 });

async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const m = /^\/(plain|sha)(\/.*)$/.exec(req.url ?? '');
  if (!m) {
    res.writeHead(404).end();
    return;
  }
  const up = await request(origin + m[2]!, { dispatcher: agent });
  const headers: Record<string, string> = {};
  for (const h of ['content-type', 'content-length'] as const) {
    const v = up.headers[h];
    if (typeof v === 'string') headers[h] = v;
  }
  res.writeHead(up.statusCode, headers);
  // pipeline(), the cheapest pass-through measured here (a for-await loop with write/drain cost
  // ~0.4 CPU-s/GiB more); the hash listens beside it, adding no stream stage.
  if (m[1] === 'sha') {
    const hash = createHash('sha256');
    up.body.on('data', (chunk: Buffer) => hash.update(chunk));
    up.body.once('end', () => hash.digest('hex'));
  }
  await pipeline(up.body, res);
}

const server = createServer((req, res) => {
  handle(req, res).catch(() => res.destroy());
});
server.keepAliveTimeout = 30_000;
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address() as AddressInfo;
  process.send?.({ port });
});
process.on('disconnect', () => process.exit(0));
