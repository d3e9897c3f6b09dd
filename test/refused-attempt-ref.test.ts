import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KEYS, bearer, startTestGateway, type TestGateway } from './support/gateway.js';
import { raw } from './support/http.js';

/**
 * An attempt refused before its handler runs (no or a bad credential, a missing scope) is recorded
 * with the recording its path names (PCI DSS 10.2.2: the affected resource is `ref`), and a refused
 * API key with the key id it claimed — never its secret. The ref is the caller's text, kept only as
 * the route's validation would take it: an over-long or odd one is not recorded.
 */
describe('refused attempts on a recording name the recording', () => {
  let gw: TestGateway;
  const FORGED_SECRET = 'z'.repeat(32);
  beforeAll(async () => {
    gw = await startTestGateway();
    await gw.seed([{ call_id: 'c-1', legacy_archive_id: 'avaya_1', locator: 'call_mono_pcm16_8k.wav' }]);
  });
  afterAll(async () => gw?.stop());

  const eventOf = async (httpRequestId: string) =>
    gw.deps.catalog.db.selectFrom('audit_events').selectAll().where('http_request_id', '=', httpRequestId).executeTakeFirstOrThrow();

  it.each([
    ['GET media, forged API key (401)', 'GET', '/api/v1/recordings/avaya_1/media?format=wav', bearer(`cst_acme-reader_${FORGED_SECRET}`), 401, 'recording.media'],
    ['GET media, no credential (401)', 'GET', '/api/v1/recordings/avaya_1/media?format=wav', {}, 401, 'recording.media'],
    ['GET media, malformed Authorization (401)', 'GET', '/api/v1/recordings/avaya_1/media', { authorization: 'Basic abc' }, 401, 'recording.media'],
    ['GET media, key without recordings:read (403)', 'GET', '/api/v1/recordings/avaya_1/media?format=wav', bearer(KEYS.acmeNoScope), 403, 'recording.media'],
    ['GET metadata, no credential (401)', 'GET', '/api/v1/recordings/avaya_1', {}, 401, 'recording.metadata'],
    ['POST holds, reader key (403)', 'POST', '/api/v1/recordings/avaya_1/holds', bearer(KEYS.acme), 403, 'hold.create'],
    ['a percent-encoded ref is recorded decoded, as the route reads it', 'GET', '/api/v1/recordings/avaya%5F1/media', {}, 401, 'recording.media'],
  ])('%s', async (_n, method, path, headers, status, action) => {
    const res = await raw(`${gw.url}${path}`, { method, headers: headers as Record<string, string> });
    expect(res.status).toBe(status);
    const ev = await eventOf(String(res.headers['x-request-id']));
    expect(ev.action).toBe(action);
    expect(ev.outcome).toBe('denied');
    expect(ev.ref, 'the affected resource').toBe('avaya_1');
  });

  it('a forged API key: the key id it claimed is in detail, its secret nowhere in the event', async () => {
    const res = await raw(`${gw.url}/api/v1/recordings/avaya_1/media`, { headers: bearer(`cst_acme-reader_${FORGED_SECRET}`) });
    expect(res.status).toBe(401);
    const ev = await eventOf(String(res.headers['x-request-id']));
    expect(ev.principal_kind).toBe('anonymous');
    expect(ev.tenant_id).toBeNull();
    expect(JSON.parse(ev.detail!)).toEqual({ claimed_key_id: 'acme-reader' });
    expect(JSON.stringify(ev)).not.toContain(FORGED_SECRET);
  });

  it('a malformed key (no id part the key format allows) claims nothing', async () => {
    const res = await raw(`${gw.url}/api/v1/recordings/avaya_1/media`, { headers: bearer('cst_' + 'q'.repeat(40)) });
    expect(res.status).toBe(401);
    const ev = await eventOf(String(res.headers['x-request-id']));
    expect(ev.detail).toBeNull();
    expect(ev.ref).toBe('avaya_1');
  });

  it.each([
    ['longer than a ref may be (257 characters)', 'r'.repeat(257)],
    ['a control character', 'avaya%01x'],
    ['leading white space', '%20avaya_1'],
  ])('a ref the route would refuse (%s) is not recorded', async (_n, ref) => {
    const res = await raw(`${gw.url}/api/v1/recordings/${ref}/media`, {});
    expect(res.status).toBe(401);
    const ev = await eventOf(String(res.headers['x-request-id']));
    expect(ev.action).toBe('recording.media');
    expect(ev.ref).toBeNull();
  });

  it('an authorised request records the ref as before (set again by the handler)', async () => {
    const res = await raw(`${gw.url}/api/v1/recordings/avaya_1/media`, { headers: bearer(KEYS.acme) });
    expect(res.status).toBe(200);
    const ev = await eventOf(String(res.headers['x-request-id']));
    expect(ev.ref).toBe('avaya_1');
    expect(ev.principal_id).toBe('alice');
  });
});
