import type { Copy, Recording } from '../catalog/model.js';

export type RetentionStatus = 'ACTIVE' | 'EXPIRED' | 'LEGAL_HOLD';

/**
 * The retention rule (docs/AUDIT.md, "Retention and legal hold"):
 * 1. A legal hold — an active hold record (legal_holds), the ones an imported `legal_hold: true`
 *    placed included — is LEGAL_HOLD and overrides every date (GDPR Art. 17(3)(e): erasure yields
 *    to legal claims). Every hold ends only by the four-eyes release.
 * 2. The catalog's retention_expiry is the obligation of record: past it, EXPIRED, whatever the
 *    sources still hold.
 * 3. A source's own deletion date (source_retention_expiry, e.g. Genesys deleteDate) only says
 *    when that copy disappears there: a copy past it is not tried, and a recording whose every
 *    copy is past it is EXPIRED (gone at its sources), even if the catalog date is later.
 */
export function isHeld(rec: Recording): boolean {
  // The repository's reads set legalHold from the active hold records (the recordings.legal_hold
  // column no longer holds anything since migration 0014); activeHolds is their count.
  return (rec.activeHolds ?? 0) > 0 || rec.legalHold;
}

export function sourceDeleted(copy: Copy, now = new Date()): boolean {
  return !!copy.sourceRetentionExpiry && Date.parse(copy.sourceRetentionExpiry) <= now.getTime();
}

function catalogExpired(rec: Recording, now: Date): boolean {
  return !!rec.retentionExpiry && Date.parse(rec.retentionExpiry) <= now.getTime();
}

/** Status of the recording as a whole (metadata, search, the decision to refuse with 410). */
export function retentionStatus(rec: Recording, now = new Date()): RetentionStatus {
  if (isHeld(rec)) return 'LEGAL_HOLD';
  if (catalogExpired(rec, now)) return 'EXPIRED';
  if (rec.copies.length > 0 && rec.copies.every((c) => sourceDeleted(c, now))) return 'EXPIRED';
  return 'ACTIVE';
}

/** Status of the copy actually served: the X-Retention-Status of a media response. */
export function copyRetentionStatus(rec: Recording, copy: Copy, now = new Date()): RetentionStatus {
  if (isHeld(rec)) return 'LEGAL_HOLD';
  if (catalogExpired(rec, now) || sourceDeleted(copy, now)) return 'EXPIRED';
  return 'ACTIVE';
}

/** Why a recording is EXPIRED, in words for the problem detail. */
export function expiryReason(rec: Recording, now = new Date()): string {
  if (catalogExpired(rec, now)) return `retention ended ${rec.retentionExpiry}`;
  const last = rec.copies.map((c) => c.sourceRetentionExpiry).filter((d): d is string => !!d).sort().at(-1);
  return `every copy was deleted at its source at the end of the source's retention (last ${last})`;
}
