import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { exchange } from '../../test/support/raw-socket.js';
import { clientErrorHandler, watchConnections } from './client-error.js';

describe('clientErrorHandler on a bare Node server', () => {
  it('headers too slow to arrive (Node headersTimeout): 408 request.timeout in problem+json, then close', async () => {
    const logs: string[] = [];
    const log = pino({ level: 'info' }, { write: (s: string) => void logs.push(s) });
    // requestTimeout 0 as in app.ts: only the headers are timed.
    const server = createServer({ headersTimeout: 200, requestTimeout: 0, connectionsCheckingInterval: 50 }, (_req, res) => res.end('ok'));
    server.on('clientError', clientErrorHandler(log));
    watchConnections(server, log);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const x = await exchange((server.address() as AddressInfo).port, 'GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ', { timeoutMs: 5_000 });
      expect(x.closedByServer).toBe(true);
      expect(x.answers).toHaveLength(1);
      expect(x.answers[0]!.status).toBe(408);
      expect(x.answers[0]!.headers['content-type']).toBe('application/problem+json');
      expect(JSON.parse(x.answers[0]!.body.toString())).toMatchObject({ code: 'request.timeout', status: 408, request_id: x.answers[0]!.headers['x-request-id'] });
      expect(logs.map((l) => JSON.parse(l))).toEqual([expect.objectContaining({ code: 'request.timeout', parser_error: 'ERR_HTTP_REQUEST_TIMEOUT' })]);
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });
});
