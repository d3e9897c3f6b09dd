import { request as httpRequest } from 'node:http';
import { KEYS, bearer, type TestGateway } from './gateway.js';

export interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  trailers: Record<string, string | undefined>;
  complete: boolean;
}

/** node:http rather than fetch: trailers, raw headers and "did the transfer complete" are what we test. */
export function raw(url: string, opts: { method?: string; headers?: Record<string, string>; body?: string | Buffer } = {}): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method: opts.method ?? 'GET', headers: opts.headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      const done = () =>
        resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks), trailers: res.trailers, complete: res.complete });
      res.on('end', done);
      res.on('error', done);
      res.on('aborted', done);
    });
    req.on('error', reject);
    if (opts.body !== undefined) req.write(opts.body);
    req.end();
  });
}

export function post(gw: TestGateway, body: unknown, key = KEYS.acme, extraHeaders: Record<string, string> = {}) {
  return raw(`${gw.url}/api/v1/recordings/retrieve`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...bearer(key), ...extraHeaders },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

