import { randomUUID } from 'node:crypto';
import { type IncomingMessage, maxHeaderSize, type Server, ServerResponse, STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { FastifyBaseLogger, FastifyServerOptions } from 'fastify';
import { AppError } from '../errors.js';
import { problemBody } from './problem.js';

/**
 * Requests Node's HTTP parser refuses before fastify sees them (bytes that are not HTTP/1.1, a header
 * section over the size limit, headers too slow to arrive, an HTTP/1.1 request without Host, CONNECT).
 * They are answered here in problem+json with a code and an X-Request-Id like every other refusal,
 * and the connection is closed: after a parse error the rest of its bytes cannot be framed.
 *
 * Not audited: no request was parsed, so there is no principal, tenant, route or resource to record,
 * and a flood of garbage must not grow the evidence chain (docs/AUDIT.md). One log line instead,
 * with the codes only — never the bytes (the parser's error carries them in `rawPacket`).
 *
 * Order on a connection: a request parsed before the bad bytes is already being handled. Node's and
 * fastify's default answer is written at once and the socket destroyed under it, so its client gets
 * 400 for a request that was (SQLite) or was half (PostgreSQL) acted on. Here the refusal waits until
 * the answers of those requests are written, then follows them and closes.
 */

/** Per connection, the requests whose whole message was read and whose answer is not written yet. */
const inFlight = new WeakMap<Socket, Set<IncomingMessage>>();
/** Per connection, the refusal waiting for those answers. */
const pending = new WeakMap<Socket, () => void>();
/** Connections already refused: an errored parser reports again on every later chunk. */
const refused = new WeakSet<Socket>();

/** An answer still to be written ahead of the refusal; a request cut off mid-body by the bad bytes will never have one. */
function answersAhead(socket: Socket): boolean {
  for (const req of inFlight.get(socket) ?? []) if (req.complete) return true;
  return false;
}

function problemResponse(e: AppError, requestId: string): string {
  const body = JSON.stringify(problemBody(e, requestId));
  return [
    `HTTP/1.1 ${e.status} ${STATUS_CODES[e.status]}`,
    'Content-Type: application/problem+json',
    `Content-Length: ${Buffer.byteLength(body)}`,
    'Cache-Control: no-store',
    'X-Content-Type-Options: nosniff',
    `X-Request-Id: ${requestId}`,
    `Date: ${new Date().toUTCString()}`,
    'Connection: close',
    '',
    body,
  ].join('\r\n');
}

function refuse(socket: Socket, e: AppError, log: FastifyBaseLogger, context: Record<string, string>): void {
  if (refused.has(socket)) return;
  refused.add(socket);
  const requestId = randomUUID();
  const waited = answersAhead(socket);
  log.info({ code: e.code, status: e.status, request_id: requestId, ...context, after_answers_in_flight: waited }, 'request refused before routing');
  const write = (): void => {
    pending.delete(socket);
    // Node's rule for this hook: nothing is written to a socket that cannot take it.
    if (!socket.writable) return void socket.destroy();
    // end, not write + destroy: what is still buffered (the answers ahead, then this one) goes out before the close.
    socket.end(problemResponse(e, requestId), () => socket.destroy());
  };
  if (waited) pending.set(socket, write);
  else write();
}

function parserRefusal(err: { code?: string }): AppError {
  switch (err.code) {
    case 'HPE_HEADER_OVERFLOW':
      return new AppError('request.header_too_large', `the request line and headers exceed ${maxHeaderSize} bytes`);
    case 'HPE_CHUNK_EXTENSIONS_OVERFLOW':
      return new AppError('request.too_large', 'the chunk extensions of the request body are too large');
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return new AppError('request.timeout');
    default:
      return new AppError('request.malformed', `the request is not well-formed HTTP/1.1${/^HPE_[A-Z_]+$/.test(err.code ?? '') ? ` (${err.code})` : ''}`);
  }
}

/** fastify's `clientErrorHandler` (Node's `clientError` event): replaces fastify's plain-JSON default. */
export function clientErrorHandler(log: FastifyBaseLogger): NonNullable<FastifyServerOptions['clientErrorHandler']> {
  return (err, socket) => {
    // Node's rule for this hook: a reset connection is gone, there is no one to answer.
    if (err.code === 'ECONNRESET' || socket.destroyed) return;
    refuse(socket, parserRefusal(err), log, { parser_error: err.code ?? 'unknown' });
  };
}

/**
 * Keeps, per connection, the requests whose answers are being written (for the ordering above), and
 * answers CONNECT: Node hands it to `connect` listeners only, and without one closes the connection
 * silently. The gateway is an origin server, not a proxy: there is no resource for a tunnel target
 * (host:port), so no 405 with an Allow list — the request is one this server does not take, 400.
 */
export function watchConnections(server: Server, log: FastifyBaseLogger): void {
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const socket = req.socket;
    let reqs = inFlight.get(socket);
    if (!reqs) inFlight.set(socket, (reqs = new Set()));
    reqs.add(req);
    // 'close' comes once the answer is handed to the socket, or when the connection dies first.
    res.once('close', () => {
      reqs.delete(req);
      if (!answersAhead(socket)) pending.get(socket)?.();
    });
  });
  server.on('connect', (_req: IncomingMessage, socket: Duplex) => {
    // Node removed its own error listener before emitting connect: a reset must not become an uncaught error.
    socket.on('error', () => {});
    refuse(socket as Socket, new AppError('request.malformed', 'CONNECT is not supported: the gateway is an origin server, not a proxy'), log, { method: 'CONNECT' });
  });
}

/**
 * http.createServer's `ServerResponse` class. Node refuses an HTTP/1.1 request without Host itself
 * (`requireHostHeader`, RFC 9112 §3.2) with a bare `400` and no body, before any `request` event; it
 * is the only answer a Host-less HTTP/1.1 request can get, so its head is replaced here by the
 * problem+json refusal. Every other response passes through untouched.
 */
export function gatewayServerResponse(log: FastifyBaseLogger): typeof ServerResponse {
  // The class is generic over the request type in @types/node; Node builds it with its IncomingMessage.
  return class GatewayServerResponse extends ServerResponse {
    override writeHead(statusCode: number, ...rest: unknown[]): this {
      const req = this.req as IncomingMessage | undefined;
      if (statusCode === 400 && req?.httpVersion === '1.1' && req.headers.host === undefined && !this.headersSent) {
        const requestId = randomUUID();
        const e = new AppError('request.malformed', 'an HTTP/1.1 request must carry a Host header');
        log.info({ code: e.code, status: e.status, request_id: requestId, method: req.method }, 'request refused before routing');
        const body = Buffer.from(JSON.stringify(problemBody(e, requestId)));
        super.writeHead(400, {
          'Content-Type': 'application/problem+json',
          'Content-Length': body.length,
          'Cache-Control': 'no-store',
          'X-Content-Type-Options': 'nosniff',
          'X-Request-Id': requestId,
          Connection: 'close',
        });
        // Node ends the response right after this head (with no body of its own).
        this.write(body);
        return this;
      }
      return Reflect.apply(super.writeHead, this, [statusCode, ...rest]) as this;
    }
  } as typeof ServerResponse;
}
