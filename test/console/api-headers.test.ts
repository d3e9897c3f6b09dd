import { request as httpRequest } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearer, type TestGateway } from '../support/gateway.js';
import { raw } from '../support/http.js';
import { CONSOLE_KEY, startConsoleGateway } from './support.js';

/** The request line as given (`pl%zzay` must reach the router undecoded). */
function rawPath(gw: TestGateway, path: string): Promise<{ status: number; headers: Record<string, unknown> }> {
  const u = new URL(gw.url);
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: u.hostname, port: u.port, path }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers }));
    });
    req.on('error', reject);
    req.end();
  });
}

/**
 * Every answer under /api — JSON, problem+json, media, whatever refused it — says nosniff and
 * no-referrer, like the console's static files; /openapi.json is not cached.
 */
describe('API response headers', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startConsoleGateway();
  });
  afterAll(async () => gw?.stop());

  const expectApiHeaders = (what: string, h: Record<string, unknown>) => {
    expect(h['x-content-type-options'], what).toBe('nosniff');
    expect(h['referrer-policy'], what).toBe('no-referrer');
  };

  it('JSON, problem+json (auth, 404, 405, schema, unroutable URL) and ticket-served media all carry nosniff and no-referrer', async () => {
    const ok = await raw(`${gw.url}/api/v1/whoami`, { headers: bearer(CONSOLE_KEY) });
    expect(ok.status).toBe(200);
    expectApiHeaders('whoami', ok.headers);

    const pub = await raw(`${gw.url}/api/v1/console/config`);
    expect(pub.status).toBe(200);
    expectApiHeaders('console config', pub.headers);

    const recording = await raw(`${gw.url}/api/v1/recordings/v_2001`, { headers: bearer(CONSOLE_KEY) });
    expectApiHeaders(`recording ${recording.status}`, recording.headers);

    for (const [what, r] of [
      ['401', await raw(`${gw.url}/api/v1/whoami`)],
      ['404', await raw(`${gw.url}/api/v1/no-such-thing`, { headers: bearer(CONSOLE_KEY) })],
      ['405', await raw(`${gw.url}/api/v1/whoami`, { method: 'DELETE', headers: bearer(CONSOLE_KEY) })],
      ['422', await raw(`${gw.url}/api/v1/media-tickets`, { method: 'POST', headers: { ...bearer(CONSOLE_KEY), 'content-type': 'application/json' }, body: '{}' })],
      ['401 ticket', await raw(`${gw.url}/api/v1/media-tickets/play?t=mt_${'A'.repeat(80)}`)],
    ] as const) {
      expect(r.headers['content-type'], what).toBe('application/problem+json');
      expectApiHeaders(what, r.headers);
    }
    const unroutable = await rawPath(gw, '/api/v1/media-tickets/pl%zzay?t=x');
    expect(unroutable.status).toBe(400);
    expect(unroutable.headers['content-type']).toBe('application/problem+json');
    expectApiHeaders('bad url', unroutable.headers);

    const issued = JSON.parse(
      (await raw(`${gw.url}/api/v1/media-tickets`, { method: 'POST', headers: { ...bearer(CONSOLE_KEY), 'content-type': 'application/json' }, body: JSON.stringify({ ref: 'v_2001', purpose: 'x' }) })).body.toString(),
    );
    const media = await raw(gw.url + issued.media_url, { headers: { range: 'bytes=0-43' } });
    expect(media.status).toBe(206);
    expectApiHeaders('ticket media', media.headers);
  });

  it('/openapi.json is not cached and not sniffed', async () => {
    const r = await raw(`${gw.url}/openapi.json`);
    expect(r.status).toBe(200);
    expect(r.headers['cache-control']).toBe('no-store');
    expect(r.headers['x-content-type-options']).toBe('nosniff');
  });
});
