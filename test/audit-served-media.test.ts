import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { allowedAndEnd } from './support/audit-events.js';
import { AUDIO, KEYS, bearer, pollUntil, retrieveBody, startTestGateway, type TestGateway } from './support/gateway.js';
import { type RawResponse, post, raw } from './support/http.js';

const sha256Of = (file: string) => createHash('sha256').update(readFileSync(join(AUDIO, file))).digest('hex');
const G729_SHA = sha256Of('call_mono_g729_8k.wav');
const RAW_G729_SHA = sha256Of('call_mono_g729_8k.g729');
const PCM_SHA = sha256Of('call_mono_pcm16_8k.wav');

/**
 * The events of a media answer say which bytes were sent, as X-Audio-Codec and X-Transcoded tell
 * the client: the `.end` sha256 of a transcode is of the transcoder's output, and without
 * `transcoded` (and the stored copy's digest, `source_sha256`) an auditor could not tell it from a
 * digest of the stored object. Every path that serves media: GET /media (and its HEAD), POST
 * /retrieve, a job's content.
 */
describe('audit events of a media answer record what was sent', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startTestGateway({
      sources: { acme: [{ name: 'queued', type: 'filesystem', root: AUDIO, mode: 'async', source_systems: ['nice'] }] },
      config: (doc) => (doc.jobs = { poll_interval_ms: 50, heartbeat_ms: 200, lease_ms: 10_000, retry_base_ms: 50, staging_ttl_ms: 60_000 }),
    });
    await gw.seed([
      { call_id: 'c-g729', legacy_archive_id: 'g729_1', locator: 'call_mono_g729_8k.wav', sha256: G729_SHA },
      { call_id: 'c-g729-nosha', legacy_archive_id: 'g729_2', locator: 'call_mono_g729_8k.wav' },
      { call_id: 'c-raw', legacy_archive_id: 'raw_1', locator: 'call_mono_g729_8k.g729', codec: 'g729', sha256: RAW_G729_SHA },
      { call_id: 'c-pcm', legacy_archive_id: 'pcm_1', locator: 'call_mono_pcm16_8k.wav', sha256: PCM_SHA },
      { call_id: 'c-job', source_system: 'nice', legacy_archive_id: 'job_1', locator: 'call_mono_g729_8k.wav', sha256: G729_SHA },
    ]);
  });
  afterAll(async () => gw?.stop());

  const eventsOf = (res: RawResponse) => allowedAndEnd(gw, res);

  it('GET /media of a G.729 WAV as wav: codec g729, transcoded, the stored copy digest as source_sha256', async () => {
    const res = await raw(`${gw.url}/api/v1/recordings/g729_1/media?format=wav`, { headers: bearer(KEYS.acme) });
    expect(res.status).toBe(200);
    expect(res.headers['x-transcoded']).toBe('true');
    const { allowed, end } = await eventsOf(res);
    for (const ev of [allowed, end]) expect(ev.detail).toMatchObject({ format: 'wav', codec: 'g729', transcoded: true, source_sha256: G729_SHA });
    // The .end digest is of the bytes sent, which are not the stored bytes.
    expect(end.sha256).toBe(createHash('sha256').update(res.body).digest('hex'));
    expect(end.sha256).not.toBe(G729_SHA);
  });

  it('a transcode of a copy the catalog has no digest for: no source_sha256', async () => {
    const res = await raw(`${gw.url}/api/v1/recordings/g729_2/media?format=wav`, { headers: bearer(KEYS.acme) });
    expect(res.status).toBe(200);
    const { allowed, end } = await eventsOf(res);
    for (const ev of [allowed, end]) {
      expect(ev.detail).toMatchObject({ codec: 'g729', transcoded: true });
      expect(ev.detail).not.toHaveProperty('source_sha256');
    }
  });

  it('stored bytes sent as they are: transcoded false, no source_sha256 (the .end sha256 is the stored digest)', async () => {
    const res = await raw(`${gw.url}/api/v1/recordings/pcm_1/media?format=wav`, { headers: bearer(KEYS.acme) });
    expect(res.status).toBe(200);
    expect(res.headers['x-transcoded']).toBe('false');
    const { allowed, end } = await eventsOf(res);
    for (const ev of [allowed, end]) {
      expect(ev.detail).toMatchObject({ codec: 'pcm_s16le', transcoded: false });
      expect(ev.detail).not.toHaveProperty('source_sha256');
      expect(ev.detail).not.toHaveProperty('sniff_notes');
    }
    expect(end.sha256).toBe(PCM_SHA);
  });

  it("the sniffer's notes go into the events (a raw G.729 file the catalog declares)", async () => {
    const res = await raw(`${gw.url}/api/v1/recordings/raw_1/media?format=wav`, { headers: bearer(KEYS.acme) });
    expect(res.status).toBe(200);
    const { allowed, end } = await eventsOf(res);
    for (const ev of [allowed, end]) {
      expect(ev.detail).toMatchObject({ codec: 'g729', transcoded: true, source_sha256: RAW_G729_SHA, sniff_notes: ['declared raw G.729 frames (no container)'] });
    }
  });

  it('HEAD /media: the same detail, with head true, no bytes and no sha256', async () => {
    const res = await raw(`${gw.url}/api/v1/recordings/g729_1/media?format=wav`, { method: 'HEAD', headers: bearer(KEYS.acme) });
    expect(res.status).toBe(200);
    expect(res.body.length).toBe(0);
    const { allowed, end } = await eventsOf(res);
    for (const ev of [allowed, end]) expect(ev.detail).toMatchObject({ head: true, codec: 'g729', transcoded: true, source_sha256: G729_SHA });
    expect(end).toMatchObject({ bytesSent: 0, sha256: null });
  });

  it('POST /retrieve as wav and as original', async () => {
    const wav = await post(gw, retrieveBody({ target_recording_ref: 'g729_1', format_preference: 'wav' }));
    expect(wav.status).toBe(200);
    const w = await eventsOf(wav);
    for (const ev of [w.allowed, w.end]) expect(ev.detail).toMatchObject({ codec: 'g729', transcoded: true, source_sha256: G729_SHA });

    const orig = await post(gw, retrieveBody({ target_recording_ref: 'g729_1', format_preference: 'original' }));
    expect(orig.status).toBe(200);
    const o = await eventsOf(orig);
    for (const ev of [o.allowed, o.end]) {
      expect(ev.detail).toMatchObject({ codec: 'g729', transcoded: false });
      expect(ev.detail).not.toHaveProperty('source_sha256');
    }
    expect(o.end.sha256).toBe(G729_SHA);
  });

  it("a job's content: what the staging attempt sent, linked to the stored copy", async () => {
    const accepted = await post(gw, retrieveBody({ target_recording_ref: 'job_1', format_preference: 'wav' }));
    expect(accepted.status, accepted.body.toString()).toBe(202);
    const job = (await pollUntil(gw, JSON.parse(accepted.body.toString()).poll_endpoint, ['ready'], KEYS.acme, 15_000)) as { content_endpoint: string };
    const content = await raw(`${gw.url}${job.content_endpoint}`, { headers: bearer(KEYS.acme) });
    expect(content.status).toBe(200);
    expect(content.headers['x-transcoded']).toBe('true');
    const { allowed, end } = await eventsOf(content);
    expect(allowed.action).toBe('job.content');
    for (const ev of [allowed, end]) expect(ev.detail).toMatchObject({ codec: 'g729', transcoded: true, source_sha256: G729_SHA });
  });
});
