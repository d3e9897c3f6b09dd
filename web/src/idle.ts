import { session } from './api.js';
import { signOut } from './nav.js';

/**
 * Automatic logoff (PCI DSS 8.2.8: re-authentication after at most 15 idle minutes; HIPAA
 * 164.312(a)(2)(iii)): after `console.idle_logoff_ms` (default and maximum 15 minutes) without
 * user input — pointer, key, wheel, touch or scroll — the console signs out exactly like "Sign out"
 * (credential gone from memory and sessionStorage, the page's player and polls stopped by its
 * clean-up) and the sign-in page says why. Playing a recording, a poll, or the tab becoming
 * visible again is not input.
 *
 * The clock is timestamps, not one long timer: the time of the last input is compared with
 * Date.now() on a short interval and whenever the tab becomes visible, gets focus or comes back
 * from the back/forward cache, and before an input is counted — so time spent hidden (timers
 * throttled) or asleep counts, and the first mouse move after a night asleep signs out instead
 * of renewing the session. The last input is also kept in sessionStorage (custodian.active_at),
 * so a reload, or a discarded tab the browser restores, does not restart the clock.
 *
 * Per tab: the credential lives in this tab's sessionStorage (api.ts), so each tab is its own
 * session with its own idle clock; input in one tab does not keep another signed in, and nothing
 * is shared through localStorage.
 */
export const DEFAULT_IDLE_LOGOFF_MS = 15 * 60_000;
const MIN_IDLE_LOGOFF_MS = 1_000;
/** Writing sessionStorage on every pointer move is needless: once a second is precise enough. */
const PERSIST_EVERY_MS = 1_000;

const INPUT_EVENTS = ['pointerdown', 'pointermove', 'keydown', 'wheel', 'touchstart', 'scroll'] as const;
const CHECK_EVENTS = ['focus', 'pageshow'] as const;

let limitMs = DEFAULT_IDLE_LOGOFF_MS;
let lastInput = 0;
let persistedAt = 0;
let interval: ReturnType<typeof setInterval> | undefined;

/** The gateway's setting; anything missing or out of bounds falls back within 1 s .. 15 min. */
export function setIdleLogoff(ms: unknown): void {
  limitMs = typeof ms === 'number' && Number.isFinite(ms) ? Math.min(Math.max(Math.round(ms), MIN_IDLE_LOGOFF_MS), DEFAULT_IDLE_LOGOFF_MS) : DEFAULT_IDLE_LOGOFF_MS;
  if (interval !== undefined) {
    stop();
    start();
  }
}

function duration(ms: number): string {
  if (ms % 60_000 === 0) return ms === 60_000 ? '1 minute' : `${ms / 60_000} minutes`;
  const s = Math.round(ms / 1000);
  return s === 1 ? '1 second' : `${s} seconds`;
}

/** Signs out (and returns true) when the limit has passed since the last input. */
function expired(now = Date.now()): boolean {
  if (!session.key) {
    stop();
    return false;
  }
  if (now - lastInput < limitMs) return false;
  stop();
  void signOut(`Signed out after ${duration(limitMs)} without activity. Sign in again to continue.`);
  return true;
}

const check = () => void expired();
const onVisibility = () => {
  if (document.visibilityState === 'visible') expired();
};

function onInput(): void {
  const now = Date.now();
  // The first input after the limit (e.g. waking the machine) must not renew the session.
  if (expired(now)) return;
  lastInput = now;
  if (now - persistedAt >= PERSIST_EVERY_MS) {
    persistedAt = now;
    session.markActive(now);
  }
}

function start(): void {
  lastInput = session.activeAt ?? Date.now();
  persistedAt = 0;
  for (const t of INPUT_EVENTS) window.addEventListener(t, onInput, { capture: true, passive: true });
  for (const t of CHECK_EVENTS) window.addEventListener(t, check);
  document.addEventListener('visibilitychange', onVisibility);
  interval = setInterval(check, Math.min(1_000, Math.max(250, limitMs / 4)));
}

function stop(): void {
  if (interval === undefined) return;
  clearInterval(interval);
  interval = undefined;
  for (const t of INPUT_EVENTS) window.removeEventListener(t, onInput, { capture: true });
  for (const t of CHECK_EVENTS) window.removeEventListener(t, check);
  document.removeEventListener('visibilitychange', onVisibility);
}

/**
 * Called on every navigation: runs the idle clock while signed in and stops it otherwise.
 * Returns true when it just signed out (the sign-in page then renders from signOut's navigation).
 */
export function watchIdle(): boolean {
  if (!session.key) {
    stop();
    return false;
  }
  if (interval === undefined) start();
  return expired();
}
