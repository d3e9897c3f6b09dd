import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AppDeps } from '../../src/deps.js';
import { catalogRevocations } from '../../src/console/ticket-key.js';
import { MemoryRevocations, type TicketRevocations } from '../../src/console/tickets.js';
import { openTestCatalog, type TestCatalog, usableCatalogs } from '../support/catalogs.js';
import { bearer, type TestGateway } from '../support/gateway.js';
import { raw } from '../support/http.js';
import { CONSOLE_KEY, KEYS, startConsoleGateway } from './support.js';

const json = (r: { body: Buffer }) => JSON.parse(r.body.toString());
const T0 = Date.parse('2030-01-01T00:00:00Z');

/**
 * One principal may hold several credentials (test keys `acme-console` and `acme-admin2` are both
 * `carol`, only the second an admin). A revocation it makes as an admin must not be lost because
 * it revoked the same ticket before without admin: every store keeps the strongest revocation.
 */
const stores: [string, () => Promise<{ store: TicketRevocations; close: () => Promise<void> }>][] = [
  ['memory', async () => ({ store: new MemoryRevocations(), close: async () => {} })],
  ...(await usableCatalogs()).map(
    (kind) =>
      [
        kind,
        async () => {
          const cat: TestCatalog = await openTestCatalog(kind);
          // The SQL store needs only the catalog of the gateway's dependencies.
          return { store: catalogRevocations({ catalog: cat } as unknown as AppDeps), close: () => cat.dispose() };
        },
      ] as [string, () => Promise<{ store: TicketRevocations; close: () => Promise<void> }>],
  ),
];

describe.each(stores)('media ticket revocations (%s store) keep the strongest revocation of a principal', (_name, open) => {
  let store: TicketRevocations;
  let close: () => Promise<void>;
  beforeAll(async () => ({ store, close } = await open()));
  afterAll(async () => close?.());

  const alicesTicket = (ticketId: string) => ({ ticketId, tenantId: 'acme', principalId: 'alice' });

  it('a revocation as admin after one without admin by the same principal takes effect on another principal’s ticket', async () => {
    const id = 'mtk_00000000-0000-4000-8000-000000000001';
    await store.revoke({ ticketId: id, tenantId: 'acme', principalId: 'carol', admin: false, until: T0 + 600_000 });
    expect(await store.isRevoked(alicesTicket(id))).toBe(false);
    expect(await store.isRevoked({ ticketId: id, tenantId: 'acme', principalId: 'carol' })).toBe(true);
    await store.revoke({ ticketId: id, tenantId: 'acme', principalId: 'carol', admin: true, until: T0 + 700_000 });
    expect(await store.isRevoked(alicesTicket(id))).toBe(true);
    // Not in another tenant.
    expect(await store.isRevoked({ ticketId: id, tenantId: 'globex', principalId: 'alice' })).toBe(false);
    // Kept until the later of the two ends.
    await store.sweep(T0 + 650_000);
    expect(await store.isRevoked(alicesTicket(id))).toBe(true);
    await store.sweep(T0 + 700_001);
    expect(await store.isRevoked(alicesTicket(id))).toBe(false);
  });

  it('a later revocation without admin never weakens an admin one', async () => {
    const id = 'mtk_00000000-0000-4000-8000-000000000002';
    await store.revoke({ ticketId: id, tenantId: 'acme', principalId: 'carol', admin: true, until: T0 + 600_000 });
    await store.revoke({ ticketId: id, tenantId: 'acme', principalId: 'carol', admin: false, until: T0 + 700_000 });
    expect(await store.isRevoked(alicesTicket(id))).toBe(true);
  });
});

describe.each(await usableCatalogs())('revoking a ticket as admin after revoking it without admin, through the gateway on %s', (kind) => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startConsoleGateway(undefined, { catalog: kind });
  });
  afterAll(async () => gw?.stop());

  it("carol's admin revocation kills alice's ticket although carol revoked it before with her console key", async () => {
    const issued = await raw(`${gw.url}/api/v1/media-tickets`, {
      method: 'POST',
      headers: { ...bearer(KEYS.acme), 'content-type': 'application/json' },
      body: JSON.stringify({ ref: 'v_2001', purpose: 'Case 5: QA' }),
    });
    expect(issued.status).toBe(201);
    const t = json(issued);
    const play = () => raw(gw.url + t.media_url, { headers: { range: 'bytes=0-43' } });
    expect((await play()).status).toBe(206);

    // carol without admin (acme-console): takes effect only on her own tickets.
    const first = await raw(`${gw.url}/api/v1/media-tickets/${t.ticket_id}`, { method: 'DELETE', headers: bearer(CONSOLE_KEY) });
    expect(first.status).toBe(204);
    expect((await play()).status).toBe(206);

    // carol as admin (acme-admin2): the audit says it takes effect on any ticket of the tenant — and it does.
    const second = await raw(`${gw.url}/api/v1/media-tickets/${t.ticket_id}`, { method: 'DELETE', headers: bearer(KEYS.acmeAdmin2) });
    expect(second.status).toBe(204);
    expect(await gw.deps.auditRepo.byId(second.headers['x-audit-event-id'] as string)).toMatchObject({
      action: 'media_ticket.revoke',
      principalId: 'carol',
      detail: { ticket_id: t.ticket_id, takes_effect: 'if_ticket_of_tenant' },
    });
    const after = await play();
    expect(after.status).toBe(401);
    expect(json(after).code).toBe('auth.invalid_token');
  });
});
