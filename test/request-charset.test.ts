import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { usableCatalogs } from './support/catalogs.js';
import { KEYS, bearer, retrieveBody, startTestGateway, type TestGateway } from './support/gateway.js';
import { raw } from './support/http.js';

/**
 * A JSON body is UTF-8 (http/json-body.ts). One that says it is another charset was decoded as
 * UTF-8 anyway — answered, and audited as text the caller did not send; it is refused with 415
 * request.unsupported_media_type instead, before any handler reads it. Saying UTF-8, or nothing,
 * is fine.
 */
describe.each(await usableCatalogs())('request charsets, on %s', (kind) => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startTestGateway({ catalog: kind });
    await gw.seed([{ call_id: '2023-10-27T14:30:00Z-8923', legacy_archive_id: 'avaya_8923', locator: 'call_mono_pcm16_8k.wav' }]);
  });
  afterAll(async () => gw?.stop());

  const send = (contentType: string, body: Buffer) => raw(`${gw.url}/api/v1/recordings/retrieve`, { method: 'POST', headers: { 'content-type': contentType, ...bearer(KEYS.acme) }, body });
  const json = (purpose = 'case 7') => JSON.stringify(retrieveBody({ format_preference: 'json', purpose }));

  it.each([
    ['utf-16', 'application/json; charset=utf-16', Buffer.from(json(), 'utf16le')],
    ['utf-16le', 'application/json; charset=UTF-16LE', Buffer.from(json(), 'utf16le')],
    // latin1 bytes that happen to be ASCII decode as UTF-8 to the same text; still not what the body says it is
    ['latin1 (ASCII text)', 'application/json; charset=latin1', Buffer.from(json(), 'latin1')],
    ['iso-8859-1 (an é)', 'application/json;charset="ISO-8859-1"', Buffer.from(json('café'), 'latin1')],
    ['a second charset', 'application/json; charset=utf-8; charset=utf-16', Buffer.from(json())],
    ['an empty charset', 'application/json; charset=', Buffer.from(json())],
  ])('refuses %s with 415 request.unsupported_media_type', async (_name, contentType, body) => {
    const r = await send(contentType, body);
    expect(r.status, r.body.toString()).toBe(415);
    expect(r.headers['content-type']).toBe('application/problem+json');
    expect(JSON.parse(r.body.toString()).code).toBe('request.unsupported_media_type');
    const ev = await gw.deps.catalog.db.selectFrom('audit_events').select(['outcome', 'status']).where('http_request_id', '=', String(r.headers['x-request-id'])).execute();
    expect(ev.map((e) => [e.outcome, Number(e.status)])).toEqual([['failed', 415]]);
  });

  it.each([
    ['no charset', 'application/json'],
    ['utf-8', 'application/json; charset=utf-8'],
    ['UTF-8, quoted', 'application/json; charset="UTF-8"'],
    ['utf8', 'application/json;charset=utf8'],
  ])('takes %s', async (_name, contentType) => {
    const r = await send(contentType, Buffer.from(json('café 😀')));
    expect(r.status, r.body.toString()).toBe(200);
  });
});
