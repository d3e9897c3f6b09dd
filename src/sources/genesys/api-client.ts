import type { Dispatcher } from 'undici';
import { request } from 'undici';
import { AppError } from '../../errors.js';
import type { GenesysFormat } from './config.js';
import { genesysError } from './errors.js';
import {
  TransientError,
  abortedError,
  genesysToAppError,
  header,
  isTransient,
  netCodeOf,
  rateLimitPersists,
  readErrorBody,
  readJson,
  retryAfterMs,
  sleep,
  transientToAppError,
  type NotFoundMeaning,
} from './http-util.js';
import type {
  AnalyticsConversationQueryResponse,
  BatchDownloadJobStatusResult,
  BatchDownloadJobSubmissionResult,
  BatchDownloadRequest,
  ConversationQuery,
  Recording,
  RecordingMetadata,
  RecordingSettings,
  TokenInfo,
} from './models.js';
import type { RequestBudget } from '../request-budget.js';
import { withRetries } from '../retry.js';
import { loginRetryAfterMs, type TokenSource } from './token-source.js';

/** Counters for /metrics; one object per connector, shared by its parts. */
export interface GenesysCounters {
  /** Requests answered 429. */
  rateLimited: number;
  /** Times the shared gate closed (one wait however many requests were held by it). */
  rateLimitWaits: number;
  /** Attempts repeated after a 5xx or a network error. */
  retries: number;
  /** 401s answered by a fresh login and one more attempt. */
  reauths: number;
  /** 202 (transcoding) answers polled past. */
  transcodePolls: number;
  /** Fresh media links minted to continue a download (expired link or broken transfer). */
  resumes: number;
}

export function newCounters(): GenesysCounters {
  return { rateLimited: 0, rateLimitWaits: 0, retries: 0, reauths: 0, transcodePolls: 0, resumes: 0 };
}

/**
 * One gate for all requests of a connector: a 429 closes it for Retry-After and every request,
 * in flight or new, waits on the same timer before it is sent — no thundering herd afterwards.
 */
export class RateGate {
  #until = 0;
  #wait: Promise<void> | undefined;

  /** True when this call closed an open gate (a new wait), false when it only extended one. */
  close(ms: number, now = Date.now()): boolean {
    const until = now + ms;
    const wasOpen = now >= this.#until;
    if (until > this.#until) {
      this.#until = until;
      this.#wait = undefined;
    }
    return wasOpen;
  }

  get closedUntil(): number {
    return this.#until;
  }

  async pass(signal: AbortSignal): Promise<void> {
    while (Date.now() < this.#until) {
      if (!this.#wait) {
        const w = sleep(this.#until - Date.now()).finally(() => {
          if (this.#wait === w) this.#wait = undefined;
        });
        this.#wait = w;
      }
      await abortableShared(this.#wait, signal);
    }
  }
}

function abortableShared(p: Promise<void>, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.reject(abortedError());
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(abortedError());
    signal.addEventListener('abort', onAbort, { once: true });
    void p.finally(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    });
  });
}

export interface RetryOptions {
  /** Attempts in all (first one included). */
  maxAttempts: number;
  initialDelayMs: number;
  maxDelayMs: number;
}

export interface TranscodePoll {
  initial_ms: number;
  max_ms: number;
  budget_ms: number;
}

export interface GenesysApiClientOptions {
  /** e.g. https://api.mypurecloud.ie — the only place the bearer token is ever sent. */
  apiBaseUrl: string;
  tokens: TokenSource;
  dispatcher: Dispatcher;
  /** Bound for the answer headers and for gaps in a body. */
  timeoutMs: number;
  counters: GenesysCounters;
  transcodePoll: TranscodePoll;
  retry?: Partial<RetryOptions>;
  /** 429s one request accepts before giving up (default 5). */
  maxRateLimitRetries?: number;
  /** A Retry-After longer than this fails the request instead of holding it (default 60 s). */
  maxRetryAfterMs?: number;
  /** The credentials' request budget across instances (request-budget.ts); a 429 pauses it for all. */
  budget?: RequestBudget;
}

interface ApiRequest {
  method: 'GET' | 'PUT' | 'POST';
  path: string;
  query?: Record<string, string>;
  body?: unknown;
  what: string;
  notFound: NotFoundMeaning;
}

export interface MediaRange {
  start: number;
  end?: number;
}

/** An answer with what a clock-skew check needs: the Date header and when the request went and the answer came. */
export interface TimedAnswer<T> {
  body: T;
  /** The Date header of the answer, if any. */
  date: string | undefined;
  sentAt: number;
  receivedAt: number;
}

interface SendResult<T> {
  status: number;
  body: T;
  date: string | undefined;
  sentAt: number;
  receivedAt: number;
}

/**
 * GET /api/v2/authorization/subjects/me, after the public SDKs' AuthzSubject / AuthzGrant /
 * AuthzGrantRole / AuthzGrantPolicy models (not in the OpenAPI extracts). A permission
 * "domain:entity:action" is held where a grant's role has a policy of that domain and entityName
 * (or "*") whose actions include it (or "*"), in that grant's division ("*": every division).
 */
export interface AuthzSubject {
  id?: string;
  name?: string;
  grants?: {
    subjectId?: string;
    division?: { id?: string; name?: string };
    role?: { id?: string; name?: string; policies?: { domain?: string; entityName?: string; actions?: string[]; condition?: string }[] };
    grantMadeAt?: string;
  }[];
  version?: number;
}

/** Most items POST /api/v2/recording/batchrequests accepts (BatchDownloadJobSubmission). */
export const BATCH_MAX_ITEMS = 100;

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);

/**
 * Typed client for the handful of Platform API calls the connector makes. Bearer auth with one
 * re-login on 401, one shared 429 gate, bounded retries of 5xx and network errors. Media links are
 * fetched by `fetchMedia` with no credentials at all.
 */
export class GenesysApiClient {
  readonly gate = new RateGate();
  readonly #retry: RetryOptions;
  readonly #maxRateLimitRetries: number;
  readonly #maxRetryAfterMs: number;

  constructor(private readonly opts: GenesysApiClientOptions) {
    this.#retry = { maxAttempts: 3, initialDelayMs: 100, maxDelayMs: 2_000, ...opts.retry };
    this.#maxRateLimitRetries = opts.maxRateLimitRetries ?? 5;
    this.#maxRetryAfterMs = opts.maxRetryAfterMs ?? 60_000;
  }

  /** GET /api/v2/conversations/{conversationId}/recordingmetadata */
  async listRecordingMetadata(conversationId: string, signal: AbortSignal): Promise<RecordingMetadata[]> {
    const r = await this.#json<RecordingMetadata[]>(
      { method: 'GET', path: `/api/v2/conversations/${enc(conversationId)}/recordingmetadata`, what: 'recording metadata list', notFound: 'recording' },
      signal,
    );
    if (!Array.isArray(r.body)) throw new AppError('source.bad_gateway', 'recording metadata list: Genesys answered with something other than a list');
    return r.body;
  }

  /** GET /api/v2/conversations/{conversationId}/recordingmetadata/{recordingId} */
  async getRecordingMetadata(conversationId: string, recordingId: string, signal: AbortSignal): Promise<RecordingMetadata> {
    const r = await this.#json<RecordingMetadata>(
      {
        method: 'GET',
        path: `/api/v2/conversations/${enc(conversationId)}/recordingmetadata/${enc(recordingId)}`,
        what: 'recording metadata',
        notFound: 'recording',
      },
      signal,
    );
    return objectBody(r.body, 'recording metadata');
  }

  /** GET /api/v2/conversations/{conversationId}/recordings/{recordingId}?formatId=…: 200 with media links, or 202 while transcoding. */
  async getRecording(conversationId: string, recordingId: string, formatId: GenesysFormat, signal: AbortSignal): Promise<{ status: 200 | 202; recording: Recording | null }> {
    const r = await this.#json<Recording | null>(
      {
        method: 'GET',
        path: `/api/v2/conversations/${enc(conversationId)}/recordings/${enc(recordingId)}`,
        query: { formatId },
        what: 'recording',
        notFound: 'recording',
      },
      signal,
    );
    if (r.status === 202) return { status: 202, recording: r.body && typeof r.body === 'object' ? r.body : null };
    return { status: 200, recording: objectBody(r.body, 'recording') };
  }

  /** getRecording, polling 202 answers with backoff (estimatedTranscodeTimeMs as a hint) within the budget. */
  async getRecordingWhenReady(conversationId: string, recordingId: string, formatId: GenesysFormat, signal: AbortSignal): Promise<Recording> {
    const { initial_ms, max_ms, budget_ms } = this.opts.transcodePoll;
    const deadline = Date.now() + budget_ms;
    let delay = initial_ms;
    for (;;) {
      const r = await this.getRecording(conversationId, recordingId, formatId, signal);
      if (r.status === 200 && r.recording) return r.recording;
      const hint = r.recording?.estimatedTranscodeTimeMs;
      let wait = Math.min(max_ms, Math.max(delay, typeof hint === 'number' && hint > 0 ? Math.min(hint, max_ms) : 0));
      const left = deadline - Date.now();
      if (left <= 0) {
        throw genesysError('source.media_not_ready', `Genesys is still transcoding the recording to ${formatId}`, {
          headers: { 'Retry-After': String(Math.max(1, Math.ceil(wait / 1000))) },
        });
      }
      wait = Math.min(wait, left);
      this.opts.counters.transcodePolls++;
      await sleep(wait, signal);
      delay = Math.min(max_ms, delay * 2);
    }
  }

  /**
   * PUT /api/v2/conversations/{conversationId}/recordings/{recordingId} with a new archiveDate: on an
   * ARCHIVED recording this starts a restore (ARCHIVED → RESTORING → RESTORED, hours) kept until that date.
   * `keepDeleteDate`: the recording's current deleteDate, sent back unchanged. The body is a whole
   * Recording and the extract ("updating and removing both archive and delete dates") does not say
   * whether a date left out is kept or removed: sent back, a restore never drops the recording's
   * deletion date, and unchanged it is no retention edit (which would need editRetention).
   */
  async restoreRecording(conversationId: string, recordingId: string, archiveDate: Date, signal: AbortSignal, keepDeleteDate?: string): Promise<Recording> {
    const r = await this.#json<Recording>(
      {
        method: 'PUT',
        path: `/api/v2/conversations/${enc(conversationId)}/recordings/${enc(recordingId)}`,
        body: { archiveDate: archiveDate.toISOString(), ...(keepDeleteDate !== undefined ? { deleteDate: keepDeleteDate } : {}) },
        what: 'recording restore',
        notFound: 'recording',
      },
      signal,
    );
    return objectBody(r.body, 'recording restore');
  }

  /** POST /api/v2/analytics/conversations/details/query */
  async queryConversationDetails(query: ConversationQuery, signal: AbortSignal): Promise<AnalyticsConversationQueryResponse> {
    const r = await this.#json<AnalyticsConversationQueryResponse>(
      { method: 'POST', path: '/api/v2/analytics/conversations/details/query', body: query, what: 'conversation details query', notFound: 'upstream' },
      signal,
    );
    return objectBody(r.body, 'conversation details query');
  }

  /**
   * GET /api/v2/tokens/me: the OAuth client and organisation of the token. Not in the OpenAPI
   * extracts (Tokens API group); see models.ts TokenInfo.
   */
  async getTokenInfo(signal: AbortSignal): Promise<TimedAnswer<TokenInfo>> {
    const r = await this.#json<TokenInfo>({ method: 'GET', path: '/api/v2/tokens/me', what: 'token info', notFound: 'upstream' }, signal);
    return { body: objectBody(r.body, 'token info'), date: r.date, sentAt: r.sentAt, receivedAt: r.receivedAt };
  }

  /**
   * GET /api/v2/authorization/subjects/me: the token's grants (roles, their permission policies,
   * divisions). Not in the OpenAPI extracts (Authorization API group): read leniently after the
   * public SDKs' AuthzSubject model. Whether Genesys answers it for a client-credentials token is
   * not documented there either; callers treat any failure as "permissions unknown".
   */
  async getAuthorizationSubjectMe(signal: AbortSignal): Promise<AuthzSubject> {
    const r = await this.#json<AuthzSubject>({ method: 'GET', path: '/api/v2/authorization/subjects/me', what: 'authorization subject', notFound: 'upstream' }, signal);
    return objectBody(r.body, 'authorization subject');
  }

  /** GET /api/v2/recording/settings: the org's recording settings (recordingPlaybackUrlTtl, minutes). */
  async getRecordingSettings(signal: AbortSignal): Promise<TimedAnswer<RecordingSettings>> {
    const r = await this.#json<RecordingSettings>({ method: 'GET', path: '/api/v2/recording/settings', what: 'recording settings', notFound: 'upstream' }, signal);
    return { body: objectBody(r.body, 'recording settings'), date: r.date, sentAt: r.sentAt, receivedAt: r.receivedAt };
  }

  /** POST /api/v2/recording/batchrequests with at most 100 items: the job id to poll. */
  async submitBatchDownload(items: BatchDownloadRequest[], signal: AbortSignal): Promise<string> {
    if (items.length === 0 || items.length > BATCH_MAX_ITEMS) throw new AppError('request.invalid', `a batch download request takes 1 to ${BATCH_MAX_ITEMS} items`);
    const r = await this.#json<BatchDownloadJobSubmissionResult>(
      { method: 'POST', path: '/api/v2/recording/batchrequests', body: { batchDownloadRequestList: items }, what: 'batch download request', notFound: 'upstream' },
      signal,
    );
    const id = objectBody(r.body, 'batch download request').id;
    if (typeof id !== 'string' || id === '') throw new AppError('source.bad_gateway', 'batch download request: Genesys answered without a job id');
    return id;
  }

  /** GET /api/v2/recording/batchrequests/{jobId}: status and the results so far (only the submitting client may read them). */
  async getBatchDownload(jobId: string, signal: AbortSignal): Promise<BatchDownloadJobStatusResult> {
    const r = await this.#json<BatchDownloadJobStatusResult>(
      { method: 'GET', path: `/api/v2/recording/batchrequests/${enc(jobId)}`, what: 'batch download status', notFound: 'upstream' },
      signal,
    );
    return objectBody(r.body, 'batch download status');
  }

  /**
   * GET of a pre-authorised media link, with no Authorization header and nothing of ours but a
   * Range. The link is a credential: it is never logged nor put in an error. Answers of any status
   * are returned (the caller decides on 4xx); 5xx and network errors throw TransientError.
   */
  async fetchMedia(uri: string, range: MediaRange | undefined, signal: AbortSignal): Promise<Dispatcher.ResponseData> {
    let url: URL;
    try {
      url = new URL(uri);
    } catch {
      throw new AppError('source.bad_gateway', 'Genesys returned a media link that is not a URL');
    }
    if (url.protocol !== 'https:' && !(url.protocol === 'http:' && LOOPBACK.has(url.hostname))) {
      throw new AppError('source.bad_gateway', `Genesys returned a media link with scheme ${url.protocol} (only https)`);
    }
    const headers: Record<string, string> = { accept: '*/*' };
    if (range) headers.range = `bytes=${range.start}-${range.end ?? ''}`;
    let res: Dispatcher.ResponseData;
    try {
      res = await request(url, {
        method: 'GET',
        dispatcher: this.opts.dispatcher,
        headers,
        signal,
        headersTimeout: this.opts.timeoutMs,
        bodyTimeout: this.opts.timeoutMs,
      });
    } catch (e) {
      if (signal.aborted) throw abortedError();
      throw new TransientError(undefined, netCodeOf(e) ?? 'EUNKNOWN', undefined);
    }
    if (res.statusCode >= 500) {
      await res.body.dump().catch(() => {});
      throw new TransientError(res.statusCode, undefined, undefined);
    }
    return res;
  }

  /** Runs `fn` again after 5xx or network errors, with decorrelated-jitter backoff; stops at once on abort. */
  async retrying<T>(fn: () => Promise<T>, signal: AbortSignal, what: string): Promise<T> {
    return withRetries(fn, signal, {
      attempts: this.#retry.maxAttempts,
      initialDelayMs: this.#retry.initialDelayMs,
      maxDelayMs: this.#retry.maxDelayMs,
      retryable: isTransient,
      exhausted: (e) => transientToAppError(e, what),
      onRetry: () => this.opts.counters.retries++,
    });
  }


  async #json<T>(req: ApiRequest, signal: AbortSignal): Promise<SendResult<T>> {
    return this.retrying(() => this.#send<T>(req, signal), signal, req.what);
  }

  /** One logical attempt: waits at the gate, authorises, handles 401 (once) and 429 (bounded). */
  async #send<T>(req: ApiRequest, signal: AbortSignal): Promise<SendResult<T>> {
    const url = new URL(this.opts.apiBaseUrl + req.path);
    for (const [k, v] of Object.entries(req.query ?? {})) url.searchParams.set(k, v);
    let reauthed = false;
    let limited = 0;
    for (;;) {
      await this.gate.pass(signal);
      await this.opts.budget?.take(signal);
      let token: string;
      try {
        token = await this.opts.tokens.get(signal);
      } catch (e) {
        const waitMs = loginRetryAfterMs(e);
        if (waitMs === undefined) throw e;
        // The login endpoint answered 429: the same rule as an API 429 below — wait its
        // Retry-After at the shared gate (bounded by the signal, the request's own deadline), or
        // give up with the same answer. The other instances' API budget is left alone: they may
        // hold valid tokens, and the login's limit is not the API's.
        this.opts.counters.rateLimited++;
        if (++limited > this.#maxRateLimitRetries || waitMs > this.#maxRetryAfterMs) throw rateLimitPersists(req.what, waitMs);
        if (this.gate.close(waitMs)) this.opts.counters.rateLimitWaits++;
        continue;
      }
      let res: Dispatcher.ResponseData;
      const sentAt = Date.now();
      try {
        res = await request(url, {
          method: req.method,
          dispatcher: this.opts.dispatcher,
          headers: {
            authorization: `Bearer ${token}`,
            accept: 'application/json',
            ...(req.body !== undefined ? { 'content-type': 'application/json' } : {}),
          },
          body: req.body !== undefined ? JSON.stringify(req.body) : null,
          signal,
          headersTimeout: this.opts.timeoutMs,
          bodyTimeout: this.opts.timeoutMs,
        });
      } catch (e) {
        if (signal.aborted) throw abortedError();
        throw new TransientError(undefined, netCodeOf(e) ?? 'EUNKNOWN', undefined);
      }
      const status = res.statusCode;
      const timing = { date: header(res.headers, 'date'), sentAt, receivedAt: Date.now() };
      if (status === 401) {
        const body = await readErrorBody(res);
        if (reauthed) throw genesysToAppError(401, body, `${req.what} (after a fresh login)`, req.notFound);
        reauthed = true;
        this.opts.counters.reauths++;
        this.opts.tokens.invalidate(token);
        continue;
      }
      if (status === 429) {
        this.opts.counters.rateLimited++;
        const waitMs = retryAfterMs(res.headers, 1_000);
        await res.body.dump().catch(() => {});
        if (++limited > this.#maxRateLimitRetries || waitMs > this.#maxRetryAfterMs) throw rateLimitPersists(req.what, waitMs);
        if (this.gate.close(waitMs)) this.opts.counters.rateLimitWaits++;
        // The other instances share the credentials' limit: hold them back for the same while.
        await this.opts.budget?.pause(waitMs).catch(() => {});
        continue;
      }
      if (status >= 500) {
        throw new TransientError(status, undefined, await readErrorBody(res));
      }
      // A 202 (transcoding) body may be empty or a Recording without media links.
      if (status === 202) return { status, body: (await readJsonLenient(res)) as T, ...timing };
      if (status === 200) return { status, body: await readJson<T>(res, req.what), ...timing };
      if (status >= 200 && status < 300) {
        await res.body.dump().catch(() => {});
        throw new AppError('source.bad_gateway', `${req.what}: Genesys answered ${status}`);
      }
      throw genesysToAppError(status, await readErrorBody(res), req.what, req.notFound);
    }
  }
}

async function readJsonLenient(res: Dispatcher.ResponseData): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of res.body as AsyncIterable<Buffer>) {
    size += c.length;
    if (size > 1024 * 1024) {
      res.body.destroy();
      return null;
    }
    chunks.push(c);
  }
  const text = Buffer.concat(chunks).toString('utf8').trim();
  if (text === '') return null;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return null;
  }
}

function objectBody<T>(v: T | null, what: string): T {
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw new AppError('source.bad_gateway', `${what}: Genesys answered without a JSON object`);
  return v;
}

function enc(id: string): string {
  return encodeURIComponent(id);
}
