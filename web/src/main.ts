import './styles.css';
import { type ApiError, selection, session, setUnauthorizedHandler } from './api.js';
import { type Page, go, isSigningOut, onBeforeSignOut, parseRoute, signOut } from './nav.js';
import { h, replace } from './dom.js';
import { auditPage } from './pages/audit.js';
import { evidencePage } from './pages/evidence.js';
import { findPage } from './pages/find.js';
import { recordingPage } from './pages/recording.js';
import { signinPage } from './pages/signin.js';
import { consoleSettings, finishOidcSignIn, isOidcCallback } from './oidc.js';
import { setIdleLogoff, watchIdle } from './idle.js';

const PAGES: Record<string, { page: Page; title: string; signedIn: boolean }> = {
  signin: { page: signinPage, title: 'Sign in', signedIn: false },
  find: { page: findPage, title: 'Find recordings', signedIn: true },
  recording: { page: recordingPage, title: 'Recording', signedIn: true },
  evidence: { page: evidencePage, title: 'Evidence package', signedIn: true },
  audit: { page: auditPage, title: 'Audit trail', signedIn: true },
};

const app = document.getElementById('app')!;
let cleanup: (() => void | Promise<void>) | void;
let expiryTimer: ReturnType<typeof setTimeout> | undefined;

/** An OIDC access token is not renewed: when it expires, the console signs out and says why. */
function watchExpiry(): void {
  clearTimeout(expiryTimer);
  const at = session.key ? session.expiresAt : null;
  if (at === null) return;
  const expired = () => void signOut('Your organisation sign-in has expired. Sign in again.');
  if (at <= Date.now()) return expired();
  expiryTimer = setTimeout(expired, Math.min(at - Date.now(), 2 ** 31 - 1));
}

function header(active: string): HTMLElement {
  const who = session.who!;
  const purpose = h('input', { id: 'purpose', type: 'text', required: true, maxlength: 500, autocomplete: 'off', value: session.purpose });
  purpose.addEventListener('change', () => {
    const v = purpose.value.trim();
    if (v) session.purpose = v;
    else purpose.value = session.purpose;
  });
  const count = h('span', {}, h('span', { class: 'count', id: 'sel-count' }, String(selection.all().length)), h('span', { class: 'visually-hidden' }, ' selected'));
  const link = (name: string, label: string, extra?: HTMLElement) =>
    h('a', { href: `#/${name}`, class: active === name ? 'active' : '', ...(active === name ? { 'aria-current': 'page' } : {}) }, label, extra ? ' ' : '', extra ?? null);
  return h(
    'header',
    { class: 'top' },
    h('div', { class: 'brand' }, h('img', { src: '/console/favicon.svg', alt: '', width: 28, height: 28 }), h('span', {}, 'custodian'), h('span', { class: 'brand-sub' }, 'auditor console')),
    h('nav', { 'aria-label': 'Main' }, link('find', 'Find'), link('evidence', 'Evidence', count), link('audit', 'Audit')),
    h('div', { class: 'purpose' }, h('label', { for: 'purpose' }, 'Purpose of access'), purpose),
    h(
      'div',
      { class: 'who' },
      h('span', { class: 'who-name', title: `credential ${who.credential_id ?? ''}` }, `${who.principal} @ ${who.tenant}`),
      h('button', { type: 'button', class: 'link', onclick: () => void signOut() }, 'Sign out'),
    ),
  );
}

/** Runs the current page's clean-up once; its promise (a ticket revocation) for sign-out to await. */
function runCleanup(): Promise<void> {
  const c = cleanup;
  cleanup = undefined;
  try {
    return Promise.resolve(c?.()).catch(() => {});
  } catch {
    /* a page's clean-up must not stop navigation or sign-out */
    return Promise.resolve();
  }
}

function render(): void {
  // A sign-out is under way (its clean-up is revoking the player's ticket): it navigates when done.
  if (isSigningOut()) return;
  const route = parseRoute(location.hash);
  if (!PAGES[route.name]) {
    go(session.key ? 'find' : 'signin');
    return;
  }
  const def = PAGES[route.name]!;
  const wasSignedIn = !!session.key;
  watchExpiry();
  watchIdle();
  // Just signing out (token expired, or idle): signOut's own navigation renders the sign-in page with its message.
  if (isSigningOut() || (wasSignedIn && !session.key)) return;
  if (def.signedIn && !session.key) {
    go('signin');
    return;
  }
  if (!def.signedIn && session.key && route.name === 'signin') {
    go('find');
    return;
  }
  void runCleanup();
  const main = h('main', { id: 'main', tabindex: -1 });
  replace(app, def.signedIn ? header(route.name) : null, main);
  document.title = `${def.title} · custodian console`;
  cleanup = def.page(main, route);
  // Screen readers hear the new page: focus its heading.
  const h1 = main.querySelector('h1');
  if (h1) {
    h1.setAttribute('tabindex', '-1');
    h1.focus({ preventScroll: true });
  }
}

setUnauthorizedHandler((e: ApiError) => {
  // Already signed out (e.g. a poll that went out after the idle logoff): keep that sign-out's message.
  if (!session.key) return;
  void signOut(e.code === 'auth.expired_token' ? 'Your sign-in has expired (the gateway answered auth.expired_token). Sign in again.' : `The gateway no longer accepts your credential (${e.code}). Sign in again.`);
});
window.addEventListener('hashchange', render);
window.addEventListener('selectionchange-custodian', () => {
  const c = document.getElementById('sel-count');
  if (c) c.textContent = String(selection.all().length);
});
document.querySelector('.skip-link')?.addEventListener('click', (ev) => {
  ev.preventDefault();
  document.getElementById('main')?.focus();
});
// Leaving the page: tell the gateway the player's ticket is no longer needed.
window.addEventListener('pagehide', () => void runCleanup());
// Signing out (button, idle logoff, expiry, 401): the page's clean-up runs first, with the credential still there.
onBeforeSignOut(runCleanup);

async function boot(): Promise<void> {
  const settings = await consoleSettings();
  setIdleLogoff(settings.idle_logoff_ms);
  const oidc = settings.oidc ?? null;
  if (isOidcCallback(oidc)) {
    replace(app, h('main', { id: 'main', tabindex: -1 }, h('div', { class: 'center' }, h('p', { role: 'status' }, 'Finishing the sign-in…'))));
    const failure = await finishOidcSignIn(oidc).catch((e: Error) => `The sign-in could not be completed (${e.message}).`);
    if (failure) void signOut(failure, 'error');
    else go('find');
    return;
  }
  render();
}
void boot();
