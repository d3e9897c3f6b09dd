/**
 * The one catalogue of errors. Every failure a client can see is an AppError with a stable
 * `code`; http/problem.ts turns it into an RFC 9457 problem+json body in exactly one place.
 * docs/ERRORS.md documents this table — keep them in step (a test compares them).
 */

export interface ErrorSpec {
  status: number;
  title: string;
}

export const ERRORS = {
  // Request shape
  'request.malformed_json': { status: 400, title: 'The request body is not valid JSON' },
  'request.invalid': { status: 422, title: 'The request does not match the schema' },
  'request.too_large': { status: 413, title: 'The request body is too large' },
  'request.unsupported_media_type': { status: 415, title: 'The request body must be application/json, in UTF-8' },
  'request.idempotency_conflict': { status: 409, title: 'request_id was already used for a different request' },
  'request.not_found': { status: 404, title: 'No such endpoint' },
  'request.method_not_allowed': { status: 405, title: 'The endpoint does not support this method' },
  'request.bad_url': { status: 400, title: 'The request URL is not valid percent-encoded UTF-8' },
  'request.uri_too_long': { status: 414, title: 'A segment of the request path is too long' },
  // Refused by Node's HTTP parser before any route (http/client-error.ts): nothing was parsed into a request, so no audit event.
  'request.malformed': { status: 400, title: 'The request is not well-formed HTTP/1.1 (refused before routing: no audit event; the connection is closed)' },
  'request.header_too_large': { status: 431, title: 'The request line and headers are larger than the server accepts (refused before routing: no audit event; the connection is closed)' },
  'request.timeout': { status: 408, title: 'The request headers did not arrive in time (refused before routing: no audit event; the connection is closed)' },
  'range.malformed': { status: 400, title: 'The Range header is malformed' },
  'range.not_satisfiable': { status: 416, title: 'The requested range cannot be satisfied' },
  // Access
  'auth.missing': { status: 401, title: 'Authentication is required' },
  'auth.invalid_token': { status: 401, title: 'The bearer token is not valid' },
  'auth.expired_token': { status: 401, title: 'The bearer token has expired' },
  'access.scope_missing': { status: 403, title: 'The principal lacks a required scope' },
  'access.caller_mismatch': { status: 403, title: 'caller_id does not match the authenticated principal' },
  'access.cross_site': { status: 403, title: "A media ticket plays only in pages of the gateway's own origin (Sec-Fetch-Site)" },
  'access.rate_limited': { status: 429, title: 'Too many requests' },
  'access.rate_limit_unavailable': { status: 503, title: 'The rate limit store cannot be reached (PostgreSQL, or the cluster primary); access is refused' },
  // Recordings
  'recording.not_found': { status: 404, title: 'Recording not found' },
  'recording.ambiguous_ref': { status: 409, title: 'The reference matches more than one recording' },
  'recording.expired': { status: 410, title: 'The recording is past its retention period' },
  'recording.no_copy_available': { status: 503, title: 'No copy of the recording can be served right now' },
  'recording.lookup_pending': { status: 503, title: "The reference is not in the catalog and its search in the tenant's sources outlasted the first-byte budget; the search goes on: retry (the same request_id) after Retry-After" },
  'media.unsupported_codec': { status: 415, title: 'The source codec cannot be converted to the requested format' },
  'media.undecodable': { status: 422, title: 'The stored bytes are not a decodable recording' },
  'media.transcoder_busy': { status: 503, title: 'All transcoders are busy' },
  'media.transcoder_unavailable': { status: 503, title: 'The transcoder (ffmpeg) is not available' },
  // Sources
  'source.not_configured': { status: 503, title: 'The source holding this copy is not configured for the tenant' },
  'source.unavailable': { status: 503, title: 'The source is unavailable' },
  'source.bad_gateway': { status: 502, title: 'The source answered with an error' },
  'source.timeout': { status: 504, title: 'The source did not answer in time' },
  'source.object_missing': { status: 502, title: 'The catalog points at an object the source does not have' },
  'source.path_refused': { status: 502, title: 'The catalog locator escapes the archive root' },
  'source.archived': { status: 503, title: 'The recording is archived at the source and must be restored first' },
  'source.restoring': { status: 503, title: 'The recording is being restored at the source' },
  'source.media_not_ready': { status: 503, title: 'The source is still preparing the media; retry later' },
  'source.auth_failed': { status: 502, title: 'The source refused the configured credentials or permissions' },
  'source.integrity_mismatch': { status: 502, title: 'The stored bytes do not match their recorded SHA-256' },
  'source.key_refused': { status: 502, title: 'The source cannot decrypt the recording: its encryption key is refused or unavailable there' },
  // Jobs, staging and keys
  'job.not_found': { status: 404, title: 'No such job' },
  'job.not_ready': { status: 409, title: 'The job has not staged its media yet' },
  'job.failed': { status: 502, title: 'The job failed' },
  'job.expired': { status: 410, title: 'The staged media has expired and was purged' },
  'staging.write_failed': { status: 503, title: 'The staging area could not be written (disk full or unavailable)' },
  'staging.corrupt': { status: 500, title: 'The staged media failed its integrity check' },
  'staging.unavailable': { status: 503, title: 'The staging store could not be read (S3 staging unreachable or refusing)' },
  'key.unavailable': { status: 503, title: 'The key needed to decrypt is not available' },
  'key.disabled': { status: 422, title: 'The key protecting the recording is disabled or scheduled for deletion' },
  'key.unknown': { status: 422, title: 'The key protecting the recording is not known to the key service' },
  // Legal holds
  'hold.not_found': { status: 404, title: 'No such legal hold' },
  'hold.duplicate': { status: 409, title: 'The recording already has an active hold for this matter' },
  'hold.already_released': { status: 409, title: 'The legal hold is already released' },
  'hold.release_already_requested': { status: 409, title: 'The release of this legal hold was requested by another call meanwhile; it stays held until a different administrator confirms it' },
  'hold.second_admin_required': { status: 409, title: 'A hold release must be confirmed by a different administrator than the one who requested it' },
  // Audit
  'audit.unavailable': { status: 503, title: 'The audit trail cannot be written; access is refused' },
  // Migration sync
  'sync.busy': { status: 409, title: 'A sync of this source is already running (one run at a time per source)' },
  'integrity.not_a_pair': { status: 409, title: 'The recording does not have both a legacy copy and a cloud copy to compare' },
  // Last resort: a bug. Never used for bad input.
  internal: { status: 500, title: 'Internal error' },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERRORS;

export interface AppErrorOptions {
  /** Extra members of the problem body (e.g. `codec`, `errors`). Never secrets. */
  extra?: Record<string, unknown>;
  /** Response headers such as Retry-After or X-Retention-Status. */
  headers?: Record<string, string>;
  cause?: unknown;
}

export class AppError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly extra: Record<string, unknown>;
  readonly headers: Record<string, string>;

  constructor(code: ErrorCode, detail?: string, opts: AppErrorOptions = {}) {
    super(detail ?? ERRORS[code].title, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'AppError';
    this.code = code;
    this.status = ERRORS[code].status;
    this.extra = opts.extra ?? {};
    this.headers = opts.headers ?? {};
  }

  get title(): string {
    return ERRORS[this.code].title;
  }
}

export function isAppError(e: unknown): e is AppError {
  return e instanceof AppError;
}

/**
 * Errors that keep a client-facing code the breaker otherwise counts (mostly source.bad_gateway)
 * but describe one request, not the source: a recording Genesys holds in fileState ERROR, a
 * recording answered without a media link, a 4xx about one id. The source answered; suspending
 * every read of it for half_open_after_ms because one corrupt recording is asked for again and
 * again would turn one bad recording into an outage of all of them. By identity, like caller
 * aborts (sources/net.ts): the code stays what clients have always seen. Read by the circuit
 * breaker (sources/circuit.ts) and by retryLaterHelps (no Retry-After: the source will answer the same).
 */
const NOT_OUTAGES = new WeakSet<AppError>();

/** Marks `e` as an answer about one request (see NOT_OUTAGES): never counted by any breaker. */
export function notAnOutage(e: AppError): AppError {
  NOT_OUTAGES.add(e);
  return e;
}

export function isNotAnOutage(e: unknown): boolean {
  return e instanceof AppError && NOT_OUTAGES.has(e);
}

/** Whether a source's failure is worth another try (copy fallback, job retries): any 429 or 5xx from the source side. */
export function isRetryable(e: AppError): boolean {
  return e.status === 502 || e.status === 503 || e.status === 504 || e.status === 429;
}

/**
 * Whether the same request, sent again later, may succeed — product.md: Retry-After "where a retry
 * can help". A busy or slow source (503, 504) and a source that answered with an error
 * (source.bad_gateway) may; the other 502s describe the catalog or the stored object (missing,
 * outside the archive root, bytes not matching their hash, credentials or key refused, a failed
 * job): asking again changes nothing, so they carry no Retry-After. Nor does a source.bad_gateway
 * that is an answer about one recording (notAnOutage above: fileState ERROR, no media
 * link, a 4xx about its id): the source answered, and will answer the same. A 429 brings its own.
 */
export function retryLaterHelps(e: AppError): boolean {
  return e.status === 503 || e.status === 504 || (e.code === 'source.bad_gateway' && !isNotAnOutage(e));
}
