import { request as httpRequest } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearer, type TestGateway } from '../support/gateway.js';
import { raw } from '../support/http.js';
import { CONSOLE_KEY, startConsoleGateway } from './support.js';

/** Sends the request line as given (no URL normalisation: `//api/…` stays as it is). */
function rawPath(gw: TestGateway, method: string, path: string, headers: Record<string, string> = {}): Promise<number> {
  const u = new URL(gw.url);
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: u.hostname, port: u.port, method, path, headers }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode!));
    });
    req.on('error', reject);
    req.end();
  });
}

/**
 * The request log names the path, never a query string's values: a media ticket (a bearer secret),
 * an OIDC code and state, or a purpose of access (free text that may name a patient) must not reach
 * the log whatever URL — a near miss of the ticket route, of the OIDC callback, or a route that
 * takes a purpose — carries them.
 */
describe('the request log carries no query-string values', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startConsoleGateway();
  });
  afterAll(async () => gw?.stop());

  it('near misses of the ticket route, OIDC callback parameters and a purpose of access are logged by path only', async () => {
    const issued = await raw(`${gw.url}/api/v1/media-tickets`, {
      method: 'POST',
      headers: { ...bearer(CONSOLE_KEY), 'content-type': 'application/json' },
      body: JSON.stringify({ ref: 'v_2001', purpose: 'Case 9: review' }),
    });
    expect(issued.status).toBe(201);
    const mediaUrl: string = JSON.parse(issued.body.toString()).media_url;
    const ticket = mediaUrl.split('?t=')[1]!;
    const code = 'OIDCcode' + 'q'.repeat(24);
    const state = 'OIDCstate' + 'z'.repeat(24);
    const purpose = 'PatientJaneDoeDOB19700101';
    const secrets = [ticket, code, state, purpose];

    const sent: [string, string][] = [
      ['POST', `/api/v1/media-tickets/play?t=${ticket}`],
      ['GET', `/api/v1/media-tickets/play/?t=${ticket}`],
      ['GET', `//api/v1/media-tickets/play?t=${ticket}`],
      ['GET', `/api/v1/media-tickets/pl%zzay?t=${ticket}`],
      ['GET', `/api/v1/media-tickets/play?x=1&t=${ticket}`],
      ['GET', `/api/v1/media-tickets/play/?x=1&t=${ticket}`],
      ['GET', `/api/v1/media-tickets/play/?${ticket}`],
      ['GET', `/api/v1/media-tickets/play/${ticket}`],
      ['GET', `/console/callback/?code=${code}&state=${state}`],
      ['GET', `/console/callbac?state=${state}&code=${code}`],
      ['GET', `/api/v1/recordings/v_2001/waveform?points=100&purpose=${purpose}`],
      ['GET', `/api/v1/recordings/v_2001/waveform?purpose=${purpose}`],
    ];
    for (const [method, path] of sent) await rawPath(gw, method, path, bearer(CONSOLE_KEY));
    // Let the last "request completed" lines land.
    await new Promise((r) => setTimeout(r, 50));

    const log = gw.logs.join('\n');
    for (const s of secrets) expect(log, s).not.toContain(s);
    // What was asked is still there: the paths, and which parameters came with them.
    const urls = gw.logs.map((l) => JSON.parse(l)).filter((l) => l.msg === 'incoming request').map((l) => l.req.url as string);
    expect(urls).toEqual(
      expect.arrayContaining([
        '/api/v1/media-tickets/play?t=[redacted]',
        '/api/v1/media-tickets/play/?t=[redacted]',
        '//api/v1/media-tickets/play?t=[redacted]',
        '/api/v1/media-tickets/pl%zzay?t=[redacted]',
        '/api/v1/media-tickets/play/?x=[redacted]&t=[redacted]',
        '/console/callback/?code=[redacted]&state=[redacted]',
        '/console/callbac?state=[redacted]&code=[redacted]',
        '/api/v1/recordings/v_2001/waveform?points=[redacted]&purpose=[redacted]',
      ]),
    );
    // A query string without names (the ticket alone) leaves nothing but a marker; so does a ticket as a path segment.
    expect(urls).toContain('/api/v1/media-tickets/play/?[redacted]');
    expect(urls).toContain('/api/v1/media-tickets/play/[redacted]');
  });
});
