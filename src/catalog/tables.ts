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
}

export interface Database {
  jobs: JobsTable;
  recordings: RecordingsTable;
  recording_copies: RecordingCopiesTable;
  recording_refs: RecordingRefsTable;
  audit_events: AuditEventsTable;
  api_keys: ApiKeysTable;
  retrieve_requests: RetrieveRequestsTable;
}
