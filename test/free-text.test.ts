import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { usableCatalogs } from './support/catalogs.js';
import { KEYS, bearer, retrieveBody, startTestGateway, type TestGateway } from './support/gateway.js';
import { raw } from './support/http.js';

/**
 * Every free-text field of every route (a purpose of access, a hold's matter and reasons) takes one
 * rule (catalog/record.ts freeText): no control, format (bidi, zero-width, tag), line/paragraph
 * separator or noncharacter — a LF only in a reason. These values go verbatim into audit details
 * and hold rows an auditor reads: a bidi override there makes an entry read otherwise than it is,
 * and a NUL was a 500 on PostgreSQL. Refused 422 request.invalid naming the field, before anything
 * is written.
 */
const REFUSED: [string, string][] = [
  ['NUL', '\u0000'],
  ['BEL', '\u0007'],
  ['tab', '\t'],
  ['CR', '\r'],
  ['NEL (C1)', '\u0085'],
  ['right-to-left override', '\u202e'],
  ['right-to-left isolate', '\u2067'],
  ['Arabic letter mark', '\u061c'],
  ['zero-width space', '\u200b'],
  ['zero-width joiner', '\u200d'],
  ['word joiner', '\u2060'],
  ['byte order mark', '\ufeff'],
  ['soft hyphen', '\u00ad'],
  ['tag character', '\u{e0041}'],
  ['line separator', '\u2028'],
  ['noncharacter', '\ufffe'],
];
const WELL_FORMED = 'Case 7 — ü 日本 😀 (ref #12)';

interface Field {
  name: string;
  /** The request's field, by JSON pointer (as the problem names it). */
  path: string;
  multiline: boolean;
  send(gw: TestGateway, value: string): ReturnType<typeof raw>;
}

const postJson = (gw: TestGateway, path: string, key: string, body: unknown) =>
  raw(`${gw.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...bearer(key) }, body: JSON.stringify(body) });
const getQuery = (gw: TestGateway, path: string, key: string, q: Record<string, string>) => raw(`${gw.url}${path}?${new URLSearchParams(q)}`, { headers: bearer(key) });
const HOLD_ID = '00000000-0000-4000-8000-000000000000';

const FIELDS: Field[] = [
  { name: 'media ticket purpose', path: '/purpose', multiline: false, send: (gw, v) => postJson(gw, '/api/v1/media-tickets', KEYS.acme, { ref: 'avaya_8923', purpose: v }) },
  { name: 'evidence purpose', path: '/purpose', multiline: false, send: (gw, v) => postJson(gw, '/api/v1/evidence', KEYS.acmeAdmin, { refs: ['avaya_8923'], purpose: v, mode: 'job' }) },
  { name: 'retrieve purpose', path: '/purpose', multiline: false, send: (gw, v) => postJson(gw, '/api/v1/recordings/retrieve', KEYS.acme, retrieveBody({ purpose: v, format_preference: 'json' })) },
  { name: 'hold matter', path: '/matter', multiline: false, send: (gw, v) => postJson(gw, '/api/v1/recordings/avaya_8923/holds', KEYS.acmeAdmin, { matter: v, reason: 'r' }) },
  { name: 'hold reason', path: '/reason', multiline: true, send: (gw, v) => postJson(gw, '/api/v1/recordings/avaya_8923/holds', KEYS.acmeAdmin, { matter: `m-${Math.random()}`, reason: v }) },
  { name: 'hold release reason', path: '/reason', multiline: true, send: (gw, v) => postJson(gw, `/api/v1/holds/${HOLD_ID}/release`, KEYS.acmeAdmin, { reason: v }) },
  { name: 'waveform purpose (query)', path: '/purpose', multiline: false, send: (gw, v) => getQuery(gw, '/api/v1/recordings/avaya_8923/waveform', KEYS.acme, { purpose: v, points: '16' }) },
  { name: 'media purpose (query)', path: '/purpose', multiline: false, send: (gw, v) => getQuery(gw, '/api/v1/recordings/avaya_8923/media', KEYS.acme, { purpose: v }) },
];

describe.each(await usableCatalogs())('free text is one rule on every route, on %s', (kind) => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startTestGateway({ catalog: kind, config: (doc) => (doc.auth.rate_limit = { max: 100_000, window_ms: 60_000 }) });
    await gw.seed([{ call_id: '2023-10-27T14:30:00Z-8923', legacy_archive_id: 'avaya_8923', locator: 'call_mono_pcm16_8k.wav' }]);
  });
  afterAll(async () => gw?.stop());

  const eventsOf = async (rid: string) => gw.deps.catalog.db.selectFrom('audit_events').select(['action', 'outcome', 'status']).where('http_request_id', '=', rid).execute();
  const holdCount = async () => (await gw.deps.catalog.db.selectFrom('legal_holds').select('id').execute()).length;

  const cases = FIELDS.flatMap((f) => [...REFUSED, ...(f.multiline ? [] : ([['line feed', '\n']] as [string, string][]))].map(([what, ch]) => ({ field: f.name, what, f, ch })));
  it.each(cases)('$field refuses a $what (422 request.invalid, the field named, nothing written)', async ({ f, ch }) => {
    const holds = await holdCount();
    const r = await f.send(gw, `case${ch}7`);
    expect(r.status, r.body.toString()).toBe(422);
    const body = JSON.parse(r.body.toString());
    expect(body.code).toBe('request.invalid');
    expect(body.errors.map((e: { path: string }) => e.path)).toContain(f.path);
    const rid = String(r.headers['x-request-id']);
    await expect.poll(async () => (await eventsOf(rid)).map((e) => [e.outcome, Number(e.status)])).toEqual([['failed', 422]]);
    expect(await holdCount()).toBe(holds);
  });

  it.each(FIELDS.map((f) => ({ field: f.name, f })))('$field takes well-formed text of any script, emoji included, as sent', async ({ f }) => {
    const r = await f.send(gw, WELL_FORMED);
    // Past validation: whatever the route answers then (a release of an unknown hold is a 404), not a 422.
    expect(r.status, r.body.toString()).not.toBe(422);
    expect(r.status).toBeLessThan(500);
  });

  it('keeps line feeds in a hold reason, and the reason as sent in the hold and its event', async () => {
    const reason = 'Preservation letter of 3 May.\n\nCounsel: J. Doe';
    const r = await postJson(gw, '/api/v1/recordings/avaya_8923/holds', KEYS.acmeAdmin, { matter: `lf-${Math.random()}`, reason });
    expect(r.status, r.body.toString()).toBe(201);
    expect(JSON.parse(r.body.toString()).reason).toBe(reason);
    const ev = await gw.deps.catalog.db.selectFrom('audit_events').select('detail').where('id', '=', String(r.headers['x-audit-event-id'])).executeTakeFirstOrThrow();
    expect(JSON.parse(String(ev.detail)).reason).toBe(reason);
  });

  it('refuses the rule at the ends too, rather than trimming an invisible character away; trims plain spaces', async () => {
    const bom = await postJson(gw, '/api/v1/media-tickets', KEYS.acme, { ref: 'avaya_8923', purpose: '\ufeffcase 7' });
    expect(bom.status).toBe(422);
    const spaced = await postJson(gw, '/api/v1/media-tickets', KEYS.acme, { ref: 'avaya_8923', purpose: '  case 7  ' });
    expect(spaced.status, spaced.body.toString()).toBe(201);
    const ev = await gw.deps.catalog.db.selectFrom('audit_events').select('detail').where('id', '=', String(spaced.headers['x-audit-event-id'])).executeTakeFirstOrThrow();
    expect(JSON.parse(String(ev.detail)).purpose).toBe('case 7');
  });
});
