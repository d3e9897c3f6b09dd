import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONSOLE_KEY, startConsoleGateway } from './console/support.js';
import { AUDIO, bearer, type TestGateway } from './support/gateway.js';
import { raw } from './support/http.js';

/**
 * RFC 9110 §13.1.5 If-Range: a resumed download gets the slice it asks for only while its
 * validator still names the bytes; otherwise the whole representation (200). The same ref can be
 * served from another copy between a download and its resumption, so a slice of other bytes would
 * splice two files. Before, If-Range was ignored and no response carried a validator.
 */
describe('If-Range on media and evidence packages', () => {
  let gw: TestGateway;
  const get = (path: string, headers: Record<string, string> = {}) => raw(gw.url + path, { headers: { ...bearer(CONSOLE_KEY), ...headers } });
  const STEREO = readFileSync(join(AUDIO, 'call_stereo_pcm16_8k.wav'));

  beforeAll(async () => {
    gw = await startConsoleGateway();
  });
  afterAll(async () => {
    await gw?.stop();
  });

  it('stored bytes carry a strong ETag; a Range with that If-Range is a 206, with any other validator the whole file (200)', async () => {
    const whole = await get('/api/v1/recordings/v_2003/media?format=original');
    expect(whole.status).toBe(200);
    const etag = whole.headers.etag as string;
    expect(etag).toMatch(/^"[\w-]{27}"$/);
    // The same bytes through the wav passthrough: the same validator.
    expect((await get('/api/v1/recordings/v_2003/media?format=wav')).headers.etag).toBe(etag);

    const part = await get('/api/v1/recordings/v_2003/media?format=original', { range: 'bytes=100-199', 'if-range': etag });
    expect(part.status).toBe(206);
    expect(part.headers.etag).toBe(etag);
    expect(part.body.equals(STEREO.subarray(100, 200))).toBe(true);

    for (const stale of ['"something-else"', `W/${etag}`, new Date().toUTCString()]) {
      const r = await get('/api/v1/recordings/v_2003/media?format=original', { range: 'bytes=100-199', 'if-range': stale });
      expect(r.status, stale).toBe(200);
      expect(r.body.equals(STEREO), stale).toBe(true);
      expect((await gw.deps.auditRepo.byId(r.headers['x-audit-event-id'] as string))?.detail).toMatchObject({ if_range: 'not_current' });
    }
  });

  it('a transcoded output has no validator: a Range still slices, an If-Range never matches', async () => {
    const plain = await get('/api/v1/recordings/v_2001/media?format=wav', { range: 'bytes=0-43' });
    expect(plain.status).toBe(206);
    expect(plain.headers['x-transcoded']).toBe('true');
    expect(plain.headers.etag).toBeUndefined();
    const r = await get('/api/v1/recordings/v_2001/media?format=wav', { range: 'bytes=0-43', 'if-range': '"anything"' });
    expect(r.status).toBe(200);
    expect(r.body.length).toBeGreaterThan(44);
  });

  it('an evidence package download honours If-Range against its ETag', async () => {
    const res = await raw(`${gw.url}/api/v1/evidence`, {
      method: 'POST',
      headers: { ...bearer(CONSOLE_KEY), 'content-type': 'application/json' },
      body: JSON.stringify({ refs: ['v_2001'], purpose: 'Case 93', mode: 'job' }),
    });
    expect(res.status, res.body.toString()).toBe(202);
    const { poll_endpoint } = JSON.parse(res.body.toString());
    let s: any;
    for (let i = 0; i < 200; i++) {
      s = JSON.parse((await get(poll_endpoint)).body.toString());
      if (s.status === 'ready' || s.status === 'failed') break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(s.status).toBe('ready');
    const zip = await get(s.content_endpoint);
    const etag = zip.headers.etag as string;
    expect(etag).toMatch(/^"[\w-]{27}"$/);
    expect((await get(s.content_endpoint, { range: 'bytes=0-3', 'if-range': etag })).status).toBe(206);
    const stale = await get(s.content_endpoint, { range: 'bytes=0-3', 'if-range': '"other"' });
    expect(stale.status).toBe(200);
    expect(stale.body.equals(zip.body)).toBe(true);
  });
});
