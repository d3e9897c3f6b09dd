/** What one audit event records: PCI DSS 10.2.2 fields (who, what, when, outcome, origin, resource) and more. */
export interface AuditEventInput {
  /** Generated when absent; routes reserve it early so the X-Audit-Event-Id header can name it. */
  id?: string;
  tenantId: string | null;
  principalId: string | null;
  principalKind: 'api_key' | 'jwt' | 'anonymous' | 'system' | null;
  callerId?: string | null;
  requestId?: string | null;
  auditLogId?: string | null;
  httpRequestId?: string | null;
  /** Dotted verb such as recording.retrieve, recording.media, recording.metadata, catalog.search, audit.read. */
  action: string;
  ref?: string | null;
  recordingPk?: string | null;
  copyId?: string | null;
  origin?: string | null;
  /** allowed (access granted), completed, denied, failed, aborted (client went away or stream broke). */
  outcome: 'allowed' | 'completed' | 'denied' | 'failed' | 'aborted';
  status?: number | null;
  errorCode?: string | null;
  bytesSent?: number | null;
  sha256?: string | null;
  clientIp?: string | null;
  userAgent?: string | null;
  /** For a completion event: the event that opened the access. */
  relatedEventId?: string | null;
  detail?: Record<string, unknown> | null;
}

export interface AuditEvent extends Required<Omit<AuditEventInput, 'detail'>> {
  id: string;
  seq: number;
  occurredAt: string;
  detail: Record<string, unknown> | null;
  prevHash: string;
  hash: string;
}

/** The hash of the (empty) chain's start. */
export const GENESIS_HASH = '0'.repeat(64);
