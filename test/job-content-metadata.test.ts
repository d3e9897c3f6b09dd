import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { usableCatalogs } from './support/catalogs.js';
import { AUDIO, KEYS, bearer, pollUntil, retrieveBody, startTestGateway, type TestGateway } from './support/gateway.js';
import { type RawResponse, post, raw } from './support/http.js';

/**
 * product.md: a job's content has the same headers as a direct retrieval — with include_metadata,
 * X-Recording-Metadata too. The job remembers the request's include_metadata (migration 0013).
 */
describe.each(await usableCatalogs())('job content and include_metadata on %s', (kind) => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startTestGateway({
      catalog: kind,
      sources: { acme: [{ name: 'queued', type: 'filesystem', root: AUDIO, mode: 'async', source_systems: ['nice'] }] },
      config: (doc) => (doc.jobs = { poll_interval_ms: 50, heartbeat_ms: 200, lease_ms: 10_000, retry_base_ms: 50, staging_ttl_ms: 60_000 }),
    });
    await gw.seed([{ call_id: 'c-queued', source_system: 'nice', legacy_archive_id: 'q_1', locator: 'call_mono_mulaw_8k.wav', customer_ref: 'CUST-Q1' }]);
  });
  afterAll(async () => gw?.stop());

  async function contentOf(includeMetadata: boolean): Promise<RawResponse> {
    const accepted = await post(gw, retrieveBody({ target_recording_ref: 'q_1', format_preference: 'wav', include_metadata: includeMetadata }));
    expect(accepted.status, accepted.body.toString()).toBe(202);
    const job = (await pollUntil(gw, JSON.parse(accepted.body.toString()).poll_endpoint, ['ready'], KEYS.acme, 10_000)) as { content_endpoint: string };
    const content = await raw(`${gw.url}${job.content_endpoint}`, { headers: bearer(KEYS.acme) });
    expect(content.status).toBe(200);
    return content;
  }

  it('with include_metadata, the content carries X-Recording-Metadata: the recording as the metadata endpoint gives it', async () => {
    const content = await contentOf(true);
    const header = content.headers['x-recording-metadata'];
    expect(header, JSON.stringify(content.headers)).toBeTruthy();
    const meta = JSON.parse(Buffer.from(header as string, 'base64url').toString());
    const direct = JSON.parse((await post(gw, retrieveBody({ target_recording_ref: 'q_1', format_preference: 'json' }))).body.toString());
    expect(meta).toEqual(direct);
    expect(meta).toMatchObject({ call_id: 'c-queued', customer_ref: 'CUST-Q1', retention_status: content.headers['x-retention-status'] });
    expect(meta.copies[0]).not.toHaveProperty('locator');
  });

  it('without it, no X-Recording-Metadata', async () => {
    const content = await contentOf(false);
    expect(content.headers['x-recording-metadata']).toBeUndefined();
    expect(content.headers['x-transcoded']).toBe('true');
  });
});
