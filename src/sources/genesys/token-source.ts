import type { Dispatcher } from 'undici';
import { request } from 'undici';
import type { Secret } from '../../config/secret.js';
import { AppError } from '../../errors.js';
import { genesysError } from './errors.js';
import { TransientError, abortable, netCodeOf, rateLimitPersists, readBody, readErrorBody, retryAfterMs } from './http-util.js';

export interface TokenSourceOptions {
  /** e.g. https://login.mypurecloud.ie — the only place the client secret is ever sent. */
  loginBaseUrl: string;
  clientId: string;
  clientSecret: Secret;
  dispatcher: Dispatcher;
  timeoutMs: number;
  now?: () => number;
  /**
   * A login the token endpoint refused (wrong secret, disabled client) is not tried again for this
   * long: callers get the same source.auth_failed at once instead of each sending a login (default 30 s).
   */
  refusalHoldMs?: number;
}

interface CachedToken {
  value: string;
  refreshAt: number;
  expiresAt: number;
}

/** How long a login 429 asked to wait (ms), per error (see loginRetryAfterMs). */
const LOGIN_LIMITED = new WeakMap<AppError, number>();

/**
 * The wait a login refused with 429 asks for (its Retry-After, ms, counted from when the error was
 * made), or undefined for any other error. The API client holds the request at its 429 gate for
 * this long, as for an API 429, instead of retrying the login with its 5xx backoff.
 */
export function loginRetryAfterMs(e: unknown): number | undefined {
  return e instanceof AppError ? LOGIN_LIMITED.get(e) : undefined;
}

/**
 * A login refused with 429, as the API path's 429 answer looks to a client (source.unavailable,
 * Retry-After, genesys_status 429): a caller that cannot wait passes it on as it is.
 */
function loginLimited(waitMs: number): AppError {
  const e = rateLimitPersists('Genesys login', waitMs);
  LOGIN_LIMITED.set(e, waitMs);
  return e;
}

/** Refresh this long before expiry: 10 % of the lifetime, at most 60 s. */
export function refreshMarginMs(lifetimeMs: number): number {
  return Math.min(60_000, Math.floor(lifetimeMs * 0.1));
}

/**
 * OAuth client-credentials tokens for one Genesys client. Genesys issues no refresh token, so
 * "refresh" is a new login. Logins are single-flight: however many callers find no usable token,
 * one POST /oauth/token is made and all of them await it. The token never appears in errors.
 * A 429 of the login endpoint is kept for its Retry-After: no login is sent until it has passed.
 */
export class TokenSource {
  #token: CachedToken | undefined;
  #inflight: Promise<CachedToken> | undefined;
  #logins = 0;
  #loginFailures = 0;
  /** The last refusal of the credentials and until when it is answered from memory. */
  #refused: { error: AppError; until: number } | undefined;
  /** Until when the login endpoint asked (429, Retry-After) not to be called. */
  #limitedUntil = 0;
  readonly #now: () => number;

  constructor(private readonly opts: TokenSourceOptions) {
    this.#now = opts.now ?? Date.now;
  }

  /** Successful logins so far. */
  get logins(): number {
    return this.#logins;
  }

  get loginFailures(): number {
    return this.#loginFailures;
  }

  /** A usable bearer token. Past the refresh point a background login starts and the still-valid token is returned. */
  async get(signal: AbortSignal): Promise<string> {
    const now = this.#now();
    const t = this.#token;
    if (t && now < t.expiresAt) {
      // The next caller sees the failure if it persists; no refresh is sent into a login 429's wait.
      if (now >= t.refreshAt && now >= this.#limitedUntil) this.#login().catch(() => {});
      return t.value;
    }
    const refused = this.#refused;
    if (refused && now < refused.until) {
      const e = refused.error;
      throw new AppError(e.code, e.message, { extra: { ...e.extra, refusal_cached: true }, headers: e.headers });
    }
    // Within a login 429's Retry-After nothing is sent: every caller gets the rest of the wait.
    if (now < this.#limitedUntil) throw loginLimited(this.#limitedUntil - now);
    return (await abortable(this.#login(), signal)).value;
  }

  /**
   * Forgets the token after a 401. Given the token the failed request used, a token that a
   * concurrent re-login has already replaced is kept, so N concurrent 401s cause one login.
   */
  invalidate(token?: string): void {
    if (token === undefined || this.#token?.value === token) this.#token = undefined;
  }

  #login(): Promise<CachedToken> {
    if (!this.#inflight) {
      const p = this.#doLogin();
      this.#inflight = p;
      p.then(
        () => {
          if (this.#inflight === p) this.#inflight = undefined;
        },
        () => {
          if (this.#inflight === p) this.#inflight = undefined;
        },
      );
    }
    return this.#inflight;
  }

  async #doLogin(): Promise<CachedToken> {
    const { loginBaseUrl, clientId, clientSecret, dispatcher, timeoutMs } = this.opts;
    const basic = Buffer.from(`${clientId}:${clientSecret.reveal()}`, 'utf8').toString('base64');
    let res: Dispatcher.ResponseData;
    try {
      res = await request(`${loginBaseUrl}/oauth/token`, {
        method: 'POST',
        dispatcher,
        headers: {
          authorization: `Basic ${basic}`,
          'content-type': 'application/x-www-form-urlencoded',
          accept: 'application/json',
        },
        body: 'grant_type=client_credentials',
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
      });
    } catch (e) {
      this.#loginFailures++;
      // Only the code travels on: undici errors can carry request details.
      throw new TransientError(undefined, netCodeOf(e) ?? 'EUNKNOWN', undefined);
    }
    const status = res.statusCode;
    if (status === 429) {
      // Genesys says when to come back (docs/genesys-cloud.md: honour Retry-After). Not a
      // TransientError: the 5xx backoff (100 ms–2 s) would only send more logins into the limit.
      this.#loginFailures++;
      const waitMs = retryAfterMs(res.headers, 1_000);
      await res.body.dump().catch(() => {});
      this.#limitedUntil = this.#now() + waitMs;
      throw loginLimited(waitMs);
    }
    if (status >= 500) {
      this.#loginFailures++;
      const body = await readErrorBody(res);
      throw new TransientError(status, undefined, body);
    }
    if (status !== 200) {
      this.#loginFailures++;
      const body = (await readErrorBody(res)) as { error?: unknown; code?: unknown } | undefined;
      const reason = typeof body?.error === 'string' ? body.error : typeof body?.code === 'string' ? body.code : undefined;
      const refusal = genesysError('source.auth_failed', `the Genesys login refused client ${clientId} (HTTP ${status}${reason ? `, ${reason}` : ''})`, {
        extra: { genesys_status: status, ...(reason ? { genesys_code: reason } : {}) },
      });
      this.#refused = { error: refusal, until: this.#now() + (this.opts.refusalHoldMs ?? 30_000) };
      throw refusal;
    }
    let json: { access_token?: unknown; expires_in?: unknown; token_type?: unknown };
    try {
      json = JSON.parse((await readBody(res, 64 * 1024)).toString('utf8')) as typeof json;
    } catch {
      this.#loginFailures++;
      throw new AppError('source.bad_gateway', 'the Genesys login answered with a body that is not JSON');
    }
    const tokenType = typeof json.token_type === 'string' ? json.token_type.toLowerCase() : 'bearer';
    if (typeof json.access_token !== 'string' || json.access_token === '' || tokenType !== 'bearer') {
      this.#loginFailures++;
      throw new AppError('source.bad_gateway', 'the Genesys login answered without a bearer access_token');
    }
    const lifetimeMs = (typeof json.expires_in === 'number' && json.expires_in > 0 ? json.expires_in : 300) * 1000;
    const now = this.#now();
    this.#logins++;
    this.#refused = undefined;
    const token: CachedToken = { value: json.access_token, expiresAt: now + lifetimeMs, refreshAt: now + lifetimeMs - refreshMarginMs(lifetimeMs) };
    this.#token = token;
    return token;
  }
}
