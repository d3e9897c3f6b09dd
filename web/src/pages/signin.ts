import { ApiError, type Who, request, session } from '../api.js';
import { field, h, notice, replace } from '../dom.js';
import { type Page, go, takeFlash } from '../nav.js';
import { beginOidcSignIn, oidcSettings } from '../oidc.js';

const KEY_RE = /^cst_[A-Za-z0-9-]{3,64}_[A-Za-z0-9_-]{24,}$/;

/**
 * Sign-in with an API key (cst_<id>_<secret>). The key is checked by GET /api/v1/whoami (an audited
 * call) and kept in this tab's sessionStorage only. The purpose of access asked here is sent with
 * every play, download and export, and recorded by their audit events.
 * When the gateway has `console.oidc`, "Sign in with your organisation" runs the OIDC
 * authorization code flow with PKCE instead (oidc.ts); the purpose given here goes along.
 */
export const signinPage: Page = (main) => {
  const key = h('input', { type: 'password', id: 'api-key', name: 'api-key', autocomplete: 'off', spellcheck: 'false', required: true, 'aria-required': 'true' });
  const purpose = h('input', { type: 'text', id: 'signin-purpose', name: 'purpose', required: true, 'aria-required': 'true', maxlength: 500, autocomplete: 'off', value: session.purpose });
  const status = h('div', { class: 'status-slot', 'aria-live': 'polite' });
  const flash = takeFlash();
  if (flash) replace(status, notice(flash.kind, flash.message));
  const submit = h('button', { type: 'submit', class: 'primary' }, 'Sign in');

  const form = h(
    'form',
    { class: 'card signin', novalidate: true, 'aria-labelledby': 'signin-title' },
    h('h1', { id: 'signin-title' }, 'Sign in to the auditor console'),
    h('p', { class: 'muted' }, 'Every search, play, download and export you make here goes through the gateway API and is written to its tamper-evident audit trail, with the purpose you give below.'),
    field('API key', key, 'cst_<id>_<secret>, issued with "custodian keys create". Kept in this browser tab only, until you sign out or close it.'),
    field('Purpose of access', purpose, 'Why you are accessing recordings, e.g. a case or ticket number. Recorded with each access; you can change it later.'),
    status,
    h('div', { class: 'actions' }, submit),
  );
  /** The purpose of access, or null after telling the user it is missing (both sign-in ways need one). */
  const purposeGiven = (): string | null => {
    const p = purpose.value.trim();
    if (!p) {
      replace(status, notice('error', 'Give a purpose of access: it is recorded with every access you make.'));
      purpose.setAttribute('aria-invalid', 'true');
      purpose.focus();
      return null;
    }
    purpose.removeAttribute('aria-invalid');
    return p;
  };
  const oidcSlot = h('div', { class: 'oidc-slot' });
  form.appendChild(oidcSlot);
  void oidcSettings().then((cfg) => {
    if (!cfg) return;
    const btn = h('button', { type: 'button', class: 'primary', id: 'oidc-signin' }, 'Sign in with your organisation');
    btn.addEventListener('click', async () => {
      const p = purposeGiven();
      if (!p) return;
      btn.disabled = true;
      replace(status, notice('info', 'Going to your organisation’s sign-in page…'));
      try {
        await beginOidcSignIn(cfg, p);
      } catch (e) {
        replace(status, notice('error', (e as Error).message));
        btn.disabled = false;
      }
    });
    replace(oidcSlot, h('hr', {}), h('p', { class: 'muted' }, `Or, with the purpose above, sign in through your organisation’s identity provider (${new URL(cfg.issuer).host}):`), h('div', { class: 'actions' }, btn));
  });
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const k = key.value.trim();
    if (!KEY_RE.test(k)) {
      replace(status, notice('error', 'That is not an API key: it looks like cst_<id>_<secret>.'));
      key.setAttribute('aria-invalid', 'true');
      key.focus();
      return;
    }
    key.removeAttribute('aria-invalid');
    const p = purposeGiven();
    if (!p) return;
    submit.disabled = true;
    replace(status, notice('info', 'Checking the key…'));
    try {
      const who = (await (await request('GET', '/api/v1/whoami', { key: k })).json()) as Who;
      session.start(k, who, p);
      key.value = '';
      go('find');
    } catch (e) {
      const msg = e instanceof ApiError ? (e.status === 401 ? 'The gateway refused this key.' : `${e.message} (${e.code})`) : String(e);
      replace(status, notice('error', msg));
      key.focus();
    } finally {
      submit.disabled = false;
    }
  });
  replace(main, h('div', { class: 'center' }, form));
};
