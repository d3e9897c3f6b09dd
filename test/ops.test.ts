import { execFileSync } from 'node:child_process';
import { createServer } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../src/config/load.js';
import { checkTransport } from '../src/main.js';
import { usableCatalogs } from './support/catalogs.js';
import { KEYS, bearer, retrieveBody, startTestGateway, type TestGateway } from './support/gateway.js';
import { post, raw } from './support/http.js';

describe('operations endpoints', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startTestGateway({ sources: { globex: [{ name: 'gone', type: 'filesystem', root: '/nonexistent/custodian-archive' }] } });
    await gw.seed([{ call_id: 'c-ops', legacy_archive_id: 'ops_1', locator: 'call_mono_pcm16_8k.wav' }]);
  });
  afterAll(async () => gw?.stop());

  it('healthz is up; readyz names no tenant or source and fails while a source is unreachable', async () => {
    expect((await raw(`${gw.url}/healthz`)).status).toBe(200);
    const ready = await raw(`${gw.url}/readyz`);
    expect(ready.status).toBe(503);
    const body = JSON.parse(ready.body.toString());
    expect(body).toEqual({ status: 'not_ready', catalog: true, sources: { total: 3, failing: 1 } });
    expect(ready.body.toString()).not.toMatch(/globex|acme|gone/);
    expect(gw.logs.join('\n')).toContain('source:globex/gone');
  });

  it('exports Prometheus metrics for requests, bytes and source latency', async () => {
    await post(gw, retrieveBody({ target_recording_ref: 'ops_1' }));
    // A stream is counted once the server's side of it has finished, which can trail the client
    // reading its last byte by a turn of the loop (CI saw the scrape arrive first): poll.
    let m = '';
    await expect
      .poll(async () => (m = (await raw(`${gw.url}/metrics`)).body.toString()), { timeout: 5000 })
      .toMatch(/custodian_requests_total\{[^}]*origin="LEGACY_ARCHIVE"[^}]*outcome="completed"/);
    expect(m).toMatch(/custodian_bytes_streamed_total\{origin="LEGACY_ARCHIVE",transcoded="false"\} \d+/);
    expect(m).toContain('custodian_source_first_byte_seconds_bucket');
    expect(m).not.toMatch(/acme|globex/);
  });

  it('serves an OpenAPI document generated from the route schemas', async () => {
    const doc = JSON.parse((await raw(`${gw.url}/openapi.json`)).body.toString());
    expect(doc.openapi).toBe('3.1.0');
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining([
        '/api/v1/recordings/retrieve',
        '/api/v1/recordings/{ref}/media',
        '/api/v1/recordings/{ref}',
        '/api/v1/recordings',
        '/api/v1/audit/events',
        '/api/v1/audit/verify',
        '/api/v1/audit/export',
        '/api/v1/audit/signing-key',
        '/api/v1/recordings/{ref}/holds',
        '/api/v1/holds',
        '/api/v1/holds/{id}/release',
      ]),
    );
    const body = doc.paths['/api/v1/recordings/retrieve'].post.requestBody.content['application/json'].schema;
    expect(body.required).toEqual(expect.arrayContaining(['request_id', 'caller_id', 'target_recording_ref']));
    expect(body.properties.format_preference.enum).toEqual(['wav', 'original', 'mp3', 'opus', 'json']);
  });

  it('lets an auditor read and verify the trail, and audits those reads', async () => {
    for (let i = 0; i < 6; i++) await raw(`${gw.url}/api/v1/recordings`, { headers: bearer(KEYS.acme) });
    const events = await raw(`${gw.url}/api/v1/audit/events?limit=5`, { headers: bearer(KEYS.acmeAuditor) });
    expect(events.status).toBe(200);
    const page = JSON.parse(events.body.toString());
    expect(page.items.length).toBeGreaterThan(0);
    expect(page.items.every((e: { tenantId: string }) => e.tenantId === 'acme')).toBe(true);
    const readEvent = await gw.deps.auditRepo.byId(events.headers['x-audit-event-id'] as string);
    expect(readEvent).toMatchObject({ action: 'audit.read', principalId: 'audrey' });
    const next = await raw(`${gw.url}/api/v1/audit/events?limit=5&after=${page.next_after}`, { headers: bearer(KEYS.acmeAuditor) });
    expect(JSON.parse(next.body.toString()).items[0].seq).toBeGreaterThan(page.items[4].seq);
    const verify = await raw(`${gw.url}/api/v1/audit/verify`, { headers: bearer(KEYS.acmeAuditor) });
    expect(JSON.parse(verify.body.toString())).toMatchObject({ ok: true });
  });

  it('searches the catalog with keyset pagination', async () => {
    await gw.seed(Array.from({ length: 7 }, (_, i) => ({ call_id: `2024-02-0${i + 1}T00:00:00Z-s${i}`, legacy_archive_id: `s_${i}`, locator: 'call_mono_pcm16_8k.wav' })));
    const seen = new Set<string>();
    let cursor: string | null = null;
    do {
      const res = await raw(`${gw.url}/api/v1/recordings?limit=3&from=2024-02-01T00:00:00Z&to=2024-03-01T00:00:00Z${cursor ? `&cursor=${cursor}` : ''}`, { headers: bearer(KEYS.acme) });
      const page = JSON.parse(res.body.toString());
      for (const r of page.items) seen.add(r.call_id);
      cursor = page.next_cursor;
    } while (cursor);
    expect(seen.size).toBe(7);
  });

  it('pages a time window in (started_at, id) order, start times shared across pages, and refuses a cursor of the other order', async () => {
    // 4 calls at one instant, 1, 5 at another, 1: with limit 3 a page ends inside a group of equals.
    const groups = [['2024-04-02T10:00:00Z', 4], ['2024-04-03T10:00:00Z', 1], ['2024-04-04T10:00:00Z', 5], ['2024-04-05T10:00:00Z', 1]] as const;
    await gw.seed(groups.flatMap(([at, n], g) => Array.from({ length: n }, (_, i) => ({ call_id: `${at}-w${g}-${i}`, legacy_archive_id: `w_${g}_${i}`, locator: 'call_mono_pcm16_8k.wav' }))));
    const search = (query: string) => raw(`${gw.url}/api/v1/recordings?${query}`, { headers: bearer(KEYS.acme) });
    const expectBadCursor = async (query: string) => {
      const res = await search(query);
      expect(res.status, res.body.toString()).toBe(422);
      expect(res.headers['content-type']).toBe('application/problem+json');
      expect(JSON.parse(res.body.toString())).toMatchObject({ status: 422, code: 'request.invalid', detail: 'cursor is not one this server issued' });
    };
    const window = 'from=2024-04-01T00:00:00Z&to=2024-05-01T00:00:00Z';
    const seen: { id: string; started_at: string }[] = [];
    const cursors: string[] = [];
    let cursor: string | null = null;
    do {
      const res = await search(`limit=3&${window}${cursor ? `&cursor=${cursor}` : ''}`);
      expect(res.status, res.body.toString()).toBe(200);
      const page = JSON.parse(res.body.toString());
      seen.push(...page.items.map((r: { id: string; started_at: string }) => ({ id: r.id, started_at: r.started_at })));
      cursor = page.next_cursor;
      if (cursor) cursors.push(cursor);
    } while (cursor);
    expect(seen).toHaveLength(11);
    expect(new Set(seen.map((r) => r.id)).size).toBe(11);
    const ordered = [...seen].sort((a, b) => (a.started_at < b.started_at ? -1 : a.started_at > b.started_at ? 1 : a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    expect(seen).toEqual(ordered);
    // The cursor names the last item's start time and id.
    expect(JSON.parse(Buffer.from(cursors[0]!, 'base64url').toString())).toEqual([seen[2]!.started_at, seen[2]!.id]);

    // A window's cursor without the window is another order's: refused, not misread as an id.
    await expectBadCursor(`limit=3&cursor=${cursors[0]}`);
    // An id cursor (no window) given with a window.
    const plain = JSON.parse((await search('limit=1')).body.toString());
    expect(Buffer.from(plain.next_cursor, 'base64url').toString()).toBe(plain.items[0].id);
    await expectBadCursor(`limit=3&${window}&cursor=${plain.next_cursor}`);
    // Cursors this server never issues for the window: a start time outside it, a start time not in the catalog's form, not a pair.
    const forge = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
    await expectBadCursor(`limit=3&${window}&cursor=${forge(['2024-06-01T00:00:00.000Z', seen[0]!.id])}`);
    await expectBadCursor(`limit=3&${window}&cursor=${forge(['2024-04-02T10:00:00Z', seen[0]!.id])}`);
    await expectBadCursor(`limit=3&${window}&cursor=${forge([seen[0]!.started_at, seen[0]!.id, 1])}`);
    await expectBadCursor(`limit=3&${window}&cursor=${forge({ started_at: seen[0]!.started_at, id: seen[0]!.id })}`);
    await expectBadCursor(`limit=3&${window}&cursor=${forge([seen[0]!.started_at, 'not-an-id'])}`);
  });
});

describe('transport and sign-in', () => {
  it('refuses plain HTTP off loopback unless told TLS ends in front', () => {
    const cfg = (server: Record<string, unknown>) => parseConfig({ server }, {});
    expect(() => checkTransport(cfg({ host: '0.0.0.0' }))).toThrow(ConfigError);
    expect(() => checkTransport(cfg({ host: '0.0.0.0', allow_insecure_http: true }))).not.toThrow();
    expect(() => checkTransport(cfg({ host: '::1' }))).not.toThrow();
  });

  it('serves HTTPS with TLS 1.2+ only when a certificate is configured', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'custodian-tls-'));
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '1', '-subj', '/CN=127.0.0.1'], { stdio: 'ignore' });
    const gw = await startTestGateway({ config: (doc) => (doc.server.tls = { cert_file: join(dir, 'cert.pem'), key_file: join(dir, 'key.pem') }) });
    try {
      expect(gw.url).toMatch(/^https:/);
      const get = (maxVersion: 'TLSv1.1' | 'TLSv1.2') =>
        new Promise<number>((resolve, reject) => {
          const req = httpsRequest(`${gw.url}/healthz`, { rejectUnauthorized: false, maxVersion, minVersion: 'TLSv1' }, (res) => {
            res.resume();
            resolve(res.statusCode!);
          });
          req.on('error', reject);
          req.end();
        });
      expect(await get('TLSv1.2')).toBe(200);
      await expect(get('TLSv1.1')).rejects.toThrow();
    } finally {
      await gw.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('accepts JWTs from the configured identity provider (JWKS) and maps tenant and scopes', async () => {
    const { publicKey, privateKey } = await generateKeyPair('RS256');
    const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
    const jwks = createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [jwk] })));
    await new Promise<void>((r) => jwks.listen(0, '127.0.0.1', () => r()));
    const jwksUrl = `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/jwks.json`;
    const gw = await startTestGateway({ config: (doc) => (doc.auth.jwt = { issuer: 'https://idp.test/', audience: 'custodian', jwks_url: jwksUrl }) });
    try {
      await gw.seed([{ call_id: 'c-jwt', legacy_archive_id: 'jwt_1', locator: 'call_mono_pcm16_8k.wav' }]);
      const sign = (claims: Record<string, unknown>, exp = '5m') =>
        new SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid: 'k1' }).setIssuer('https://idp.test/').setAudience('custodian').setSubject('jane').setIssuedAt().setExpirationTime(exp).sign(privateKey);
      const ok = await post(gw, retrieveBody({ target_recording_ref: 'jwt_1', caller_id: 'jane', format_preference: 'json' }), await sign({ tenant: 'acme', scope: 'recordings:read' }));
      expect(ok.status).toBe(200);
      const wrongTenant = await post(gw, retrieveBody({ target_recording_ref: 'jwt_1', caller_id: 'jane' }), await sign({ tenant: 'globex', scope: 'recordings:read' }));
      expect(wrongTenant.status).toBe(404);
      const noScope = await post(gw, retrieveBody({ target_recording_ref: 'jwt_1', caller_id: 'jane' }), await sign({ tenant: 'acme', scope: 'audit:read' }));
      expect(noScope.status).toBe(403);
      const expired = await post(gw, retrieveBody({ target_recording_ref: 'jwt_1', caller_id: 'jane' }), await sign({ tenant: 'acme', scope: 'recordings:read' }, '-10m'));
      expect(JSON.parse(expired.body.toString()).code).toBe('auth.expired_token');
    } finally {
      await gw.stop();
      jwks.close();
    }
  });
});

describe.each(await usableCatalogs())('signed audit checkpoints in a running gateway, on %s', (kind) => {
  it('checkpoints every N events and on its timer, once more on graceful shutdown; verify reports them', async () => {
    const gw = await startTestGateway({ catalog: kind, config: (doc) => (doc.audit = { checkpoint_every_events: 5, checkpoint_interval_ms: 300 }) });
    let closed = false;
    try {
      await gw.seed([{ call_id: 'c-cp', legacy_archive_id: 'cp_1', locator: 'call_mono_pcm16_8k.wav' }]);
      for (let i = 0; i < 12; i++) await raw(`${gw.url}/api/v1/recordings/cp_1`, { headers: bearer(KEYS.acme) });
      await expect.poll(async () => (await gw.deps.auditRepo.checkpoints()).length, { timeout: 5000 }).toBeGreaterThanOrEqual(2);
      // Over HTTP every tenant's principal gets `checkpointed`; the count of checkpoints is the whole chain's, the operator's walk.
      const verify = JSON.parse((await raw(`${gw.url}/api/v1/audit/verify`, { headers: bearer(KEYS.acmeAdmin) })).body.toString());
      expect(verify).toEqual({ ok: true, checkpointed: true });
      expect((await gw.deps.auditRepo.verify()).checkpoints).toBeGreaterThanOrEqual(2);
      // Shutdown: the last events (the verify read itself among them) end up under a signed checkpoint.
      await gw.close();
      closed = true;
      const head = (await gw.deps.auditRepo.head())!;
      expect((await gw.deps.auditRepo.latestCheckpoint())!.lastSeq).toBe(head.seq);
      expect(await gw.deps.auditRepo.verify()).toMatchObject({ ok: true });
    } finally {
      if (!closed) await gw.stop();
      else {
        await gw.catalogDb.dispose();
        rmSync(gw.dir, { recursive: true, force: true });
      }
    }
  });
});
