import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { usableCatalogs } from './support/catalogs.js';
import { KEYS, bearer, startTestGateway, type TestGateway } from './support/gateway.js';
import { raw } from './support/http.js';

/**
 * Numbers and time windows in query strings, read one way on every route (http/query-string.ts
 * queryInt, timeWindow). z.coerce.number() took what Number() takes: `?limit=` was 0, `0x10` 16,
 * `1e2` 100, `0b11` 3, ` 1e1 ` 10 — answered, and audited as a number the caller never wrote. And a
 * reversed window was 422 on the audit export but an empty 200 on the searches.
 */
const NUMBERS: { route: string; path: string; key: string; param: string; good: string; extra?: Record<string, string> }[] = [
  { route: 'recordings search', path: '/api/v1/recordings', key: KEYS.acme, param: 'limit', good: '10' },
  { route: 'audit events', path: '/api/v1/audit/events', key: KEYS.acmeAuditor, param: 'limit', good: '10' },
  { route: 'audit events', path: '/api/v1/audit/events', key: KEYS.acmeAuditor, param: 'after', good: '0' },
  { route: 'holds', path: '/api/v1/holds', key: KEYS.acmeAuditor, param: 'limit', good: '10' },
  { route: 'migration report', path: '/api/v1/reports/migration', key: KEYS.acmeAuditor, param: 'limit', good: '10' },
  { route: 'waveform', path: '/api/v1/recordings/avaya_8923/waveform', key: KEYS.acme, param: 'points', good: '16' },
];

/** Raw query values, as sent on the wire (already percent-encoded where needed). */
const BAD_VALUES: [string, string][] = [
  ['empty', ''],
  ['hexadecimal', '0x10'],
  ['binary', '0b11'],
  ['octal', '0o17'],
  ['exponent', '1e2'],
  ['padded exponent', '%20%201e1%20'],
  ['padded', '%2010'],
  ['plus sign', '%2B20'],
  ['minus sign', '-20'],
  ['decimal point', '20.0'],
  ['leading zero', '020'],
  ['separator', '1_0'],
  ['Infinity', 'Infinity'],
  ['huge', '99999999999999999999'],
];

describe.each(await usableCatalogs())('strict numbers and windows in query strings, on %s', (kind) => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startTestGateway({ catalog: kind, config: (doc) => (doc.auth.rate_limit = { max: 100_000, window_ms: 60_000 }) });
    await gw.seed([{ call_id: '2023-10-27T14:30:00Z-8923', legacy_archive_id: 'avaya_8923', locator: 'call_mono_pcm16_8k.wav', started_at: '2023-10-27T14:30:00Z' }]);
  });
  afterAll(async () => gw?.stop());

  const get = (path: string, key: string, query: string) => raw(`${gw.url}${path}?${query}`, { headers: bearer(key) });
  const eventsOf = async (rid: string) =>
    (await gw.deps.catalog.db.selectFrom('audit_events').select(['outcome', 'status', 'detail']).where('http_request_id', '=', rid).execute()).map((e) => ({ outcome: e.outcome, status: Number(e.status), detail: e.detail ? JSON.parse(String(e.detail)) : null }));

  const cases = NUMBERS.flatMap((n) => BAD_VALUES.map(([what, value]) => ({ label: `${n.route} ${n.param}`, what, n, value })));
  it.each(cases)('$label refuses a $what value (422 request.invalid, the field named)', async ({ n, value }) => {
    const r = await get(n.path, n.key, `${n.param}=${value}`);
    expect(r.status, r.body.toString()).toBe(422);
    const body = JSON.parse(r.body.toString());
    expect(body.code).toBe('request.invalid');
    expect(body.errors.map((e: { path: string }) => e.path)).toContain(`/${n.param}`);
    await expect.poll(async () => (await eventsOf(String(r.headers['x-request-id']))).map((e) => [e.outcome, e.status])).toEqual([['failed', 422]]);
  });

  it.each(NUMBERS.map((n) => ({ label: `${n.route} ${n.param}`, n })))('$label takes decimal digits, as the number written', async ({ n }) => {
    const r = await get(n.path, n.key, `${n.param}=${n.good}`);
    expect(r.status, r.body.toString()).toBe(200);
    const [ev] = await eventsOf(String(r.headers['x-request-id']));
    if (ev?.detail?.query) expect(ev.detail.query[n.param]).toBe(Number(n.good));
    if (n.param === 'points') expect(ev?.detail?.points).toBe(16);
  });

  it('refuses a repeated number (an array) too', async () => {
    expect((await get('/api/v1/recordings', KEYS.acme, 'limit=1&limit=2')).status).toBe(422);
  });

  const WINDOWS: { route: string; path: string; key: string }[] = [
    { route: 'recordings search', path: '/api/v1/recordings', key: KEYS.acme },
    { route: 'audit events', path: '/api/v1/audit/events', key: KEYS.acmeAuditor },
    { route: 'audit export', path: '/api/v1/audit/export', key: KEYS.acmeAuditor },
  ];
  const reversed = [
    { what: 'reversed', from: '2024-02-01T00:00:00Z', to: '2024-01-01T00:00:00Z' },
    { what: 'empty', from: '2024-01-01T00:00:00Z', to: '2024-01-01T00:00:00.000Z' },
    { what: 'reversed across offsets', from: '2024-01-01T00:30:00Z', to: '2024-01-01T01:00:00+01:00' },
  ];
  it.each(WINDOWS.flatMap((w) => reversed.map((x) => ({ ...w, ...x }))))('$route refuses an $what window alike (422 request.invalid, from named)', async ({ path, key, from, to }) => {
    const r = await get(path, key, new URLSearchParams({ from, to }).toString());
    expect(r.status, r.body.toString()).toBe(422);
    const body = JSON.parse(r.body.toString());
    expect(body).toMatchObject({ code: 'request.invalid', detail: 'from must be before to', errors: [{ path: '/from' }], location: 'querystring' });
    // The read is not recorded as done: only the refusal.
    await expect.poll(async () => (await eventsOf(String(r.headers['x-request-id']))).map((e) => [e.outcome, e.status])).toEqual([['failed', 422]]);
  });

  it('still answers a window in order, and one bound alone', async () => {
    const both = await get('/api/v1/recordings', KEYS.acme, 'from=2023-10-27T00:00:00Z&to=2023-10-28T00:00:00Z');
    expect(both.status, both.body.toString()).toBe(200);
    expect(JSON.parse(both.body.toString()).items).toHaveLength(1);
    expect((await get('/api/v1/audit/events', KEYS.acmeAuditor, 'from=2023-10-27T00:00:00Z')).status).toBe(200);
    expect((await get('/api/v1/recordings', KEYS.acme, 'to=2023-10-27T00:00:00Z')).status).toBe(200);
  });
});
