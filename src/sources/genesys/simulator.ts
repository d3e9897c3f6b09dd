import { createHash, createHmac, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pathToFileURL } from 'node:url';
import { GENESYS_FORMATS, type GenesysFormat } from './config.js';
import {
  FILE_STATES,
  type BatchDownloadJobResult,
  type BatchDownloadJobStatusResult,
  type FileState,
  type MediaSubtype,
  type Recording,
  type RecordingMetadata,
  type RecordingSettings,
  type TokenInfo,
} from './models.js';
import { queryConversationDetails, type SimCallFacts, uuidFrom } from './simulator-analytics.js';
import { parseSimRange } from '../sim-range.js';
import { cliArg, closeServers } from '../sim-server.js';

/**
 * A Genesys Cloud simulator: a real HTTP server speaking the routes, status codes, model field
 * names and error bodies of the Platform API extracts (../shared/reference/genesys-openapi) for
 * what custodian uses — OAuth client credentials, recording metadata, recordings (with 202 while
 * transcoding, and restore), the analytics conversation details query, batch download requests,
 * the org's recording settings and GET /api/v2/tokens/me (which is *not* in the extracts: its
 * shape follows the public SDKs' TokenInfo model) — and serving the pre-authorised media links
 * with Range support. Each OAuth client has permissions (x-inin-requires-permissions of the
 * extracts, checked with ANY semantics) so missing rights answer 403 as Genesys does.
 * Tests, the demo, `custodian sim genesys` and anyone can start it.
 *
 * Layout "split" (default) listens on three ports, one per host role (login, api, media), each
 * serving only its own routes, so tests can prove what was sent where. "combined" serves all
 * routes on one port.
 */

export type SimRole = 'login' | 'api' | 'media';
export type SimScope = SimRole | 'any';

export interface SimClient {
  id: string;
  secret: string;
  /** The OAuth client's name (GET /api/v2/tokens/me). */
  name?: string;
  /** Rights granted through the client's roles; absent = every permission the simulator checks. */
  permissions?: string[];
  /** authorizedScope of GET /api/v2/tokens/me (client-credentials clients get rights from roles, not scopes). */
  scopes?: string[];
}

/**
 * Permissions the simulator checks, per route (x-inin-requires-permissions of the extracts, type
 * ANY), and per operation where the extract's description asks more: the PUT of a recording needs
 * a view (recordingUpdateView) always, `restore` to restore an ARCHIVED one and `editRetention` to
 * change retention dates otherwise; `viewSensitiveData` decides whether media comes back redacted.
 */
export const SIM_PERMISSIONS = {
  /** GET …/recordingmetadata, …/recordingmetadata/{id}, …/recordings, …/recordings/{id}: the same four views. */
  recordingView: ['recording:recording:view', 'recording:recordingSegment:view', 'recording:snippetRecording:view', 'recording:screenRecording:view'],
  batchDownload: ['recording:recording:view', 'recording:recordingSegment:view', 'recording:snippetRecording:view', 'recording:screenRecording:view'],
  analytics: ['analytics:conversationDetail:view', 'analytics:agentConversationDetail:view'],
  recordingUpdateView: ['recording:recording:view', 'recording:screenRecording:view', 'recording:snippetRecording:view'],
  restore: ['recording:recording:restore'],
  editRetention: ['recording:recording:editRetention'],
  viewSensitiveData: ['recording:recording:viewSensitiveData'],
} as const;

/** What a client without a `permissions` list holds: every permission the simulator checks. */
const ALL_SIM_PERMISSIONS: readonly string[] = [...new Set(Object.values(SIM_PERMISSIONS).flat())];

export interface SimKnobs {
  clients: SimClient[];
  /** expires_in of issued tokens, seconds. */
  tokenLifetimeS: number;
  /** Validity of minted media links (recordingPlaybackUrlTtl), ms. */
  mediaLinkTtlMs: number;
  /** 202 answers before a (recording, format) is "transcoded", for recordings without their own value. */
  transcodePolls: number;
  /** Body of a 202: empty (as often seen) or a Recording without mediaUris. */
  transcodingBody: 'empty' | 'recording';
  /** estimatedTranscodeTimeMs put in 202 Recording bodies. */
  estimatedTranscodeTimeMs: number;
  /** RESTORING → RESTORED after this long. */
  restoreDelayMs: number;
  /** Login answers are held this long (a slow token endpoint). */
  loginDelayMs: number;
  /** The Date header of every answer is off by this much (clock skew). */
  clockSkewMs: number;
  /** What media links serve: the recording, or an HTML page with status 200 (a proxy or portal in the way). */
  mediaBody: 'recording' | 'html';
  /**
   * Every media answer declares its full Content-Length but sends only this many body bytes, then
   * closes the connection cleanly (FIN, not a reset). undefined = off.
   */
  mediaTruncateAfter: number | undefined;
  /** InProgress answers of GET /api/v2/recording/batchrequests/{jobId} before a job is Completed. */
  batchPolls: number;
  /** Validity of batch result links (recordingBatchDownloadUrlTtl), ms. */
  batchLinkTtlMs: number;
  /**
   * Deepest result the details query pages to (pageNumber × pageSize); a deeper page is a 400,
   * while totalHits still counts every match. Lower it to test window splitting cheaply.
   */
  analyticsMaxResults: number;
  /**
   * Which conversations an interval matches: 'day' (default) every one started on a day the
   * interval touches, the extract's wording read strictly; 'interval' only those started inside
   * it, so narrower intervals hold fewer results (window-splitting tests).
   */
  analyticsIntervalMatch: 'day' | 'interval';
  /**
   * The org has sensitive data redaction enabled: clients without recording:recording:viewSensitiveData
   * get the `redactedBytes` of recordings that have them (recording.yml, GET …/recordings/{recordingId}),
   * and batch downloads leave those recordings out. Default true (only recordings given
   * `redactedBytes` hold sensitive data).
   */
  sensitiveDataRedaction: boolean;
  /**
   * GET /api/v2/authorization/subjects/me (not in the extracts): 'grants' answers the client's
   * grants (the SDKs' AuthzSubject); 'user_context_required' answers the 400 Genesys gives
   * client-credentials tokens on user-only routes, so the caller cannot learn its permissions.
   */
  authzSubjectMe: 'grants' | 'user_context_required';
}

export interface SimRecordingInput {
  conversationId: string;
  recordingId: string;
  fileState?: FileState;
  /** The media served (for any formatId: the simulator does not transcode). */
  bytes?: Uint8Array | string;
  /** Or a file to read the media from. */
  path?: string;
  /**
   * The recording holds sensitive data: these are the bytes a client without
   * recording:recording:viewSensitiveData is served while the org redacts (knob sensitiveDataRedaction).
   */
  redactedBytes?: Uint8Array | string;
  /** Content-Type of the media link answer; by default derived from formatId. */
  contentType?: string;
  mediaSubtype?: MediaSubtype;
  /**
   * RecordingMetadata.media (recording.yml: "audio, chat, email, or message"; Recording.media adds
   * "messaging" and "screen"). Default audio; any other has no mediaSubtype.
   */
  media?: SimMedia;
  startTime?: string | Date;
  durationMs?: number;
  archiveDate?: string | Date;
  deleteDate?: string | Date;
  /** Conversation-level: legacy id attached as externalTag. */
  externalTag?: string;
  /** Session-level: SIP Call-ID. */
  protocolCallId?: string;
  direction?: 'inbound' | 'outbound';
  ani?: string;
  dnis?: string;
  /** 202s before this recording is ready, overriding the knob. */
  transcodePolls?: number;
}

/** A call for addCall: the conversation facts of SimRecordingInput, without a recording. */
export interface SimCallInput {
  conversationId: string;
  startTime: string | Date;
  /** Set: the call is over, that long. Absent: in progress. */
  durationMs?: number;
  externalTag?: string;
  protocolCallId?: string;
  direction?: 'inbound' | 'outbound';
  ani?: string;
  dnis?: string;
}

export type SimMedia = 'audio' | 'chat' | 'email' | 'message' | 'messaging' | 'screen';

/**
 * 403 codes the extract lists for GET …/recordingmetadata (x-inin-error-codes) that
 * `denyConversation` can answer with: one conversation's division or policy is out of the client's
 * reach (the division ones), or the client lacks the right altogether (the others).
 */
export type SimDenyCode =
  | 'missing.division.permission'
  | 'missing.any.division.permissions'
  | 'recording.recording.view.permission.check.failed'
  | 'recording.recordingsegment.view.permission.check.failed'
  | 'authz.policy.denied'
  | 'not.authorized'
  | 'missing.permissions'
  | 'missing.any.permissions'
  | 'app.not.authorized.for.scope';

export interface SimRequestLog {
  seq: number;
  /** Date.now() at arrival. */
  at: number;
  role: SimRole | 'unknown';
  port: number;
  method: string;
  path: string;
  /** Raw query string without "?" ('' when none). */
  query: string;
  headers: IncomingHttpHeaders;
  /** Request body as text (first 64 KiB), so tests can check what a client sent. */
  body: string;
  status?: number;
  /** Genesys error code of an error answer. */
  errorCode?: string;
  /** Media body bytes written (a broken transfer writes fewer than Content-Length). */
  bytesSent?: number;
}

export interface GenesysSimulatorOptions extends Partial<SimKnobs> {
  layout?: 'split' | 'combined';
  host?: string;
  /** Port of the combined layout (0 = any). */
  port?: number;
  recordings?: SimRecordingInput[];
  /** Most requests kept in the log (default 10 000). */
  logLimit?: number;
}

export interface GenesysSimulator {
  readonly loginBaseUrl: string;
  readonly apiBaseUrl: string;
  readonly mediaBaseUrl: string;
  readonly knobs: SimKnobs;
  set(knobs: Partial<SimKnobs>): void;
  addRecording(r: SimRecordingInput): void;
  setFileState(conversationId: string, recordingId: string, state: FileState): void;
  /**
   * A recorded call the details query lists before any recording of it is listed (GET
   * …/recordingmetadata answers 404 until addRecording): in progress (no conversationEnd) until
   * endCall, or already over with `durationMs` (its recording uploaded late, e.g. from an edge).
   */
  addCall(c: SimCallInput): void;
  /** The call added by addCall ends `durationMs` after its start: the details query gives its end from now on. */
  endCall(conversationId: string, durationMs?: number): void;
  /**
   * Every request about this conversation's recordings (metadata, list and single, recordings)
   * answers 403 with `code` (default missing.division.permission: the conversation lies in a
   * division the client lacks recording:recording:view in), as Genesys does. The analytics query
   * still lists the conversation (analytics rights are separate).
   */
  denyConversation(conversationId: string, code?: SimDenyCode): void;
  /**
   * The next n requests of the scope (default api) are answered with `status` (default 503) and a
   * Genesys error body; with `retryAfterS`, a Retry-After header too (a 429 of the login endpoint).
   */
  failNext(n: number, opts?: { status?: number; scope?: SimScope; retryAfterS?: number }): void;
  /** The next n authenticated API requests are answered 429 with Retry-After. */
  rateLimitNext(n: number, retryAfterS: number): void;
  /** The next `times` media answers stop after `bytes` body bytes and close the connection. */
  breakMediaAfter(bytes: number, times?: number): void;
  /** The next n 200 answers of the API host carry a body cut in half (malformed JSON, consistent Content-Length). */
  malformedJsonNext(n: number): void;
  /** The next n 200 answers of GET …/recordings/{recordingId} carry no mediaUris. */
  omitMediaUrisNext(n: number): void;
  /** Every issued token becomes invalid (401 mid-life). */
  revokeTokens(): void;
  /** Login attempts, successful or not (a retry storm shows here). */
  readonly loginAttempts: number;
  /** Batch jobs submitted (POST /api/v2/recording/batchrequests answered 200). */
  readonly batchJobs: number;
  /** The organisation every client belongs to (GET /api/v2/tokens/me). */
  readonly org: { id: string; name: string };
  /** Successful logins (tokens issued). */
  readonly logins: number;
  readonly requests: readonly SimRequestLog[];
  clearLog(): void;
  close(): Promise<void>;
}

const DEFAULT_CLIENT: SimClient = { id: 'custodian-sim', secret: 'custodian-sim-secret' };
const ORG_REGION = 'eu-west-1';

interface SimRecording {
  conversationId: string;
  recordingId: string;
  fileState: FileState;
  bytes: Buffer;
  etag: string;
  /** Set when the recording holds sensitive data: what a redacted download serves. */
  redacted: { bytes: Buffer; etag: string } | undefined;
  contentType: string | undefined;
  mediaSubtype: MediaSubtype;
  media: SimMedia;
  startTime: Date;
  durationMs: number;
  archiveDate: string | undefined;
  deleteDate: string | undefined;
  restoreExpirationTime: string | undefined;
  externalTag: string | undefined;
  protocolCallId: string | undefined;
  direction: 'inbound' | 'outbound';
  ani: string;
  dnis: string;
  transcodePolls: number | undefined;
  transcodeLeft: Map<string, number>;
  restoreTimer: NodeJS.Timeout | undefined;
}

interface SimBatchResult {
  out: BatchDownloadJobResult;
  /** Set for a playable recording: its link is minted when the result is first shown. */
  rec?: SimRecording;
}

interface SimBatchJob {
  id: string;
  /** Only this client may read the results. */
  clientId: string;
  results: SimBatchResult[];
  polls: number;
}

function batchErrorOf(state: FileState): string {
  switch (state) {
    case 'ARCHIVED':
      return 'Recording is archived and must be restored before it can be downloaded';
    case 'RESTORING':
      return 'Recording is being restored';
    case 'DELETED':
      return 'Recording has been deleted';
    case 'UPLOADING':
      return 'Recording is still being uploaded';
    default:
      return 'Recording is not available for download';
  }
}

const ERROR_MESSAGES: Record<string, string> = {
  'not.found': 'The requested resource was not found.',
  'recording.recording.not.found': 'Recording with recordingId was not found.',
  'conversation.not.found': 'Conversation with specified conversationId was not found.',
  'authentication.required': 'No authentication bearer token specified in authorization header.',
  'bad.credentials': 'Invalid login credentials.',
  'internal.server.error': 'The server encountered an unexpected condition which prevented it from fulfilling the request.',
  'service.unavailable': 'Service Unavailable - The server is currently unavailable (because it is overloaded or down for maintenance).',
  'request.timeout': 'The request timed out.',
  'bad.request': 'The request could not be understood by the server due to malformed syntax.',
  'invalid.date': 'Dates must be specified as ISO-8601 strings. For example: yyyy-MM-ddTHH:mm:ss.SSSZ',
  'recording.invalid.json': 'The recording body is not valid JSON.',
  'recording.not.archivable': 'The recording cannot be archived or restored.',
  'missing.permissions': 'Unable to perform the requested action. You are missing the following permission(s): recording:recording:view',
  'missing.division.permission': "Unable to perform the requested action. You are missing the following permission 'recording:recording:view' in the provided division(s).",
  'missing.any.division.permissions':
    'Unable to perform the requested action. You must have at least one of the following permissions assigned: recording:recording:view in at least one of the following division(s): *',
  'recording.recording.view.permission.check.failed': 'Request forbidden due to recording view permissions check failing.',
  'authz.policy.denied': "Unable to perform the requested action. Your organization's security policies have denied access. Policy ID(s): [sim-policy]",
  'not.authorized': 'You are not authorized to perform the requested action.',
  'missing.any.permissions': 'Unable to perform the requested action. You must have at least one of the following permissions assigned: recording:recording:view',
  'app.not.authorized.for.scope': 'App not authorized to use scope recordings',
  'batch.download.job.not.found': 'The requested job is unknown',
  'batch.download.permission.denied': 'Only user that initiated the job can request results',
  'batch.download.too.many.items': 'Too many items requested, max 100 allowed',
  'batch.download.bad.request': 'Request list is required and must not be empty',
  'recording.recording.restore.permission.check.failed': 'improper permissions found when attempting to restore recordings',
  'recording.recording.edit.retention.permission.check.failed': 'Failed to verify recording edit retention permission.',
};

const BATCH_MAX_ITEMS = 100;
const HTML_PAGE = '<!DOCTYPE html><html><head><title>Sign in</title></head><body><h1>Session expired</h1><p>Please sign in again.</p></body></html>';

/** The Genesys error code a forced failure carries (each listed in the extracts' x-inin-error-codes). */
function statusCodeFor(status: number): string {
  switch (status) {
    case 400:
      return 'bad.request';
    case 401:
      return 'bad.credentials';
    case 403:
      return 'missing.permissions';
    case 404:
      return 'not.found';
    case 429:
      return 'too.many.requests.retry.after';
    case 503:
      return 'service.unavailable';
    case 504:
      return 'request.timeout';
    default:
      return 'internal.server.error';
  }
}

function iso(d: string | Date | undefined): string | undefined {
  if (d === undefined) return undefined;
  return (typeof d === 'string' ? new Date(d) : d).toISOString();
}

/** The format of a minted link: a formatId, or ORIGINAL for batch results (the trunk's own codec). */
type LinkFormat = GenesysFormat | 'ORIGINAL';

function contentTypeOf(format: LinkFormat): string {
  switch (format) {
    case 'ORIGINAL':
    case 'WAV':
    case 'WAV_ULAW':
      return 'audio/wav';
    case 'MP3':
      return 'audio/mpeg';
    case 'OGG_OPUS':
    case 'OGG_VORBIS':
      return 'audio/ogg';
    case 'WEBM':
      return 'audio/webm';
    default:
      return 'application/octet-stream';
  }
}

const PLAYABLE: ReadonlySet<FileState> = new Set(['AVAILABLE', 'RESTORED']);

/** The client holds ANY of `perms` (a client without a permissions list holds them all). */
function holds(client: SimClient, perms: readonly string[]): boolean {
  return !client.permissions || perms.some((p) => client.permissions?.includes(p));
}

export async function startGenesysSimulator(opts: GenesysSimulatorOptions = {}): Promise<GenesysSimulator> {
  const knobs: SimKnobs = {
    clients: opts.clients ?? [DEFAULT_CLIENT],
    tokenLifetimeS: opts.tokenLifetimeS ?? 86_400,
    mediaLinkTtlMs: opts.mediaLinkTtlMs ?? 60 * 60 * 1000,
    transcodePolls: opts.transcodePolls ?? 0,
    transcodingBody: opts.transcodingBody ?? 'empty',
    estimatedTranscodeTimeMs: opts.estimatedTranscodeTimeMs ?? 50,
    restoreDelayMs: opts.restoreDelayMs ?? 1_000,
    loginDelayMs: opts.loginDelayMs ?? 0,
    clockSkewMs: opts.clockSkewMs ?? 0,
    mediaBody: opts.mediaBody ?? 'recording',
    mediaTruncateAfter: opts.mediaTruncateAfter,
    batchPolls: opts.batchPolls ?? 1,
    batchLinkTtlMs: opts.batchLinkTtlMs ?? 60 * 60 * 1000,
    analyticsMaxResults: opts.analyticsMaxResults ?? 10_000,
    analyticsIntervalMatch: opts.analyticsIntervalMatch ?? 'day',
    sensitiveDataRedaction: opts.sensitiveDataRedaction ?? true,
    authzSubjectMe: opts.authzSubjectMe ?? 'grants',
  };
  const host = opts.host ?? '127.0.0.1';
  const logLimit = opts.logLimit ?? 10_000;
  const linkKey = randomBytes(32);
  const recordings = new Map<string, SimRecording>();
  const tokens = new Map<string, { clientId: string; expiresAt: number }>();
  const log: SimRequestLog[] = [];
  let seq = 0;
  let logins = 0;
  let loginAttempts = 0;
  let malformedLeft = 0;
  let omitMediaUrisLeft = 0;
  const org = { id: uuidFrom('custodian-sim/org'), name: 'Custodian Simulated Org' };
  const batchJobs = new Map<string, SimBatchJob>();
  let batchJobCount = 0;
  const failures: { n: number; status: number; scope: SimScope; retryAfterS: number | undefined }[] = [];
  let rateLimit = { n: 0, retryAfterS: 1 };
  let breaks = { bytes: 0, times: 0 };
  const window = { start: Date.now(), count: 0 };

  const key = (c: string, r: string) => `${c}\u0000${r}`;
  /** Conversations whose recordings the client may not see, with the 403 code. */
  const deniedConversations = new Map<string, SimDenyCode>();

  /** Conversations the details query lists beside those of the recordings (addCall). */
  const calls = new Map<string, SimCallFacts>();

  function addRecording(input: SimRecordingInput): void {
    const bytes = input.path !== undefined ? readFileSync(input.path) : Buffer.from(input.bytes ?? '');
    const fileState = input.fileState ?? 'AVAILABLE';
    if (!FILE_STATES.includes(fileState)) throw new Error(`unknown fileState ${fileState}`);
    const startTime = input.startTime !== undefined ? new Date(input.startTime) : new Date(Date.now() - 60 * 60 * 1000);
    const etagOf = (b: Buffer) => `"${createHash('sha256').update(b).digest('hex').slice(0, 32)}"`;
    const redacted = input.redactedBytes !== undefined ? Buffer.from(input.redactedBytes) : undefined;
    recordings.set(key(input.conversationId, input.recordingId), {
      conversationId: input.conversationId,
      recordingId: input.recordingId,
      fileState,
      bytes,
      etag: etagOf(bytes),
      redacted: redacted ? { bytes: redacted, etag: etagOf(redacted) } : undefined,
      contentType: input.contentType,
      mediaSubtype: input.mediaSubtype ?? 'Trunk',
      media: input.media ?? 'audio',
      startTime,
      durationMs: input.durationMs ?? 60_000,
      archiveDate: iso(input.archiveDate),
      deleteDate: iso(input.deleteDate),
      restoreExpirationTime: undefined,
      externalTag: input.externalTag,
      protocolCallId: input.protocolCallId,
      direction: input.direction ?? 'inbound',
      ani: input.ani ?? 'tel:+15551230000',
      dnis: input.dnis ?? 'tel:+15559870000',
      transcodePolls: input.transcodePolls,
      transcodeLeft: new Map(),
      restoreTimer: undefined,
    });
  }
  for (const r of opts.recordings ?? []) addRecording(r);

  // ---- answers ---------------------------------------------------------------------------

  function send(res: ServerResponse, entry: SimRequestLog, status: number, body: unknown, headers: Record<string, string> = {}): void {
    entry.status = status;
    let text = body === undefined ? '' : JSON.stringify(body);
    if (status === 200 && entry.role === 'api' && text !== '' && malformedLeft > 0) {
      malformedLeft--;
      text = text.slice(0, Math.max(1, Math.floor(text.length / 2)));
    }
    res.writeHead(status, {
      date: new Date(Date.now() + knobs.clockSkewMs).toUTCString(),
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      'content-length': String(Buffer.byteLength(text)),
      ...headers,
    });
    res.end(text);
  }

  function sendError(res: ServerResponse, entry: SimRequestLog, status: number, code: string, message?: string, headers: Record<string, string> = {}): void {
    entry.errorCode = code;
    send(res, entry, status, { message: message ?? ERROR_MESSAGES[code] ?? code, code, status, contextId: randomUUID(), details: [], errors: [] }, headers);
  }

  function rateHeaders(): Record<string, string> {
    const now = Date.now();
    if (now - window.start >= 60_000) {
      window.start = now;
      window.count = 0;
    }
    window.count++;
    return {
      'inin-ratelimit-allowed': '300',
      'inin-ratelimit-count': String(window.count),
      'inin-ratelimit-reset': String(Math.max(0, Math.ceil((window.start + 60_000 - now) / 1000))),
    };
  }

  // ---- models -------------------------------------------------------------------------------

  function common(r: SimRecording): RecordingMetadata {
    return {
      id: r.recordingId,
      conversationId: r.conversationId,
      media: r.media,
      ...(r.media === 'audio' ? { mediaSubtype: r.mediaSubtype } : {}),
      fileState: r.fileState,
      ...(r.archiveDate ? { archiveDate: r.archiveDate } : {}),
      ...(r.fileState === 'ARCHIVED' || r.fileState === 'RESTORING' || r.fileState === 'RESTORED' ? { archiveMedium: 'CLOUDARCHIVE' as const } : {}),
      ...(r.deleteDate ? { deleteDate: r.deleteDate } : {}),
      ...(r.restoreExpirationTime ? { restoreExpirationTime: r.restoreExpirationTime } : {}),
      sessionId: uuidFrom(`${r.conversationId}/session/customer`),
    };
  }

  function metadataJson(r: SimRecording): RecordingMetadata {
    // The extract: startTime is "for screen recordings. Null for other types."
    return {
      ...common(r),
      ...(r.mediaSubtype === 'Screen' ? { startTime: r.startTime.toISOString(), endTime: new Date(r.startTime.getTime() + r.durationMs).toISOString() } : {}),
      annotations: [],
      region: ORG_REGION,
      selfUri: `/api/v2/conversations/${r.conversationId}/recordingmetadata/${r.recordingId}`,
    };
  }

  /** Whether this client is served the redacted media of `r` (recording.yml, GET …/recordings/{recordingId}). */
  function redactsFor(client: SimClient, r: SimRecording): boolean {
    return r.redacted !== undefined && knobs.sensitiveDataRedaction && !holds(client, SIM_PERMISSIONS.viewSensitiveData);
  }

  function recordingJson(r: SimRecording, format: GenesysFormat | undefined, withMedia: boolean, redact = false): Recording {
    const playable = PLAYABLE.has(r.fileState);
    const out: Recording = {
      ...common(r),
      ...(playable ? { startTime: r.startTime.toISOString(), endTime: new Date(r.startTime.getTime() + r.durationMs).toISOString() } : {}),
      annotations: [],
      creationTime: r.startTime.toISOString(),
      selfUri: `/api/v2/conversations/${r.conversationId}/recordings/${r.recordingId}`,
    };
    if (playable && withMedia && format && format !== 'NONE') {
      if (omitMediaUrisLeft > 0) {
        omitMediaUrisLeft--;
        return out;
      }
      const red = redact && r.redacted !== undefined;
      out.mediaUris = { S: { mediaUri: mintLink(r, format, knobs.mediaLinkTtlMs, red) } };
      out.outputDurationMs = r.durationMs;
      out.outputSizeInBytes = red && r.redacted ? r.redacted.bytes.length : r.bytes.length;
      out.actualTranscodeTimeMs = 0;
    }
    return out;
  }

  // ---- media links ----------------------------------------------------------------------------

  /** `redacted`: the link serves the recording's redacted bytes (minted for a client without viewSensitiveData). */
  function mintLink(r: SimRecording, format: LinkFormat, ttlMs: number, redacted = false): string {
    const payload = Buffer.from(
      JSON.stringify({ c: r.conversationId, r: r.recordingId, f: format, e: Date.now() + ttlMs, n: randomBytes(6).toString('hex'), ...(redacted ? { x: 1 } : {}) }),
    ).toString('base64url');
    const sig = createHmac('sha256', linkKey).update(payload).digest('base64url');
    return `${mediaBaseUrl}/media/${payload}.${sig}`;
  }

  function readLink(token: string): { c: string; r: string; f: LinkFormat; e: number; x?: 1 } | 'invalid' | 'expired' {
    const [payload, sig] = token.split('.');
    if (!payload || !sig) return 'invalid';
    const want = createHmac('sha256', linkKey).update(payload).digest();
    const got = Buffer.from(sig, 'base64url');
    if (got.length !== want.length || !timingSafeEqual(got, want)) return 'invalid';
    const v = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { c: string; r: string; f: LinkFormat; e: number; x?: 1 };
    return Date.now() > v.e ? 'expired' : v;
  }

  function serveMedia(req: IncomingMessage, res: ServerResponse, entry: SimRequestLog, token: string): void {
    const refuse = (status: number, text: string) => {
      entry.status = status;
      res.writeHead(status, { 'content-type': 'text/plain', 'content-length': String(Buffer.byteLength(text)) });
      res.end(text);
    };
    const link = readLink(token);
    if (link === 'invalid') return refuse(403, 'AccessDenied: invalid signature');
    if (link === 'expired') return refuse(403, 'AccessDenied: Request has expired');
    const r = recordings.get(key(link.c, link.r));
    if (!r || !PLAYABLE.has(r.fileState)) return refuse(404, 'NoSuchKey');
    if (knobs.mediaBody === 'html') {
      entry.status = 200;
      entry.bytesSent = Buffer.byteLength(HTML_PAGE);
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'content-length': String(entry.bytesSent) });
      return void res.end(req.method === 'HEAD' ? undefined : HTML_PAGE);
    }
    const served = link.x === 1 && r.redacted ? r.redacted : { bytes: r.bytes, etag: r.etag };
    const size = served.bytes.length;
    const base: Record<string, string> = {
      'content-type': r.contentType ?? contentTypeOf(link.f),
      'accept-ranges': 'bytes',
      etag: served.etag,
      'cache-control': 'private, max-age=0',
    };
    let start = 0;
    let end = size - 1;
    let status = 200;
    const range = parseSimRange(req.headers.range, size);
    if (range === 'unsatisfiable') {
      entry.status = 416;
      res.writeHead(416, { ...base, 'content-range': `bytes */${size}`, 'content-length': '0' });
      return void res.end();
    }
    if (range) {
      ({ start, end } = range);
      status = 206;
      base['content-range'] = `bytes ${start}-${end}/${size}`;
    }
    const slice = served.bytes.subarray(start, end + 1);
    entry.status = status;
    res.writeHead(status, { ...base, 'content-length': String(slice.length) });
    if (req.method === 'HEAD') return void res.end();
    if (breaks.times > 0 && breaks.bytes < slice.length) {
      breaks.times--;
      const part = slice.subarray(0, breaks.bytes);
      entry.bytesSent = part.length;
      res.write(part, () => res.socket?.destroy());
      return;
    }
    const cut = knobs.mediaTruncateAfter;
    if (cut !== undefined && cut < slice.length) {
      // Fewer bytes than Content-Length, then a clean close: only the length says the body is short.
      const part = slice.subarray(0, cut);
      entry.bytesSent = part.length;
      res.write(part, () => res.socket?.end());
      return;
    }
    entry.bytesSent = slice.length;
    res.end(slice);
  }

  // ---- routes ----------------------------------------------------------------------------------

  function login(req: IncomingMessage, res: ServerResponse, entry: SimRequestLog, body: Buffer): void {
    if (knobs.loginDelayMs > 0) {
      const t = setTimeout(() => {
        if (!res.destroyed) loginNow(req, res, entry, body);
      }, knobs.loginDelayMs);
      res.once('close', () => clearTimeout(t));
      return;
    }
    loginNow(req, res, entry, body);
  }

  function loginNow(req: IncomingMessage, res: ServerResponse, entry: SimRequestLog, body: Buffer): void {
    const oauthError = (status: number, error: string, description: string) => {
      entry.errorCode = error;
      send(res, entry, status, { error, description, error_description: description });
    };
    const form = new URLSearchParams(body.toString('utf8'));
    const m = /^Basic\s+(.+)$/i.exec(req.headers.authorization ?? '');
    if (!m?.[1]) return oauthError(401, 'invalid_client', 'client authentication is required');
    const decoded = Buffer.from(m[1], 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    const id = decoded.slice(0, colon);
    const secret = decoded.slice(colon + 1);
    const client = knobs.clients.find((c) => c.id === id);
    if (colon < 0 || !client || client.secret !== secret) return oauthError(401, 'invalid_client', 'client not found or bad secret');
    if (form.get('grant_type') !== 'client_credentials') return oauthError(400, 'unsupported_grant_type', 'grant_type must be client_credentials');
    const token = randomBytes(32).toString('base64url');
    tokens.set(token, { clientId: id, expiresAt: Date.now() + knobs.tokenLifetimeS * 1000 });
    logins++;
    send(res, entry, 200, { access_token: token, token_type: 'bearer', expires_in: knobs.tokenLifetimeS });
  }

  function api(req: IncomingMessage, res: ServerResponse, entry: SimRequestLog, body: Buffer): void {
    const auth = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? '');
    if (!auth?.[1]) return sendError(res, entry, 401, 'authentication.required');
    const tok = tokens.get(auth[1]);
    if (!tok || tok.expiresAt <= Date.now()) return sendError(res, entry, 401, 'bad.credentials');
    const client = knobs.clients.find((c) => c.id === tok.clientId);
    if (!client) return sendError(res, entry, 401, 'bad.credentials');
    /** ANY of `perms`, or a 403 with the code Genesys uses for a type-ANY requirement. */
    const allowed = (perms: readonly string[]): boolean => {
      if (holds(client, perms)) return true;
      sendError(
        res,
        entry,
        403,
        'missing.any.permissions',
        `Unable to perform the requested action. You must have at least one of the following permissions assigned: ${perms.join(', ')}`,
      );
      return false;
    };
    const rh = rateHeaders();
    if (rateLimit.n > 0) {
      rateLimit.n--;
      return sendError(res, entry, 429, 'too.many.requests.retry.after', `Rate limit exceeded the maximum. Retry the request in [${rateLimit.retryAfterS}] seconds`, {
        ...rh,
        'retry-after': String(rateLimit.retryAfterS),
      });
    }
    const url = new URL(req.url ?? '/', 'http://sim');
    const parts = url.pathname.split('/').map((p) => decodeURIComponent(p));
    // ['', 'api', 'v2', ...]
    const m = req.method;
    const conv = parts[4];
    if (parts[1] === 'api' && parts[2] === 'v2' && parts[3] === 'conversations' && conv && parts.length >= 6) {
      const kind = parts[5];
      const recId = parts[6];
      const needsView = (kind === 'recordingmetadata' || kind === 'recordings') && m === 'GET' && parts.length <= 7;
      if (needsView && !allowed(SIM_PERMISSIONS.recordingView)) return;
      // PUT of a recording: "view (recording, screenRecording, or snippetRecording) is always required".
      if (kind === 'recordings' && recId && parts.length === 7 && m === 'PUT' && !allowed(SIM_PERMISSIONS.recordingUpdateView)) return;
      const denied = deniedConversations.get(conv);
      if (denied && (kind === 'recordingmetadata' || kind === 'recordings')) return sendError(res, entry, 403, denied);
      if (kind === 'recordingmetadata' && parts.length === 6 && m === 'GET') {
        const list = [...recordings.values()].filter((r) => r.conversationId === conv);
        if (list.length === 0) return sendError(res, entry, 404, 'conversation.not.found');
        return send(res, entry, 200, list.map(metadataJson), rh);
      }
      if (kind === 'recordingmetadata' && recId && parts.length === 7 && m === 'GET') {
        const r = recordings.get(key(conv, recId));
        if (!r) return sendError(res, entry, 404, 'recording.recording.not.found');
        return send(res, entry, 200, metadataJson(r), rh);
      }
      if (kind === 'recordings' && parts.length === 6 && m === 'GET') {
        const format = formatParam(url);
        if (format === 'invalid') return sendError(res, entry, 400, 'invalid.query.param.value', 'Value is not valid for parameter [formatId].');
        const list = [...recordings.values()].filter((r) => r.conversationId === conv);
        if (list.length === 0) return sendError(res, entry, 404, 'conversation.not.found');
        if (list.some((r) => transcoding(r, format))) return send(res, entry, 202, undefined, rh);
        return send(res, entry, 200, list.map((r) => recordingJson(r, format, true, redactsFor(client, r))), rh);
      }
      if (kind === 'recordings' && recId && parts.length === 7 && m === 'GET') {
        const format = formatParam(url);
        if (format === 'invalid') return sendError(res, entry, 400, 'invalid.query.param.value', 'Value is not valid for parameter [formatId].');
        const r = recordings.get(key(conv, recId));
        if (!r) return sendError(res, entry, 404, 'not.found');
        if (transcoding(r, format)) {
          if (knobs.transcodingBody === 'empty') return send(res, entry, 202, undefined, rh);
          return send(res, entry, 202, { ...recordingJson(r, format, false), estimatedTranscodeTimeMs: knobs.estimatedTranscodeTimeMs }, rh);
        }
        return send(res, entry, 200, recordingJson(r, format, true, redactsFor(client, r)), rh);
      }
      if (kind === 'recordings' && recId && parts.length === 7 && m === 'PUT') return restore(res, entry, client, conv, recId, body, rh);
    }
    if (url.pathname === '/api/v2/analytics/conversations/details/query' && m === 'POST') {
      if (!allowed(SIM_PERMISSIONS.analytics)) return;
      return analytics(res, entry, body, rh);
    }
    if (url.pathname === '/api/v2/tokens/me' && m === 'GET') return send(res, entry, 200, tokenInfo(client), rh);
    if (url.pathname === '/api/v2/authorization/subjects/me' && m === 'GET') {
      if (knobs.authzSubjectMe === 'user_context_required') {
        return sendError(res, entry, 400, 'bad.request', 'This request requires a user context. Client credentials cannot be used for requests to this resource.');
      }
      return send(res, entry, 200, authzSubject(client), rh);
    }
    if (url.pathname === '/api/v2/recording/settings' && m === 'GET') return send(res, entry, 200, recordingSettings(), rh);
    if (url.pathname === '/api/v2/recording/batchrequests' && m === 'POST') {
      if (!allowed(SIM_PERMISSIONS.batchDownload)) return;
      return submitBatch(res, entry, client, body, rh);
    }
    if (parts.length === 6 && url.pathname.startsWith('/api/v2/recording/batchrequests/') && m === 'GET' && parts[5]) return batchStatus(res, entry, client, parts[5], rh);
    sendError(res, entry, 404, 'not.found');
  }

  // ---- identity, settings --------------------------------------------------------------------------

  /** TokenInfo as the public SDKs model it (the wire name of the client member is "OAuthClient"). */
  function tokenInfo(client: SimClient): TokenInfo {
    return {
      organization: { ...org },
      homeOrganization: { ...org },
      authorizedScope: client.scopes ?? [],
      OAuthClient: { id: client.id, name: client.name ?? client.id, authorizedGrantType: 'CLIENT-CREDENTIALS', organization: { ...org } },
    };
  }

  /**
   * GET /api/v2/authorization/subjects/me, after the public SDKs' AuthzSubject model (it is not in
   * the extracts): one grant, in every division ("*"), of a role whose policies are the client's
   * permissions, "domain:entityName:action" grouped by domain and entity.
   */
  function authzSubject(client: SimClient): Record<string, unknown> {
    const byEntity = new Map<string, { domain: string; entityName: string; actions: string[] }>();
    for (const p of client.permissions ?? ALL_SIM_PERMISSIONS) {
      const [domain, entityName, action] = p.split(':');
      if (!domain || !entityName || !action) continue;
      const k = `${domain}:${entityName}`;
      const e = byEntity.get(k) ?? { domain, entityName, actions: [] };
      e.actions.push(action);
      byEntity.set(k, e);
    }
    return {
      id: client.id,
      name: client.name ?? client.id,
      grants: [
        {
          subjectId: client.id,
          division: { id: '*', name: 'All divisions' },
          role: { id: uuidFrom(`custodian-sim/role/${client.id}`), name: `${client.name ?? client.id} role`, policies: [...byEntity.values()] },
          grantMadeAt: '2026-01-01T00:00:00.000Z',
        },
      ],
      version: 1,
    };
  }

  function recordingSettings(): RecordingSettings {
    const minutes = (ms: number) => Math.max(1, Math.round(ms / 60_000));
    return {
      maxSimultaneousStreams: 5,
      maxConfigurableScreenRecordingStreams: 15,
      regionalRecordingStorageEnabled: false,
      recordingPlaybackUrlTtl: minutes(knobs.mediaLinkTtlMs),
      recordingBatchDownloadUrlTtl: minutes(knobs.batchLinkTtlMs),
      stopRecordingWhenOnlyExternalParticipants: false,
    };
  }

  // ---- batch download ------------------------------------------------------------------------------

  function submitBatch(res: ServerResponse, entry: SimRequestLog, client: SimClient, body: Buffer, rh: Record<string, string>): void {
    let json: { batchDownloadRequestList?: unknown };
    try {
      json = JSON.parse(body.toString('utf8')) as typeof json;
      if (!json || typeof json !== 'object' || Array.isArray(json)) throw new Error('not an object');
    } catch {
      return sendError(res, entry, 400, 'bad.request');
    }
    const list = json.batchDownloadRequestList;
    if (!Array.isArray(list) || list.length === 0) return sendError(res, entry, 400, 'batch.download.bad.request');
    if (list.length > BATCH_MAX_ITEMS) return sendError(res, entry, 400, 'batch.download.too.many.items');
    const items: { conversationId: string; recordingId?: string }[] = [];
    for (const it of list as unknown[]) {
      const o = it as { conversationId?: unknown; recordingId?: unknown } | null;
      if (!o || typeof o !== 'object' || typeof o.conversationId !== 'string' || (o.recordingId !== undefined && typeof o.recordingId !== 'string')) {
        return sendError(res, entry, 400, 'bad.request', 'Each item needs a conversationId (and optionally a recordingId).');
      }
      items.push({ conversationId: o.conversationId, ...(typeof o.recordingId === 'string' ? { recordingId: o.recordingId } : {}) });
    }
    const id = randomUUID();
    // What each item yields is decided now; links are minted when a result is first shown.
    const results: SimBatchResult[] = [];
    for (const it of items) {
      const recs = it.recordingId
        ? [recordings.get(key(it.conversationId, it.recordingId))].filter((r): r is SimRecording => r !== undefined)
        : [...recordings.values()].filter((r) => r.conversationId === it.conversationId);
      if (recs.length === 0) {
        results.push({ out: { conversationId: it.conversationId, ...(it.recordingId ? { recordingId: it.recordingId } : {}), errorMsg: 'Recording not found' } });
        continue;
      }
      for (const r of recs) {
        const base = { conversationId: r.conversationId, recordingId: r.recordingId };
        // recording.yml: without viewSensitiveData (redaction on), "recordings with sensitive data will be excluded from the batch download".
        if (PLAYABLE.has(r.fileState) && redactsFor(client, r)) results.push({ out: { ...base, errorMsg: 'Recording contains sensitive data' } });
        else if (PLAYABLE.has(r.fileState)) results.push({ out: base, rec: r });
        else results.push({ out: { ...base, errorMsg: batchErrorOf(r.fileState) } });
      }
    }
    batchJobs.set(id, { id, clientId: client.id, results, polls: 0 });
    batchJobCount++;
    send(res, entry, 200, { id, selfUri: `/api/v2/recording/batchrequests/${id}` }, rh);
  }

  function batchStatus(res: ServerResponse, entry: SimRequestLog, client: SimClient, jobId: string, rh: Record<string, string>): void {
    const job = batchJobs.get(jobId);
    if (!job) return sendError(res, entry, 404, 'batch.download.job.not.found');
    if (job.clientId !== client.id) return sendError(res, entry, 403, 'batch.download.permission.denied');
    job.polls++;
    const done = job.polls > knobs.batchPolls;
    // While in progress, results appear a share at a time.
    const shown = done ? job.results.length : Math.floor((job.results.length * (job.polls - 1)) / Math.max(1, knobs.batchPolls));
    const results: BatchDownloadJobResult[] = job.results.slice(0, shown).map((x) => {
      if (x.rec && !x.out.resultUrl) {
        x.out.resultUrl = mintLink(x.rec, 'ORIGINAL', knobs.batchLinkTtlMs);
        x.out.contentType = x.rec.contentType ?? contentTypeOf('ORIGINAL');
      }
      return { ...x.out };
    });
    const body: BatchDownloadJobStatusResult = {
      id: job.id,
      jobId: job.id,
      expectedResultCount: job.results.length,
      resultCount: results.length,
      errorCount: results.filter((r) => r.errorMsg !== undefined).length,
      status: done ? 'Completed' : 'InProgress',
      results,
      selfUri: `/api/v2/recording/batchrequests/${job.id}`,
    };
    send(res, entry, 200, body, rh);
  }

  function formatParam(url: URL): GenesysFormat | 'invalid' {
    const f = url.searchParams.get('formatId') ?? 'WEBM';
    return (GENESYS_FORMATS as readonly string[]).includes(f) ? (f as GenesysFormat) : 'invalid';
  }

  /** Counts down the 202s of a (recording, format); playable recordings only. */
  function transcoding(r: SimRecording, format: GenesysFormat): boolean {
    if (!PLAYABLE.has(r.fileState) || format === 'NONE') return false;
    let left = r.transcodeLeft.get(format);
    if (left === undefined) left = r.transcodePolls ?? knobs.transcodePolls;
    if (left <= 0) {
      r.transcodeLeft.set(format, 0);
      return false;
    }
    r.transcodeLeft.set(format, left - 1);
    return true;
  }

  /**
   * PUT …/recordings/{recordingId} (recording.yml): "updating and removing both archive and delete
   * dates"; on an ARCHIVED recording a new archiveDate is a restoration kept until that date. The
   * body is a whole Recording and the extract does not say whether a date left out is kept or
   * removed, so the simulator takes the strict reading — a deleteDate left out is removed — and a
   * client that drops the date on a restore is caught. Rights, after the extract's description
   * (the view was checked with the route): restore for a restoration; editRetention for any other
   * change of a date (a deleteDate sent back unchanged is no change). Only call recordings' rights
   * (recording:recording:*) are modelled.
   */
  function restore(res: ServerResponse, entry: SimRequestLog, client: SimClient, conv: string, recId: string, body: Buffer, rh: Record<string, string>): void {
    const r = recordings.get(key(conv, recId));
    if (!r) return sendError(res, entry, 404, 'not.found');
    let json: { archiveDate?: unknown; deleteDate?: unknown };
    try {
      json = JSON.parse(body.toString('utf8')) as typeof json;
    } catch {
      return sendError(res, entry, 400, 'recording.invalid.json');
    }
    if (typeof json?.archiveDate !== 'string' || Number.isNaN(Date.parse(json.archiveDate))) return sendError(res, entry, 400, 'invalid.date');
    const archiveDate = new Date(json.archiveDate).toISOString();
    const sentDelete = json.deleteDate;
    if (sentDelete !== undefined && sentDelete !== null && (typeof sentDelete !== 'string' || Number.isNaN(Date.parse(sentDelete)))) return sendError(res, entry, 400, 'invalid.date');
    const deleteDate = typeof sentDelete === 'string' ? new Date(sentDelete).toISOString() : undefined;
    if (r.fileState === 'DELETED' || r.fileState === 'ERROR' || r.fileState === 'UPLOADING') return sendError(res, entry, 400, 'recording.not.archivable');
    const restoration = r.fileState === 'ARCHIVED';
    const retentionEdit = deleteDate !== r.deleteDate || (!restoration && archiveDate !== r.archiveDate);
    if (restoration && !holds(client, SIM_PERMISSIONS.restore)) return sendError(res, entry, 403, 'recording.recording.restore.permission.check.failed');
    if (retentionEdit && !holds(client, SIM_PERMISSIONS.editRetention)) return sendError(res, entry, 403, 'recording.recording.edit.retention.permission.check.failed');
    r.deleteDate = deleteDate;
    r.archiveDate = archiveDate;
    if (r.fileState === 'ARCHIVED') {
      r.fileState = 'RESTORING';
      clearTimeout(r.restoreTimer);
      r.restoreTimer = setTimeout(() => {
        if (r.fileState === 'RESTORING') {
          r.fileState = 'RESTORED';
          r.restoreExpirationTime = archiveDate;
        }
      }, knobs.restoreDelayMs);
      r.restoreTimer.unref();
    } else if (r.fileState === 'RESTORED') {
      r.restoreExpirationTime = archiveDate;
    }
    send(res, entry, 200, recordingJson(r, undefined, false), rh);
  }

  // ---- analytics ---------------------------------------------------------------------------------

  function analytics(res: ServerResponse, entry: SimRequestLog, body: Buffer, rh: Record<string, string>): void {
    const out = queryConversationDetails([...recordings.values(), ...calls.values()], body, knobs.analyticsMaxResults, knobs.analyticsIntervalMatch);
    if (out.status === 400) return sendError(res, entry, 400, out.code, out.message);
    send(res, entry, 200, out.body, rh);
  }

  // ---- servers ---------------------------------------------------------------------------------

  function roleOfPath(path: string): SimRole | 'unknown' {
    if (path === '/oauth/token') return 'login';
    if (path.startsWith('/api/')) return 'api';
    if (path.startsWith('/media/')) return 'media';
    return 'unknown';
  }

  function takeFailure(role: SimRole): { status: number; retryAfterS: number | undefined } | undefined {
    const f = failures[0];
    if (!f || (f.scope !== 'any' && f.scope !== role)) return undefined;
    f.n--;
    if (f.n <= 0) failures.shift();
    return f;
  }

  function handler(listenerRole: SimRole | 'combined', port: () => number) {
    return (req: IncomingMessage, res: ServerResponse) => {
      const chunks: Buffer[] = [];
      let size = 0;
      req.on('data', (c: Buffer) => {
        size += c.length;
        if (size <= 1024 * 1024) chunks.push(c);
      });
      req.on('end', () => {
        const url = new URL(req.url ?? '/', 'http://sim');
        const pathRole = roleOfPath(url.pathname);
        const entry: SimRequestLog = {
          seq: ++seq,
          at: Date.now(),
          role: listenerRole === 'combined' ? pathRole : listenerRole,
          port: port(),
          method: req.method ?? 'GET',
          path: url.pathname,
          query: url.search.replace(/^\?/, ''),
          headers: { ...req.headers },
          body: Buffer.concat(chunks).subarray(0, 64 * 1024).toString('utf8'),
        };
        log.push(entry);
        if (log.length > logLimit) log.splice(0, log.length - logLimit);
        try {
          if (size > 1024 * 1024) return sendError(res, entry, 413, 'request.entity.too.large', 'The request is over the size limit.');
          // Each listener serves only its own host's routes.
          if (pathRole === 'unknown' || (listenerRole !== 'combined' && pathRole !== listenerRole)) return sendError(res, entry, 404, 'not.found');
          if (pathRole === 'login') loginAttempts++;
          const fail = takeFailure(pathRole);
          if (fail !== undefined) {
            const headers: Record<string, string> = fail.retryAfterS !== undefined ? { 'retry-after': String(fail.retryAfterS) } : {};
            return sendError(res, entry, fail.status, statusCodeFor(fail.status), undefined, headers);
          }
          const body = Buffer.concat(chunks);
          if (pathRole === 'login') {
            if (req.method !== 'POST') return sendError(res, entry, 404, 'not.found');
            return login(req, res, entry, body);
          }
          if (pathRole === 'media') {
            if (req.method !== 'GET' && req.method !== 'HEAD') return sendError(res, entry, 404, 'not.found');
            return serveMedia(req, res, entry, url.pathname.slice('/media/'.length));
          }
          return api(req, res, entry, body);
        } catch (e) {
          if (!res.headersSent) sendError(res, entry, 500, 'internal.server.error', (e as Error).message);
          else res.destroy();
        }
      });
    };
  }

  const servers: Server[] = [];
  async function listen(role: SimRole | 'combined', port: number): Promise<string> {
    let actual = 0;
    const server = createServer({ keepAliveTimeout: 5_000 }, handler(role, () => actual));
    servers.push(server);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve());
    });
    actual = (server.address() as AddressInfo).port;
    return `http://${host.includes(':') ? `[${host}]` : host}:${actual}`;
  }

  let loginBaseUrl: string;
  let apiBaseUrl: string;
  let mediaBaseUrl: string;
  if ((opts.layout ?? 'split') === 'combined') {
    loginBaseUrl = apiBaseUrl = mediaBaseUrl = await listen('combined', opts.port ?? 0);
  } else {
    loginBaseUrl = await listen('login', 0);
    apiBaseUrl = await listen('api', 0);
    mediaBaseUrl = await listen('media', 0);
  }

  return {
    loginBaseUrl,
    apiBaseUrl,
    mediaBaseUrl,
    knobs,
    set(k) {
      Object.assign(knobs, k);
    },
    addRecording,
    setFileState(c, r, state) {
      const rec = recordings.get(key(c, r));
      if (!rec) throw new Error(`no recording ${c}/${r}`);
      rec.fileState = state;
    },
    addCall(c) {
      calls.set(c.conversationId, {
        conversationId: c.conversationId,
        startTime: new Date(c.startTime),
        durationMs: c.durationMs ?? 0,
        ongoing: c.durationMs === undefined,
        externalTag: c.externalTag,
        protocolCallId: c.protocolCallId,
        direction: c.direction ?? 'inbound',
        ani: c.ani ?? 'tel:+15551230000',
        dnis: c.dnis ?? 'tel:+15559870000',
      });
    },
    endCall(c, durationMs) {
      const call = calls.get(c);
      if (!call) throw new Error(`no call ${c}`);
      calls.set(c, { ...call, ongoing: false, ...(durationMs !== undefined ? { durationMs } : {}) });
    },
    denyConversation(c, code = 'missing.division.permission') {
      deniedConversations.set(c, code);
    },
    failNext(n, o = {}) {
      failures.push({ n, status: o.status ?? 503, scope: o.scope ?? 'api', retryAfterS: o.retryAfterS });
    },
    rateLimitNext(n, retryAfterS) {
      rateLimit = { n, retryAfterS };
    },
    breakMediaAfter(bytes, times = 1) {
      breaks = { bytes, times };
    },
    malformedJsonNext(n) {
      malformedLeft = n;
    },
    omitMediaUrisNext(n) {
      omitMediaUrisLeft = n;
    },
    revokeTokens() {
      tokens.clear();
    },
    get logins() {
      return logins;
    },
    get loginAttempts() {
      return loginAttempts;
    },
    get batchJobs() {
      return batchJobCount;
    },
    org,
    requests: log,
    clearLog() {
      log.length = 0;
    },
    async close() {
      for (const r of recordings.values()) clearTimeout(r.restoreTimer);
      await closeServers(servers);
    },
  };
}

// Standalone: `npx tsx src/sources/genesys/simulator.ts [--port N] [--file media.wav]`
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const arg = (name: string) => cliArg(name);
  const file = arg('--file');
  const sim = await startGenesysSimulator({
    layout: 'combined',
    port: Number(arg('--port') ?? 0),
    recordings: [
      {
        conversationId: 'c0ffee00-0000-4000-8000-000000000001',
        recordingId: 'reca0000-0000-4000-8000-000000000001',
        ...(file ? { path: file } : { bytes: 'RIFF-demo-bytes' }),
        externalTag: 'LEGACY-0001',
        protocolCallId: 'demo-call-0001@sbc.example',
      },
    ],
  });
  process.stdout.write(`Genesys simulator on ${sim.apiBaseUrl} (client ${DEFAULT_CLIENT.id} / ${DEFAULT_CLIENT.secret})\n`);
}
