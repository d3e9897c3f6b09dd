import { type CryptoKey, SignJWT, exportSPKI, generateKeyPair } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Principal } from '../../src/access/principal.js';
import { catalogRevocations, sharedTicketKey } from '../../src/console/ticket-key.js';
import { MediaTicketStore } from '../../src/console/tickets.js';
import { bearer, type TestGateway } from '../support/gateway.js';
import { raw } from '../support/http.js';
import { CONSOLE_KEY, startConsoleGateway } from './support.js';

const json = (r: { body: Buffer }) => JSON.parse(r.body.toString());
const ISSUER = 'https://idp.test/';
const AUDIENCE = 'custodian';

/**
 * A media ticket is only as good as the credential that asked for it (docs/console/README.md):
 * a ticket of an API key stops playing once the key is revoked (or gone from the configuration),
 * and a ticket issued to a bearer token never outlives the token's `exp`. A refused play is audited
 * like any refused request.
 */
describe('media tickets and the credential that issued them', () => {
  let gw: TestGateway;
  let privateKey: CryptoKey;
  const issue = (key: string, ref = 'v_2001') =>
    raw(`${gw.url}/api/v1/media-tickets`, { method: 'POST', headers: { ...bearer(key), 'content-type': 'application/json' }, body: JSON.stringify({ ref, purpose: 'Case 9: review', format: 'wav' }) });
  const play = (mediaUrl: string) => raw(gw.url + mediaUrl, { headers: { range: 'bytes=0-99' } });
  const mediaEvents = async (ticketId: string) =>
    (await gw.deps.auditRepo.query({ tenantId: 'acme', action: 'recording.media', limit: 1000 })).items.filter((e) => e.detail?.ticket_id === ticketId);
  const token = (expSeconds: number) =>
    new SignJWT({ tenant: 'acme', scope: 'recordings:read' })
      .setProtectedHeader({ alg: 'ES256' })
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .setSubject('jane')
      .setIssuedAt()
      .setExpirationTime(expSeconds)
      .sign(privateKey);

  beforeAll(async () => {
    const pair = await generateKeyPair('ES256', { extractable: true });
    privateKey = pair.privateKey;
    const pem = await exportSPKI(pair.publicKey);
    gw = await startConsoleGateway((doc) => {
      doc.auth.jwt = { issuer: ISSUER, audience: AUDIENCE, algorithms: ['ES256'], public_keys: [pem], clock_tolerance_s: 0 };
    });
  });
  afterAll(async () => gw?.stop());

  it('a ticket of a revoked API key stops playing at once: 401 auth.invalid_token, audited as a denied recording.media', async () => {
    const key = await gw.deps.apiKeys.issue('acme', 'eve', ['recordings:read']);
    const r = await issue(key.key);
    expect(r.status, r.body.toString()).toBe(201);
    const t = json(r) as { ticket_id: string; media_url: string };
    expect((await play(t.media_url)).status).toBe(206);

    expect(await gw.deps.apiKeys.revoke(key.id)).toBe(true);
    expect((await raw(`${gw.url}/api/v1/whoami`, { headers: bearer(key.key) })).status).toBe(401);
    const after = await play(t.media_url);
    expect(after.status).toBe(401);
    expect(json(after).code).toBe('auth.invalid_token');
    expect(after.headers['content-type']).toBe('application/problem+json');
    // Still refused on a later request (not a one-off).
    expect((await play(t.media_url)).status).toBe(401);

    const played = await mediaEvents(t.ticket_id);
    expect(played.map((e) => `${e.outcome}/${e.status}`)).toEqual(['allowed/206', 'denied/401', 'denied/401']);
    const denied = played.filter((e) => e.outcome === 'denied');
    expect(denied).toHaveLength(2);
    for (const e of denied) expect(e).toMatchObject({ tenantId: 'acme', principalId: 'eve', status: 401, errorCode: 'auth.invalid_token', detail: expect.objectContaining({ via: 'media_ticket', ticket_id: t.ticket_id }) });
  });

  it('a ticket of an API key no longer in the configuration (or now naming someone else) is refused', async () => {
    const meta = await raw(`${gw.url}/api/v1/recordings/v_2001`, { headers: bearer(CONSOLE_KEY) });
    const recordingPk = json(meta).id as string;
    // Tickets sealed with the gateway's own key, as an instance running with an older configuration would have issued them.
    const store = new MediaTicketStore(sharedTicketKey(gw.deps), catalogRevocations(gw.deps));
    const sealed = async (p: Principal) => (await store.issue({ principal: p, recordingPk, ref: 'v_2001', format: 'wav', purpose: 'p' })).secret;
    const scopes = new Set(['recordings:read'] as const);
    const live = await sealed({ id: 'carol', tenantId: 'acme', kind: 'api_key', credentialId: 'acme-console', scopes });
    const removed = await sealed({ id: 'zed', tenantId: 'acme', kind: 'api_key', credentialId: 'acme-removed', scopes });
    const reassigned = await sealed({ id: 'mallory', tenantId: 'acme', kind: 'api_key', credentialId: 'acme-console', scopes });
    const noCredential = await sealed({ id: 'carol', tenantId: 'acme', kind: 'api_key', credentialId: null, scopes });
    expect((await play(`/api/v1/media-tickets/play?t=${live}`)).status).toBe(206);
    for (const t of [removed, reassigned, noCredential]) {
      const r = await play(`/api/v1/media-tickets/play?t=${t}`);
      expect(r.status).toBe(401);
      expect(json(r).code).toBe('auth.invalid_token');
    }
  });

  it("a ticket issued to a bearer token never outlives the token's exp", async () => {
    const exp = Math.floor(Date.now() / 1000) + 3;
    const r = await issue(await token(exp));
    expect(r.status, r.body.toString()).toBe(201);
    const t = json(r) as { ticket_id: string; media_url: string; expires_at: string; first_use_by: string };
    expect(Date.parse(t.expires_at)).toBeLessThanOrEqual(exp * 1000);
    expect(Date.parse(t.first_use_by)).toBeLessThanOrEqual(exp * 1000);
    const issued = (await gw.deps.auditRepo.query({ tenantId: 'acme', action: 'media_ticket.issue', limit: 1000 })).items.find((e) => e.detail?.ticket_id === t.ticket_id);
    expect(issued?.detail?.expires_at).toBe(t.expires_at);
    expect((await play(t.media_url)).status).toBe(206);
    await new Promise((res) => setTimeout(res, Math.max(0, exp * 1000 - Date.now()) + 200));
    const after = await play(t.media_url);
    expect(after.status).toBe(401);
    expect(json(after).code).toBe('auth.invalid_token');
    // A longer-lived token still gets the usual lifetime.
    const long = json(await issue(await token(Math.floor(Date.now() / 1000) + 3600))) as { expires_at: string };
    expect(Date.parse(long.expires_at) - Date.now()).toBeGreaterThan(9 * 60_000);
  });
});
