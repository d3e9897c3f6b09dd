import type { Recording } from '../catalog/model.js';

export type RetentionStatus = 'ACTIVE' | 'EXPIRED' | 'LEGAL_HOLD';

/**
 * A legal hold overrides expiry (GDPR Art. 17(3)(e): erasure yields to legal claims). Expiry is
 * the catalog's obligation date; the sources' own delete dates are recorded per copy and only
 * decide whether that copy can still be fetched.
 */
export function retentionStatus(rec: Recording, now = new Date()): RetentionStatus {
  if (rec.legalHold) return 'LEGAL_HOLD';
  if (rec.retentionExpiry && Date.parse(rec.retentionExpiry) <= now.getTime()) return 'EXPIRED';
  return 'ACTIVE';
}
