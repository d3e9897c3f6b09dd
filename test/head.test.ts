import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditEvent } from '../src/audit/event.js';
import type { StagingReader } from '../src/jobs/staging.js';
import { wavHeader } from '../src/media/wav-header.js';
import type { SourceConnector } from '../src/sources/port.js';
import { AUDIO, KEYS, bearer, pollUntil, retrieveBody, startTestGateway, type TestGateway } from './support/gateway.js';
import { type RawResponse, post, raw } from './support/http.js';

/** What differs between any two responses, whatever the method. */
const PER_REQUEST = new Set(['date', 'x-request-id', 'x-audit-event-id', 'connection', 'keep-alive']);
const stableHeaders = (r: RawResponse) => Object.fromEntries(Object.entries(r.headers).filter(([k]) => !PER_REQUEST.has(k)));

/**
 * HEAD on the routes that stream media (GET routes answer HEAD too): the same head as a GET, no
 * body, the source closed unread, and an audit trail that says no byte was sent — node discards
 * the body of a HEAD response yet reports its writes as written, which made a HEAD look like a
 * complete download of bytes that never left (and read the whole source for nobody).
 */
describe('HEAD on media routes', () => {
  let gw: TestGateway;
  /** Every body the sources opened, in order (filesystem sources: a body with bytesRead, the bytes read from the file). */
  const opened: (Readable & { bytesRead: number })[] = [];
  /** Positional reads of staged media (job content). */
  let stagedReads = 0;
  const BIG = Buffer.concat([wavHeader({ sampleRate: 8000, channels: 1, bitsPerSample: 16, dataLength: 4 * 1024 * 1024 }), randomBytes(4 * 1024 * 1024)]);

  beforeAll(async () => {
    gw = await startTestGateway({
      sources: { acme: [{ name: 'queued', type: 'filesystem', root: AUDIO, mode: 'async', source_systems: ['nice'] }] },
      config: (doc) => (doc.jobs = { poll_interval_ms: 50, heartbeat_ms: 200, lease_ms: 10_000, retry_base_ms: 50, staging_ttl_ms: 60_000 }),
    });
    writeFileSync(join(gw.roots.acme!, 'big_pcm16.wav'), BIG);
    await gw.seed([
      { call_id: 'c-big', legacy_archive_id: 'big_1', locator: 'big_pcm16.wav' },
      { call_id: 'c-ulaw', legacy_archive_id: 'ulaw_1', locator: 'call_mono_mulaw_8k.wav' },
      { call_id: 'c-job', source_system: 'nice', legacy_archive_id: 'job_1', locator: 'call_mono_pcm16_8k.wav' },
    ]);
    const sources = gw.deps.sources;
    const forCopy = sources.forCopy.bind(sources);
    sources.forCopy = (tenantId, copy) => {
      const connector = forCopy(tenantId, copy);
      const watched: SourceConnector = Object.create(connector);
      watched.open = async (loc, opts) => {
        const media = await connector.open(loc, opts);
        opened.push(media.body as Readable & { bytesRead: number });
        return media;
      };
      return watched;
    };
    const staging = gw.deps.staging;
    const open = staging.open.bind(staging);
    staging.open = async (key) => {
      const reader = await open(key);
      const counted: StagingReader = {
        read: (...args) => {
          stagedReads++;
          return reader.read(...args);
        },
        close: () => reader.close(),
      };
      return counted;
    };
  });
  afterAll(async () => gw?.stop());

  const events = async () => (await gw.deps.auditRepo.query({ tenantId: 'acme', limit: 1000 })).items;
  async function endOf(allowedId: string): Promise<AuditEvent> {
    await expect.poll(async () => (await events()).some((e) => e.relatedEventId === allowedId)).toBe(true);
    return (await events()).find((e) => e.relatedEventId === allowedId)!;
  }
  async function expectHeadAudited(res: RawResponse, status: number) {
    const allowedId = res.headers['x-audit-event-id'] as string;
    expect(await gw.deps.auditRepo.byId(allowedId)).toMatchObject({ outcome: 'allowed', status, detail: expect.objectContaining({ head: true }) });
    expect(await endOf(allowedId)).toMatchObject({ outcome: 'completed', status, bytesSent: 0, sha256: null, detail: expect.objectContaining({ head: true }) });
  }
  async function lastOpened(): Promise<Readable & { bytesRead: number }> {
    const body = opened.at(-1)!;
    await expect.poll(() => body.destroyed).toBe(true);
    return body;
  }

  it('media: the head of a GET, no body, the source closed unread, audited as 0 bytes', async () => {
    const url = `${gw.url}/api/v1/recordings/big_1/media?format=original`;
    const get = await raw(url, { headers: bearer(KEYS.acme) });
    expect(get.status).toBe(200);
    expect(get.body.length).toBe(BIG.length);
    // The counter works: a GET reads the whole file.
    expect((await lastOpened()).bytesRead).toBe(BIG.length);
    expect(await endOf(get.headers['x-audit-event-id'] as string)).toMatchObject({ bytesSent: BIG.length });

    const head = await raw(url, { method: 'HEAD', headers: bearer(KEYS.acme) });
    expect(head.status).toBe(200);
    expect(head.body.length).toBe(0);
    expect(head.headers['content-length']).toBe(String(BIG.length));
    expect(stableHeaders(head)).toEqual(stableHeaders(get));
    // Only the sniffing window was read, never the rest of the 4 MiB.
    expect((await lastOpened()).bytesRead).toBeLessThan(BIG.length / 4);
    await expectHeadAudited(head, 200);
  });

  it('media with Range: 206 with the same Content-Range and Content-Length, nothing sent', async () => {
    const url = `${gw.url}/api/v1/recordings/big_1/media?format=original`;
    const range = { range: 'bytes=1000-1999999' };
    const get = await raw(url, { headers: { ...bearer(KEYS.acme), ...range } });
    const head = await raw(url, { method: 'HEAD', headers: { ...bearer(KEYS.acme), ...range } });
    expect(head.status).toBe(206);
    expect(head.body.length).toBe(0);
    expect(head.headers['content-range']).toBe(`bytes 1000-1999999/${BIG.length}`);
    expect(stableHeaders(head)).toEqual(stableHeaders(get));
    expect((await lastOpened()).bytesRead).toBeLessThan(BIG.length / 4);
    await expectHeadAudited(head, 206);
  });

  it('media converted on the fly (G.711 to PCM WAV): the computed Content-Length, no conversion sent', async () => {
    const url = `${gw.url}/api/v1/recordings/ulaw_1/media?format=wav`;
    const get = await raw(url, { headers: bearer(KEYS.acme) });
    const head = await raw(url, { method: 'HEAD', headers: bearer(KEYS.acme) });
    expect(head.status).toBe(200);
    expect(head.headers['x-transcoded']).toBe('true');
    expect(head.headers['content-length']).toBe(String(get.body.length));
    expect(head.body.length).toBe(0);
    expect(stableHeaders(head)).toEqual(stableHeaders(get));
    await expectHeadAudited(head, 200);
  });

  it("the console's media ticket: the head of a GET, no body, audited as 0 bytes", async () => {
    const ticket = async () => {
      const res = await raw(`${gw.url}/api/v1/media-tickets`, {
        method: 'POST',
        headers: { ...bearer(KEYS.acme), 'content-type': 'application/json' },
        body: JSON.stringify({ ref: 'big_1', format: 'original', purpose: 'HEAD check' }),
      });
      expect(res.status, res.body.toString()).toBe(201);
      return `${gw.url}${JSON.parse(res.body.toString()).media_url as string}`;
    };
    const get = await raw(await ticket());
    const head = await raw(await ticket(), { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.body.length).toBe(0);
    expect(stableHeaders(head)).toEqual(stableHeaders(get));
    expect((await lastOpened()).bytesRead).toBeLessThan(BIG.length / 4);
    await expectHeadAudited(head, 200);
  });

  it('job content: the head of a GET, no body, no staged record read, audited as 0 bytes', async () => {
    const accepted = await post(gw, retrieveBody({ target_recording_ref: 'job_1', format_preference: 'original' }));
    expect(accepted.status, accepted.body.toString()).toBe(202);
    const job = (await pollUntil(gw, JSON.parse(accepted.body.toString()).poll_endpoint, ['ready'], KEYS.acme, 10_000)) as { content_endpoint: string };
    const url = `${gw.url}${job.content_endpoint}`;

    const readsBeforeGet = stagedReads;
    const get = await raw(url, { headers: bearer(KEYS.acme) });
    expect(get.status).toBe(200);
    expect(stagedReads).toBeGreaterThan(readsBeforeGet);

    const readsBeforeHead = stagedReads;
    const head = await raw(url, { method: 'HEAD', headers: bearer(KEYS.acme) });
    expect(head.status).toBe(200);
    expect(head.body.length).toBe(0);
    expect(head.headers['content-length']).toBe(String(get.body.length));
    expect(stableHeaders(head)).toEqual(stableHeaders(get));
    expect(stagedReads).toBe(readsBeforeHead);
    await expectHeadAudited(head, 200);
  });
});
