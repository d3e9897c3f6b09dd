import { createLocalJWKSet, createRemoteJWKSet, errors as joseErrors, exportJWK, importSPKI, type JWK, jwtVerify, type JWTVerifyGetKey } from 'jose';
import { ConfigError } from '../config/load.js';
import { SCOPES, type JwtConfig, type Scope } from '../config/schema.js';
import { AppError } from '../errors.js';
import type { Principal } from './principal.js';

/** Verifies bearer JWTs of the organisation's identity provider: signature, issuer, audience, algorithm, time. */
export class JwtVerifier {
  private constructor(
    private readonly cfg: JwtConfig,
    private readonly keys: JWTVerifyGetKey,
  ) {}

  static async create(cfg: JwtConfig): Promise<JwtVerifier> {
    if (cfg.jwks_url) return new JwtVerifier(cfg, createRemoteJWKSet(new URL(cfg.jwks_url), { timeoutDuration: 5000, cooldownDuration: 30_000 }));
    const jwks: JWK[] = [];
    for (const [i, pem] of (cfg.public_keys ?? []).entries()) {
      let lastError: unknown;
      for (const alg of cfg.algorithms) {
        try {
          const jwk = await exportJWK(await importSPKI(pem, alg, { extractable: true }));
          jwks.push({ ...jwk, alg, kid: jwk.kid ?? `static-${i}-${alg}` });
          lastError = undefined;
        } catch (e) {
          lastError = e;
        }
      }
      if (lastError && !jwks.some((k) => k.kid?.startsWith(`static-${i}-`))) {
        // A config mistake, found at start-up: one line naming the field (exit 78), not a stack.
        throw new ConfigError(`auth.jwt.public_keys[${i}]: not a public key usable with ${cfg.algorithms.join(', ')} (a PEM SPKI public key: -----BEGIN PUBLIC KEY-----)`);
      }
    }
    const local = createLocalJWKSet({ keys: jwks });
    // Static keys carry no kid the IdP knows; try every key that fits the token's algorithm.
    const getKey: JWTVerifyGetKey = async (header, token) => {
      const { kid: _ignored, ...rest } = header;
      return local({ ...rest }, token);
    };
    return new JwtVerifier(cfg, getKey);
  }

  async verify(token: string): Promise<Principal> {
    let payload;
    try {
      ({ payload } = await this.check(token));
    } catch (e) {
      if (e instanceof joseErrors.JWTExpired) throw new AppError('auth.expired_token', 'the bearer token has expired');
      if (e instanceof joseErrors.JWKSTimeout || (e instanceof Error && /fetch|ECONNREFUSED/i.test(e.message))) {
        throw new AppError('auth.invalid_token', 'the identity provider keys could not be fetched');
      }
      throw new AppError('auth.invalid_token', 'the bearer token is not valid');
    }
    const sub = payload[this.cfg.principal_claim];
    const tenant = payload[this.cfg.tenant_claim];
    if (typeof sub !== 'string' || !sub || typeof tenant !== 'string' || !tenant) {
      throw new AppError('auth.invalid_token', `the token lacks ${this.cfg.principal_claim} or ${this.cfg.tenant_claim}`);
    }
    const raw = payload[this.cfg.scope_claim];
    const list = Array.isArray(raw) ? raw.map(String) : typeof raw === 'string' ? raw.split(' ') : [];
    const scopes = new Set(list.filter((s): s is Scope => (SCOPES as readonly string[]).includes(s)));
    return { id: sub, tenantId: tenant, scopes, kind: 'jwt', credentialId: typeof payload.jti === 'string' ? payload.jti : null };
  }

  /**
   * jwtVerify, trying each candidate when several keys fit the token (static keys carry no kid,
   * and an IdP may publish keys without one during a rotation): jose then throws
   * JWKSMultipleMatchingKeys, which iterates the candidates. The first key whose signature
   * holds decides; its claim checks (expiry, …) are final.
   */
  private async check(token: string) {
    const options = {
      issuer: this.cfg.issuer,
      audience: this.cfg.audience,
      algorithms: this.cfg.algorithms,
      clockTolerance: this.cfg.clock_tolerance_s,
      requiredClaims: ['exp', this.cfg.principal_claim, this.cfg.tenant_claim],
    };
    try {
      return await jwtVerify(token, this.keys, options);
    } catch (e) {
      if (!(e instanceof joseErrors.JWKSMultipleMatchingKeys)) throw e;
      let last: unknown = e;
      for await (const key of e as unknown as AsyncIterable<CryptoKey>) {
        try {
          return await jwtVerify(token, key, options);
        } catch (inner) {
          if (!(inner instanceof joseErrors.JWSSignatureVerificationFailed)) throw inner;
          last = inner;
        }
      }
      throw last;
    }
  }
}
