import { createHash, randomBytes } from 'node:crypto';
import { copyFileSync, readFileSync } from 'node:fs';
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { wavHeader } from '../src/media/wav-header.js';
import { startS3Simulator, type S3Simulator } from '../src/sources/s3/simulator.js';
import { AUDIO, KEYS, bearer, retrieveBody, startTestGateway, type TestGateway } from './support/gateway.js';
import { post, raw } from './support/http.js';

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
/** /work/shared/fixtures/audio: bad inputs (text named .wav, RIFF without fmt). */
const FIXTURES = new URL('../../shared/fixtures/audio/', import.meta.url).pathname;

/** The gateway with an S3 archive (s3rver through the real SDK): streaming, ranges, fallback, and a source that dies mid-stream. */
describe('S3 archive through the gateway', () => {
  let s3: S3Simulator;
  let gw: TestGateway;
  const big = Buffer.concat([wavHeader({ sampleRate: 8000, channels: 1, bitsPerSample: 16, dataLength: 24 * 1024 * 1024 }), randomBytes(24 * 1024 * 1024)]);

  beforeAll(async () => {
    s3 = await startS3Simulator({ buckets: ['acme-archive'] });
    await s3.putObject('acme-archive', 'verint/v1.wav', readFileSync(join(AUDIO, 'call_mono_mulaw_8k.wav')));
    await s3.putObject('acme-archive', 'big/big.wav', big);
    const vault = {
      name: 'vault',
      type: 's3',
      bucket: 'acme-archive',
      endpoint: s3.endpoint,
      force_path_style: true,
      access_key_id: s3.accessKeyId,
      secret_access_key: s3.secretAccessKey,
      source_systems: ['verint_s3'],
    };
    gw = await startTestGateway({ sources: { acme: [vault] } });
    await gw.seed([
      { call_id: 'c-s3-1', source_system: 'verint_s3', legacy_archive_id: 's3_1', locator: 'verint/v1.wav' },
      { call_id: 'c-s3-big', source_system: 'verint_s3', legacy_archive_id: 's3_big', locator: 'big/big.wav' },
      // Two copies of one call: the first (S3) is gone, the second (file share) must serve it.
      { call_id: 'c-fallback', source_system: 'verint_s3', legacy_archive_id: 's3_gone', locator: 'verint/missing.wav' },
      // A globex copy that names acme's S3 connector: globex has no such source, so it must not be used.
      { tenant_id: 'globex', call_id: 'c-cross', source_system: 'verint_s3', legacy_archive_id: 'cross_1', connector: 'vault', locator: 'verint/v1.wav' },
    ]);
    // Copies of the same origin are tried oldest first: the file-share copy is catalogued later.
    await new Promise((r) => setTimeout(r, 5));
    await gw.seed([{ call_id: 'c-fallback', source_system: 'avaya_aura', legacy_archive_id: 'fs_ok', locator: 'call_mono_pcm16_8k.wav' }]);

    // Copies whose stored bytes are not audio: the first of each pair is catalogued first, so tried first.
    copyFileSync(join(FIXTURES, 'bad_text.wav'), join(gw.roots.acme!, 'bad_text.wav'));
    copyFileSync(join(FIXTURES, 'bad_garbage_riff.wav'), join(gw.roots.acme!, 'bad_garbage_riff.wav'));
    await gw.seed([
      { call_id: 'c-undecodable', source_system: 'avaya_aura', legacy_archive_id: 'fb_bad', locator: 'bad_text.wav' },
      { call_id: 'c-both-bad', source_system: 'avaya_aura', legacy_archive_id: 'bb_text', locator: 'bad_text.wav' },
    ]);
    await new Promise((r) => setTimeout(r, 5));
    await gw.seed([
      { call_id: 'c-undecodable', source_system: 'verint', legacy_archive_id: 'fb_good', locator: 'call_mono_pcm16_8k.wav' },
      { call_id: 'c-both-bad', source_system: 'verint', legacy_archive_id: 'bb_garbage', locator: 'bad_garbage_riff.wav' },
    ]);
  });
  afterAll(async () => {
    await gw?.stop();
    await s3?.stop();
  });

  it('streams an S3 object byte-exact and serves ranges from the source', async () => {
    const file = readFileSync(join(AUDIO, 'call_mono_mulaw_8k.wav'));
    const res = await post(gw, retrieveBody({ target_recording_ref: 's3_1', format_preference: 'original' }));
    expect(res.status).toBe(200);
    expect(sha256(res.body)).toBe(sha256(file));
    const part = await raw(`${gw.url}/api/v1/recordings/s3_1/media?format=original`, { headers: { ...bearer(KEYS.acme), range: 'bytes=100-1099' } });
    expect(part.status).toBe(206);
    expect(part.headers['content-range']).toBe(`bytes 100-1099/${file.length}`);
    expect(part.headers['content-length']).toBe('1000');
    expect(part.body.equals(file.subarray(100, 1100))).toBe(true);
  });

  it('falls back to the other copy when the first cannot be read, and records why', async () => {
    const res = await post(gw, retrieveBody({ target_recording_ref: 'c-fallback', format_preference: 'original' }));
    expect(res.status).toBe(200);
    expect(sha256(res.body)).toBe(sha256(readFileSync(join(AUDIO, 'call_mono_pcm16_8k.wav'))));
    const allowed = await gw.deps.auditRepo.byId(res.headers['x-audit-event-id'] as string);
    expect(allowed?.detail?.fallback_from, JSON.stringify(allowed)).toEqual([expect.objectContaining({ code: 'source.object_missing' })]);
  });

  const copyIdOf = async (ref: string, legacyId: string): Promise<string> => {
    const meta = JSON.parse((await post(gw, retrieveBody({ target_recording_ref: ref, format_preference: 'json' }))).body.toString());
    return meta.copies.find((c: { legacy_archive_id: string }) => c.legacy_archive_id === legacyId).id;
  };

  it('falls back to the other copy when the first copy is not decodable audio, and records why', async () => {
    const res = await post(gw, retrieveBody({ target_recording_ref: 'c-undecodable', format_preference: 'wav' }));
    expect(res.status, res.body.toString().slice(0, 300)).toBe(200);
    expect(res.complete).toBe(true);
    // PCM asked as WAV is passed through: the good copy's bytes, exactly.
    expect(sha256(res.body)).toBe(sha256(readFileSync(join(AUDIO, 'call_mono_pcm16_8k.wav'))));
    const allowed = await gw.deps.auditRepo.byId(res.headers['x-audit-event-id'] as string);
    expect(allowed?.copyId).toBe(await copyIdOf('c-undecodable', 'fb_good'));
    expect(allowed?.detail?.fallback_from, JSON.stringify(allowed)).toEqual([
      { copy_id: await copyIdOf('c-undecodable', 'fb_bad'), origin: 'LEGACY_ARCHIVE', code: 'media.undecodable' },
    ]);
  });

  it('answers the first copy\'s 422 when every copy is undecodable, naming both attempts', async () => {
    const res = await post(gw, retrieveBody({ target_recording_ref: 'c-both-bad', format_preference: 'wav' }));
    expect(res.status, res.body.toString().slice(0, 300)).toBe(422);
    expect(res.headers['content-type']).toBe('application/problem+json');
    const body = JSON.parse(res.body.toString());
    expect(body.code).toBe('media.undecodable');
    // The first copy's own diagnosis (plain text), as before the fallback existed.
    const alone = await post(gw, retrieveBody({ target_recording_ref: 'bb_text', format_preference: 'wav' }));
    const { request_id: _a, ...first } = body;
    const { request_id: _b, ...firstAlone } = JSON.parse(alone.body.toString());
    expect(first).toEqual(firstAlone);
    const failed = (await gw.deps.auditRepo.query({ tenantId: 'acme', outcome: 'failed', limit: 1000 })).items.find((e) => e.httpRequestId === res.headers['x-request-id']);
    expect(failed?.detail?.attempts).toEqual([
      expect.objectContaining({ copy_id: await copyIdOf('c-both-bad', 'bb_text'), code: 'media.undecodable' }),
      expect.objectContaining({ copy_id: await copyIdOf('c-both-bad', 'bb_garbage'), code: 'media.undecodable' }),
    ]);
  });

  it("never serves a tenant's copy through another tenant's connector", async () => {
    const res = await post(gw, retrieveBody({ target_recording_ref: 'cross_1', caller_id: 'gary' }), KEYS.globex);
    expect(res.status).toBe(503);
    expect(JSON.parse(res.body.toString()).code).toBe('source.not_configured');
  });

  it('aborts the client connection when the source dies mid-stream, and audits a failure', async () => {
    const result = await new Promise<{ status: number; received: number; complete: boolean; auditId: string }>((resolve, reject) => {
      const req = httpRequest(`${gw.url}/api/v1/recordings/retrieve`, { method: 'POST', headers: { 'content-type': 'application/json', ...bearer(KEYS.acme) } }, (res) => {
        let received = 0;
        let killed = false;
        res.on('data', (c: Buffer) => {
          received += c.length;
          if (!killed && received > 256 * 1024) {
            killed = true;
            res.pause();
            // The archive goes away while the gateway is still reading from it.
            void s3.stop().then(() => setTimeout(() => res.resume(), 100));
          }
        });
        const done = () => resolve({ status: res.statusCode!, received, complete: res.complete, auditId: res.headers['x-audit-event-id'] as string });
        res.on('end', done);
        res.on('aborted', done);
        res.on('error', done);
      });
      req.on('error', reject);
      req.end(JSON.stringify(retrieveBody({ target_recording_ref: 's3_big', format_preference: 'original' })));
    });
    expect(result.status).toBe(200);
    expect(result.complete).toBe(false);
    expect(result.received).toBeLessThan(big.length);
    await expect
      .poll(async () => (await gw.deps.auditRepo.query({ tenantId: 'acme', limit: 1000 })).items.find((e) => e.relatedEventId === result.auditId)?.outcome)
      .toBe('failed');
  });
});

/** A store playing a misbehaving S3 (through the real SDK): part of an object served to a GET that asked for all of it. */
describe('S3 archive that serves part of an object as the whole', () => {
  const WAV = Buffer.concat([wavHeader({ sampleRate: 8000, channels: 1, bitsPerSample: 16, dataLength: 64000 }), randomBytes(64000)]);
  const N = WAV.length;
  const half = Math.floor(N / 2);
  let fake: Server;
  let gw: TestGateway;

  beforeAll(async () => {
    fake = createServer((req, res) => {
      const key = decodeURIComponent(new URL(req.url!, 'http://x').pathname.split('/').slice(2).join('/'));
      if (key === 'unasked206.wav' && !req.headers.range) {
        res.writeHead(206, { 'content-length': half, 'content-range': `bytes 0-${half - 1}/${N}`, 'content-type': 'audio/wav' });
        return res.end(WAV.subarray(0, half));
      }
      if (key === 'short200.wav') {
        res.writeHead(200, { 'content-length': N, 'content-type': 'audio/wav' });
        res.write(WAV.subarray(0, half));
        return setTimeout(() => res.socket?.destroy(), 50);
      }
      if (key === 'ssec.wav') {
        const b = '<?xml version="1.0" encoding="UTF-8"?><Error><Code>InvalidRequest</Code><Message>The object was stored using a form of Server Side Encryption.</Message><RequestId>r</RequestId></Error>';
        return res.writeHead(400, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(b) }).end(req.method === 'HEAD' ? undefined : b);
      }
      res.writeHead(404).end();
    });
    await new Promise<void>((r) => fake.listen(0, '127.0.0.1', r));
    const endpoint = `http://127.0.0.1:${(fake.address() as AddressInfo).port}`;
    gw = await startTestGateway({
      sources: { acme: [{ name: 'odd', type: 's3', bucket: 'archive', endpoint, force_path_style: true, access_key_id: 'AKIAODD', secret_access_key: 'odd-secret', timeout_ms: 3000, source_systems: ['odd_s3'] }] },
    });
    await gw.seed(['unasked206', 'short200', 'ssec'].map((k) => ({ call_id: `c-${k}`, source_system: 'odd_s3', legacy_archive_id: `odd_${k}`, locator: `${k}.wav` })));
  });
  afterAll(async () => {
    await gw?.stop();
    fake?.closeAllConnections();
    await new Promise((r) => fake?.close(r));
  });

  it('answers 502 for a 206 covering half the object to a GET without Range (was a 200 with half the bytes, ended normally)', async () => {
    const res = await post(gw, retrieveBody({ target_recording_ref: 'odd_unasked206', format_preference: 'original' }));
    expect(res.status, res.body.toString().slice(0, 300)).toBe(502);
    expect(JSON.parse(res.body.toString()).code).toBe('source.bad_gateway');
  });

  it('never ends cleanly a body shorter than its Content-Length', async () => {
    const res = await post(gw, retrieveBody({ target_recording_ref: 'odd_short200', format_preference: 'original' }));
    if (res.status === 200) {
      expect(res.complete).toBe(false);
      expect(res.body.length).toBeLessThan(N);
    } else expect(res.status).toBeGreaterThanOrEqual(500);
  });

  it('answers an object stored with a customer key (SSE-C) that cannot be read as a key refusal, not a retryable outage', async () => {
    const res = await post(gw, retrieveBody({ target_recording_ref: 'odd_ssec', format_preference: 'original' }));
    expect(res.status).toBe(502);
    const body = JSON.parse(res.body.toString());
    expect(body.code).toBe('source.key_refused');
    expect(res.body.toString()).not.toContain('Server Side Encryption');
    expect(res.headers['retry-after']).toBeUndefined();
  });
});
