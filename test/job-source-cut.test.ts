import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { startLegacySimulator } from '../src/sources/legacy-http/simulator.js';
import { usableCatalogs } from './support/catalogs.js';
import { AUDIO, pollUntil, retrieveBody, startTestGateway } from './support/gateway.js';
import { post } from './support/http.js';

/**
 * A legacy source that resets its connection mid-body: the job failed as
 * `staging.write_failed` "staging could not be written (source.unavailable)" — the write stream,
 * destroyed with the source's error, was taken for a failing disk, and an operator checked the
 * disk while the fault was the source. The source's own error now stands.
 */
describe.each(await usableCatalogs())('a job whose source cuts the body mid-way, on %s', (kind) => {
  it('fails as the source failing (source.unavailable), never as the staging disk', async () => {
    const sim = await startLegacySimulator({ provider: 'generic_http', recordings: [{ id: 'cut-1', path: join(AUDIO, 'call_mono_pcm16_8k.wav') }], knobs: { bytesPerSecond: 200_000, resetAfterBytes: 50_000, auth: 'none' } });
    const gw = await startTestGateway({
      catalog: kind,
      sources: { acme: [{ name: 'wan', type: 'legacy-http', provider: 'generic_http', api_endpoint: sim.endpoint, auth_type: 'none', mode: 'async', max_retries: 0, source_systems: ['wan'] }] },
      config: (doc) => (doc.jobs = { poll_interval_ms: 50, heartbeat_ms: 100, lease_ms: 10_000, retry_base_ms: 50, max_attempts: 2, staging_ttl_ms: 60_000 }),
    });
    try {
      await gw.seed([{ call_id: 'c-cut', source_system: 'wan', legacy_archive_id: 'cut-1' }]);
      const res = await post(gw, retrieveBody({ target_recording_ref: 'c-cut', format_preference: 'original' }));
      expect(res.status, res.body.toString()).toBe(202);
      const { poll_endpoint } = JSON.parse(res.body.toString()) as { poll_endpoint: string };
      const done = await pollUntil(gw, poll_endpoint, ['ready', 'failed'], undefined, 20_000);
      expect(done.status).toBe('failed');
      expect(done.error.code).toBe('source.unavailable');
      const failed = gw.logs.map((l) => JSON.parse(l) as { msg: string; code?: string }).filter((l) => l.msg === 'job failed');
      expect(failed.map((l) => l.code)).toEqual(['source.unavailable']);
    } finally {
      await gw.stop();
      await sim.close();
    }
  });
});
