import type { Recording } from './model.js';
import type { RetentionStatus } from '../resolve/retention.js';

/**
 * The normalised record clients see (JSON metadata, X-Recording-Metadata, search results).
 * Archive paths and key ids stay inside: they help an attacker more than an auditor.
 */
export function recordingMetadata(rec: Recording, retention: RetentionStatus) {
  return {
    id: rec.id,
    call_id: rec.callId,
    customer_ref: rec.customerRef,
    conversation_id: rec.conversationId,
    started_at: rec.startedAt,
    retention_expiry: rec.retentionExpiry,
    retention_status: retention,
    // An active hold record or the imported flag: either keeps the recording past its expiry.
    legal_hold: rec.legalHold || retention === 'LEGAL_HOLD',
    copies: rec.copies.map((c) => ({
      id: c.id,
      origin: c.origin,
      source_system: c.sourceSystem,
      storage_location: c.storageLocation,
      recording_id: c.genesysRecordingId,
      legacy_archive_id: c.legacyArchiveId,
      state: c.state,
      codec: c.codec,
      size_bytes: c.sizeBytes,
      sha256: c.sha256,
      encryption_status: c.encryptionStatus,
    })),
  };
}
