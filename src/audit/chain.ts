import { createHash } from 'node:crypto';
import { LONE_SURROGATE } from '../lone-surrogate.js';
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

/**
 * Text as both databases store it, so what is hashed is what is read back. A lone UTF-16
 * surrogate (JSON can carry one as an escape, "\ud800") has no UTF-8 form: SQLite and PostgreSQL
 * store U+FFFD instead, and an event hashed over the original never verified again — one request
 * could break the chain for good. PostgreSQL refuses NUL in text outright (the append, and so the
 * request, failed). Both become U+FFFD before hashing.
 */
export function storableText(s: string): string;
export function storableText(s: string | null): string | null;
export function storableText(s: string | null): string | null {
  return s === null ? null : s.replace(UNSTORABLE, '\ufffd');
}

/** A lone surrogate (lone-surrogate.ts) or NUL, every occurrence. */
const UNSTORABLE = new RegExp(`${LONE_SURROGATE.source}|\\u0000`, 'g');

/** Each event commits to its predecessor: hash = SHA-256(canonical(event) including prev_hash). */
export function chainHash(e: ChainedFields): string {
  return createHash('sha256').update(canonicalEvent(e)).digest('hex');
}
