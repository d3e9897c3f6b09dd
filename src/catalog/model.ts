import type { Origin } from '../sources/port.js';

/** A physical copy of a recording in one source system. */
export interface Copy {
  id: string;
  recordingPk: string;
  tenantId: string;
  sourceSystem: string;
  origin: Origin;
  connector: string | null;
  storageLocation: string | null;
  locator: string | null;
  genesysRecordingId: string | null;
  legacyArchiveId: string | null;
  /** Source state: AVAILABLE, ARCHIVED, DELETED, RESTORING, … (Genesys fileState words). */
  state: string;
  codec: string | null;
  sizeBytes: number | null;
  sha256: string | null;
  encryptionStatus: string | null;
  keyId: string | null;
  sourceRetentionExpiry: string | null;
}

/** One logical recording (one call leg) and all copies of it. */
export interface Recording {
  id: string;
  tenantId: string;
  callId: string | null;
  customerRef: string | null;
  conversationId: string | null;
  startedAt: string | null;
  retentionExpiry: string | null;
  /** Held: the recording has an active hold record (placed through the API or by an imported `legal_hold: true`). */
  legalHold: boolean;
  /** Legal holds (legal_holds table) not yet released; filled by the repository's reads. */
  activeHolds?: number;
  createdAt: string;
  updatedAt: string;
  copies: Copy[];
}

/** Identifier kinds a ref can match; every one is indexed per tenant. */
export const REF_KINDS = ['id', 'call_id', 'customer_ref', 'conversation_id', 'recording_id', 'legacy_archive_id', 'external_tag', 'sip_call_id'] as const;
export type RefKind = (typeof REF_KINDS)[number];

export function originOf(sourceSystem: string): Origin {
  return sourceSystem === 'genesys_cloud' ? 'GENESYS_CLOUD' : 'LEGACY_ARCHIVE';
}
