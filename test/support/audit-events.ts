import type { AuditEvent } from '../../src/audit/event.js';
import type { TestGateway } from './gateway.js';
import type { RawResponse } from './http.js';

/**
 * The `allowed` event a response names (X-Audit-Event-Id) and the `.end` event that follows it,
 * which is written after the last byte — so it is polled for, up to 5 s.
 */
export async function allowedAndEnd(gw: TestGateway, res: RawResponse, tenantId = 'acme'): Promise<{ allowed: AuditEvent; end: AuditEvent }> {
  const id = String(res.headers['x-audit-event-id']);
  for (let i = 0; i < 200; i++) {
    const items = (await gw.deps.auditRepo.query({ tenantId, limit: 1000 })).items;
    const allowed = items.find((e) => e.id === id);
    const end = items.find((e) => e.relatedEventId === id);
    if (allowed && end) return { allowed, end };
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`no allowed/.end events for ${id}`);
}
