import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditRepository } from '../src/audit/audit-repository.js';
import { usableCatalogs } from './support/catalogs.js';
import { AUDIO, KEYS, retrieveBody, startTestGateway, type TestGateway } from './support/gateway.js';
import { withTrailDown } from './support/trail-down.js';
import { post } from './support/http.js';

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

const SEED = [
  { call_id: '2023-10-27T14:30:00Z-8923', legacy_archive_id: 'avaya_8923', locator: 'call_mono_g729_8k.wav', customer_ref: 'CUST-8923', retention_expiry: '2099-01-01T00:00:00Z' },
  { call_id: '2024-03-05T09:12:00Z-1001', legacy_archive_id: 'ms_1001', locator: 'call_mono_mulaw_8k.wav', source_system: 'verint' },
  { call_id: '2024-04-02T09:30:00Z-2003', legacy_archive_id: 'v_2003', locator: 'call_stereo_pcm16_8k.wav', source_system: 'verint' },
  { call_id: '2019-01-15T12:00:00Z-1234', legacy_archive_id: 'expired_1', locator: 'call_mono_pcm16_8k.wav', retention_expiry: '2020-01-01T00:00:00Z' },
  { call_id: '2019-01-16T12:00:00Z-1235', legacy_archive_id: 'held_1', locator: 'call_mono_pcm16_8k.wav', retention_expiry: '2020-01-01T00:00:00Z', legal_hold: true },
  { call_id: '2024-01-01T00:00:00Z-0001', legacy_archive_id: 'globex_secret', locator: 'call_mono_pcm16_8k.wav', tenant_id: 'globex', customer_ref: 'GLOBEX-1' },
  { call_id: '2024-01-02T00:00:00Z-0002', legacy_archive_id: 'escape_1', locator: '../globex/call_mono_pcm16_8k.wav' },
  { call_id: '2024-01-03T00:00:00Z-0003', legacy_archive_id: 'tampered_1', locator: 'call_mono_alaw_8k.wav', sha256: 'f'.repeat(64) },
  { call_id: '2024-01-04T00:00:00Z-0004', legacy_archive_id: 'gone_1', locator: 'no_such_file.wav' },
];

describe.each(await usableCatalogs())('retrieve on %s', (kind) => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startTestGateway({ catalog: kind });
    await gw.seed(SEED);
  });
  afterAll(async () => gw?.stop());

  it('streams the original bytes with the contract headers, a SHA-256 trailer and an audit pair', async () => {
    const file = readFileSync(join(AUDIO, 'call_mono_g729_8k.wav'));
    const res = await post(gw, retrieveBody({ format_preference: 'original', audit_log_id: 'log_20231027_001' }));
    expect(res.status).toBe(200);
    expect(res.complete).toBe(true);
    expect(res.headers['transfer-encoding']).toBe('chunked');
    expect(res.headers['content-type']).toBe('audio/wav');
    expect(res.headers['x-recording-origin']).toBe('LEGACY_ARCHIVE');
    expect(res.headers['x-retention-status']).toBe('ACTIVE');
    expect(res.headers['x-audio-codec']).toBe('g729');
    expect(res.headers['x-transcoded']).toBe('false');
    expect(res.headers['x-request-id']).toBeTruthy();
    expect(sha256(res.body)).toBe(sha256(file));
    expect(res.trailers['x-content-sha256']).toBe(sha256(file));

    const allowedId = res.headers['x-audit-event-id'] as string;
    const allowed = await gw.deps.auditRepo.byId(allowedId);
    expect(allowed).toMatchObject({ outcome: 'allowed', action: 'recording.retrieve', principalId: 'alice', tenantId: 'acme', auditLogId: 'log_20231027_001', origin: 'LEGACY_ARCHIVE' });
    const endEvent = async () => (await gw.deps.auditRepo.query({ tenantId: 'acme', limit: 1000 })).items.find((e) => e.relatedEventId === allowedId);
    await expect.poll(endEvent).toBeTruthy();
    expect(await endEvent()).toMatchObject({ outcome: 'completed', bytesSent: file.length, sha256: sha256(file), action: 'recording.retrieve.end' });
  });

  it.each([['call_id', '2023-10-27T14:30:00Z-8923'], ['customer_ref', 'CUST-8923'], ['legacy_archive_id', 'avaya_8923']])('resolves by %s', async (_kind, ref) => {
    const res = await post(gw, retrieveBody({ target_recording_ref: ref, format_preference: 'json' }));
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    const meta = JSON.parse(res.body.toString());
    expect(meta.call_id).toBe('2023-10-27T14:30:00Z-8923');
    // and by its own id
    const again = await post(gw, retrieveBody({ target_recording_ref: meta.id, format_preference: 'json' }));
    expect(JSON.parse(again.body.toString()).id).toBe(meta.id);
  });

  it('transcodes µ-law to PCM WAV and says so', async () => {
    const res = await post(gw, retrieveBody({ target_recording_ref: 'ms_1001', format_preference: 'wav', include_metadata: true }));
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('audio/wav');
    expect(res.headers['x-audio-codec']).toBe('mulaw');
    expect(res.headers['x-transcoded']).toBe('true');
    expect(res.body.subarray(0, 4).toString()).toBe('RIFF');
    expect(res.body.readUInt16LE(20)).toBe(1); // PCM
    const meta = JSON.parse(Buffer.from(res.headers['x-recording-metadata'] as string, 'base64url').toString());
    expect(meta.copies[0].legacy_archive_id).toBe('ms_1001');
    expect(meta.copies[0]).not.toHaveProperty('locator');
  });

  it('transcodes G.729 through ffmpeg to PCM WAV', async () => {
    const res = await post(gw, retrieveBody({ format_preference: 'wav' }));
    expect(res.status, res.body.toString().slice(0, 300)).toBe(200);
    expect(res.complete).toBe(true);
    expect(res.headers['x-audio-codec']).toBe('g729');
    expect(res.headers['x-transcoded']).toBe('true');
    expect(res.body.readUInt16LE(20)).toBe(1);
    // 8.44 s of 8 kHz 16-bit mono, within a frame or two
    expect(Math.abs(res.body.length - 44 - 8000 * 2 * 8.44)).toBeLessThan(8000 * 2 * 0.05);
  });

  it('answers 410 with X-Retention-Status EXPIRED past retention, and serves a legal hold', async () => {
    const expired = await post(gw, retrieveBody({ target_recording_ref: 'expired_1' }));
    expect(expired.status).toBe(410);
    expect(expired.headers['content-type']).toBe('application/problem+json');
    expect(expired.headers['x-retention-status']).toBe('EXPIRED');
    expect(JSON.parse(expired.body.toString()).code).toBe('recording.expired');
    const held = await post(gw, retrieveBody({ target_recording_ref: 'held_1' }));
    expect(held.status).toBe(200);
    expect(held.headers['x-retention-status']).toBe('LEGAL_HOLD');
  });

  it("gives another tenant's ref the same 404 as an unknown ref, and audits the attempt for both tenants", async () => {
    const foreign = await post(gw, retrieveBody({ target_recording_ref: 'globex_secret' }));
    const unknown = await post(gw, retrieveBody({ target_recording_ref: 'no_such_ref' }));
    expect(foreign.status).toBe(404);
    expect(unknown.status).toBe(404);
    const strip = (b: Buffer) => {
      const { request_id: _r, ...rest } = JSON.parse(b.toString());
      return rest;
    };
    expect(strip(foreign.body)).toEqual(strip(unknown.body));
    expect(Object.keys(foreign.headers).sort()).toEqual(Object.keys(unknown.headers).sort());
    const globexEvents = (await gw.deps.auditRepo.query({ tenantId: 'globex', limit: 100 })).items;
    expect(globexEvents.some((e) => e.action === 'recording.cross_tenant_attempt' && e.principalId === 'alice')).toBe(true);
    const acmeEvents = (await gw.deps.auditRepo.query({ tenantId: 'acme', outcome: 'denied', limit: 1000 })).items;
    expect(acmeEvents.some((e) => e.ref === 'globex_secret' && e.errorCode === 'recording.not_found')).toBe(true);
    // and globex's own key does reach it
    const own = await post(gw, retrieveBody({ target_recording_ref: 'globex_secret', caller_id: 'gary' }), KEYS.globex);
    expect(own.status).toBe(200);
  });

  it("answers another tenant's ref exactly as an unknown ref when the trail cannot be written, and logs the owner's lost event", async () => {
    const logsBefore = gw.logs.length;
    const [foreign, unknown] = await withTrailDown(gw.deps.audit.repo as AuditRepository, async () => [
      await post(gw, retrieveBody({ target_recording_ref: 'globex_secret' })),
      await post(gw, retrieveBody({ target_recording_ref: 'no_such_ref' })),
    ]);
    expect(unknown.status, unknown.body.toString()).toBe(404);
    expect(foreign.status, foreign.body.toString()).toBe(unknown.status);
    const strip = (b: Buffer) => {
      const { request_id: _r, ...rest } = JSON.parse(b.toString());
      return rest;
    };
    expect(strip(foreign.body)).toEqual(strip(unknown.body));
    expect(Object.keys(foreign.headers).sort()).toEqual(Object.keys(unknown.headers).sort());
    // The owner's event that could not be written is not lost silently.
    const errors = gw.logs.slice(logsBefore).map((l) => JSON.parse(l) as { level: number; msg: string; owner_tenant?: string; action?: string; reqId?: string });
    expect(errors.some((l) => l.level >= 50 && l.owner_tenant === 'globex' && l.action === 'recording.cross_tenant_attempt')).toBe(true);
  });

  it("commits the owner's cross-tenant event with the caller's own 404 event: a foreign ref costs no commit more than an unknown one", async () => {
    // Written in a commit of its own before the caller's event, the owner's evidence made a foreign
    // ref answer one durable commit slower than an unknown ref: an existence oracle by timing.
    // Which events each commit carried is what the repository tells its listeners, per commit.
    const repo = gw.deps.audit.repo as AuditRepository;
    const commits: { tenantId: string | null; action: string; httpRequestId: string | null }[][] = [];
    const published = repo.published.bind(repo);
    repo.published = (events) => {
      commits.push(events.map((e) => ({ tenantId: e.tenantId, action: e.action, httpRequestId: e.httpRequestId })));
      published(events);
    };
    try {
      const foreign = await post(gw, retrieveBody({ target_recording_ref: 'globex_secret' }));
      expect(foreign.status).toBe(404);
      const rid = foreign.headers['x-request-id'] as string;
      const mine = commits.filter((c) => c.some((e) => e.httpRequestId === rid));
      expect(mine).toHaveLength(1);
      expect(mine[0]!.filter((e) => e.httpRequestId === rid)).toEqual([
        { tenantId: 'acme', action: 'recording.retrieve', httpRequestId: rid },
        { tenantId: 'globex', action: 'recording.cross_tenant_attempt', httpRequestId: rid },
      ]);
    } finally {
      repo.published = published;
    }
  });

  it('refuses a caller_id that is not the principal, unless the principal is admin', async () => {
    const res = await post(gw, retrieveBody({ caller_id: 'mallory' }));
    expect(res.status).toBe(403);
    expect(JSON.parse(res.body.toString()).code).toBe('access.caller_mismatch');
    const admin = await post(gw, retrieveBody({ caller_id: 'alice', format_preference: 'json' }), KEYS.acmeAdmin);
    expect(admin.status).toBe(200);
  });

  it('repeats a request_id with the same body and refuses it with another', async () => {
    const body = retrieveBody({ format_preference: 'json' });
    expect((await post(gw, body)).status).toBe(200);
    expect((await post(gw, body)).status).toBe(200);
    const clash = await post(gw, { ...body, target_recording_ref: 'ms_1001' });
    expect(clash.status).toBe(409);
    expect(JSON.parse(clash.body.toString()).code).toBe('request.idempotency_conflict');
  });

  it('counts the purpose of access as part of the request: another purpose under the same request_id is a 409', async () => {
    const body = retrieveBody({ format_preference: 'json', purpose: 'case 1' });
    expect((await post(gw, body)).status).toBe(200);
    expect((await post(gw, body)).status).toBe(200);
    for (const other of [{ ...body, purpose: 'case 2' }, (({ purpose: _, ...rest }) => rest)(body)]) {
      const clash = await post(gw, other);
      expect(clash.status, JSON.stringify(other)).toBe(409);
      expect(JSON.parse(clash.body.toString()).code).toBe('request.idempotency_conflict');
    }
    // and a body without purpose, then the same with one
    const bare = retrieveBody({ format_preference: 'json' });
    expect((await post(gw, bare)).status).toBe(200);
    expect((await post(gw, { ...bare, purpose: 'case 3' })).status).toBe(409);
  });

  it('still matches a request_id stored before purpose joined the hash, when the repeat has no purpose', async () => {
    const body = retrieveBody({ format_preference: 'json', audit_log_id: 'log_1' });
    // The hash as earlier versions stored it: no purpose in it.
    const before = createHash('sha256').update(JSON.stringify([body.caller_id, body.target_recording_ref, 'json', false, 'log_1'])).digest('hex');
    await gw.deps.catalog.db
      .insertInto('retrieve_requests')
      .values({ tenant_id: 'acme', request_id: String(body.request_id), body_hash: before, recording_pk: null, created_at: new Date().toISOString() })
      .execute();
    expect((await post(gw, body)).status).toBe(200);
    expect((await post(gw, { ...body, include_metadata: true })).status).toBe(409);
  });

  it('refuses a catalog locator that climbs out of the archive root', async () => {
    const res = await post(gw, retrieveBody({ target_recording_ref: 'escape_1' }));
    expect(res.status).toBe(502);
    expect(JSON.parse(res.body.toString()).code).toBe('source.path_refused');
    expect(res.headers['retry-after']).toBeUndefined();
  });

  it('says the object is missing at the source (502), not that the recording does not exist', async () => {
    const res = await post(gw, retrieveBody({ target_recording_ref: 'gone_1' }));
    expect(res.status).toBe(502);
    expect(JSON.parse(res.body.toString()).code).toBe('source.object_missing');
    // Asking again changes nothing: no Retry-After (a 502 of the source's own error answer has one).
    expect(res.headers['retry-after']).toBeUndefined();
  });

  it('aborts the transfer when the stored bytes do not match the catalog SHA-256', async () => {
    const res = await post(gw, retrieveBody({ target_recording_ref: 'tampered_1', format_preference: 'original' }));
    expect(res.status).toBe(200);
    expect(res.headers['x-content-sha256']).toBe('f'.repeat(64));
    expect(res.complete).toBe(false);
    // The client sees the abort before the gateway has written the closing event.
    await expect.poll(async () => (await gw.deps.auditRepo.query({ tenantId: 'acme', outcome: 'failed', limit: 1000 })).items.some((e) => e.errorCode === 'source.integrity_mismatch')).toBe(true);
  });

  it('keeps the audit chain valid across everything above', async () => {
    const v = await gw.deps.auditRepo.verify();
    expect(v.ok).toBe(true);
    expect(v.checked).toBeGreaterThan(20);
  });
});
