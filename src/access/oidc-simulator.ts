import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type CryptoKey, type JWK, SignJWT, exportJWK, generateKeyPair } from 'jose';
import { closeServers } from '../sources/sim-server.js';

/**
 * A small OpenID Connect provider for tests, the demo and anyone who wants to try the console's
 * organisation sign-in without an IdP: a real HTTP server with discovery, an authorization
 * endpoint (a login form: pick a user, "Sign in" or "Deny"), a token endpoint that checks PKCE
 * (S256 only; public clients, no secret), and a JWKS. It signs an ID token (aud = client_id,
 * nonce) and an RFC 9068 access token (aud = the gateway's `auth.jwt.audience`, with the tenant
 * and scope claims the gateway maps). Not a production IdP: codes and users live in memory.
 */
export interface OidcSimUser {
  sub: string;
  tenant: string;
  /** Space-separated gateway scopes, e.g. "recordings:read audit:read". */
  scope: string;
  name?: string;
}

export interface OidcSimClient {
  client_id: string;
  /** Exact redirect URIs (RFC 9700: no pattern matching). */
  redirect_uris: string[];
}

export interface OidcSimulatorOptions {
  host?: string;
  port?: number;
  /** The `aud` of access tokens (the gateway's auth.jwt.audience). */
  audience: string;
  clients: OidcSimClient[];
  users: OidcSimUser[];
  alg?: 'ES256' | 'RS256';
  accessTokenTtlS?: number;
  /** Claim names, as the gateway's auth.jwt maps them. */
  tenantClaim?: string;
  scopeClaim?: string;
}

export interface OidcSimKnobs {
  /** Skip the form: /authorize logs this user in at once (sub), or refuses ('deny'). undefined = show the form. */
  auto?: string | 'deny';
  accessTokenTtlS: number;
}

export interface OidcSimulator {
  issuer: string;
  /** The registered clients (tests add one once the gateway's address is known). */
  clients: OidcSimClient[];
  knobs: OidcSimKnobs;
  /** Every token endpoint answer (status, OAuth error code), for assertions. */
  tokenLog: { status: number; error?: string }[];
  /** Signs an access token with the provider's key (tests: expired or odd tokens). */
  mintAccessToken(claims: Record<string, unknown>, ttlS?: number): Promise<string>;
  close(): Promise<void>;
}

interface PendingCode {
  client_id: string;
  redirect_uri: string;
  challenge: string;
  nonce?: string;
  scope: string;
  user: OidcSimUser;
  expiresAt: number;
  used: boolean;
}

const VERIFIER = /^[A-Za-z0-9._~-]{43,128}$/;
const CODE_TTL_MS = 60_000;

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

export const pkceChallenge = (verifier: string) => createHash('sha256').update(verifier).digest('base64url');

export async function startOidcSimulator(opts: OidcSimulatorOptions): Promise<OidcSimulator> {
  const alg = opts.alg ?? 'ES256';
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const kid = `sim-${randomUUID().slice(0, 8)}`;
  const jwk: JWK = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' };
  const codes = new Map<string, PendingCode>();
  const knobs: OidcSimKnobs = { accessTokenTtlS: opts.accessTokenTtlS ?? 3600 };
  const tokenLog: OidcSimulator['tokenLog'] = [];
  const tenantClaim = opts.tenantClaim ?? 'tenant';
  const scopeClaim = opts.scopeClaim ?? 'scope';
  let issuer = '';

  const sign = (claims: Record<string, unknown>, typ: string, aud: string, ttlS: number, key: CryptoKey = privateKey) =>
    new SignJWT(claims)
      .setProtectedHeader({ alg, kid, typ })
      .setIssuer(issuer)
      .setAudience(aud)
      .setIssuedAt()
      .setExpirationTime(Math.floor(Date.now() / 1000) + ttlS)
      .setJti(randomUUID())
      .sign(key);

  const accessToken = (user: OidcSimUser, clientId: string, ttlS: number) =>
    sign({ sub: user.sub, [tenantClaim]: user.tenant, [scopeClaim]: user.scope, client_id: clientId }, 'at+jwt', opts.audience, ttlS);

  function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) {
    const text = typeof body === 'string' ? body : JSON.stringify(body);
    res.writeHead(status, {
      'Content-Type': typeof body === 'string' ? 'text/html; charset=utf-8' : 'application/json',
      'Cache-Control': 'no-store',
      ...headers,
    });
    res.end(text);
  }
  // Browsers (a public client in a page) call discovery, JWKS and token from another origin.
  const cors = { 'Access-Control-Allow-Origin': '*' };

  function redirect(res: ServerResponse, uri: string, params: Record<string, string | undefined>) {
    const u = new URL(uri);
    for (const [k, v] of Object.entries(params)) if (v !== undefined) u.searchParams.set(k, v);
    res.writeHead(302, { Location: u.toString(), 'Cache-Control': 'no-store' });
    res.end();
  }

  async function readForm(req: IncomingMessage): Promise<URLSearchParams> {
    let body = '';
    for await (const chunk of req) {
      body += chunk;
      if (body.length > 16_384) throw new Error('body too large');
    }
    return new URLSearchParams(body);
  }

  /** Checks an authorization request; an unknown client or redirect URI is never redirected to. */
  function checkAuthorize(p: URLSearchParams): { error: string } | { client: OidcSimClient; redirect_uri: string; state?: string } {
    const client = opts.clients.find((c) => c.client_id === p.get('client_id'));
    if (!client) return { error: 'unknown client_id' };
    const redirect_uri = p.get('redirect_uri') ?? '';
    if (!client.redirect_uris.includes(redirect_uri)) return { error: 'redirect_uri is not registered for this client' };
    return { client, redirect_uri, ...(p.get('state') ? { state: p.get('state')! } : {}) };
  }

  function issueCode(p: URLSearchParams, user: OidcSimUser, redirect_uri: string): string {
    const code = randomBytes(32).toString('base64url');
    codes.set(code, {
      client_id: p.get('client_id')!,
      redirect_uri,
      challenge: p.get('code_challenge')!,
      ...(p.get('nonce') ? { nonce: p.get('nonce')! } : {}),
      scope: p.get('scope') ?? 'openid',
      user,
      expiresAt: Date.now() + CODE_TTL_MS,
      used: false,
    });
    return code;
  }

  /** After the client and redirect URI are known good, protocol errors go back to the client. */
  function protocolError(p: URLSearchParams): string | undefined {
    if (p.get('response_type') !== 'code') return 'unsupported_response_type';
    if (p.get('code_challenge_method') !== 'S256' || !/^[A-Za-z0-9_-]{43}$/.test(p.get('code_challenge') ?? '')) return 'invalid_request';
    if (!(p.get('scope') ?? '').split(' ').includes('openid')) return 'invalid_scope';
    return undefined;
  }

  function loginForm(p: URLSearchParams): string {
    const hidden = [...p.entries()].map(([k, v]) => `<input type="hidden" name="${esc(k)}" value="${esc(v)}">`).join('');
    const options = opts.users.map((u, i) => `<option value="${esc(u.sub)}"${i === 0 ? ' selected' : ''}>${esc(u.name ?? u.sub)} (${esc(u.tenant)})</option>`).join('');
    return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Sign in · OIDC simulator</title></head><body>
<main><h1>OIDC simulator</h1><p>Sign in to ${esc(p.get('client_id') ?? '')}</p>
<form method="post" action="/authorize">${hidden}<label for="user">User</label> <select id="user" name="user">${options}</select>
<button type="submit" name="decision" value="allow">Sign in</button> <button type="submit" name="decision" value="deny">Deny</button></form></main></body></html>`;
  }

  async function authorize(req: IncomingMessage, res: ServerResponse, url: URL) {
    const p = req.method === 'POST' ? await readForm(req) : url.searchParams;
    const checked = checkAuthorize(p);
    if ('error' in checked) return send(res, 400, `<!doctype html><p>Bad authorization request: ${esc(checked.error)}</p>`);
    const err = protocolError(p);
    if (err) return redirect(res, checked.redirect_uri, { error: err, state: checked.state });
    const decision = req.method === 'POST' ? p.get('decision') : knobs.auto === 'deny' ? 'deny' : knobs.auto ? 'allow' : undefined;
    if (!decision) return send(res, 200, loginForm(p));
    if (decision !== 'allow') return redirect(res, checked.redirect_uri, { error: 'access_denied', error_description: 'The user refused the sign-in', state: checked.state });
    const sub = req.method === 'POST' ? p.get('user') : knobs.auto;
    const user = opts.users.find((u) => u.sub === sub);
    if (!user) return redirect(res, checked.redirect_uri, { error: 'access_denied', error_description: 'unknown user', state: checked.state });
    for (const k of ['user', 'decision']) p.delete(k);
    return redirect(res, checked.redirect_uri, { code: issueCode(p, user, checked.redirect_uri), state: checked.state });
  }

  async function token(req: IncomingMessage, res: ServerResponse) {
    const fail = (status: number, error: string, error_description: string) => {
      tokenLog.push({ status, error });
      send(res, status, { error, error_description }, cors);
    };
    if (!/^application\/x-www-form-urlencoded/.test(req.headers['content-type'] ?? '')) return fail(400, 'invalid_request', 'form body expected');
    const p = await readForm(req);
    if (p.get('grant_type') !== 'authorization_code') return fail(400, 'unsupported_grant_type', 'only authorization_code');
    const code = codes.get(p.get('code') ?? '');
    if (!code || code.expiresAt < Date.now()) return fail(400, 'invalid_grant', 'unknown or expired code');
    if (code.used) {
      codes.delete(p.get('code')!);
      return fail(400, 'invalid_grant', 'code already used');
    }
    code.used = true;
    if (p.get('client_id') !== code.client_id) return fail(400, 'invalid_grant', 'code was issued to another client');
    if (p.get('redirect_uri') !== code.redirect_uri) return fail(400, 'invalid_grant', 'redirect_uri differs from the authorization request');
    const verifier = p.get('code_verifier') ?? '';
    if (!VERIFIER.test(verifier)) return fail(400, 'invalid_grant', 'code_verifier missing or malformed');
    const a = Buffer.from(pkceChallenge(verifier));
    const b = Buffer.from(code.challenge);
    if (a.length !== b.length || !timingSafeEqual(a, b)) return fail(400, 'invalid_grant', 'PKCE verification failed');
    const ttl = knobs.accessTokenTtlS;
    const idToken = await sign({ sub: code.user.sub, name: code.user.name ?? code.user.sub, auth_time: Math.floor(Date.now() / 1000), ...(code.nonce ? { nonce: code.nonce } : {}) }, 'JWT', code.client_id, 300);
    tokenLog.push({ status: 200 });
    send(res, 200, { access_token: await accessToken(code.user, code.client_id, ttl), token_type: 'Bearer', expires_in: ttl, id_token: idToken, scope: code.scope }, cors);
  }

  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', issuer || 'http://localhost');
    const route = `${req.method} ${url.pathname}`;
    const handle = async () => {
      if (req.method === 'OPTIONS') {
        res.writeHead(204, { ...cors, 'Access-Control-Allow-Methods': 'GET, POST', 'Access-Control-Allow-Headers': 'Content-Type, Accept, DPoP', 'Access-Control-Max-Age': '600' });
        return res.end();
      }
      switch (route) {
        case 'GET /.well-known/openid-configuration':
          return send(
            res,
            200,
            {
              issuer,
              authorization_endpoint: `${issuer}/authorize`,
              token_endpoint: `${issuer}/token`,
              jwks_uri: `${issuer}/jwks`,
              response_types_supported: ['code'],
              grant_types_supported: ['authorization_code'],
              code_challenge_methods_supported: ['S256'],
              token_endpoint_auth_methods_supported: ['none'],
              subject_types_supported: ['public'],
              id_token_signing_alg_values_supported: [alg],
              scopes_supported: ['openid', 'profile'],
            },
            cors,
          );
        case 'GET /jwks':
          return send(res, 200, { keys: [jwk] }, cors);
        case 'GET /authorize':
        case 'POST /authorize':
          return authorize(req, res, url);
        case 'POST /token':
          return token(req, res);
        default:
          return send(res, 404, { error: 'not_found' }, cors);
      }
    };
    handle().catch((e: Error) => {
      if (!res.headersSent) send(res, 400, { error: 'invalid_request', error_description: e.message }, cors);
      else res.destroy();
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  issuer = `http://${opts.host ?? '127.0.0.1'}:${port}`;

  return {
    issuer,
    clients: opts.clients,
    knobs,
    tokenLog,
    mintAccessToken: (claims, ttlS = knobs.accessTokenTtlS) =>
      new SignJWT(claims)
        .setProtectedHeader({ alg, kid, typ: 'at+jwt' })
        .setIssuer(issuer)
        .setAudience(opts.audience)
        .setIssuedAt(Math.floor(Date.now() / 1000) + Math.min(0, ttlS) - 60)
        .setExpirationTime(Math.floor(Date.now() / 1000) + ttlS)
        .setJti(randomUUID())
        .sign(privateKey),
    close: () => closeServers([server]),
  };
}
