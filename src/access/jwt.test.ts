import { createHmac } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, exportSPKI, generateKeyPair, type JWK, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../config/load.js';
import type { JwtConfig } from '../config/schema.js';
import { AppError } from '../errors.js';
import { JwtVerifier } from './jwt.js';

const ISSUER = 'https://idp.example.test/';
const AUDIENCE = 'custodian';

type KeyPair = Awaited<ReturnType<typeof generateKeyPair>>;
let rsa: KeyPair;
let rsa2: KeyPair;
let stranger: KeyPair;
let ec: KeyPair;
let rsaPem: string;

/** A JwtConfig as the real schema produces it (defaults filled). */
function jwtConfig(jwt: Record<string, unknown>): JwtConfig {
  return parseConfig({ auth: { jwt: { issuer: ISSUER, audience: AUDIENCE, ...jwt } } }, {}).auth.jwt!;
}

interface SignOptions {
  key?: KeyPair['privateKey'];
  alg?: string;
  kid?: string;
  issuer?: string;
  audience?: string;
  exp?: string | number | null;
  sub?: string | null;
}

function sign(claims: Record<string, unknown>, o: SignOptions = {}): Promise<string> {
  let jwt = new SignJWT(claims).setProtectedHeader({ alg: o.alg ?? 'RS256', ...(o.kid ? { kid: o.kid } : {}) }).setIssuer(o.issuer ?? ISSUER).setAudience(o.audience ?? AUDIENCE).setIssuedAt();
  if (o.sub !== null) jwt = jwt.setSubject(o.sub ?? 'jane');
  if (o.exp !== null) jwt = jwt.setExpirationTime(o.exp ?? '5m');
  return jwt.sign(o.key ?? rsa.privateKey);
}

const b64 = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');
const now = () => Math.floor(Date.now() / 1000);
const payload = (extra: Record<string, unknown> = {}) => ({ iss: ISSUER, aud: AUDIENCE, sub: 'jane', tenant: 'acme', scope: 'recordings:read', iat: now(), exp: now() + 300, ...extra });

async function authError(p: Promise<unknown>): Promise<AppError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(AppError);
  return e as AppError;
}

beforeAll(async () => {
  [rsa, rsa2, stranger, ec] = await Promise.all([generateKeyPair('RS256', { extractable: true }), generateKeyPair('RS256', { extractable: true }), generateKeyPair('RS256'), generateKeyPair('ES256', { extractable: true })]);
  rsaPem = await exportSPKI(rsa.publicKey);
});

/** The checks every key source must pass, run against static keys and against a JWKS endpoint. */
function verifierContract(name: string, make: () => Promise<JwtVerifier>, kid?: string) {
  describe(name, () => {
    let v: JwtVerifier;
    beforeAll(async () => {
      v = await make();
    });
    const s = (claims: Record<string, unknown>, o: SignOptions = {}) => sign(claims, { ...(kid ? { kid } : {}), ...o });

    it('maps a valid token to a principal with tenant and scopes (space-separated string)', async () => {
      const p = await v.verify(await s({ tenant: 'acme', scope: 'recordings:read  audit:read unknown:scope', jti: 'tok-1' }));
      expect(p).toEqual({ id: 'jane', tenantId: 'acme', scopes: new Set(['recordings:read', 'audit:read']), kind: 'jwt', credentialId: 'tok-1' });
    });

    it('reads scopes given as an array, and no scope claim as no scopes', async () => {
      const p = await v.verify(await s({ tenant: 'acme', scope: ['recordings:export', 'admin', 42] }));
      expect([...p.scopes].sort()).toEqual(['admin', 'recordings:export']);
      expect(p.credentialId).toBeNull();
      expect((await v.verify(await s({ tenant: 'acme' }))).scopes.size).toBe(0);
    });

    it('refuses an expired token as auth.expired_token (beyond the clock tolerance)', async () => {
      const e = await authError(v.verify(await s({ tenant: 'acme' }, { exp: now() - 3600 })));
      expect(e.code).toBe('auth.expired_token');
      expect(e.status).toBe(401);
      // Within the 30 s tolerance it still passes.
      await expect(v.verify(await s({ tenant: 'acme' }, { exp: now() - 5 }))).resolves.toMatchObject({ tenantId: 'acme' });
    });

    it.each<[string, () => Promise<string>]>([
      ['the wrong issuer', () => s({ tenant: 'acme' }, { issuer: 'https://evil.example/' })],
      ['the wrong audience', () => s({ tenant: 'acme' }, { audience: 'someone-else' })],
      ['a signature by another key', () => s({ tenant: 'acme' }, { key: stranger.privateKey })],
      ['no tenant claim', () => s({ scope: 'recordings:read' })],
      ['an empty tenant claim', () => s({ tenant: '' })],
      ['a tenant claim that is not a string', () => s({ tenant: 42 })],
      ['no subject', () => s({ tenant: 'acme' }, { sub: null })],
      ['no expiry', () => s({ tenant: 'acme' }, { exp: null })],
      ['a token not valid yet', () => s({ tenant: 'acme', nbf: now() + 3600 })],
      ['alg none', async () => `${b64({ alg: 'none', typ: 'JWT' })}.${b64(payload())}.`],
      [
        'HS256 signed with the public key PEM as the secret (algorithm confusion)',
        async () => {
          const head = `${b64({ alg: 'HS256', typ: 'JWT', ...(kid ? { kid } : {}) })}.${b64(payload())}`;
          return `${head}.${createHmac('sha256', rsaPem).update(head).digest('base64url')}`;
        },
      ],
      [
        'HS256 signed with the JWK modulus as the secret',
        async () => {
          const jwk = await exportJWK(rsa.publicKey);
          const head = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64(payload())}`;
          return `${head}.${createHmac('sha256', jwk.n!).update(head).digest('base64url')}`;
        },
      ],
      ['a tampered payload', async () => {
        const [h, , sig] = (await s({ tenant: 'acme', scope: 'recordings:read' })).split('.');
        return `${h}.${b64(payload({ tenant: 'globex', scope: 'admin' }))}.${sig}`;
      }],
      ['garbage', async () => 'not.a.jwt'],
      ['an empty string', async () => ''],
    ])('refuses %s as auth.invalid_token', async (_name, token) => {
      const e = await authError(v.verify(await token()));
      expect(e.code).toBe('auth.invalid_token');
      expect(e.status).toBe(401);
    });
  });
}

describe('JwtVerifier with static public keys', () => {
  verifierContract('one RSA key', () => JwtVerifier.create(jwtConfig({ public_keys: [rsaPem] })));

  it('tries every configured key (tokens carry no kid the static keys know)', async () => {
    const v = await JwtVerifier.create(jwtConfig({ public_keys: [await exportSPKI(rsa2.publicKey), rsaPem] }));
    expect((await v.verify(await sign({ tenant: 'acme' }, { kid: 'idp-key-7' }))).tenantId).toBe('acme');
    expect((await v.verify(await sign({ tenant: 'globex' }, { key: rsa2.privateKey }))).tenantId).toBe('globex');
    expect((await authError(v.verify(await sign({ tenant: 'acme' }, { key: stranger.privateKey })))).code).toBe('auth.invalid_token');
    // The key whose signature holds decides: its token's expiry is reported as such.
    expect((await authError(v.verify(await sign({ tenant: 'acme' }, { key: rsa2.privateKey, exp: now() - 3600 })))).code).toBe('auth.expired_token');
    expect((await authError(v.verify(await sign({ tenant: 'acme' }, { issuer: 'https://evil.example/' })))).code).toBe('auth.invalid_token');
  });

  it('accepts only the configured algorithms', async () => {
    const ecPem = await exportSPKI(ec.publicKey);
    const both = await JwtVerifier.create(jwtConfig({ algorithms: ['RS256', 'ES256'], public_keys: [rsaPem, ecPem] }));
    expect((await both.verify(await sign({ tenant: 'acme' }, { key: ec.privateKey, alg: 'ES256' }))).id).toBe('jane');
    expect((await both.verify(await sign({ tenant: 'acme' }))).id).toBe('jane');
    // RS256 only: an ES256 token is refused even though an EC key could be configured.
    const rsOnly = await JwtVerifier.create(jwtConfig({ public_keys: [rsaPem] }));
    expect((await authError(rsOnly.verify(await sign({ tenant: 'acme' }, { key: ec.privateKey, alg: 'ES256' })))).code).toBe('auth.invalid_token');
    // PS256 from an RSA key is a different algorithm: refused unless listed.
    const pss = await generateKeyPair('PS256', { extractable: true });
    const pssPem = await exportSPKI(pss.publicKey);
    const psToken = await sign({ tenant: 'acme' }, { key: pss.privateKey, alg: 'PS256' });
    expect((await authError((await JwtVerifier.create(jwtConfig({ public_keys: [pssPem] }))).verify(psToken))).code).toBe('auth.invalid_token');
    expect((await (await JwtVerifier.create(jwtConfig({ algorithms: ['PS256'], public_keys: [pssPem] }))).verify(psToken)).id).toBe('jane');
  });

  it('uses the configured claim names', async () => {
    const v = await JwtVerifier.create(jwtConfig({ public_keys: [rsaPem], tenant_claim: 'org', scope_claim: 'scp', principal_claim: 'email' }));
    const p = await v.verify(await sign({ org: 'acme', scp: ['audit:read'], email: 'jane@acme.test' }));
    expect(p).toMatchObject({ id: 'jane@acme.test', tenantId: 'acme', scopes: new Set(['audit:read']) });
    expect((await authError(v.verify(await sign({ tenant: 'acme', email: 'x@y' })))).code).toBe('auth.invalid_token');
  });

  it('refuses a public key it cannot use, naming it', async () => {
    await expect(JwtVerifier.create(jwtConfig({ public_keys: ['-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----'] }))).rejects.toThrow(/auth\.jwt\.public_keys\[0\]/);
    await expect(JwtVerifier.create(jwtConfig({ algorithms: ['ES256'], public_keys: [rsaPem] }))).rejects.toThrow(/auth\.jwt\.public_keys\[0\]: not a public key usable with ES256/);
  });
});

describe('JwtVerifier with a JWKS endpoint', () => {
  let server: Server;
  let url: string;
  let keys: JWK[] = [];
  let fetches = 0;
  beforeAll(async () => {
    keys = [{ ...(await exportJWK(rsa.publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' }];
    server = createServer((req, res) => {
      fetches++;
      if (req.url !== '/.well-known/jwks.json') return void res.writeHead(404).end();
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys }));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/.well-known/jwks.json`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  verifierContract('served keys', () => JwtVerifier.create(jwtConfig({ jwks_url: url })), 'k1');

  it('caches the key set instead of fetching it per token', async () => {
    const v = await JwtVerifier.create(jwtConfig({ jwks_url: url }));
    const before = fetches;
    for (let i = 0; i < 5; i++) await v.verify(await sign({ tenant: 'acme' }, { kid: 'k1' }));
    expect(fetches - before).toBe(1);
  });

  it('refuses a token whose kid the identity provider does not publish', async () => {
    const v = await JwtVerifier.create(jwtConfig({ jwks_url: url }));
    expect((await authError(v.verify(await sign({ tenant: 'acme' }, { kid: 'k-unknown', key: rsa2.privateKey })))).code).toBe('auth.invalid_token');
  });

  it('refuses tokens (401, not 500) when the identity provider cannot be reached', async () => {
    const dead = createServer();
    await new Promise<void>((r) => dead.listen(0, '127.0.0.1', () => r()));
    const port = (dead.address() as AddressInfo).port;
    await new Promise<void>((r) => dead.close(() => r()));
    const v = await JwtVerifier.create(jwtConfig({ jwks_url: `http://127.0.0.1:${port}/jwks.json` }));
    const e = await authError(v.verify(await sign({ tenant: 'acme' }, { kid: 'k1' })));
    expect(e.code).toBe('auth.invalid_token');
    expect(e.message).toMatch(/could not be fetched/);
  });
});
