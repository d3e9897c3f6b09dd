import { type AuditEvent, type RecordingMeta, json, qs, session } from '../api.js';
import { badge, field, fmtBytes, fmtTime, h, notice, option, replace } from '../dom.js';
import { type Page, go, href } from '../nav.js';
import { errorNotice } from './common.js';

/**
 * GET /api/v1/audit/verify (docs/AUDIT.md): the caller's tenant's view of the shared chain —
 * whether it holds, whether signed checkpoints confirm it, and where it broke only when the broken
 * event is the tenant's own (`seq`, `id`). The whole walk is the operator's (custodian audit verify).
 */
interface Verify {
  ok: boolean;
  checkpointed: boolean;
  broken?: { seq?: number; id?: string; reason: string };
}

/** The verdict in words. */
function verdictText(v: Verify): string {
  if (v.ok) return `Every event's hash matches its event and links to its predecessor.${v.checkpointed ? ' Signed checkpoints confirm it.' : ''}`;
  const reason = v.broken?.reason?.replace('_', ' ') ?? 'unknown';
  if (v.broken?.id) return `First bad link at event #${v.broken.seq} (${reason}), id ${v.broken.id}.`;
  return `First bad link: ${reason}, outside your tenant's events. Tell the operator.`;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const ACTIONS = [
  'recording.media',
  'recording.media.end',
  'recording.retrieve',
  'recording.retrieve.end',
  'recording.export',
  'recording.metadata',
  'recording.waveform',
  'media_ticket.issue',
  'evidence.export',
  'evidence.export.end',
  'evidence.download',
  'catalog.search',
  'audit.read',
  'audit.verify',
  'auth.whoami',
  'recording.cross_tenant_attempt',
];
const OUTCOME_KIND: Record<string, string> = { allowed: 'ok', completed: 'ok', denied: 'bad', failed: 'bad', aborted: 'warn' };

/** What an event says beyond its columns, briefly. */
function details(e: AuditEvent): string {
  const d = e.detail ?? {};
  const keep = ['format', 'range', 'package_id', 'ticket_id', 'job_id', 'mode', 'via', 'query', 'results', 'takes_effect', 'rediscovered_by', 'if_range'];
  const parts = keep.filter((k) => d[k] !== undefined).map((k) => `${k}=${typeof d[k] === 'object' ? JSON.stringify(d[k]) : String(d[k])}`);
  if (Array.isArray(d.fallback_from)) parts.push(`fell back from ${(d.fallback_from as { origin?: string; code?: string }[]).map((a) => `${a.origin} (${a.code})`).join(', ')}`);
  if (e.errorCode) parts.unshift(`error=${e.errorCode}`);
  if (e.sha256 && e.bytesSent !== null) parts.push(`sha256=${e.sha256.slice(0, 12)}…`);
  return parts.join(' · ');
}

/** The audit view: events of a recording or of a principal (any filter of the API), and the chain verdict. */
export const auditPage: Page = (main, route) => {
  const q = route.query;
  if (!session.can('audit:read')) {
    replace(main, h('h1', {}, 'Audit trail'), notice('warn', 'Your credential needs the audit:read scope to read the audit trail.'));
    return;
  }
  const rec = h('input', { type: 'text', id: 'a-rec', value: q.get('recording') ?? '', autocomplete: 'off', spellcheck: 'false' });
  const principal = h('input', { type: 'text', id: 'a-principal', value: q.get('principal') ?? '', autocomplete: 'off' });
  const action = h('input', { type: 'text', id: 'a-action', value: q.get('action') ?? '', list: 'a-actions', autocomplete: 'off' });
  const actions = h('datalist', { id: 'a-actions' }, ACTIONS.map((a) => option(a, a)));
  const outcome = h('select', { id: 'a-outcome' }, option('', 'Any'), ['allowed', 'completed', 'denied', 'failed', 'aborted'].map((o) => option(o, o, q.get('outcome') === o)));
  const form = h(
    'form',
    { class: 'card search', role: 'search', 'aria-label': 'Audit events' },
    h('div', { class: 'grid' }, field('Recording', rec, 'Any id of the recording'), field('Principal', principal, 'Who acted, e.g. alice'), field('Action', action), field('Outcome', outcome)),
    actions,
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Show events'), h('button', { type: 'reset', class: 'secondary' }, 'Clear')),
  );
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const query: Record<string, string> = { run: '1' };
    if (rec.value.trim()) query.recording = rec.value.trim();
    if (principal.value.trim()) query.principal = principal.value.trim();
    if (action.value.trim()) query.action = action.value.trim();
    if (outcome.value) query.outcome = outcome.value;
    go('audit', '', query);
  });
  form.addEventListener('reset', () => setTimeout(() => go('audit'), 0));

  const verdict = h('div', { 'aria-live': 'polite', id: 'chain-verdict' });
  const verifyBtn = h('button', { type: 'button', class: 'secondary' }, 'Verify again');
  const verify = async () => {
    replace(verdict, notice('info', 'Walking the hash chain…'));
    try {
      const v = await json<Verify>('GET', '/api/v1/audit/verify');
      replace(
        verdict,
        v.ok
          ? notice('ok', h('strong', {}, 'Chain intact. '), verdictText(v))
          : notice('error', h('strong', {}, 'Chain BROKEN. '), verdictText(v)),
      );
    } catch (e) {
      replace(verdict, errorNotice(e, 'Verification failed'));
    }
  };
  verifyBtn.addEventListener('click', () => void verify());

  const status = h('div', { class: 'status-slot', 'aria-live': 'polite' });
  const results = h('section', { 'aria-labelledby': 'events-title' });
  const tbody = h('tbody');
  const more = h('div', { class: 'actions' });
  const table = h(
    'table',
    { class: 'data events' },
    h('caption', { class: 'visually-hidden' }, 'Audit events'),
    h('thead', {}, h('tr', {}, ['#', 'Time (UTC)', 'Action', 'Outcome', 'Principal', 'Recording / ref', 'Purpose', 'Status', 'Bytes', 'Details'].map((c) => h('th', { scope: 'col' }, c)))),
    tbody,
  );
  let title = 'Events';
  const row = (e: AuditEvent) =>
    h(
      'tr',
      {},
      h('td', { class: 'num' }, String(e.seq)),
      h('td', { class: 'nowrap' }, fmtTime(e.occurredAt)),
      h('th', { scope: 'row', class: 'mono' }, e.action),
      h('td', {}, badge(e.outcome, OUTCOME_KIND[e.outcome] ?? 'muted')),
      h('td', {}, e.principalId ?? '—', e.principalKind && e.principalKind !== 'api_key' ? h('span', { class: 'sub' }, ` (${e.principalKind})`) : null),
      h('td', { class: 'mono' }, e.recordingPk ? h('a', { href: href('recording', e.recordingPk) }, e.ref && e.ref !== e.recordingPk ? e.ref : `${e.recordingPk.slice(0, 8)}…`) : (e.ref ?? '—')),
      h('td', { class: 'purpose' }, typeof e.detail?.purpose === 'string' ? e.detail.purpose : '—'),
      h('td', { class: 'num' }, e.status === null ? '—' : String(e.status)),
      h('td', { class: 'num nowrap' }, e.bytesSent === null ? '—' : fmtBytes(e.bytesSent)),
      h('td', { class: 'small' }, details(e)),
    );

  const load = async (params: Record<string, string | number>, append: boolean) => {
    replace(status, notice('info', 'Loading events…'));
    try {
      const page = await json<{ items: AuditEvent[]; next_after: number | null }>('GET', `/api/v1/audit/events${qs(params)}`);
      if (!append) tbody.replaceChildren();
      page.items.forEach((e) => tbody.append(row(e)));
      replace(results, h('h2', { id: 'events-title' }, `${title}: ${tbody.rows.length}${page.next_after !== null ? '+' : ''}`), tbody.rows.length ? table : notice('info', 'No events match.'), more);
      replace(more, page.next_after !== null ? h('button', { type: 'button', class: 'secondary', onclick: () => void load({ ...params, after: page.next_after! }, true) }, 'Load more') : null);
      replace(status);
    } catch (e) {
      replace(status, errorNotice(e, 'Cannot read the audit trail'));
    }
  };

  replace(
    main,
    h('h1', {}, 'Audit trail'),
    h('section', { class: 'card', 'aria-labelledby': 'chain-title' }, h('h2', { id: 'chain-title' }, 'Chain verification'), h('p', { class: 'muted' }, 'Every event carries the SHA-256 of its content and of the event before it; an edit, deletion or reordering breaks the chain.'), verdict, h('div', { class: 'actions' }, verifyBtn)),
    form,
    status,
    results,
  );
  void verify();
  if (q.get('run') || q.get('recording') || q.get('principal')) {
    void (async () => {
      const params: Record<string, string | number> = { limit: 200 };
      const r = q.get('recording');
      if (r) {
        let id = r;
        if (!UUID.test(r)) {
          try {
            id = (await json<RecordingMeta>('GET', `/api/v1/recordings/${encodeURIComponent(r)}`)).id;
          } catch (e) {
            replace(status, errorNotice(e, `No recording “${r}”`));
            return;
          }
        }
        params.recording = id;
        title = `Events of recording ${r}`;
      }
      for (const k of ['principal', 'action', 'outcome'] as const) {
        const v = q.get(k);
        if (v) params[k] = v;
      }
      if (params.principal && !r) title = `Events of ${params.principal}`;
      await load(params, false);
    })();
  }
};
