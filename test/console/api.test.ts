import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { consoleStatic } from '../../src/console/static.js';
import { bearer, type TestGateway } from '../support/gateway.js';
import { raw } from '../support/http.js';
import { AUDIO } from '../support/gateway.js';
import { CONSOLE_KEY, KEYS, startConsoleGateway, unzip, verifyPackage } from './support.js';

const json = (r: { body: Buffer }) => JSON.parse(r.body.toString());

describe('console API: media tickets, waveform, evidence packages', () => {
  let gw: TestGateway;
  let work: string;
  const call = (method: string, path: string, key: string | null = CONSOLE_KEY, body?: unknown, headers: Record<string, string> = {}) =>
    raw(gw.url + path, {
      method,
      headers: { ...(key ? bearer(key) : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
      ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
    });
  /** Polls an evidence job until it is neither queued nor running (10 s at most). */
  const settled = async (poll: string): Promise<any> => {
    let s: any;
    for (let i = 0; i < 100; i++) {
      s = json(await call('GET', poll));
      if (s.status !== 'running' && s.status !== 'queued') break;
      await new Promise((res) => setTimeout(res, 100));
    }
    return s;
  };
  const events = async () => (await gw.deps.auditRepo.query({ tenantId: 'acme', limit: 1000 })).items;

  beforeAll(async () => {
    gw = await startConsoleGateway();
    work = mkdtempSync(join(tmpdir(), 'custodian-console-api-'));
  });
  afterAll(async () => {
    await gw?.stop();
    rmSync(work, { recursive: true, force: true });
  });

  it('whoami names the principal and is audited; no credential is 401', async () => {
    const me = await call('GET', '/api/v1/whoami');
    expect(me.status).toBe(200);
    expect(json(me)).toEqual({ principal: 'carol', tenant: 'acme', kind: 'api_key', scopes: ['audit:read', 'recordings:export', 'recordings:read'], credential_id: 'acme-console' });
    expect(me.headers['cache-control']).toBe('no-store');
    expect(await gw.deps.auditRepo.byId(me.headers['x-audit-event-id'] as string)).toMatchObject({ action: 'auth.whoami', principalId: 'carol' });
    expect((await call('GET', '/api/v1/whoami', null)).status).toBe(401);
    expect((await call('GET', '/api/v1/whoami', 'cst_acme-console_' + 'x'.repeat(32))).status).toBe(401);
  });

  it('a media ticket plays one recording with Range, audited as recording.media with the purpose, and never reaches a log', async () => {
    const issued = await call('POST', '/api/v1/media-tickets', CONSOLE_KEY, { ref: 'avaya_8923', purpose: 'Case 77: complaint review' });
    expect(issued.status).toBe(201);
    const t = json(issued);
    expect(t.media_url).toMatch(/^\/api\/v1\/media-tickets\/play\?t=mt_[A-Za-z0-9_-]{60,}$/);
    const secret = t.media_url.split('?t=').pop();
    expect(await gw.deps.auditRepo.byId(issued.headers['x-audit-event-id'] as string)).toMatchObject({ action: 'media_ticket.issue', recordingPk: t.recording_id, detail: expect.objectContaining({ purpose: 'Case 77: complaint review', ticket_id: t.ticket_id }) });

    // No Authorization header: the ticket is the credential. G.729 arrives transcoded to PCM WAV.
    const whole = await raw(gw.url + t.media_url);
    expect(whole.status).toBe(200);
    expect(whole.headers['x-audio-codec']).toBe('g729');
    expect(whole.headers['x-transcoded']).toBe('true');
    expect(whole.headers['accept-ranges']).toBe('bytes');
    const size = whole.body.length;
    expect(Math.abs((size - 44) / 16000 - 8.44)).toBeLessThan(0.05);
    const part = await raw(gw.url + t.media_url, { headers: { range: 'bytes=1000-1999' } });
    expect(part.status).toBe(206);
    expect(part.headers['content-range']).toBe(`bytes 1000-1999/${size}`);
    expect(part.body.equals(whole.body.subarray(1000, 2000))).toBe(true);

    const played = (await events()).filter((e) => e.action === 'recording.media' && (e.detail as any)?.ticket_id === t.ticket_id);
    expect(played).toHaveLength(2);
    for (const e of played) expect(e).toMatchObject({ outcome: 'allowed', principalId: 'carol', tenantId: 'acme', recordingPk: t.recording_id, detail: expect.objectContaining({ purpose: 'Case 77: complaint review', via: 'media_ticket' }) });
    const all = JSON.stringify(await events());
    expect(all).not.toContain(secret);
    expect(gw.logs.join('\n')).not.toContain(secret);

    // Revoked: dead at once, and the revocation is idempotent.
    expect((await call('DELETE', `/api/v1/media-tickets/${t.ticket_id}`)).status).toBe(204);
    expect((await call('DELETE', `/api/v1/media-tickets/${t.ticket_id}`)).status).toBe(204);
    const after = await raw(gw.url + t.media_url);
    expect(after.status).toBe(401);
    expect(json(after).code).toBe('auth.invalid_token');
    expect(gw.logs.join('\n')).not.toContain(secret);
  });

  it('refuses bad ticket requests: no credential, no purpose, bad format, unknown or foreign ref, expired recording, forged tickets', async () => {
    expect((await call('POST', '/api/v1/media-tickets', null, { ref: 'avaya_8923', purpose: 'x' })).status).toBe(401);
    expect((await call('POST', '/api/v1/media-tickets', KEYS.acmeNoScope, { ref: 'avaya_8923', purpose: 'x' })).status).toBe(403);
    for (const body of [{ ref: 'avaya_8923' }, { ref: 'avaya_8923', purpose: '   ' }, { ref: 'avaya_8923', purpose: 'x', format: 'json' }, { ref: 'avaya_8923', purpose: 'x'.repeat(501) }, { ref: '', purpose: 'x' }, { ref: 'avaya_8923', purpose: 'x', extra: 1 }]) {
      const r = await call('POST', '/api/v1/media-tickets', CONSOLE_KEY, body);
      expect(r.status, JSON.stringify(body)).toBe(422);
      expect(r.headers['content-type']).toBe('application/problem+json');
    }
    expect((await call('POST', '/api/v1/media-tickets', CONSOLE_KEY, '{"ref":')).status).toBe(400);
    const unknown = await call('POST', '/api/v1/media-tickets', CONSOLE_KEY, { ref: 'no_such_ref', purpose: 'x' });
    const foreign = await call('POST', '/api/v1/media-tickets', CONSOLE_KEY, { ref: 'globex_secret', purpose: 'x' });
    expect(unknown.status).toBe(404);
    expect(foreign.status).toBe(404);
    const globex = (await gw.deps.auditRepo.query({ tenantId: 'globex', limit: 100 })).items;
    expect(globex.some((e) => e.action === 'recording.cross_tenant_attempt' && e.principalId === 'carol')).toBe(true);
    const expired = await call('POST', '/api/v1/media-tickets', CONSOLE_KEY, { ref: 'expired_1', purpose: 'x' });
    expect(expired.status).toBe(410);
    expect(expired.headers['x-retention-status']).toBe('EXPIRED');
    for (const forged of ['mt_' + 'A'.repeat(43), 'not-a-ticket', 'mt_' + 'A'.repeat(42) + '%00', 'x'.repeat(300)]) {
      const r = await raw(`${gw.url}/api/v1/media-tickets/play?t=${forged}`);
      expect([401, 414, 422], forged).toContain(r.status);
    }
    expect((await call('DELETE', '/api/v1/media-tickets/not-an-id')).status).toBe(422);
    expect((await call('DELETE', '/api/v1/media-tickets/mtk_00000000-0000-0000-0000-000000000000', null)).status).toBe(401);
    // Forged tickets name no tenant: their denials are in the tenant-less part of the trail.
    const denied = await gw.deps.catalog.db.selectFrom('audit_events').select(['id', 'error_code']).where('action', '=', 'recording.media').where('tenant_id', 'is', null).where('outcome', '=', 'denied').execute();
    expect(denied.length).toBeGreaterThanOrEqual(3);
    expect(denied.every((e) => e.error_code === 'auth.invalid_token')).toBe(true);
  });

  it("a ticket is bound to its issuer's tenant: another tenant's key cannot revoke it", async () => {
    const t = json(await call('POST', '/api/v1/media-tickets', CONSOLE_KEY, { ref: 'v_2003', purpose: 'x' }));
    expect((await call('DELETE', `/api/v1/media-tickets/${t.ticket_id}`, KEYS.globex)).status).toBe(204);
    const r = await raw(gw.url + t.media_url, { headers: { range: 'bytes=0-43' } });
    expect(r.status).toBe(206);
    expect(r.body.subarray(0, 4).toString()).toBe('RIFF');
    const theirs = (await gw.deps.auditRepo.query({ tenantId: 'globex', action: 'media_ticket.revoke', limit: 1000 })).items.filter((e) => e.detail?.ticket_id === t.ticket_id);
    expect(theirs).toHaveLength(1);
    expect(theirs[0]!.detail).not.toHaveProperty('revoked');
  });

  it('a revocation by someone who is neither the owner nor an admin is answered like any (204) and recorded as what it is: no claim that the ticket was revoked', async () => {
    const t = json(await call('POST', '/api/v1/media-tickets', CONSOLE_KEY, { ref: 'v_2001', purpose: 'x' }));
    const byBob = await call('DELETE', `/api/v1/media-tickets/${t.ticket_id}`, KEYS.acmeReader2);
    expect(byBob.status).toBe(204);
    // Not bob's ticket, and bob is no admin: it still plays.
    expect((await raw(gw.url + t.media_url, { headers: { range: 'bytes=0-43' } })).status).toBe(206);
    const bobs = await gw.deps.auditRepo.byId(byBob.headers['x-audit-event-id'] as string);
    expect(bobs).toMatchObject({ action: 'media_ticket.revoke', principalId: 'bob', outcome: 'completed', status: 204 });
    expect(bobs!.detail).toEqual({ ticket_id: t.ticket_id, takes_effect: 'if_own_ticket' });

    // The owner's revocation: the same record, and the ticket is dead.
    const byOwner = await call('DELETE', `/api/v1/media-tickets/${t.ticket_id}`);
    expect(byOwner.status).toBe(204);
    expect((await gw.deps.auditRepo.byId(byOwner.headers['x-audit-event-id'] as string))!.detail).toEqual({ ticket_id: t.ticket_id, takes_effect: 'if_own_ticket' });
    expect((await raw(gw.url + t.media_url)).status).toBe(401);

    // An admin of the tenant revokes any of its tickets.
    const t2 = json(await call('POST', '/api/v1/media-tickets', CONSOLE_KEY, { ref: 'v_2001', purpose: 'x' }));
    const byAdmin = await call('DELETE', `/api/v1/media-tickets/${t2.ticket_id}`, KEYS.acmeAdmin);
    expect(byAdmin.status).toBe(204);
    expect((await gw.deps.auditRepo.byId(byAdmin.headers['x-audit-event-id'] as string))!.detail).toEqual({ ticket_id: t2.ticket_id, takes_effect: 'if_ticket_of_tenant' });
    expect((await raw(gw.url + t2.media_url)).status).toBe(401);
  });

  it('waveform: both sides of a stereo call, G.729 through the transcoder, bad input refused', async () => {
    const st = await call('GET', '/api/v1/recordings/v_2003/waveform?points=100&purpose=Case%2077');
    expect(st.status).toBe(200);
    const p = json(st);
    expect(p).toMatchObject({ channels: 2, sample_rate: 8000, points: 100, codec: 'pcm_s16le' });
    expect(p.min).toHaveLength(2);
    expect(p.max[1]).toHaveLength(100);
    expect(Math.max(...p.max[0])).toBeGreaterThan(0.05);
    expect(Math.max(...p.max[1])).toBeGreaterThan(0.05);
    expect(await gw.deps.auditRepo.byId(st.headers['x-audit-event-id'] as string)).toMatchObject({ action: 'recording.waveform', detail: expect.objectContaining({ purpose: 'Case 77' }) });
    const g = json(await call('GET', '/api/v1/recordings/avaya_8923/waveform'));
    expect(g).toMatchObject({ channels: 1, codec: 'g729' });
    expect(Math.abs(g.duration_s - 8.44)).toBeLessThan(0.05);
    for (const q of ['points=1', 'points=99999', 'points=abc', 'bogus=1']) expect((await call('GET', `/api/v1/recordings/v_2003/waveform?${q}`)).status, q).toBe(422);
    expect((await call('GET', '/api/v1/recordings/expired_1/waveform')).status).toBe(410);
    expect((await call('GET', '/api/v1/recordings/globex_secret/waveform')).status).toBe(404);
    expect((await call('GET', '/api/v1/recordings/v_2003/waveform', null)).status).toBe(401);
  });

  it('streams a small evidence package whose manifest, SHA256SUMS and signature verify, and audits the export per recording with the purpose', async () => {
    const r = await call('POST', '/api/v1/evidence', CONSOLE_KEY, { refs: ['avaya_8923', 'v_2001', 'avaya_8923'], purpose: 'Case 77: regulator request' });
    expect(r.status).toBe(200);
    expect(r.complete).toBe(true);
    expect(r.headers['content-type']).toBe('application/zip');
    expect(r.headers['transfer-encoding']).toBe('chunked');
    const files = await unzip(r.body);
    const { manifest, fingerprint } = verifyPackage(files, join(work, 'stream'));
    expect(r.trailers['x-content-sha256']).toBe((await import('node:crypto')).createHash('sha256').update(r.body).digest('hex'));

    const pk = json(await call('GET', '/api/v1/evidence/public-key'));
    expect(pk.public_key_sha256).toBe(fingerprint);
    expect(manifest.signature).toMatchObject({ algorithm: 'Ed25519', key_id: pk.key_id, public_key_sha256: fingerprint });
    // The gateway's one signing key (KeyService), the same that signs audit checkpoints and exports.
    expect(pk.key_id).toBe(await gw.deps.keys.signingKeyId());
    expect(manifest).toMatchObject({ format: 'custodian-evidence/1', purpose: 'Case 77: regulator request', complete: true, created_by: { tenant: 'acme', principal: 'carol' }, audit_chain: { ok: true } });
    // The tenant's view of the shared chain: no event count or head hash of all tenants' events.
    expect(Object.keys(manifest.audit_chain).sort()).toEqual(['checkpointed', 'ok', 'verified_at']);
    expect(manifest.recordings).toHaveLength(2); // the duplicate ref is one recording
    const [g729, alaw] = manifest.recordings;
    expect(g729.original).toMatchObject({ codec: 'g729', origin: 'LEGACY_ARCHIVE' });
    expect(files.get(g729.original.path)!.equals(readFileSync(join(AUDIO, 'call_mono_g729_8k.wav')))).toBe(true);
    expect(g729.playable).toMatchObject({ transcoded: true, transcoded_from: 'g729' });
    expect(files.get(g729.playable.path)!.readUInt16LE(20)).toBe(1); // PCM
    expect(alaw.original).toMatchObject({ codec: 'alaw', catalog_sha256_verified: true });
    expect(alaw.original.sha256).toBe(alaw.original.catalog_sha256);
    const trail = files.get(`recordings/${g729.id}/audit-events.jsonl`)!.toString().trim().split('\n').map((l) => JSON.parse(l));
    expect(trail.some((e) => e.action === 'recording.export' && e.id === g729.export_audit_event_id)).toBe(true);
    const readme = files.get('README.txt')!.toString();
    expect(readme).toContain('openssl pkeyutl -verify -pubin -inkey public-key.pem -rawin -in SHA256SUMS.sha256 -sigfile SHA256SUMS.sha256.sig');
    expect(readme).toContain('sha256sum -c SHA256SUMS');
    expect(readme).toContain(fingerprint);

    const evs = await events();
    const exports = evs.filter((e) => e.action === 'recording.export' && (e.detail as any)?.package_id === manifest.package_id);
    expect(exports.map((e) => e.recordingPk).sort()).toEqual([g729.id, alaw.id].sort());
    for (const e of exports) expect(e.detail).toMatchObject({ purpose: 'Case 77: regulator request', mode: 'stream' });
    const allowedId = r.headers['x-audit-event-id'] as string;
    await expect.poll(async () => (await events()).find((e) => e.relatedEventId === allowedId)).toMatchObject({ action: 'evidence.export.end', outcome: 'completed', bytesSent: r.body.length });
  });

  it('builds a large package as a job with progress; only its owner sees it; Range works on the download', async () => {
    const r = await call('POST', '/api/v1/evidence', CONSOLE_KEY, { refs: ['avaya_8923', 'ms_1001', 'v_2002', 'v_2003'], purpose: 'Case 78' });
    expect(r.status).toBe(202);
    const { job_id, poll_endpoint } = json(r);
    expect(r.headers.location).toBe(poll_endpoint);
    let s: any;
    for (let i = 0; i < 100; i++) {
      s = json(await call('GET', poll_endpoint));
      if (s.status === 'ready' || s.status === 'failed') break;
      await new Promise((res) => setTimeout(res, 100));
    }
    expect(s).toMatchObject({ status: 'ready', progress: { recordings_total: 4, recordings_done: 4 } });
    expect((await call('GET', poll_endpoint, KEYS.acmeAdmin)).status).toBe(200);
    expect((await call('GET', poll_endpoint, KEYS.globex)).status).toBe(403); // no export scope at all
    expect((await call('GET', `${poll_endpoint}/content`, KEYS.acmeNoScope)).status).toBe(404); // export scope, not the owner
    const zip = await call('GET', s.content_endpoint);
    expect(zip.status).toBe(200);
    expect(zip.body.length).toBe(s.size);
    expect(zip.headers['x-content-sha256']).toBe(s.sha256);
    const { manifest } = verifyPackage(await unzip(zip.body), join(work, 'job'));
    expect(manifest.recordings.map((x: any) => x.ref)).toEqual(['avaya_8923', 'ms_1001', 'v_2002', 'v_2003']);
    expect(manifest.recordings[3].playable).toMatchObject({ same_as: 'original' });
    const part = await call('GET', s.content_endpoint, CONSOLE_KEY, undefined, { range: 'bytes=0-3' });
    expect(part.status).toBe(206);
    expect(part.body.toString('latin1')).toBe('PK\x03\x04');
    const done = (await events()).find((e) => e.action === 'evidence.export.end' && (e.detail as any)?.job_id === job_id);
    expect(done).toMatchObject({ outcome: 'completed', bytesSent: s.size, sha256: s.sha256 });
    expect((await events()).filter((e) => e.action === 'evidence.download').length).toBeGreaterThanOrEqual(2);
  });

  it('refuses bad evidence requests before exporting anything', async () => {
    const before = (await events()).filter((e) => e.action === 'recording.export').length;
    expect((await call('POST', '/api/v1/evidence', KEYS.acme, { refs: ['avaya_8923'], purpose: 'x' })).status).toBe(403); // no recordings:export
    expect((await call('POST', '/api/v1/evidence', KEYS.acmeNoScope, { refs: ['avaya_8923'], purpose: 'x' })).status).toBe(403); // no audit:read
    for (const body of [{ refs: [], purpose: 'x' }, { refs: ['avaya_8923'] }, { refs: ['avaya_8923'], purpose: '' }, { refs: Array.from({ length: 101 }, (_, i) => `r${i}`), purpose: 'x' }, { refs: ['avaya_8923'], purpose: 'x', mode: 'later' }, { refs: 'avaya_8923', purpose: 'x' }]) {
      expect((await call('POST', '/api/v1/evidence', CONSOLE_KEY, body)).status, JSON.stringify(body).slice(0, 80)).toBe(422);
    }
    const unknown = await call('POST', '/api/v1/evidence', CONSOLE_KEY, { refs: ['avaya_8923', 'no_such_ref'], purpose: 'x' });
    expect(unknown.status).toBe(404);
    expect(json(unknown).ref).toBe('no_such_ref');
    expect((await call('POST', '/api/v1/evidence', CONSOLE_KEY, { refs: ['globex_secret'], purpose: 'x' })).status).toBe(404);
    expect((await call('POST', '/api/v1/evidence', CONSOLE_KEY, { refs: ['expired_1'], purpose: 'x' })).status).toBe(410);
    expect((await call('GET', '/api/v1/evidence/jobs/evjob_00000000-0000-0000-0000-000000000000')).status).toBe(404);
    expect((await call('GET', '/api/v1/evidence/jobs/../../etc/passwd')).status).toBe(404);
    expect((await call('GET', '/api/v1/evidence/jobs/job_1')).status).toBe(422);
    expect((await events()).filter((e) => e.action === 'recording.export').length).toBe(before);
  });

  it('a ready package is not downloaded once the retention of a recording in it has lapsed (no hold)', async () => {
    await gw.seed([{ call_id: 'c-lapse', legacy_archive_id: 'lapse_1', locator: 'call_mono_pcm16_8k.wav', source_system: 'verint', retention_expiry: '2099-01-01T00:00:00Z' }]);
    const job = json(await call('POST', '/api/v1/evidence', CONSOLE_KEY, { refs: ['lapse_1'], purpose: 'Case 94', mode: 'job' }));
    const s = await settled(job.poll_endpoint);
    expect(s.status).toBe('ready');
    expect((await call('GET', s.content_endpoint)).status).toBe(200);
    // The catalog learns a retention date in the past (an import correcting it): the package goes with it.
    await gw.seed([{ call_id: 'c-lapse', legacy_archive_id: 'lapse_1', locator: 'call_mono_pcm16_8k.wav', source_system: 'verint', retention_expiry: '2020-01-01T00:00:00Z' }]);
    const r = await call('GET', s.content_endpoint);
    expect(r.status).toBe(410);
    expect(json(r)).toMatchObject({ code: 'recording.expired', ref: 'lapse_1' });
    expect(r.headers['x-retention-status']).toBe('EXPIRED');
  });

  it('never sends a complete-looking package when stored bytes do not match the catalog digest', async () => {
    const streamed = await call('POST', '/api/v1/evidence', CONSOLE_KEY, { refs: ['tampered_1'], purpose: 'x' });
    expect(streamed.complete).toBe(false);
    await expect(unzip(streamed.body)).rejects.toThrow();
    const job = json(await call('POST', '/api/v1/evidence', CONSOLE_KEY, { refs: ['tampered_1'], purpose: 'x', mode: 'job' }));
    const s = await settled(job.poll_endpoint);
    expect(s).toMatchObject({ status: 'failed', error: { code: 'source.integrity_mismatch' } });
    expect((await call('GET', `${job.poll_endpoint}/content`)).status).toBe(502);
  });
});

describe('console static files', () => {
  let dir: string;
  const app = Fastify();
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'custodian-web-'));
    mkdirSync(join(dir, 'assets'));
    writeFileSync(join(dir, 'index.html'), '<!doctype html><title>t</title>');
    writeFileSync(join(dir, 'assets', 'index-abc.js'), 'console.log(1)');
    writeFileSync(join(dir, '.hidden'), 'secret');
    app.decorateRequest('audit', null as never);
    app.setErrorHandler(async (err, _req, reply) => reply.code((err as { status?: number }).status ?? 500).send({ code: (err as { code?: string }).code }));
    await app.register(consoleStatic(dir));
    await app.ready();
  });
  afterAll(async () => {
    await app.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves the page with a strict CSP, no framing, and revalidation; hashed assets are immutable', async () => {
    const r = await app.inject('/console/');
    expect(r.statusCode).toBe(200);
    expect(r.headers['content-type']).toBe('text/html; charset=utf-8');
    const csp = r.headers['content-security-policy'] as string;
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).not.toContain('unsafe-inline');
    expect(csp).not.toContain('unsafe-eval');
    expect(r.headers['x-frame-options']).toBe('DENY');
    expect(r.headers['x-content-type-options']).toBe('nosniff');
    expect(r.headers['referrer-policy']).toBe('no-referrer');
    expect(r.headers['cache-control']).toBe('no-cache');
    const js = await app.inject('/console/assets/index-abc.js');
    expect(js.headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect(js.headers['cache-control']).toContain('immutable');
    const redirect = await app.inject('/console');
    expect(redirect.statusCode).toBe(301);
    expect(redirect.headers.location).toBe('/console/');
  });

  it('serves nothing outside the build: traversal, hidden files, odd names are 404', async () => {
    for (const p of ['/console/../package.json', '/console/..%2Fpackage.json', '/console/.hidden', '/console/assets/../../x', '/console/%00', '/console/assets//index-abc.js', '/console/nope.js', `/console/${'a'.repeat(300)}`]) {
      expect((await app.inject(p)).statusCode, p).toBe(404);
    }
  });

  it('says how to build when the console is not built', async () => {
    const empty = Fastify();
    empty.decorateRequest('audit', null as never);
    await empty.register(consoleStatic(join(dir, 'missing')));
    const r = await empty.inject('/console/');
    expect(r.statusCode).toBe(503);
    expect(r.body).toContain('npm run build:console');
    await empty.close();
  });
});
