import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { RecordingRepository } from '../src/catalog/recording-repository.js';
import { isAppError } from '../src/errors.js';
import { GenesysRefFinder } from '../src/resolve/genesys-finder.js';
import { Resolver } from '../src/resolve/resolver.js';
import { GenesysConnector } from '../src/sources/genesys/connector.js';
import { type GenesysSimulator, startGenesysSimulator } from '../src/sources/genesys/simulator.js';
import { configFor } from '../src/sources/genesys/test-helpers.js';
import { openTestCatalog, type TestCatalog, usableCatalogs } from './support/catalogs.js';
import { AUDIO } from './support/gateway.js';

/**
 * A catalog miss's search that outlives the request waiting for it (Resolver.resolve with waitMs)
 * is bounded by its own timeout, and close() stops it: against the real simulator, whose rate limit
 * (a 429 with a long Retry-After, waited out at the connector's gate) keeps the search busy.
 */
describe.each(await usableCatalogs())('the bounds of a background search, on %s', (kind) => {
  let sim: GenesysSimulator;
  let cat: TestCatalog;
  let connector: GenesysConnector;
  const queries = (tag: string) => sim.requests.filter((r) => r.path.endsWith('/analytics/conversations/details/query') && r.body.includes(tag)).length;
  const code = async (p: Promise<unknown>) => p.then(() => 'resolved', (e: unknown) => (isAppError(e) ? e.code : String(e)));

  beforeAll(async () => {
    sim = await startGenesysSimulator();
    sim.addRecording({ conversationId: '5b2e3d4c-6a7f-4c8d-9e0f-000000072001', recordingId: 'rec-72001', path: join(AUDIO, 'call_mono_pcm16_8k.wav'), startTime: new Date().toISOString(), externalTag: 'avaya_72001' });
    cat = await openTestCatalog(kind);
  });
  afterEach(async () => {
    await connector?.close();
  });
  afterAll(async () => {
    await cat?.dispose();
    await sim?.close();
  });

  const resolverWith = (searchTimeoutMs: number) => {
    connector = new GenesysConnector('acme', configFor(sim, { name: 'genesys' }));
    return new Resolver(new RecordingRepository(cat.db), () => [new GenesysRefFinder(connector, 7)], { searchTimeoutMs });
  };

  it('a search past its own timeout ends as source.timeout; the retry takes that outcome instead of searching again', async () => {
    const resolver = resolverWith(600);
    const signal = new AbortController().signal;
    sim.rateLimitNext(1, 30);
    expect(await code(resolver.resolve('acme', 'avaya_72001', signal, { waitMs: 100 }))).toBe('recording.lookup_pending');
    await new Promise((r) => setTimeout(r, 900));
    expect(await code(resolver.resolve('acme', 'avaya_72001', signal))).toBe('source.timeout');
    expect(queries('avaya_72001')).toBe(1);
    expect(await cat.db.selectFrom('recordings').select('id').where('tenant_id', '=', 'acme').execute()).toEqual([]);
    await resolver.close();
  });

  it('close() stops a search in flight at once, and whoever waits for it is answered', async () => {
    const resolver = resolverWith(120_000);
    sim.rateLimitNext(1, 30);
    const waiting = code(resolver.resolve('acme', 'avaya_72001', new AbortController().signal));
    await new Promise((r) => setTimeout(r, 300));
    const t0 = performance.now();
    await resolver.close();
    expect(performance.now() - t0).toBeLessThan(2_000);
    expect(await waiting).not.toBe('resolved');
  });
});
