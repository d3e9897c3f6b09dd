import { session } from './api.js';

export interface Route {
  name: string;
  arg: string;
  query: URLSearchParams;
}

/**
 * A page renders into `main` and returns its clean-up (stop players, revoke tickets, cancel polls).
 * A clean-up that talks to the gateway (revoking a media ticket) returns a promise: sign-out waits
 * for it (bounded) before the credential is cleared.
 */
export type Page = (main: HTMLElement, route: Route) => (() => void | Promise<void>) | void;

export function parseRoute(hash: string): Route {
  const m = /^#\/([a-z]+)(?:\/([^?]*))?(?:\?(.*))?$/.exec(hash);
  if (!m) return { name: '', arg: '', query: new URLSearchParams() };
  return { name: m[1]!, arg: m[2] ? decodeURIComponent(m[2]) : '', query: new URLSearchParams(m[3] ?? '') };
}

export function href(name: string, arg = '', query: Record<string, string> = {}): string {
  const q = new URLSearchParams(query).toString();
  return `#/${name}${arg ? `/${encodeURIComponent(arg)}` : ''}${q ? `?${q}` : ''}`;
}

export function go(name: string, arg = '', query: Record<string, string> = {}): void {
  const target = href(name, arg, query);
  if (location.hash === target) window.dispatchEvent(new HashChangeEvent('hashchange'));
  else location.hash = target;
}

export interface Flash {
  message: string;
  /** 'error' is announced at once (role=alert): a sign-in that failed. */
  kind: 'warn' | 'error';
}
let flash: Flash | null = null;

/** How long sign-out waits for the page's clean-up (the ticket revocation) before it clears the credential anyway. */
export const SIGN_OUT_CLEANUP_WAIT_MS = 1_500;

let beforeSignOut: (() => void | Promise<void>) | null = null;
let signingOut = false;
let pending: Promise<void> = Promise.resolve();

/** main.ts registers the current page's clean-up here: it must run while the credential is still there. */
export function onBeforeSignOut(f: () => void | Promise<void>): void {
  beforeSignOut = f;
}

/** True from the moment a sign-out starts until the credential is gone: nothing new may render or start. */
export function isSigningOut(): boolean {
  return signingOut;
}

/**
 * Signs out: first the page's clean-up, with the credential still present (the player revokes its
 * media ticket with it — after session.end() it could not), awaited for at most
 * SIGN_OUT_CLEANUP_WAIT_MS so sign-out never hangs on a slow gateway; then the credential and the
 * rest of the session are cleared and the sign-in page is shown. Used by "Sign out", the idle
 * logoff, token expiry and a 401; a second call while one runs joins it.
 */
export function signOut(message?: string, kind: Flash['kind'] = 'warn'): Promise<void> {
  if (signingOut) return pending;
  signingOut = true;
  pending = (async () => {
    try {
      const done = beforeSignOut?.();
      if (done) {
        let timer: ReturnType<typeof setTimeout> | undefined;
        await Promise.race([done.catch(() => {}), new Promise<void>((r) => (timer = setTimeout(r, SIGN_OUT_CLEANUP_WAIT_MS)))]);
        clearTimeout(timer);
      }
    } catch {
      /* a clean-up that throws must not keep anyone signed in */
    }
    session.end();
    flash = message ? { message, kind } : null;
    // Cleared before navigating: go() may render synchronously, and render() stays idle while signing out.
    signingOut = false;
    go('signin');
  })();
  return pending;
}

/** A message shown once by the sign-in page (e.g. "your key was refused"). */
export function takeFlash(): Flash | null {
  const f = flash;
  flash = null;
  return f;
}
