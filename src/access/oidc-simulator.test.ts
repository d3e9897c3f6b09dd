import { randomBytes } from 'node:crypto';
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configSchema } from '../config/schema.js';
import { JwtVerifier } from './jwt.js';
import { type OidcSimulator, pkceChallenge, startOidcSimulator } from './oidc-simulator.js';

const REDIRECT = 'http://127.0.0.1:9/console/callback';

describe('OIDC provider simulator', () => {
  let sim: OidcSimulator;
  beforeAll(async () => {
    sim = await startOidcSimulator({
      audience: 'custodian',
      clients: [{ client_id: 'console', redirect_uris: [REDIRECT] }],
      users: [{ sub: 'dora', tenant: 'acme', scope: 'recordings:read audit:read' }],
    });
    sim.knobs.auto = 'dora';
  });
  afterAll(() => sim.close());

  /** Runs /authorize (auto-login) and returns the code from the redirect. */
  async function authorize(verifier: string, extra: Record<string, string> = {}): Promise<URL> {
    const u = new URL(`${sim.issuer}/authorize`);
    const params = { response_type: 'code', client_id: 'console', redirect_uri: REDIRECT, scope: 'openid', state: 's1', nonce: 'n1', code_challenge: pkceChallenge(verifier), code_challenge_method: 'S256', ...extra };
    for (const [k, v] of Object.entries(params)) u.searchParams.set(k, v);
    const res = await fetch(u, { redirect: 'manual' });
    expect(res.status).toBe(302);
    return new URL(res.headers.get('location')!);
  }
  const exchange = (code: string, verifier: string, redirect = REDIRECT) =>
    fetch(`${sim.issuer}/token`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'authorization_code', code, code_verifier: verifier, client_id: 'console', redirect_uri: redirect }),
    });
  const verifier = () => randomBytes(32).toString('base64url');

  it('publishes discovery with S256 PKCE and public clients', async () => {
    const d = (await (await fetch(`${sim.issuer}/.well-known/openid-configuration`)).json()) as Record<string, unknown>;
    expect(d).toMatchObject({ issuer: sim.issuer, code_challenge_methods_supported: ['S256'], token_endpoint_auth_methods_supported: ['none'], jwks_uri: `${sim.issuer}/jwks` });
  });

  it('issues tokens for the right code_verifier; the access token passes the gateway JWT verifier with tenant and scopes', async () => {
    const v = verifier();
    const back = await authorize(v);
    expect(back.searchParams.get('state')).toBe('s1');
    const res = await exchange(back.searchParams.get('code')!, v);
    expect(res.status).toBe(200);
    const body = (await res.json()) as { access_token: string; id_token: string; token_type: string };
    expect(body.token_type).toBe('Bearer');
    expect(decodeJwt(body.id_token)).toMatchObject({ iss: sim.issuer, aud: 'console', nonce: 'n1', sub: 'dora' });
    const cfg = configSchema.parse({ auth: { jwt: { issuer: sim.issuer, audience: 'custodian', algorithms: ['ES256'], jwks_url: `${sim.issuer}/jwks` } } });
    const principal = await (await JwtVerifier.create(cfg.auth.jwt!)).verify(body.access_token);
    expect(principal).toMatchObject({ id: 'dora', tenantId: 'acme', kind: 'jwt' });
    expect([...principal.scopes].sort()).toEqual(['audit:read', 'recordings:read']);
  });

  it('rejects a wrong code_verifier (PKCE) and burns the code', async () => {
    const v = verifier();
    const code = (await authorize(v)).searchParams.get('code')!;
    const bad = await exchange(code, verifier());
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ error: 'invalid_grant', error_description: 'PKCE verification failed' });
    // The right verifier after a failed attempt: the code is spent.
    expect((await exchange(code, v)).status).toBe(400);
  });

  it('rejects a reused code, a missing verifier, another redirect_uri, and plain PKCE', async () => {
    const v = verifier();
    const code = (await authorize(v)).searchParams.get('code')!;
    expect((await exchange(code, v)).status).toBe(200);
    expect(await (await exchange(code, v)).json()).toMatchObject({ error: 'invalid_grant', error_description: 'code already used' });

    const code2 = (await authorize(v)).searchParams.get('code')!;
    expect(await (await exchange(code2, '')).json()).toMatchObject({ error: 'invalid_grant' });
    const code3 = (await authorize(v)).searchParams.get('code')!;
    expect(await (await exchange(code3, v, 'http://127.0.0.1:9/elsewhere')).json()).toMatchObject({ error: 'invalid_grant' });

    const plain = await authorize(v, { code_challenge_method: 'plain' });
    expect(plain.searchParams.get('error')).toBe('invalid_request');
    expect(plain.searchParams.get('code')).toBeNull();
  });

  it('never redirects to an unregistered redirect_uri; a refusal goes back as access_denied with the state', async () => {
    const u = new URL(`${sim.issuer}/authorize`);
    u.search = new URLSearchParams({ response_type: 'code', client_id: 'console', redirect_uri: 'https://evil.example/cb', scope: 'openid', code_challenge: pkceChallenge(verifier()), code_challenge_method: 'S256' }).toString();
    const res = await fetch(u, { redirect: 'manual' });
    expect(res.status).toBe(400);
    sim.knobs.auto = 'deny';
    try {
      const back = await authorize(verifier());
      expect(back.searchParams.get('error')).toBe('access_denied');
      expect(back.searchParams.get('state')).toBe('s1');
    } finally {
      sim.knobs.auto = 'dora';
    }
  });
});
