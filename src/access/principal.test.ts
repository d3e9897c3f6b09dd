import { describe, expect, it } from 'vitest';
import type { Scope } from '../config/schema.js';
import { AppError } from '../errors.js';
import { checkCaller, type Principal, requireScope } from './principal.js';
import { memoryRateLimiter } from './rate-limit.js';

const principal = (id: string, scopes: Scope[]): Principal => ({ id, tenantId: 'acme', scopes: new Set(scopes), kind: 'api_key', credentialId: 'k' });

function thrown(fn: () => void): AppError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(AppError);
    return e as AppError;
  }
  throw new Error('expected an AppError');
}

describe('requireScope', () => {
  it('passes a principal holding the scope', () => {
    expect(() => requireScope(principal('alice', ['recordings:read']), 'recordings:read')).not.toThrow();
  });

  it('refuses a missing scope with 403 naming it', () => {
    const e = thrown(() => requireScope(principal('alice', ['recordings:read']), 'audit:read'));
    expect(e.code).toBe('access.scope_missing');
    expect(e.status).toBe(403);
    expect(e.extra).toEqual({ required_scope: 'audit:read' });
    expect(thrown(() => requireScope(principal('nobody', []), 'recordings:read')).code).toBe('access.scope_missing');
    // One scope does not imply another.
    expect(thrown(() => requireScope(principal('alice', ['recordings:export']), 'recordings:read')).code).toBe('access.scope_missing');
  });

  it('lets admin do everything', () => {
    for (const s of ['recordings:read', 'recordings:export', 'audit:read', 'admin'] as Scope[]) {
      expect(() => requireScope(principal('root', ['admin']), s)).not.toThrow();
    }
  });
});

describe('checkCaller', () => {
  it('accepts the principal acting for itself', () => {
    expect(() => checkCaller(principal('compliance_tool_user_01', ['recordings:read']), 'compliance_tool_user_01')).not.toThrow();
  });

  it('refuses acting for someone else without admin', () => {
    const e = thrown(() => checkCaller(principal('alice', ['recordings:read', 'audit:read', 'recordings:export']), 'bob'));
    expect(e.code).toBe('access.caller_mismatch');
    expect(e.status).toBe(403);
    // Exact match only: no case folding or trimming.
    expect(thrown(() => checkCaller(principal('alice', ['recordings:read']), 'Alice')).code).toBe('access.caller_mismatch');
    expect(thrown(() => checkCaller(principal('alice', ['recordings:read']), 'alice ')).code).toBe('access.caller_mismatch');
  });

  it('lets an admin act on behalf of another caller', () => {
    expect(() => checkCaller(principal('root', ['admin']), 'compliance_tool_user_01')).not.toThrow();
  });
});

describe('memoryRateLimiter', () => {
  it('allows max requests per window and then tells how long to wait', async () => {
    const rl = memoryRateLimiter(3, 60_000);
    for (let i = 0; i < 3; i++) expect(await rl.consume('acme:alice')).toEqual({ ok: true });
    const over = await rl.consume('acme:alice');
    expect(over.ok).toBe(false);
    if (over.ok) return;
    expect(over.retryAfterS).toBeGreaterThan(0);
    expect(over.retryAfterS).toBeLessThanOrEqual(60);
    expect(Number.isInteger(over.retryAfterS)).toBe(true);
    // Each key has its own budget.
    expect(await rl.consume('acme:bob')).toEqual({ ok: true });
    expect(await rl.consume('globex:alice')).toEqual({ ok: true });
  });

  it('rounds a sub-second wait up to one second', async () => {
    const rl = memoryRateLimiter(1, 1000);
    await rl.consume('k');
    const r = await rl.consume('k');
    expect(r).toEqual({ ok: false, retryAfterS: 1 });
  });

  it('is off with max 0', async () => {
    const rl = memoryRateLimiter(0, 60_000);
    for (let i = 0; i < 1000; i++) expect((await rl.consume('k')).ok).toBe(true);
  });
});
