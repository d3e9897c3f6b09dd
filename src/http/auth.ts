import type { FastifyReply, FastifyRequest } from 'fastify';
import { ApiKeyService } from '../access/api-keys.js';
import { API_KEY_RE } from '../access/key-format.js';
import { requireScope } from '../access/principal.js';
import type { AppDeps } from '../deps.js';
import { AppError } from '../errors.js';

/**
 * preHandler for routes with `config.auth`: bearer credential → principal (API key or JWT),
 * then the per-principal rate limit, then scope. Failures are AppErrors; the error handler audits them.
 */
export function authHook(deps: AppDeps) {
  return async (req: FastifyRequest, _reply: FastifyReply): Promise<void> => {
    const cfg = req.routeOptions.config;
    if (!cfg.auth) return;
    await authenticate(deps, req);
    if (cfg.scope) requireScope(req.principal!, cfg.scope);
  };
}

/**
 * Sets req.principal from the bearer credential and counts it against the principal's rate limit.
 * Also used where no route matched but the caller must be known first (a wrong method, app.ts).
 */
export async function authenticate(deps: AppDeps, req: FastifyRequest): Promise<void> {
  const header = req.headers.authorization;
  if (!header) throw new AppError('auth.missing', 'send Authorization: Bearer <token or API key>', { headers: { 'WWW-Authenticate': 'Bearer' } });
  const m = /^Bearer[ ]+([\x21-\x7e]{1,8192})$/i.exec(header);
  if (!m) throw new AppError('auth.invalid_token', 'the Authorization header must be "Bearer <token>"', { headers: { 'WWW-Authenticate': 'Bearer error="invalid_request"' } });
  const token = m[1]!;
  try {
    if (ApiKeyService.looksLikeKey(token)) req.principal = await deps.apiKeys.authenticate(token);
    else if (deps.jwt) req.principal = await deps.jwt.verify(token);
    else throw new AppError('auth.invalid_token', 'JWT sign-in is not configured; use an API key');
  } catch (e) {
    if (e instanceof AppError) {
      // Which key the refused credential claimed to be: the id part of a well-formed key only
      // (key-format.ts: 3–64 characters, no "_"), never its secret. Unverified — the event stays
      // anonymous; the id says whose key is being guessed at or is still in use after its revocation.
      const claimed = API_KEY_RE.exec(token)?.[1];
      if (claimed) req.audit.detail = { ...req.audit.detail, claimed_key_id: claimed };
      throw new AppError(e.code, e.message, { extra: e.extra, headers: { ...e.headers, 'WWW-Authenticate': 'Bearer error="invalid_token"' } });
    }
    throw e;
  }
  const limit = await deps.rateLimiter.consume(`${req.principal.tenantId}:${req.principal.id}`);
  if (!limit.ok) {
    throw new AppError('access.rate_limited', `retry after ${limit.retryAfterS} s`, { headers: { 'Retry-After': String(limit.retryAfterS) } });
  }
}
