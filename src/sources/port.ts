import type { Readable } from 'node:stream';

/** Where a copy lives, as the two answers an auditor cares about. */
export type Origin = 'GENESYS_CLOUD' | 'LEGACY_ARCHIVE';

/** What a connector needs to know of a catalog copy to fetch it. */
export interface CopyLocation {
  copyId: string;
  /** Path or key inside the source (filesystem, s3) or a vendor id (legacy HTTP); null when the connector derives it. */
  locator: string | null;
  sourceSystem: string;
  genesysRecordingId: string | null;
  conversationId: string | null;
  legacyArchiveId: string | null;
  sizeBytes: number | null;
}

/** Inclusive byte range of the stored object; `end` absent means "to the end". */
export interface ByteRange {
  start: number;
  end?: number;
}

export interface OpenOptions {
  range?: ByteRange;
  /** Aborted when the client goes away or the request times out; connectors must stop fetching. */
  signal: AbortSignal;
}

export interface SourceMedia {
  /** The stored bytes (or the requested range of them). An error event means the copy broke midway. */
  body: Readable;
  /** Size of the whole stored object, when the source says. */
  totalSize?: number;
  /** The range the body covers, when a range was asked for and honoured. */
  range?: { start: number; end: number };
  /** What the source claims; media/ sniffs the bytes and does not trust this. */
  contentType?: string;
  /**
   * Facts the source states about these bytes that belong in the retrieval's audit event detail,
   * merged as they are (snake_case keys, plain values; never a credential or a link). Genesys:
   * `sensitive_data` ('unredacted' | 'may_be_redacted', docs/AUDIT.md).
   */
  auditDetail?: Readonly<Record<string, string | number | boolean>>;
  /**
   * The bytes are the source's own computation, not an object it stores as it is (a MediaSense
   * session's tracks merged into one call): there is no 'original' to serve, and neither the
   * catalog's digest nor a strong validator applies. The media layer treats them as transcoded.
   */
  computed?: boolean;
}

/**
 * The source connector port. One instance serves one configured source of one tenant; the
 * registry never hands it to another tenant. Each connector folder has the same files:
 * config.ts (its zod block), connector.ts (this interface), simulator.ts (a real server to test against).
 */
export interface SourceConnector {
  readonly name: string;
  readonly kind: string;
  readonly tenantId: string;
  readonly origin: Origin;
  open(copy: CopyLocation, opts: OpenOptions): Promise<SourceMedia>;
  /**
   * Sources with an archive tier (Genesys ARCHIVED) start a restore here, keeping the copy
   * restored until `until`; the job worker then retries open() until the bytes are there.
   */
  restore?(copy: CopyLocation, until: Date, signal: AbortSignal): Promise<unknown>;
  /** Readiness probe: resolves when the source is reachable with this connector's credentials. */
  check(signal: AbortSignal): Promise<void>;
  close(): Promise<void>;
}
