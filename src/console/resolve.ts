import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Recording } from '../catalog/model.js';
import type { AppDeps } from '../deps.js';
import { AppError, isAppError } from '../errors.js';
import { retentionStatus } from '../resolve/retention.js';

/**
 * A ref → a recording of the caller's tenant, with the same guarantees as the streaming path
 * (src/http/serve-recording.ts `resolveOrAudit`, which is not exported): another tenant's ref is
 * the same 404 as an unknown one, and the attempt is written to the owner's trail as well.
 */
export async function resolveInTenant(deps: AppDeps, req: FastifyRequest, ref: string, signal: AbortSignal): Promise<Recording> {
  const tenantId = req.principal!.tenantId;
  try {
    return (await deps.resolver.resolve(tenantId, ref, signal)).recording;
  } catch (e) {
    if (isAppError(e) && e.code === 'recording.not_found') {
      const owners = await deps.recordings.otherTenantsHoldingRef(ref, tenantId);
      if (owners.length) {
        req.audit.detail = { ...req.audit.detail, cross_tenant_attempt: true };
        for (const owner of owners) {
          await deps.audit.repo.append({
            ...deps.audit.base(req),
            tenantId: owner,
            ref,
            action: 'recording.cross_tenant_attempt',
            outcome: 'denied',
            status: 404,
            errorCode: 'recording.not_found',
            detail: { requesting_tenant: tenantId },
          });
        }
      }
      // Name the ref that failed: a request can carry several.
      throw new AppError('recording.not_found', `no recording matches "${ref}"`, { extra: { ref } });
    }
    throw e;
  }
}

/** Refuses a recording past its retention (and not on legal hold), like the streaming path. */
export function refuseExpired(rec: Recording, ref: string): void {
  if (retentionStatus(rec) === 'EXPIRED') {
    throw new AppError('recording.expired', `"${ref}": retention ended ${rec.retentionExpiry}`, { extra: { ref }, headers: { 'X-Retention-Status': 'EXPIRED' } });
  }
}

/** Aborted when the client goes away before the response is finished. */
export function clientGone(reply: FastifyReply): AbortSignal {
  const ac = new AbortController();
  reply.raw.once('close', () => {
    if (!reply.raw.writableFinished) ac.abort();
  });
  return ac.signal;
}
