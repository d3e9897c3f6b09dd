import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { usableCatalogs } from './support/catalogs.js';
import { KEYS, bearer, retrieveBody, startTestGateway, type TestGateway } from './support/gateway.js';
import { post, raw } from './support/http.js';

/**
 * Every kind of bad input gets a problem+json body with a stable code, an audit event, and never
 * a 500. One gateway on SQLite: these paths do not depend on the catalog dialect (retrieve.test
 * covers both databases).
 */
describe('bad input and refused access', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startTestGateway({ config: (doc) => (doc.auth.rate_limit = { max: 1000, window_ms: 60_000 }) });
    await gw.seed([{ call_id: '2023-10-27T14:30:00Z-8923', legacy_archive_id: 'avaya_8923', locator: 'call_mono_pcm16_8k.wav' }]);
  });
  afterAll(async () => gw?.stop());

  async function expectProblem(res: Awaited<ReturnType<typeof raw>>, status: number, code: string) {
    expect(res.status, res.body.toString()).toBe(status);
    expect(res.headers['content-type']).toBe('application/problem+json');
    const body = JSON.parse(res.body.toString());
    expect(body).toMatchObject({ status, code, type: `https://custodian.dev/errors/${code}` });
    expect(body.request_id).toBe(res.headers['x-request-id']);
    expect(typeof body.detail).toBe('string');
    // and the refusal is evidence
    const ev = (await gw.deps.auditRepo.query({ tenantId: 'acme', limit: 1000 })).items.find((e) => e.httpRequestId === body.request_id);
    const anon = ev ?? (await gw.deps.catalog.db.selectFrom('audit_events').selectAll().where('http_request_id', '=', body.request_id).executeTakeFirst());
    expect(anon, `audit event for ${code}`).toBeTruthy();
    return body;
  }

  const BAD_BODIES: [string, string | Buffer, number, string][] = [
    ['malformed JSON', '{"request_id": ', 400, 'request.malformed_json'],
    ['empty body', '', 400, 'request.malformed_json'],
    ['JSON array', '[]', 422, 'request.invalid'],
    ['wrong type', JSON.stringify(retrieveBody({ include_metadata: 'yes' })), 422, 'request.invalid'],
    ['unknown field', JSON.stringify(retrieveBody({ sneaky: 1 })), 422, 'request.invalid'],
    ['unknown format', JSON.stringify(retrieveBody({ format_preference: 'flac' })), 422, 'request.invalid'],
    ['missing ref', JSON.stringify({ request_id: 'r1', caller_id: 'alice' }), 422, 'request.invalid'],
    ['control character in ref', JSON.stringify(retrieveBody({ target_recording_ref: 'avaya\u0000_8923' })), 422, 'request.invalid'],
    ['bidi override in ref', JSON.stringify(retrieveBody({ target_recording_ref: 'avaya\u202e8923' })), 422, 'request.invalid'],
    ['line separator in caller', JSON.stringify(retrieveBody({ caller_id: 'alice\u2028' })), 422, 'request.invalid'],
    // JSON.stringify writes a lone surrogate as the escape a client would send
    ['lone surrogate in ref', JSON.stringify(retrieveBody({ target_recording_ref: 'avaya_\ud800' })), 422, 'request.invalid'],
    ['lone low surrogate in request_id', JSON.stringify(retrieveBody({ request_id: '\udc00r' })), 422, 'request.invalid'],
    ['oversized ref', JSON.stringify(retrieveBody({ target_recording_ref: 'x'.repeat(300) })), 422, 'request.invalid'],
    // Free text too: fastify decoded these to U+FFFD and the audit recorded a purpose never sent.
    ['lone surrogate in purpose', JSON.stringify(retrieveBody({ purpose: 'audit \ud800 case 7' })), 422, 'request.invalid'],
    ['lone surrogate in a field name', JSON.stringify({ ...retrieveBody(), ['x\udc00']: 1 }), 422, 'request.invalid'],
    ['invalid UTF-8 bytes in purpose', Buffer.concat([Buffer.from(JSON.stringify(retrieveBody({ purpose: 'audit ' })).slice(0, -2)), Buffer.from([0xc3, 0x28]), Buffer.from('"}')]), 400, 'request.malformed_json'],
    ['deeply nested body', '['.repeat(20_000) + ']'.repeat(20_000), 422, 'request.invalid'],
    ['oversized body', JSON.stringify(retrieveBody({ purpose: 'p'.repeat(100_000) })), 413, 'request.too_large'],
  ];
  it.each(BAD_BODIES.map(([name, body, status, code]) => ({ name, body, status, code })))('$name → $status $code', async ({ body, status, code }) => {
    const res = Buffer.isBuffer(body)
      ? await raw(`${gw.url}/api/v1/recordings/retrieve`, { method: 'POST', headers: { 'content-type': 'application/json', ...bearer(KEYS.acme) }, body })
      : await post(gw, body);
    await expectProblem(res, status, code);
  });

  it('keeps well-formed text as sent: a purpose with an emoji (a surrogate pair) and a BOM before the body', async () => {
    const purpose = 'case 7 \u{1F600} ü';
    const body = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(JSON.stringify(retrieveBody({ purpose, format_preference: 'json' })))]);
    const res = await raw(`${gw.url}/api/v1/recordings/retrieve`, { method: 'POST', headers: { 'content-type': 'application/json', ...bearer(KEYS.acme) }, body });
    expect(res.status, res.body.toString()).toBe(200);
    const ev = (await gw.deps.auditRepo.query({ tenantId: 'acme', limit: 1000 })).items.find((e) => e.httpRequestId === res.headers['x-request-id']);
    expect(ev?.detail).toMatchObject({ purpose });
  });

  it('still refuses prototype poisoning in a body', async () => {
    const res = await post(gw, '{"request_id":"r","caller_id":"a","target_recording_ref":"avaya_8923","__proto__":{"x":1}}');
    expect(res.status).toBe(400);
    expect(JSON.parse(res.body.toString()).code).toBe('request.malformed_json');
  });

  it('refuses a non-JSON content type with 415', async () => {
    const res = await raw(`${gw.url}/api/v1/recordings/retrieve`, { method: 'POST', headers: { 'content-type': 'text/plain', ...bearer(KEYS.acme) }, body: 'hello' });
    await expectProblem(res, 415, 'request.unsupported_media_type');
  });

  it('treats unicode and path-traversal refs as plain lookups: 404, never a file read', async () => {
    await expectProblem(await post(gw, retrieveBody({ target_recording_ref: '../../../etc/passwd' })), 404, 'recording.not_found');
    await expectProblem(await post(gw, retrieveBody({ target_recording_ref: '録音-８９２３-ü' })), 404, 'recording.not_found');
    await expectProblem(await raw(`${gw.url}/api/v1/recordings/..%2F..%2Fetc%2Fpasswd/media`, { headers: bearer(KEYS.acme) }), 404, 'recording.not_found');
  });

  it.each([
    ['no Authorization header', {}, 401, 'auth.missing'],
    ['not a bearer', { authorization: 'Basic YWxpY2U6cHc=' }, 401, 'auth.invalid_token'],
    ['forged API key', bearer('cst_acme-reader_' + 'z'.repeat(32)), 401, 'auth.invalid_token'],
    ['unknown API key id', bearer('cst_nobody_' + 'z'.repeat(32)), 401, 'auth.invalid_token'],
    ['malformed API key', bearer('cst_x'), 401, 'auth.invalid_token'],
    ['a JWT when no IdP is configured', bearer('eyJhbGciOiJub25lIn0.eyJzdWIiOiJhbGljZSJ9.'), 401, 'auth.invalid_token'],
  ])('%s → %i', async (_name, headers, status, code) => {
    const res = await raw(`${gw.url}/api/v1/recordings/retrieve`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(headers as Record<string, string>) },
      body: JSON.stringify(retrieveBody()),
    });
    await expectProblem(res, status as number, code as string);
    expect(res.headers['www-authenticate']).toMatch(/^Bearer/);
  });

  it('checks scopes: an export-only key cannot read, a reader cannot read the audit trail', async () => {
    await expectProblem(await post(gw, retrieveBody({ caller_id: 'nobody' }), KEYS.acmeNoScope), 403, 'access.scope_missing');
    await expectProblem(await raw(`${gw.url}/api/v1/audit/events`, { headers: bearer(KEYS.acme) }), 403, 'access.scope_missing');
  });

  it.each([
    ['bytes=abc', 400, 'range.malformed'],
    ['items=0-1', 400, 'range.malformed'],
    ['bytes=10-5', 400, 'range.malformed'],
    ['bytes=999999999-', 416, 'range.not_satisfiable'],
    ['bytes=-0', 416, 'range.not_satisfiable'],
  ])('Range %s → %i', async (range, status, code) => {
    const res = await raw(`${gw.url}/api/v1/recordings/avaya_8923/media?format=original`, { headers: { ...bearer(KEYS.acme), range } });
    const body = await expectProblem(res, status as number, code as string);
    if (status === 416) {
      expect(res.headers['content-range']).toMatch(/^bytes \*\/\d+$/);
      expect(body.size).toBeGreaterThan(0);
    }
  });

  // These two were fastify's own JSON (not problem+json, no audit event), and a 101-character ref was 414 on GET although retrieve accepts 256.
  it('refuses a path that does not decode, or a segment longer than any ref, with problem bodies and an audit event', async () => {
    await expectProblem(await raw(`${gw.url}/api/v1/recordings/%`, { headers: bearer(KEYS.acme) }), 400, 'request.bad_url');
    await expectProblem(await raw(`${gw.url}/api/v1/recordings/%ED%A0%80/media`, { headers: bearer(KEYS.acme) }), 400, 'request.bad_url');
    await expectProblem(await raw(`${gw.url}/api/v1/recordings/${'0123456789'.repeat(308)}`, { headers: bearer(KEYS.acme) }), 414, 'request.uri_too_long');
    // the longest ref the retrieve body accepts, percent-encoded, is an ordinary lookup
    const longest = encodeURIComponent('録'.repeat(256));
    expect(longest.length).toBeGreaterThan(100);
    await expectProblem(await raw(`${gw.url}/api/v1/recordings/${longest}/media`, { headers: bearer(KEYS.acme) }), 404, 'recording.not_found');
  });

  it('rejects bad query strings and unknown routes with problem bodies', async () => {
    await expectProblem(await raw(`${gw.url}/api/v1/recordings?limit=0`, { headers: bearer(KEYS.acme) }), 422, 'request.invalid');
    await expectProblem(await raw(`${gw.url}/api/v1/recordings?from=yesterday`, { headers: bearer(KEYS.acme) }), 422, 'request.invalid');
    await expectProblem(await raw(`${gw.url}/api/v1/recordings?cursor=${Buffer.from('junk').toString('base64url')}`, { headers: bearer(KEYS.acme) }), 422, 'request.invalid');
    await expectProblem(await raw(`${gw.url}/api/v1/recordings/avaya_8923/media?format=json`, { headers: bearer(KEYS.acme) }), 422, 'request.invalid');
    await expectProblem(await raw(`${gw.url}/api/v2/nothing`, { headers: bearer(KEYS.acme) }), 404, 'request.not_found');
  });

  it('never answers 500 to random bodies', async () => {
    const junk = ['null', '1', '"x"', '{"request_id":null}', '{"__proto__":{"admin":true}}', '\u0000', '{"a":'.repeat(50)];
    for (const body of junk) {
      const res = await post(gw, body);
      expect(res.status, body).toBeGreaterThanOrEqual(400);
      expect(res.status, body).toBeLessThan(500);
    }
  });

  it('rate-limits a principal with 429 and Retry-After', async () => {
    const limited = await startTestGateway({ config: (doc) => (doc.auth.rate_limit = { max: 3, window_ms: 60_000 }) });
    try {
      const statuses: number[] = [];
      let last;
      for (let i = 0; i < 5; i++) {
        last = await raw(`${limited.url}/api/v1/recordings`, { headers: bearer(KEYS.acme) });
        statuses.push(last.status);
      }
      expect(statuses).toEqual([200, 200, 200, 429, 429]);
      expect(Number(last!.headers['retry-after'])).toBeGreaterThan(0);
      expect(JSON.parse(last!.body.toString()).code).toBe('access.rate_limited');
      // another principal still has its own budget
      expect((await raw(`${limited.url}/api/v1/recordings`, { headers: bearer(KEYS.globex) })).status).toBe(200);
    } finally {
      await limited.stop();
    }
  });

  it('does not log API keys', async () => {
    await post(gw, retrieveBody());
    const all = gw.logs.join('\n');
    for (const key of Object.values(KEYS)) expect(all).not.toContain(key.slice(-20));
  });
});

/**
 * Query strings are read one way for every route (src/http/query-string.ts): a value that does not
 * percent-decode as UTF-8 is 400 request.bad_url (it was served and audited as its raw percent-text),
 * and a control or invisible character in any key or value is 422 request.invalid (a NUL was a 500
 * on PostgreSQL, which refuses it in a text parameter, and an empty list on SQLite). Both catalogs.
 */
describe.each(await usableCatalogs())('query strings on %s', (kind) => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startTestGateway({ catalog: kind, config: (doc) => (doc.auth.rate_limit = { max: 1000, window_ms: 60_000 }) });
    await gw.seed([{ call_id: 'c-8923', legacy_archive_id: 'avaya_8923', locator: 'call_mono_pcm16_8k.wav' }]);
  });
  afterAll(async () => gw?.stop());

  const get = (path: string, key: string) => raw(`${gw.url}${path}`, { headers: bearer(key) });
  const eventsOf = async (requestId: string) =>
    gw.deps.catalog.db.selectFrom('audit_events').selectAll().where('http_request_id', '=', requestId).execute();
  async function refused(path: string, key: string, status: number, code: string) {
    const res = await get(path, key);
    expect(res.status, `${path}: ${res.body.toString()}`).toBe(status);
    expect(res.headers['content-type']).toBe('application/problem+json');
    const body = JSON.parse(res.body.toString());
    expect(body).toMatchObject({ status, code });
    // The refusal is evidence, and nothing was granted.
    const events = await eventsOf(body.request_id);
    expect(events.length, `audit event for ${path}`).toBeGreaterThan(0);
    expect(events.map((e) => e.outcome)).not.toContain('allowed');
    return body;
  }

  const holdsCursor = (createdAt: string) => Buffer.from(JSON.stringify([createdAt, '00000000-0000-0000-0000-000000000000'])).toString('base64url');

  it.each([
    // the three the review found answering 500 on PostgreSQL
    ['/api/v1/recordings?source_system=a%00b', KEYS.acme],
    ['/api/v1/audit/events?principal=a%00b', KEYS.acmeAuditor],
    // (the third, a NUL inside the holds cursor, is below)
    // …and the class: every free-text query field of every route, keys too
    ['/api/v1/recordings?call_id=a%00b', KEYS.acme],
    ['/api/v1/recordings?source_system=nice%0A', KEYS.acme],
    ['/api/v1/recordings/avaya_8923/media?format=original&purpose=case%007', KEYS.acme],
    ['/api/v1/recordings/avaya_8923/media?format=original&purpose=case%E2%80%AE7', KEYS.acme],
    ['/api/v1/recordings/avaya_8923/waveform?purpose=case%E2%80%A87', KEYS.acme],
    ['/api/v1/audit/events?principal=alice%E2%80%8B', KEYS.acmeAuditor],
    ['/api/v1/audit/export?from=2024-01-01T00:00:00Z&to=2024-01-02T00:00:00Z%00', KEYS.acmeAuditor],
    ['/api/v1/reports/migration?format=json%7F', KEYS.acmeAuditor],
    ['/api/v1/media-tickets/play?t=abc%00', KEYS.acme],
    ['/api/v1/recordings?a%00b=1', KEYS.acme],
    ['/api/v1/audit/events?principal=alice&principal=b%01', KEYS.acmeAuditor],
  ])('%s → 422 request.invalid, never a 5xx', async (path, key) => {
    const body = await refused(path, key, 422, 'request.invalid');
    expect(body.location).toBe('querystring');
    expect(body.errors[0].path).toMatch(/^\//);
  });

  it.each([
    ['/api/v1/holds?cursor=' + holdsCursor('a\u0000'), KEYS.acmeAuditor],
    ['/api/v1/holds?cursor=' + holdsCursor('yesterday'), KEYS.acmeAuditor],
    ['/api/v1/holds?cursor=' + holdsCursor('2024-01-01T00:00:00Z'), KEYS.acmeAuditor],
  ])('a holds cursor that is not one this server issued → 422: %s', async (path, key) => {
    await refused(path, key, 422, 'request.invalid');
  });

  it.each([
    ['/api/v1/recordings/avaya_8923/media?format=original&purpose=case%207%FF%FE', KEYS.acme],
    ['/api/v1/recordings/avaya_8923/media?format=original&purpose=%ED%A0%80', KEYS.acme],
    ['/api/v1/recordings/avaya_8923/media?format=original&purpose=%C0%80', KEYS.acme],
    ['/api/v1/recordings/avaya_8923/media?format=original&purpose=100%', KEYS.acme],
    ['/api/v1/recordings?source_system=%E0%A4', KEYS.acme],
    ['/api/v1/audit/events?%FF=1', KEYS.acmeAuditor],
  ])('a query value that is not percent-encoded UTF-8 is refused like such a body, never recorded as its raw text: %s', async (path, key) => {
    await refused(path, key, 400, 'request.bad_url');
  });

  it('still answers 401 first to a stranger with a bad query string', async () => {
    const res = await raw(`${gw.url}/api/v1/recordings?source_system=%FF`);
    expect(res.status).toBe(401);
  });

  it('keeps a well-formed query purpose as sent: "+" is a space, UTF-8 decodes, an emoji stays whole', async () => {
    const res = await get(`/api/v1/recordings/avaya_8923/media?format=original&purpose=case+7+%F0%9F%98%80+%C3%BC`, KEYS.acme);
    expect(res.status, res.body.toString()).toBe(200);
    const events = await eventsOf(String(res.headers['x-request-id']));
    const allowed = events.find((e) => e.outcome === 'allowed');
    expect(JSON.parse(String(allowed?.detail))).toMatchObject({ purpose: 'case 7 \u{1F600} ü' });
    // searches still work with ordinary values, and repeated keys are still a list the schema refuses
    expect((await get('/api/v1/recordings?source_system=avaya_aura&limit=5', KEYS.acme)).status).toBe(200);
    expect((await get('/api/v1/recordings?limit=5&limit=6', KEYS.acme)).status).toBe(422);
  });
});
