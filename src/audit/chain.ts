import { createHash } from 'node:crypto';
import type { AuditEvent } from './event.js';

/**
 * Canonical serialisation of an event for hashing: a JSON array in a fixed field order, so the
 * hash does not depend on object key order, driver types or column order. Changing this breaks
 * every existing chain — add a version field instead.
 */
/** The stored form: `detail` is the JSON text exactly as written, so reading it back cannot change the hash. */
export type ChainedFields = Omit<AuditEvent, 'hash' | 'seq' | 'detail'> & { detail: string | null };

export function canonicalEvent(e: ChainedFields): string {
  return JSON.stringify([
    'v1',
    e.id,
    e.occurredAt,
    e.tenantId,
    e.principalId,
    e.principalKind,
    e.callerId,
    e.requestId,
    e.auditLogId,
    e.httpRequestId,
    e.action,
    e.ref,
    e.recordingPk,
    e.copyId,
    e.origin,
    e.outcome,
    e.status,
    e.errorCode,
    e.bytesSent,
    e.sha256,
    e.clientIp,
    e.userAgent,
    e.relatedEventId,
    e.detail,
    e.prevHash,
  ]);
}

/** Each event commits to its predecessor: hash = SHA-256(canonical(event) including prev_hash). */
export function chainHash(e: ChainedFields): string {
  return createHash('sha256').update(canonicalEvent(e)).digest('hex');
}
