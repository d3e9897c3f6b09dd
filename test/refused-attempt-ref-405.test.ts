import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KEYS, bearer, startTestGateway, type TestGateway } from './support/gateway.js';
import { raw } from './support/http.js';

/**
 * A wrong method on a recording's path (405, or the 401 that comes first for a stranger) is
 * recorded with the recording the path names, like any other refused attempt
 * (refused-attempt-ref.test.ts): no route ran, so the ref is read from the path the way the
 * routes there read it, under the same rule (a ref the route would refuse is not recorded).
 */
describe('a 405 on a recording path names the recording', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startTestGateway({ config: (doc) => (doc.auth.rate_limit = { max: 1000, window_ms: 60_000 }) });
  });
  afterAll(async () => gw?.stop());

  const eventOf = async (httpRequestId: string) =>
    gw.deps.catalog.db.selectFrom('audit_events').selectAll().where('http_request_id', '=', httpRequestId).executeTakeFirstOrThrow();

  it.each([
    ['DELETE a recording (405)', 'DELETE', '/api/v1/recordings/avaya_1', bearer(KEYS.acme), 405],
    ['PUT its media (405)', 'PUT', '/api/v1/recordings/avaya_1/media', bearer(KEYS.acme), 405],
    ['GET a POST-only recording path (405)', 'GET', '/api/v1/recordings/avaya_1/integrity', bearer(KEYS.acme), 405],
    ['DELETE without a credential (401 first)', 'DELETE', '/api/v1/recordings/avaya_1', {}, 401],
    ['a percent-encoded ref is recorded decoded', 'DELETE', '/api/v1/recordings/avaya%5F1', bearer(KEYS.acme), 405],
  ])('%s', async (_n, method, path, headers, status) => {
    const res = await raw(`${gw.url}${path}`, { method, headers: headers as Record<string, string> });
    expect(res.status, res.body.toString()).toBe(status);
    const ev = await eventOf(String(res.headers['x-request-id']));
    expect(ev.ref, 'the affected resource').toBe('avaya_1');
  });

  it.each([
    ['longer than a ref may be (257 characters)', `/api/v1/recordings/${'r'.repeat(257)}`],
    ['a control character', '/api/v1/recordings/avaya%01x'],
    // POST /api/v1/recordings/retrieve matches too: the path names no recording for sure.
    ['a path that is also a static route', '/api/v1/recordings/retrieve'],
  ])('no ref when %s', async (_n, path) => {
    const res = await raw(`${gw.url}${path}`, { method: 'PUT', headers: bearer(KEYS.acme) });
    expect(res.status, res.body.toString()).toBe(405);
    const ev = await eventOf(String(res.headers['x-request-id']));
    expect(ev.ref).toBeNull();
  });

  it('a 404 path records no ref', async () => {
    const res = await raw(`${gw.url}/api/v1/nothing/avaya_1`, { headers: bearer(KEYS.acme) });
    expect(res.status).toBe(404);
    expect((await eventOf(String(res.headers['x-request-id']))).ref).toBeNull();
  });
});
