import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KEYS, bearer, startTestGateway, type TestGateway } from './support/gateway.js';
import { type RawResponse, raw } from './support/http.js';

/**
 * A path the gateway serves, asked with a method it does not take, is 405 with an Allow header —
 * it was 404 request.not_found like a path nothing serves. Strangers still get 401 first on
 * authenticated paths, and every such refusal is audited like the 404 was.
 */
describe('405 for a method a path does not take', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startTestGateway({ config: (doc) => (doc.auth.rate_limit = { max: 1000, window_ms: 60_000 }) });
  });
  afterAll(async () => gw?.stop());

  function allowOf(res: RawResponse): string[] {
    return String(res.headers['allow'] ?? '')
      .split(',')
      .map((m) => m.trim())
      .filter(Boolean);
  }

  async function expectProblem(res: RawResponse, status: number, code: string) {
    expect(res.status, res.body.toString()).toBe(status);
    expect(res.headers['content-type']).toBe('application/problem+json');
    const body = JSON.parse(res.body.toString());
    expect(body).toMatchObject({ status, code, type: `https://custodian.dev/errors/${code}` });
    expect(body.request_id).toBe(res.headers['x-request-id']);
    return body as { request_id: string; detail: string };
  }

  async function auditEventOf(requestId: string) {
    return gw.deps.catalog.db.selectFrom('audit_events').selectAll().where('http_request_id', '=', requestId).executeTakeFirst();
  }

  it.each(['PUT', 'DELETE', 'PATCH'])('%s on a recording is 405 with Allow: GET, HEAD', async (method) => {
    const res = await raw(`${gw.url}/api/v1/recordings/avaya_8923`, { method, headers: bearer(KEYS.acme) });
    const body = await expectProblem(res, 405, 'request.method_not_allowed');
    expect(allowOf(res)).toEqual(['GET', 'HEAD']);
    expect(body.detail).toContain(method);
    expect(res.headers['cache-control']).toBe('no-store');
  });

  it('a GET on POST-only endpoints is 405 with Allow: POST', async () => {
    for (const path of ['/api/v1/recordings/avaya_8923/integrity', '/api/v1/holds/h-1/release', '/api/v1/media-tickets']) {
      const res = await raw(`${gw.url}${path}`, { headers: bearer(KEYS.acme) });
      await expectProblem(res, 405, 'request.method_not_allowed');
      expect(allowOf(res), path).toEqual(['POST']);
    }
  });

  it('lists every method of every route that matches the path', async () => {
    // POST /api/v1/recordings/retrieve, and GET /api/v1/recordings/:ref with ref "retrieve"
    const res = await raw(`${gw.url}/api/v1/recordings/retrieve`, { method: 'PUT', headers: bearer(KEYS.acme) });
    await expectProblem(res, 405, 'request.method_not_allowed');
    expect(allowOf(res)).toEqual(['GET', 'HEAD', 'POST']);
  });

  it('OPTIONS is not routed: it is refused too, and not listed', async () => {
    const res = await raw(`${gw.url}/api/v1/recordings/avaya_8923`, { method: 'OPTIONS', headers: bearer(KEYS.acme) });
    await expectProblem(res, 405, 'request.method_not_allowed');
    expect(allowOf(res)).toEqual(['GET', 'HEAD']);
  });

  it('a path no route matches under any method stays 404 request.not_found', async () => {
    await expectProblem(await raw(`${gw.url}/api/v2/nothing`, { headers: bearer(KEYS.acme) }), 404, 'request.not_found');
    const put = await raw(`${gw.url}/api/v2/nothing`, { method: 'PUT', headers: bearer(KEYS.acme) });
    await expectProblem(put, 404, 'request.not_found');
    expect(put.headers['allow']).toBeUndefined();
    // and so does one under a route's prefix that no route pattern covers
    await expectProblem(await raw(`${gw.url}/api/v1/recordings/avaya_8923/nope`, { method: 'PUT', headers: bearer(KEYS.acme) }), 404, 'request.not_found');
    // no credentials: as before, an unknown path is 404 for anyone
    await expectProblem(await raw(`${gw.url}/api/v2/nothing`, { method: 'PUT' }), 404, 'request.not_found');
  });

  it('an unauthenticated PUT on an authenticated path is 401 first, and audited', async () => {
    const res = await raw(`${gw.url}/api/v1/recordings/avaya_8923`, { method: 'PUT' });
    const body = await expectProblem(res, 401, 'auth.missing');
    expect(res.headers['www-authenticate']).toMatch(/^Bearer/);
    expect(res.headers['allow']).toBeUndefined();
    const forged = await raw(`${gw.url}/api/v1/recordings/avaya_8923`, { method: 'PUT', headers: bearer('cst_acme-reader_' + 'z'.repeat(32)) });
    await expectProblem(forged, 401, 'auth.invalid_token');
    expect(forged.headers['allow']).toBeUndefined();
    const ev = await auditEventOf(body.request_id);
    expect(ev).toMatchObject({ status: 401, error_code: 'auth.missing', principal_id: null });
  });

  it('paths that need no credentials answer 405 without them', async () => {
    const res = await raw(`${gw.url}/healthz`, { method: 'POST' });
    await expectProblem(res, 405, 'request.method_not_allowed');
    expect(allowOf(res)).toEqual(['GET', 'HEAD']);
    // console static files: wildcard route, no crash
    const consoleRes = await raw(`${gw.url}/console/index.html`, { method: 'DELETE' });
    await expectProblem(consoleRes, 405, 'request.method_not_allowed');
    expect(allowOf(consoleRes)).toEqual(['GET', 'HEAD']);
  });

  it('writes an audit event for the 405, with the principal', async () => {
    const res = await raw(`${gw.url}/api/v1/recordings/avaya_8923`, { method: 'DELETE', headers: { ...bearer(KEYS.acme), 'user-agent': 'method-test' } });
    const body = await expectProblem(res, 405, 'request.method_not_allowed');
    const ev = await auditEventOf(body.request_id);
    expect(ev, 'audit event for the 405').toBeTruthy();
    expect(ev).toMatchObject({ status: 405, error_code: 'request.method_not_allowed', tenant_id: 'acme', principal_id: expect.any(String), user_agent: 'method-test' });
    // and through the tenant's audit query, as the auditors read it
    const items = (await gw.deps.auditRepo.query({ tenantId: 'acme', limit: 1000 })).items;
    expect(items.find((e) => e.httpRequestId === body.request_id)).toMatchObject({ status: 405, errorCode: 'request.method_not_allowed' });
  });
});
