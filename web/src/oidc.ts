import * as oauth from 'oauth4webapi';
import { ApiError, K_OIDC_PENDING, type Who, request, session } from './api.js';

/**
 * Organisation sign-in: the OAuth 2.0 authorization code flow with PKCE (S256) against the
 * configured OIDC provider, the console being a public client (no secret exists to leak). The
 * access token (a JWT the gateway verifies against auth.jwt: issuer, audience, JWKS) is used as
 * the bearer credential exactly like an API key; the ID token is checked (issuer, audience, nonce,
 * expiry) by oauth4webapi and then dropped. Nothing is put in localStorage or a URL: the pending
 * request (verifier, state, nonce) waits in this tab's sessionStorage during the round trip and
 * is deleted as soon as the provider answers, and the callback's query is wiped from the address
 * bar before anything else happens.
 */
export interface OidcSettings {
  issuer: string;
  client_id: string;
  scopes: string[];
  redirect_path: string;
}

interface Pending {
  verifier: string;
  state: string;
  nonce: string;
  purpose: string;
  createdAt: number;
}

/** A sign-in attempt older than this is not finished (the provider's code would have expired anyway). */
const PENDING_MAX_AGE_MS = 10 * 60_000;

/** GET /api/v1/console/config: what the page needs before anyone is signed in. */
export interface ConsoleSettings {
  oidc: OidcSettings | null;
  /** Automatic logoff after this much time without input (idle.ts); absent if the gateway could not be asked. */
  idle_logoff_ms?: number;
}

let settings: Promise<ConsoleSettings> | null = null;

/** The gateway's public console settings (GET /api/v1/console/config), fetched once per page load. */
export function consoleSettings(): Promise<ConsoleSettings> {
  settings ??= fetch('/api/v1/console/config', { cache: 'no-store', credentials: 'omit', headers: { Accept: 'application/json' } })
    .then(async (r) => (r.ok ? ((await r.json()) as ConsoleSettings) : { oidc: null }))
    .catch(() => ({ oidc: null }));
  return settings;
}

export function oidcSettings(): Promise<OidcSettings | null> {
  return consoleSettings().then((s) => s.oidc ?? null);
}

const redirectUri = (s: OidcSettings) => new URL(s.redirect_path, location.origin).toString();

/** http issuers are only accepted by the gateway's config on loopback (tests, demo). */
const httpOptions = (issuer: URL) => (issuer.protocol === 'http:' ? { [oauth.allowInsecureRequests]: true } : {});

async function discover(s: OidcSettings): Promise<oauth.AuthorizationServer> {
  const issuer = new URL(s.issuer);
  try {
    return await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, httpOptions(issuer)));
  } catch (e) {
    throw new Error(`The identity provider cannot be reached or did not describe itself (${(e as Error).message}).`);
  }
}

/** Step 1: remember the request in this tab, then leave for the provider's login page. */
export async function beginOidcSignIn(s: OidcSettings, purpose: string): Promise<void> {
  const as = await discover(s);
  if (!as.authorization_endpoint) throw new Error('The identity provider has no authorization endpoint.');
  const pending: Pending = { verifier: oauth.generateRandomCodeVerifier(), state: oauth.generateRandomState(), nonce: oauth.generateRandomNonce(), purpose, createdAt: Date.now() };
  const url = new URL(as.authorization_endpoint);
  url.searchParams.set('client_id', s.client_id);
  url.searchParams.set('redirect_uri', redirectUri(s));
  url.searchParams.set('response_type', 'code');
  url.searchParams.set('scope', s.scopes.join(' '));
  url.searchParams.set('code_challenge', await oauth.calculatePKCECodeChallenge(pending.verifier));
  url.searchParams.set('code_challenge_method', 'S256');
  url.searchParams.set('state', pending.state);
  url.searchParams.set('nonce', pending.nonce);
  sessionStorage.setItem(K_OIDC_PENDING, JSON.stringify(pending));
  location.assign(url.toString());
}

/** Whether this page load is the provider sending the browser back. */
export function isOidcCallback(s: OidcSettings | null): s is OidcSettings {
  return !!s && location.pathname === s.redirect_path;
}

/**
 * Step 2, on the redirect path: check state, exchange the code with the verifier, check the ID
 * token (nonce), then ask the gateway who the access token is (an audited whoami). Returns a
 * message for the sign-in page when it fails; the session is started when it works.
 */
export async function finishOidcSignIn(s: OidcSettings): Promise<string | null> {
  const current = new URL(location.href);
  // The code and state leave the address bar (and the history entry) before anything else.
  history.replaceState(null, '', '/console/');
  const raw = sessionStorage.getItem(K_OIDC_PENDING);
  sessionStorage.removeItem(K_OIDC_PENDING);
  let pending: Pending | null = null;
  try {
    pending = raw ? (JSON.parse(raw) as Pending) : null;
  } catch {
    pending = null;
  }
  if (!pending || Date.now() - pending.createdAt > PENDING_MAX_AGE_MS) {
    return 'No sign-in was started in this tab (or it is too old): start again with "Sign in with your organisation".';
  }
  const as = await discover(s);
  const client: oauth.Client = { client_id: s.client_id };
  let params: URLSearchParams;
  try {
    params = oauth.validateAuthResponse(as, client, current.searchParams, pending.state);
  } catch (e) {
    if (e instanceof oauth.AuthorizationResponseError) {
      const what = e.error === 'access_denied' ? 'The identity provider refused the sign-in' : 'The identity provider reported an error';
      return `${what} (${e.error}${e.error_description ? `: ${e.error_description}` : ''}).`;
    }
    if (e instanceof oauth.OperationProcessingError && /state/i.test(e.message)) {
      return 'The answer from the identity provider does not belong to the sign-in started in this tab (state mismatch). Nothing was signed in; start again.';
    }
    return `The answer from the identity provider is not valid (${(e as Error).message}).`;
  }
  let tokens: oauth.TokenEndpointResponse;
  try {
    const res = await oauth.authorizationCodeGrantRequest(as, client, oauth.None(), params, redirectUri(s), pending.verifier, httpOptions(new URL(s.issuer)));
    tokens = await oauth.processAuthorizationCodeResponse(as, client, res, { expectedNonce: pending.nonce, requireIdToken: true });
  } catch (e) {
    if (e instanceof oauth.ResponseBodyError) return `The identity provider refused the token exchange (${e.error}${e.error_description ? `: ${e.error_description}` : ''}).`;
    return `The sign-in could not be completed (${(e as Error).message}).`;
  }
  const token = tokens.access_token;
  try {
    const who = (await (await request('GET', '/api/v1/whoami', { key: token })).json()) as Who;
    const expiresAt = typeof tokens.expires_in === 'number' ? Date.now() + tokens.expires_in * 1000 : null;
    session.start(token, who, pending.purpose, { expiresAt });
    return null;
  } catch (e) {
    return e instanceof ApiError ? `The gateway refused the token from the identity provider: ${e.message} (${e.code}).` : String(e);
  }
}
