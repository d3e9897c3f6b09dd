import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type LegacySimulator, startLegacySimulator } from '../src/sources/legacy-http/simulator.js';
import { AUDIO, retrieveBody, startTestGateway } from './support/gateway.js';
import { post } from './support/http.js';

/**
 * Bug found by the benchmarks: closing the gateway while a fetch handed to a 202 job was still
 * streaming into staging let that fetch report its failure to a destroyed catalog ("driver has
 * already been destroyed") — an unhandled rejection that ends a Node 20 process. Shutdown must
 * abort and await such fetches first. The source answers after the 100 ms budget and then trickles
 * its body, so the fetch is mid-body when the gateway stops (checked to fail without the fix).
 */
describe('graceful shutdown with a 202 fetch in flight', () => {
  it('closes without an unhandled rejection and leaves the job to be taken over', async () => {
    const sim: LegacySimulator = await startLegacySimulator({
      provider: 'generic_http',
      recordings: [{ id: 'slow-1', path: join(AUDIO, 'call_mono_mulaw_8k.wav') }],
      knobs: { latencyMs: 300, bytesPerSecond: 4_000, auth: 'none' },
    });
    const unhandled: unknown[] = [];
    const onUnhandled = (e: unknown) => unhandled.push(e);
    process.on('unhandledRejection', onUnhandled);
    const gw = await startTestGateway({
      sources: { acme: [{ name: 'wan', type: 'legacy-http', provider: 'generic_http', api_endpoint: sim.endpoint, auth_type: 'none', first_byte_budget_ms: 100, source_systems: ['wan'] }] },
    });
    try {
      await gw.seed([{ call_id: 'c-slow', source_system: 'wan', legacy_archive_id: 'slow-1' }]);
      const res = await post(gw, retrieveBody({ target_recording_ref: 'c-slow', format_preference: 'original' }));
      expect(res.status).toBe(202);
      expect(gw.deps.handedOff.size).toBe(1);
      // Let the headers arrive: the fetch is now streaming the body into staging.
      await new Promise((r) => setTimeout(r, 500));
      await gw.stop();
      // The source goes away too: a fetch that outlived the gateway would now fail and report.
      await sim.close();
      await new Promise((r) => setTimeout(r, 500));
      expect(unhandled).toEqual([]);
      expect(gw.deps.handedOff.size).toBe(0);
    } finally {
      process.off('unhandledRejection', onUnhandled);
      await sim.close().catch(() => {});
    }
  });
});
