import type { Generated } from 'kysely';

/**
 * Table shapes as both dialects store them. Timestamps are ISO-8601 strings written by us,
 * booleans are 0/1 integers and big counts may come back as strings from PostgreSQL:
 * repositories normalise, nothing else touches rows.
 */
export interface RecordingsTable {
  id: string;
  tenant_id: string;
  call_id: string | null;
  customer_ref: string | null;
  conversation_id: string | null;
  started_at: string | null;
  retention_expiry: string | null;
  legal_hold: number;
  created_at: string;
  updated_at: string;
}

export interface RecordingCopiesTable {
  id: string;
  recording_pk: string;
  tenant_id: string;
  source_system: string;
  origin: string;
  connector: string | null;
  storage_location: string | null;
  locator: string | null;
  genesys_recording_id: string | null;
  legacy_archive_id: string | null;
  /** Natural key inside (tenant, source_system): the Genesys recording id, else the legacy id, else the locator. */
  source_key: string;
  state: string;
  codec: string | null;
  size_bytes: number | string | null;
  sha256: string | null;
  encryption_status: string | null;
  key_id: string | null;
  source_retention_expiry: string | null;
  created_at: string;
  updated_at: string;
}

/** Every identifier a recording has ever had, for one indexed lookup whatever kind the caller holds. */
export interface RecordingRefsTable {
  tenant_id: string;
  value: string;
  kind: string;
  recording_pk: string;
}

export interface AuditEventsTable {
  seq: Generated<number | string>;
  id: string;
  occurred_at: string;
  tenant_id: string | null;
  principal_id: string | null;
  principal_kind: string | null;
  caller_id: string | null;
  request_id: string | null;
  audit_log_id: string | null;
  http_request_id: string | null;
  action: string;
  ref: string | null;
  recording_pk: string | null;
  copy_id: string | null;
  origin: string | null;
  outcome: string;
  status: number | null;
  error_code: string | null;
  bytes_sent: number | string | null;
  sha256: string | null;
  client_ip: string | null;
  user_agent: string | null;
  related_event_id: string | null;
  detail: string | null;
  prev_hash: string;
  hash: string;
}

/** A signed statement about the chain: `event_count` events, the one at `last_seq` hashing to `last_hash`. */
export interface AuditCheckpointsTable {
  id: Generated<number | string>;
  last_seq: number | string;
  last_hash: string;
  event_count: number | string;
  created_at: string;
  key_id: string;
  algorithm: string;
  signature: string;
}

export interface LegalHoldsTable {
  id: string;
  tenant_id: string;
  recording_pk: string;
  matter: string;
  reason: string;
  created_by: string;
  created_at: string;
  released_by: string | null;
  released_at: string | null;
  release_requested_by: string | null;
  release_requested_at: string | null;
}

export interface ApiKeysTable {
  id: string;
  tenant_id: string;
  principal_id: string;
  scopes: string;
  key_hash: string;
  description: string | null;
  created_at: string;
  revoked_at: string | null;
}

export interface RetrieveRequestsTable {
  tenant_id: string;
  request_id: string;
  body_hash: string;
  recording_pk: string | null;
  created_at: string;
}

export interface JobsTable {
  id: string;
  tenant_id: string;
  principal_id: string;
  caller_id: string | null;
  request_id: string | null;
  audit_log_id: string | null;
  ref: string;
  recording_pk: string;
  format: string;
  status: string;
  origin: string | null;
  attempts: number;
  max_attempts: number;
  run_after: string;
  lease_owner: string | null;
  lease_until: string | null;
  bytes_done: number | string;
  bytes_total: number | string | null;
  error_code: string | null;
  error_detail: string | null;
  source_state: string | null;
  copy_id: string | null;
  content_type: string | null;
  codec: string | null;
  transcoded: number | null;
  sha256: string | null;
  staging_key: string | null;
  dek_key_id: string | null;
  dek_wrapped: string | null;
  expires_at: string | null;
  created_at: string;
  updated_at: string;
  /** 1 when the request asked for include_metadata (0013). */
  include_metadata: Generated<number>;
  /**
   * JSON object: what the source stated about the staged bytes for the audit trail
   * (SourceMedia.auditDetail, e.g. Genesys's sensitive_data), written with the staged result (0015).
   */
  source_detail: string | null;
}

/** Sync state per (tenant, source): the lease (one run at a time across instances) and the resume cursor. */
export interface SyncCursorsTable {
  tenant_id: string;
  source: string;
  /** JSON: the position of an unfinished run (none once it finished) and `carry`, what a run hands on to the next (src/sync/store.ts). */
  cursor: string | null;
  /** End of the range the last successful run covered; the next run starts there minus the overlap. */
  synced_until: string | null;
  last_success_at: string | null;
  lease_owner: string | null;
  lease_until: string | null;
  run_id: string | null;
  updated_at: string;
}

export interface SyncRunsTable {
  id: string;
  tenant_id: string;
  source: string;
  kind: string;
  status: string;
  started_at: string;
  finished_at: string | null;
  range_from: string | null;
  range_to: string | null;
  stats: string | null;
  error: string | null;
}

/** Facts of a copy the catalog has no column for (duration, ANI, DNIS), keyed like the copy. */
export interface SyncFactsTable {
  tenant_id: string;
  source_system: string;
  source_key: string;
  started_at: string | null;
  duration_ms: number | string | null;
  ani: string | null;
  dnis: string | null;
  archive_date: string | null;
  updated_at: string;
}

/** What the crosswalk could not decide (ambiguous, conflict) and the integrity verdicts of linked pairs. */
export interface CrosswalkFindingsTable {
  tenant_id: string;
  kind: string;
  recording_pk: string;
  candidates: string;
  rule: string | null;
  detail: string | null;
  created_at: string;
}

/** One decoded-audio comparison of a recording's legacy and cloud copies (src/sync/integrity/). */
export interface IntegrityChecksTable {
  id: string;
  tenant_id: string;
  recording_pk: string;
  /** identical | match | mismatch | unreadable */
  verdict: string;
  /** Envelope correlation at the best offset (null when a copy was unreadable or the PCM was identical). */
  similarity: number | null;
  offset_ms: number | null;
  legacy_copy_id: string | null;
  cloud_copy_id: string | null;
  legacy_duration_ms: number | string | null;
  cloud_duration_ms: number | string | null;
  legacy_pcm_sha256: string | null;
  cloud_pcm_sha256: string | null;
  /** Why a copy could not be compared (an error catalogue code). */
  error_code: string | null;
  /** JSON: codecs, thresholds, reason, which side failed. */
  detail: string | null;
  /** on_demand | sample */
  trigger: string;
  checked_by: string;
  checked_at: string;
}

export interface Database {
  jobs: JobsTable;
  recordings: RecordingsTable;
  recording_copies: RecordingCopiesTable;
  recording_refs: RecordingRefsTable;
  audit_events: AuditEventsTable;
  audit_checkpoints: AuditCheckpointsTable;
  legal_holds: LegalHoldsTable;
  api_keys: ApiKeysTable;
  retrieve_requests: RetrieveRequestsTable;
  sync_cursors: SyncCursorsTable;
  sync_runs: SyncRunsTable;
  sync_facts: SyncFactsTable;
  crosswalk_findings: CrosswalkFindingsTable;
  integrity_checks: IntegrityChecksTable;
}
