import type { FastifyRequest } from 'fastify';
import type { AuditEvent, AuditEventInput } from './event.js';
import type { AuditRepository } from './audit-repository.js';

export type Outcome = AuditEventInput['outcome'];

/** Outcome of a finished request by its status: refusals of access are "denied", the rest of 4xx/5xx "failed". */
export function outcomeOf(status: number): Outcome {
  if (status < 400) return 'completed';
  if (status === 401 || status === 403 || status === 404 || status === 410 || status === 429) return 'denied';
  return 'failed';
}

/** Events marked by `afterOwnCommit`. */
const AFTER_OWN_COMMIT = new WeakSet<AuditEventInput>();

/**
 * Marks an event a request carries for another tenant's trail (`req.audit.alsoFor`) to be written
 * after the request's own commit rather than in it: `record` then puts exactly the unmarked ones in
 * that commit, right after the request's own event, whatever the marked ones are. Used for the
 * owners of a ref several tenants hold (http/evidence.ts): their number must not show in the
 * caller's commit.
 */
export function afterOwnCommit(e: AuditEventInput): AuditEventInput {
  AFTER_OWN_COMMIT.add(e);
  return e;
}

/** Builds audit events from what the request context collected; the one writer of the trail on the HTTP path. */
export class AuditRecorder {
  constructor(readonly repo: AuditRepository) {}

  base(req: FastifyRequest): Omit<AuditEventInput, 'outcome'> {
    const p = req.principal;
    const a = req.audit;
    return {
      tenantId: p?.tenantId ?? null,
      principalId: p?.id ?? null,
      principalKind: p ? p.kind : 'anonymous',
      callerId: a.callerId ?? null,
      requestId: a.requestId ?? null,
      auditLogId: a.auditLogId ?? null,
      httpRequestId: req.id,
      action: a.action,
      ref: a.ref ?? null,
      recordingPk: a.recordingPk ?? null,
      copyId: a.copyId ?? null,
      origin: a.origin ?? null,
      clientIp: req.ip,
      userAgent: typeof req.headers['user-agent'] === 'string' ? req.headers['user-agent'].slice(0, 256) : null,
      detail: a.detail && Object.keys(a.detail).length ? a.detail : null,
    };
  }

  /**
   * Writes the request's event, with the events it carries for other tenants' trails or the
   * operator's (`req.audit.alsoFor`) in the same group commit, right after it, in order. Those are
   * not the caller's evidence: one that fails is logged and changes nothing of the caller's answer.
   * Events marked `afterOwnCommit` are queued once the request's own commit has settled — in a
   * later commit, which the answer does not wait for.
   */
  async record(req: FastifyRequest, fields: Partial<AuditEventInput> & { outcome: Outcome }): Promise<AuditEvent> {
    const carried = req.audit.alsoFor ?? [];
    req.audit.alsoFor = undefined;
    const also = carried.filter((e) => !AFTER_OWN_COMMIT.has(e));
    const later = carried.filter((e) => AFTER_OWN_COMMIT.has(e));
    const [own, ...others] = this.repo.appendTogether([{ ...this.base(req), ...fields }, ...also]);
    const othersDone = this.settleOthers(req, others, also);
    if (later.length) {
      const writeLater = () => this.settleOthers(req, this.repo.appendTogether(later), later);
      void own!.then(writeLater, writeLater);
    }
    try {
      const ev = await own!;
      req.audit.written = true;
      return ev;
    } finally {
      await othersDone;
    }
  }

  /**
   * Writes events a request carries for other tenants when its own event was written some other
   * way (inside a transaction of its own, say) — later than the shared commit, but never lost.
   */
  async flushAlsoFor(req: FastifyRequest): Promise<void> {
    const also = req.audit.alsoFor ?? [];
    req.audit.alsoFor = undefined;
    await this.settleOthers(req, this.repo.appendTogether(also), also);
  }

  private async settleOthers(req: FastifyRequest, written: Promise<AuditEvent>[], inputs: AuditEventInput[]): Promise<void> {
    const results = await Promise.allSettled(written);
    results.forEach((r, i) => {
      if (r.status === 'rejected') req.log.error({ err: r.reason, owner_tenant: inputs[i]?.tenantId, action: inputs[i]?.action }, "audit write failed for an event of another tenant's trail (or the operator's: owner_tenant null)");
    });
  }
}
