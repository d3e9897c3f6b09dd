import type { Scope } from '../config/schema.js';
import { AppError } from '../errors.js';

/** Who is asking, for which tenant, with which rights. Every request after auth carries one. */
export interface Principal {
  id: string;
  tenantId: string;
  scopes: ReadonlySet<Scope>;
  kind: 'api_key' | 'jwt';
  /** API key id or JWT jti, for the audit trail; never the secret. */
  credentialId: string | null;
}

export function requireScope(p: Principal, scope: Scope): void {
  if (!p.scopes.has(scope) && !p.scopes.has('admin')) {
    throw new AppError('access.scope_missing', `this action needs the scope ${scope}`, { extra: { required_scope: scope } });
  }
}

/** caller_id names the human or tool on whose behalf the request is made; only admins may name someone else. */
export function checkCaller(p: Principal, callerId: string): void {
  if (callerId !== p.id && !p.scopes.has('admin')) {
    throw new AppError('access.caller_mismatch', 'caller_id must be the authenticated principal unless it holds the admin scope');
  }
}
