import type { IncomingHttpHeaders } from 'node:http';
import type { Dispatcher } from 'undici';
import { request } from 'undici';
import { AppError } from '../../errors.js';
import { isLoopback, type LegacyHttpSourceConfig } from './config.js';
import { abortedError, header, netCodeOf } from '../net.js';
import { withRetries } from '../retry.js';
export { abortable, abortedError, header, netCodeOf, sleep } from '../net.js';

/** A failure worth another attempt: a 5xx/429 answer or a network error, before any byte was handed over. */
export class TransientError extends Error {
  constructor(
    readonly status: number | undefined,
    readonly netCode: string | undefined,
  ) {
    super(status ? `HTTP ${status}` : `network error ${netCode ?? ''}`.trim());
    this.name = 'TransientError';
  }
}

/**
 * Failures that say "the source is unwell" (retries spent, timeouts, refused connections). Only
 * these count for the circuit breaker; a 404, refused credentials or a caller abort do not.
 */
const SOURCE_FAILURES = new WeakSet<AppError>();

export function sourceFailure(e: AppError): AppError {
  SOURCE_FAILURES.add(e);
  return e;
}

export function isSourceFailure(e: unknown): boolean {
  return e instanceof AppError && SOURCE_FAILURES.has(e);
}

/** Final mapping of a transient failure once retries are spent. Never includes URLs. */
export function transientToAppError(e: unknown, what: string): AppError {
  if (e instanceof TransientError && e.status !== undefined) {
    const extra = { source_status: e.status };
    if (e.status === 504) return sourceFailure(new AppError('source.timeout', `${what}: the source answered 504`, { extra }));
    if (e.status === 503 || e.status === 429) return sourceFailure(new AppError('source.unavailable', `${what}: the source answered ${e.status}`, { extra }));
    return sourceFailure(new AppError('source.bad_gateway', `${what}: the source answered ${e.status}`, { extra }));
  }
  const code = e instanceof TransientError ? e.netCode : netCodeOf(e);
  if (code === 'UND_ERR_CONNECT_TIMEOUT' || code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'ETIMEDOUT') {
    return sourceFailure(new AppError('source.timeout', `${what}: no answer in time (${code})`));
  }
  return sourceFailure(new AppError('source.unavailable', `${what}: not reachable (${code ?? 'network error'})`));
}

export function headerList(headers: IncomingHttpHeaders, name: string): string[] {
  const v = headers[name];
  return v === undefined ? [] : Array.isArray(v) ? v : [v];
}

const SMALL_LIMIT = 4 * 1024 * 1024;

/** Reads a whole (small) answer; refuses oversized ones so a broken source cannot exhaust memory. */
export async function readSmallBody(res: Dispatcher.ResponseData, what: string, limit = SMALL_LIMIT): Promise<Buffer> {
  const declared = Number(header(res.headers, 'content-length') ?? NaN);
  if (declared > limit) {
    res.body.destroy();
    throw new AppError('source.bad_gateway', `${what}: the source answered with an oversized body`);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of res.body as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > limit) {
        res.body.destroy();
        throw new AppError('source.bad_gateway', `${what}: the source answered with an oversized body`);
      }
      chunks.push(chunk);
    }
  } catch (e) {
    if (e instanceof AppError) throw e;
    // A broken small answer is as good as no answer: worth another attempt.
    throw new TransientError(undefined, netCodeOf(e) ?? 'EUNKNOWN');
  }
  return Buffer.concat(chunks);
}

export async function readJson(res: Dispatcher.ResponseData, what: string): Promise<unknown> {
  const buf = await readSmallBody(res, what);
  try {
    return JSON.parse(buf.toString('utf8')) as unknown;
  } catch {
    throw new AppError('source.bad_gateway', `${what}: the source answered ${res.statusCode} with a body that is not JSON`);
  }
}

export async function discard(res: Dispatcher.ResponseData): Promise<void> {
  await res.body.dump({ limit: 64 * 1024 }).catch(() => {});
}

/**
 * Maps a final 4xx answer (no retry, no re-auth left) to the catalogue. `notFound`: whether a 404
 * means "no such recording" (media and search calls) or a wrong path/API (sign-in, probes).
 */
export function clientErrorToAppError(status: number, what: string, notFound: 'object' | 'upstream'): AppError {
  const extra = { source_status: status };
  if (status === 401 || status === 403) return new AppError('source.auth_failed', `${what}: the source refused the configured credentials (HTTP ${status})`, { extra });
  if ((status === 404 || status === 410) && notFound === 'object') {
    return new AppError('source.object_missing', `${what}: the source has no such recording (HTTP ${status})`, { extra });
  }
  if (status === 408) return sourceFailure(new AppError('source.timeout', `${what}: the source timed out (HTTP 408)`, { extra }));
  return new AppError('source.bad_gateway', `${what}: the source answered ${status}`, { extra });
}

export interface SendOptions {
  method: 'GET' | 'HEAD' | 'POST';
  url: URL;
  /** A short label for errors ("Avaya replay"); never the URL. */
  what: string;
  signal: AbortSignal;
  headers?: Record<string, string>;
  body?: string;
  /** Session credentials of the MediaSense profile: header name → value. */
  session?: Record<string, string>;
  /** Whether the configured static credentials (basic, bearer, header) go with this request. */
  credentials: boolean;
  range?: { start: number; end?: number };
}

export interface HttpCounters {
  requests: number;
  retries: number;
}

/**
 * All requests of one legacy connector go through here: the only place that attaches
 * credentials, and it does so only for the origins the entry trusts (api_endpoint's, plus the
 * profile's allow_download_origins). Requests to any other origin are refused unsent; redirects
 * are never followed. 5xx/429 and network errors become TransientError for `retrying`.
 */
export class LegacyHttp {
  readonly endpoint: URL;
  readonly #trusted: Set<string>;
  readonly #staticAuth: Record<string, string>;
  readonly #backoff: { initial_ms: number; max_ms: number };

  constructor(
    private readonly cfg: LegacyHttpSourceConfig,
    private readonly dispatcher: Dispatcher,
    readonly counters: HttpCounters,
    extraOrigins: readonly string[] = [],
  ) {
    this.endpoint = new URL(cfg.api_endpoint);
    this.#trusted = new Set([this.endpoint.origin, ...extraOrigins.map((o) => new URL(o).origin)]);
    this.#staticAuth = staticAuthHeaders(cfg);
    this.#backoff = cfg.backoff;
  }

  isTrusted(url: URL): boolean {
    return this.#trusted.has(url.origin);
  }

  /** One attempt. Returns 2xx and 4xx answers (body unread); throws TransientError for 5xx, 429 and network errors. */
  async send(o: SendOptions): Promise<Dispatcher.ResponseData> {
    if (o.signal.aborted) throw abortedError();
    if (!this.isTrusted(o.url)) {
      // Never name the URL: it may carry a token.
      throw new AppError('source.bad_gateway', `${o.what}: the source pointed at an origin this entry does not trust (not api_endpoint's, not in allow_download_origins)`);
    }
    if (o.url.protocol !== 'https:' && !(o.url.protocol === 'http:' && (isLoopback(o.url) || this.cfg.allow_insecure_http))) {
      throw new AppError('source.bad_gateway', `${o.what}: the source pointed at a ${o.url.protocol} URL`);
    }
    const headers: Record<string, string> = {
      'user-agent': 'custodian-legacy-http',
      accept: '*/*',
      ...o.headers,
      ...(o.credentials ? this.#staticAuth : {}),
      ...o.session,
    };
    if (o.range) headers.range = `bytes=${o.range.start}-${o.range.end ?? ''}`;
    this.counters.requests++;
    let res: Dispatcher.ResponseData;
    try {
      res = await request(o.url, {
        method: o.method,
        dispatcher: this.dispatcher,
        headers,
        body: o.body ?? null,
        signal: o.signal,
        headersTimeout: this.cfg.timeout_ms,
        bodyTimeout: this.cfg.timeout_ms,
      });
    } catch (e) {
      if (o.signal.aborted) throw abortedError();
      // Only the code travels on: undici errors can carry request details.
      throw new TransientError(undefined, netCodeOf(e) ?? 'EUNKNOWN');
    }
    const s = res.statusCode;
    if (s >= 500 || s === 429) {
      await discard(res);
      throw new TransientError(s, undefined);
    }
    if (s >= 300 && s < 400) {
      await discard(res);
      throw new AppError('source.bad_gateway', `${o.what}: the source answered a redirect (${s}), which is not followed`, { extra: { source_status: s } });
    }
    return res;
  }

  /** Runs `fn` again after transient failures: at most 1 + max_retries attempts, with backoff; stops at once on abort. */
  async retrying<T>(fn: () => Promise<T>, signal: AbortSignal, what: string): Promise<T> {
    return withRetries(fn, signal, {
      // max_retries counts the attempts after the first.
      attempts: this.cfg.max_retries + 1,
      initialDelayMs: this.#backoff.initial_ms,
      maxDelayMs: this.#backoff.max_ms,
      retryable: (e) => e instanceof TransientError || netCodeOf(e) !== undefined,
      exhausted: (e) => transientToAppError(e, what),
      onRetry: () => this.counters.retries++,
    });
  }

}

function staticAuthHeaders(cfg: LegacyHttpSourceConfig): Record<string, string> {
  switch (cfg.auth_type) {
    case 'basic': {
      if (!cfg.username || !cfg.password) return {};
      const b64 = Buffer.from(`${cfg.username}:${cfg.password.reveal()}`, 'utf8').toString('base64');
      return { authorization: `Basic ${b64}` };
    }
    case 'bearer':
      return cfg.token ? { authorization: `Bearer ${cfg.token.reveal()}` } : {};
    case 'header':
      return cfg.token && cfg.header_name ? { [cfg.header_name.toLowerCase()]: cfg.token.reveal() } : {};
    default:
      return {};
  }
}

/**
 * Fills a URL template. Values are percent-encoded per path segment ("/" kept); "." and ".."
 * segments are refused so an id from the catalog cannot climb to another resource.
 */
export function fillTemplate(endpoint: URL, template: string, values: Record<string, string | null | undefined>): URL {
  const base = endpoint.href.replace(/\/+$/, '');
  let missing: string | undefined;
  const filled = template.replace(/\{([a-z_]+)\}/g, (_m, name: string) => {
    if (name === 'api_endpoint') return base;
    const v = values[name];
    if (v === null || v === undefined || v === '') {
      missing ??= name;
      return '';
    }
    return encodeId(v);
  });
  if (missing) throw new AppError('source.object_missing', `the copy has no ${missing} to fill the URL template`);
  const full = filled.startsWith('/') ? base + filled : filled;
  const url = new URL(full);
  if (url.origin !== endpoint.origin) throw new AppError('source.path_refused', 'the URL template leaves api_endpoint');
  return url;
}

export function encodeId(v: string): string {
  const segments = v.split('/');
  if (segments.some((s) => s === '.' || s === '..') || v.includes('\\') || v.includes('\0')) {
    throw new AppError('source.path_refused', 'the id contains "." or ".." segments, a backslash or a NUL byte');
  }
  return segments.map((s) => encodeURIComponent(s)).join('/');
}
