import type { FastifyRequest } from 'fastify';
import type { Recording } from '../catalog/model.js';
import type { AppDeps } from '../deps.js';
import { AppError, isAppError } from '../errors.js';
import { resolveOrAudit } from '../http/evidence.js';
import { clientSignal } from '../http/serve-recording.js';
import { retentionStatus } from '../resolve/retention.js';

/**
 * A ref → a recording of the caller's tenant, with the streaming path's guarantees
 * (`resolveOrAudit`); the 404 names the ref because a console request can carry several.
 */
export async function resolveInTenant(deps: AppDeps, req: FastifyRequest, ref: string, signal: AbortSignal): Promise<Recording> {
  try {
    return await resolveOrAudit(deps, req, ref, signal);
  } catch (e) {
    if (isAppError(e) && e.code === 'recording.not_found') throw new AppError('recording.not_found', `no recording matches "${ref}"`, { extra: { ref } });
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
export const clientGone = clientSignal;
