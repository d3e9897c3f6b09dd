import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LegacySimulator, startLegacySimulator } from '../src/sources/legacy-http/simulator.js';
import { KEYS, bearer, retrieveBody, startTestGateway, type TestGateway } from './support/gateway.js';
import { post, raw } from './support/http.js';

/** Jobs and legacy sources when things go wrong: a full disk, a source that answers HTML or nothing, retries spent. */
describe('retrieval faults', () => {
  let sim: LegacySimulator;
  let gw: TestGateway;

  beforeAll(async () => {
    sim = await startLegacySimulator({
      provider: 'generic_http',
      recordings: [
        { id: 'html-1', bytes: '<!doctype html><html><body>Session expired, please log in</body></html>', contentType: 'audio/wav' },
        { id: 'empty-1', bytes: '' },
        { id: 'ok-1', bytes: Buffer.alloc(4096, 7) },
      ],
      knobs: { auth: 'none' },
    });
    gw = await startTestGateway({
      sources: { acme: [{ name: 'legacy', type: 'legacy-http', provider: 'generic_http', api_endpoint: sim.endpoint, auth_type: 'none', mode: 'sync', max_retries: 2, backoff: { initial_ms: 10, max_ms: 20 }, source_systems: ['legacy_http'] }] },
      config: (doc) => (doc.jobs = { poll_interval_ms: 50, retry_base_ms: 20 }),
    });
    await gw.seed([
      { call_id: 'c-html', source_system: 'legacy_http', legacy_archive_id: 'html-1' },
      { call_id: 'c-empty', source_system: 'legacy_http', legacy_archive_id: 'empty-1' },
      { call_id: 'c-ok', source_system: 'legacy_http', legacy_archive_id: 'ok-1' },
      { call_id: 'c-disk', legacy_archive_id: 'disk-1', locator: 'call_mono_pcm16_8k.wav' },
    ]);
  });
  afterAll(async () => {
    await gw?.stop();
    await sim?.close();
  });

  it('a full disk while staging fails the job cleanly, says why, and leaves no partial file', async () => {
    const rec = await gw.deps.recordings.findByRef('acme', 'c-disk');
    const { job } = await gw.deps.jobs.create({ tenantId: 'acme', principalId: 'alice', callerId: 'alice', requestId: 'disk-full-1', auditLogId: null, ref: 'c-disk', recordingPk: rec!.id, format: 'original', maxAttempts: 1 });
    // Every write of this job's staging fails with ENOSPC, as on a full disk, once its temp file exists.
    const staging = join(gw.dir, 'staging');
    const store = gw.deps.staging;
    const writer = store.writer.bind(store);
    const full = () => Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', errno: -28, syscall: 'write' });
    store.writer = async (key) => {
      const w = await writer(key);
      if (key.startsWith(job.id)) {
        const s = w.stream as unknown as { _write: unknown; _writev: unknown };
        s._write = (_c: unknown, _e: unknown, cb: (e: Error) => void) => cb(full());
        s._writev = (_c: unknown, cb: (e: Error) => void) => cb(full());
      }
      return w;
    };
    gw.deps.worker?.poke();
    let status;
    for (let i = 0; i < 200; i++) {
      status = JSON.parse((await raw(`${gw.url}/api/v1/recordings/status/${job.id}`, { headers: bearer(KEYS.acme) })).body.toString());
      if (status.status === 'failed' || status.status === 'ready') break;
      await new Promise((r) => setTimeout(r, 50));
    }
    store.writer = writer;
    expect(status).toMatchObject({ status: 'failed', error: { code: 'staging.write_failed' } });
    // No partial file under any name: neither a temp file nor a final one of this job.
    expect(readdirSync(staging).filter((f) => f.startsWith(job.id))).toEqual([]);
    const content = await raw(`${gw.url}/api/v1/recordings/jobs/${job.id}/content`, { headers: bearer(KEYS.acme) });
    expect(content.status).toBe(502);
    expect(JSON.parse(content.body.toString())).toMatchObject({ code: 'job.failed', job_error: 'staging.write_failed' });
  });

  it('an HTML page where audio should be is refused for playback and never labelled as audio', async () => {
    const wav = await post(gw, retrieveBody({ target_recording_ref: 'c-html', format_preference: 'wav' }));
    expect(wav.status).toBe(422);
    expect(JSON.parse(wav.body.toString()).code).toBe('media.undecodable');
    const original = await post(gw, retrieveBody({ target_recording_ref: 'c-html', format_preference: 'original' }));
    expect(original.headers['content-type']).toBe('application/octet-stream');
    expect(original.headers['x-audio-codec']).toBe('unknown');
  });

  it('an empty body is not a recording', async () => {
    const wav = await post(gw, retrieveBody({ target_recording_ref: 'c-empty', format_preference: 'wav' }));
    expect(wav.status).toBe(422);
    expect(JSON.parse(wav.body.toString()).code).toBe('media.undecodable');
  });

  it('gives up after max_retries with a clear code and Retry-After, having asked max_retries + 1 times', async () => {
    sim.clearLog();
    sim.failNext(10, 503);
    const res = await post(gw, retrieveBody({ target_recording_ref: 'c-ok', format_preference: 'original' }));
    expect([502, 503]).toContain(res.status);
    expect(JSON.parse(res.body.toString()).code).toMatch(/^source\./);
    expect(res.headers['retry-after']).toBeTruthy();
    expect(sim.requests.filter((r) => r.method === 'GET').length).toBe(3);
    sim.clearFailures();
  });
});
