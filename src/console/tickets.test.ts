import { describe, expect, it } from 'vitest';
import type { Principal } from '../access/principal.js';
import { MediaTicketStore } from './tickets.js';

const alice: Principal = { id: 'alice', tenantId: 'acme', scopes: new Set(['recordings:read']), kind: 'api_key', credentialId: 'k1' };
const bob: Principal = { id: 'bob', tenantId: 'acme', scopes: new Set(['recordings:read']), kind: 'api_key', credentialId: 'k2' };
const gary: Principal = { id: 'alice', tenantId: 'globex', scopes: new Set(['admin']), kind: 'api_key', credentialId: 'k3' };
const base = { recordingPk: 'r1', ref: 'r1', format: 'wav' as const, purpose: 'p' };

function store(opts: ConstructorParameters<typeof MediaTicketStore>[0] = {}) {
  let now = 1_000_000;
  const s = new MediaTicketStore({ firstUseMs: 60_000, lifetimeMs: 600_000, maxUses: 3, ...opts, now: () => now });
  return { s, tick: (ms: number) => (now += ms) };
}

describe('media tickets', () => {
  it('are random bearer secrets of a fixed shape, held only as digests', () => {
    const { s } = store();
    const a = s.issue({ principal: alice, ...base });
    const b = s.issue({ principal: alice, ...base });
    expect(a.secret).toMatch(/^mt_[A-Za-z0-9_-]{43}$/);
    expect(a.secret).not.toBe(b.secret);
    expect(JSON.stringify([...(s as unknown as { byDigest: Map<string, unknown> }).byDigest.keys()])).not.toContain(a.secret);
    expect(s.use(a.secret)?.principal).toBe(alice);
    expect(s.use('mt_' + 'A'.repeat(43))).toBeNull();
    expect(s.use(a.secret.slice(0, -1))).toBeNull();
    expect(s.use('')).toBeNull();
  });

  it('must be used within the first-use window', () => {
    const { s, tick } = store();
    const { secret } = s.issue({ principal: alice, ...base });
    tick(60_000);
    expect(s.use(secret)).toBeNull();
  });

  it('live for one playback session: several Range requests, then expire by time or by count', () => {
    const { s, tick } = store();
    const { secret } = s.issue({ principal: alice, ...base });
    expect(s.use(secret)).not.toBeNull();
    tick(120_000); // past the first-use window, but already in use
    expect(s.use(secret)).not.toBeNull();
    expect(s.use(secret)).not.toBeNull();
    expect(s.use(secret)).toBeNull(); // maxUses 3
    const other = s.issue({ principal: alice, ...base }).secret;
    s.use(other);
    tick(600_000);
    expect(s.use(other)).toBeNull();
    s.sweep();
    expect(s.size).toBe(0);
  });

  it('are revoked by their principal (or an admin of the same tenant) only', () => {
    const { s } = store();
    const { secret, ticket } = s.issue({ principal: alice, ...base });
    expect(s.revoke(bob, ticket.id)).toBe(false);
    expect(s.revoke(gary, ticket.id)).toBe(false); // admin, but of another tenant
    expect(s.use(secret)).not.toBeNull();
    expect(s.revoke(alice, ticket.id)).toBe(true);
    expect(s.use(secret)).toBeNull();
  });

  it('keep a bounded number per principal: the oldest goes first', () => {
    const { s } = store({ maxPerPrincipal: 2 });
    const first = s.issue({ principal: alice, ...base }).secret;
    s.issue({ principal: alice, ...base });
    s.issue({ principal: alice, ...base });
    s.issue({ principal: bob, ...base });
    expect(s.use(first)).toBeNull();
    expect(s.size).toBe(3);
  });
});
