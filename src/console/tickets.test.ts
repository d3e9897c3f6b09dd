import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { Principal } from '../access/principal.js';
import { MediaTicketStore, MemoryRevocations } from './tickets.js';

const alice: Principal = { id: 'alice', tenantId: 'acme', scopes: new Set(['recordings:read']), kind: 'api_key', credentialId: 'k1' };
const bob: Principal = { id: 'bob', tenantId: 'acme', scopes: new Set(['recordings:read']), kind: 'api_key', credentialId: 'k2' };
const acmeAdmin: Principal = { id: 'root', tenantId: 'acme', scopes: new Set(['admin']), kind: 'jwt', credentialId: null };
const gary: Principal = { id: 'alice', tenantId: 'globex', scopes: new Set(['admin']), kind: 'api_key', credentialId: 'k3' };
const base = { recordingPk: 'r1', ref: 'r1', format: 'wav' as const, purpose: 'Case 12: review' };

/** Two "instances": stores sharing one key and one revocation list, each with its own use counts. */
function instances(opts: { maxUses?: number } = {}) {
  let now = 1_000_000;
  const key = randomBytes(32);
  const revocations = new MemoryRevocations();
  const make = () => new MediaTicketStore(async () => key, revocations, { firstUseMs: 60_000, lifetimeMs: 600_000, maxUses: opts.maxUses ?? 3, now: () => now });
  return { a: make(), b: make(), tick: (ms: number) => (now += ms), key };
}

describe('media tickets (sealed)', () => {
  it('are bearer secrets whose claims cannot be read or altered; any instance with the key opens them', async () => {
    const { a, b } = instances();
    const { secret, ticket } = await a.issue({ principal: alice, ...base });
    expect(secret).toMatch(/^mt_[A-Za-z0-9_-]{60,}$/);
    // Claims long enough that random ciphertext cannot hold them by chance ('r1' did, 1 run in ~300).
    const plain = { recordingPk: 'rec-7f3a9c2e', ref: 'ref-5b1d8e40' };
    const sealed = (await a.issue({ principal: alice, ...base, ...plain })).secret;
    for (const s of ['alice', 'acme', 'Case 12', plain.recordingPk, plain.ref]) expect(Buffer.from(sealed.slice(3), 'base64url').toString('latin1')).not.toContain(s);
    const used = await b.use(secret);
    expect(used).toMatchObject({ id: ticket.id, recordingPk: 'r1', purpose: 'Case 12: review', format: 'wav', uses: 1 });
    expect(used?.principal).toMatchObject({ id: 'alice', tenantId: 'acme', kind: 'api_key', credentialId: 'k1' });
    expect([...used!.principal.scopes]).toEqual(['recordings:read']);

    // One flipped bit anywhere, another key, or garbage: refused.
    const raw = Buffer.from(secret.slice(3), 'base64url');
    for (const i of [0, 20, raw.length - 1]) {
      const bad = Buffer.from(raw);
      bad[i] = bad[i]! ^ 1;
      expect(await a.use(`mt_${bad.toString('base64url')}`)).toBeNull();
    }
    const other = new MediaTicketStore(async () => randomBytes(32));
    expect(await other.use(secret)).toBeNull();
    for (const s of ['mt_' + 'A'.repeat(43), 'mt_' + 'A'.repeat(200), '', 'x'.repeat(300)]) expect(await a.use(s)).toBeNull();
  });

  it('must be first used within the window; an instance that served it goes on serving it', async () => {
    const { a, b, tick } = instances();
    const late = (await a.issue({ principal: alice, ...base })).secret;
    const early = (await a.issue({ principal: alice, ...base })).secret;
    expect(await a.use(early)).not.toBeNull();
    tick(60_000);
    expect(await a.use(late)).toBeNull();
    expect(await a.use(early)).not.toBeNull();
    // Counted per instance: b has not served it, and the window is over.
    expect(await b.use(early)).toBeNull();
  });

  it('live for one playback session: several Range requests, then expire by time (everywhere) or by count (per instance)', async () => {
    const { a, b, tick } = instances();
    const { secret } = await a.issue({ principal: alice, ...base });
    expect(await a.use(secret)).not.toBeNull();
    expect(await b.use(secret)).not.toBeNull();
    tick(120_000);
    expect(await a.use(secret)).not.toBeNull();
    expect(await a.use(secret)).not.toBeNull();
    expect(await a.use(secret)).toBeNull(); // maxUses 3 on a
    expect(await b.use(secret)).not.toBeNull();
    tick(600_000);
    expect(await b.use(secret)).toBeNull();
    await a.sweep();
    expect(a.size).toBe(0);
  });

  it('are revoked everywhere, by their principal or an admin of the same tenant only', async () => {
    const { a, b } = instances({ maxUses: 100 });
    const { secret, ticket } = await a.issue({ principal: alice, ...base });
    // What each revocation can take effect on: the caller's own tickets, or (an admin) any of its tenant's.
    expect(await b.revoke(bob, ticket.id)).toBe('if_own_ticket');
    expect(await b.revoke(gary, ticket.id)).toBe('if_ticket_of_tenant'); // admin, but of another tenant
    expect(await a.use(secret)).not.toBeNull();
    expect(await b.use(secret)).not.toBeNull();
    await b.revoke(alice, ticket.id);
    expect(await a.use(secret)).toBeNull();
    expect(await b.use(secret)).toBeNull();

    const t2 = await a.issue({ principal: alice, ...base });
    expect(await a.use(t2.secret)).not.toBeNull();
    await a.revoke(acmeAdmin, t2.ticket.id);
    expect(await b.use(t2.secret)).toBeNull();
  });
});
