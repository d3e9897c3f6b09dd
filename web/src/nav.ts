import { session } from './api.js';

export interface Route {
  name: string;
  arg: string;
  query: URLSearchParams;
}

/** A page renders into `main` and returns its clean-up (stop players, revoke tickets, cancel polls). */
export type Page = (main: HTMLElement, route: Route) => (() => void) | void;

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

export function signOut(message?: string, kind: Flash['kind'] = 'warn'): void {
  session.end();
  flash = message ? { message, kind } : null;
  go('signin');
}

/** A message shown once by the sign-in page (e.g. "your key was refused"). */
export function takeFlash(): Flash | null {
  const f = flash;
  flash = null;
  return f;
}
