import type { AuditRepository, BreakReason, VerifyResult } from './audit-repository.js';

/** A verify verdict as one tenant may see it (GET /api/v1/audit/verify without `admin`, evidence packages). */
export interface TenantVerifyView {
  ok: boolean;
  /** At least one signed checkpoint was confirmed before the walk ended. */
  checkpointed: boolean;
  /** seq and id only when the broken event is the caller's tenant's own. */
  broken?: { reason: BreakReason; seq?: number; id?: string };
}

/**
 * The verdict on the one chain every tenant shares, as one tenant may see it. The count of events,
 * the head hash, the number of checkpoints (written every N events and each busy interval) and
 * where another tenant's event broke the chain would each, polled, tell a tenant how busy the
 * others are; whether the chain holds, and where their own event broke it, tells them nothing
 * of anyone else.
 */
export async function tenantVerifyView(repo: Pick<AuditRepository, 'byId'>, tenantId: string, r: VerifyResult): Promise<TenantVerifyView> {
  const view: TenantVerifyView = { ok: r.ok, checkpointed: r.checkpoints > 0 };
  if (r.broken) {
    // Whose event it is, as its row says now; a forged checkpoint or a cut tail names no event, so nobody's.
    const ev = r.broken.id ? await repo.byId(r.broken.id) : null;
    view.broken = { reason: r.broken.reason, ...(ev && ev.tenantId === tenantId ? { seq: r.broken.seq, id: ev.id } : {}) };
  }
  return view;
}
