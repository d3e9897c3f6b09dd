import { ApiError, type RecordingMeta, json, qs, selection } from '../api.js';
import { field, fmtTime, h, notice, option, replace } from '../dom.js';
import { type Page, go, href } from '../nav.js';
import { codecs, copiesList, errorNotice, holdBadge, label, retentionBadge } from './common.js';

const FIELDS = ['ref', 'call_id', 'from', 'to', 'source_system', 'origin', 'state'] as const;
const STATES = ['AVAILABLE', 'ARCHIVED', 'RESTORING', 'RESTORED', 'DELETED', 'UPLOADING', 'ERROR'];

/** datetime-local (read as UTC) → ISO 8601 with Z. */
const toIso = (v: string) => (v ? `${v.length === 16 ? `${v}:00` : v}Z` : '');
const fromIso = (v: string | null) => (v ? v.replace(/Z$/, '').slice(0, 16) : '');

/**
 * Find: by any identifier (resolved like the API's ref: call id, customer ref, Genesys ids, legacy
 * archive ids) or by catalog search (call id, time range, source system, origin, migration state).
 */
export const findPage: Page = (main, route) => {
  const q = route.query;
  const ref = h('input', { type: 'search', id: 'q-ref', value: q.get('ref') ?? '', autocomplete: 'off', spellcheck: 'false' });
  const callId = h('input', { type: 'text', id: 'q-call', value: q.get('call_id') ?? '', autocomplete: 'off' });
  const from = h('input', { type: 'datetime-local', id: 'q-from', value: fromIso(q.get('from')) });
  const to = h('input', { type: 'datetime-local', id: 'q-to', value: fromIso(q.get('to')) });
  const source = h('input', { type: 'text', id: 'q-source', value: q.get('source_system') ?? '', autocomplete: 'off' });
  const origin = h('select', { id: 'q-origin' }, option('', 'Any'), option('GENESYS_CLOUD', 'Genesys Cloud', q.get('origin') === 'GENESYS_CLOUD'), option('LEGACY_ARCHIVE', 'Legacy archive', q.get('origin') === 'LEGACY_ARCHIVE'));
  const state = h('select', { id: 'q-state' }, option('', 'Any'), STATES.map((s) => option(s, s, q.get('state') === s)));

  const form = h(
    'form',
    { class: 'card search', role: 'search', 'aria-label': 'Find recordings' },
    h('div', { class: 'grid' }, field('Any id', ref, 'Call id, customer ref, Genesys conversation or recording id, legacy archive id…'), field('Call id', callId), field('Source system', source, 'e.g. avaya_aura, verint, genesys_cloud')),
    h('div', { class: 'grid' }, field('From (UTC)', from), field('To (UTC)', to), field('Origin', origin), field('Migration state', state)),
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Search'), h('button', { type: 'reset', class: 'secondary' }, 'Clear')),
  );
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const vals: Record<string, string> = {
      ref: ref.value.trim(),
      call_id: callId.value.trim(),
      from: toIso(from.value),
      to: toIso(to.value),
      source_system: source.value.trim(),
      origin: origin.value,
      state: state.value,
    };
    const query: Record<string, string> = { run: '1' };
    for (const k of FIELDS) if (vals[k]) query[k] = vals[k]!;
    go('find', '', query);
  });
  form.addEventListener('reset', () => setTimeout(() => go('find', '', {}), 0));

  const status = h('div', { class: 'status-slot', 'aria-live': 'polite' });
  const results = h('section', { 'aria-labelledby': 'results-title', class: 'results' });
  const toolbar = h('div', { class: 'toolbar' });
  const updateToolbar = () => {
    const n = selection.all().length;
    replace(
      toolbar,
      h('span', {}, n === 0 ? 'Select recordings to put them in an evidence package.' : `${n} recording${n === 1 ? '' : 's'} selected for evidence.`),
      n ? h('a', { class: 'button primary', href: href('evidence') }, 'Build evidence package') : null,
      n ? h('button', { type: 'button', class: 'secondary', onclick: () => (selection.clear(), updateToolbar(), syncChecks()) }, 'Clear selection') : null,
    );
  };
  const checks: HTMLInputElement[] = [];
  const syncChecks = () => checks.forEach((c) => (c.checked = selection.has(c.value)));

  const table = h('table', { class: 'data' });
  const tbody = h('tbody');
  const more = h('div', { class: 'actions' });

  const row = (r: RecordingMeta) => {
    const cb = h('input', { type: 'checkbox', value: r.id, 'aria-label': `Select ${label(r)} for evidence` });
    cb.checked = selection.has(r.id);
    cb.addEventListener('change', () => {
      selection.toggle({ id: r.id, label: label(r) }, cb.checked);
      updateToolbar();
    });
    checks.push(cb);
    return h(
      'tr',
      {},
      h('td', { class: 'sel' }, cb),
      h('th', { scope: 'row' }, h('a', { href: href('recording', r.id) }, label(r)), h('div', { class: 'sub mono' }, r.id)),
      h('td', {}, fmtTime(r.started_at)),
      h('td', {}, copiesList(r)),
      h('td', {}, codecs(r)),
      h('td', {}, retentionBadge(r)),
      h('td', {}, holdBadge(r)),
    );
  };

  const header = h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, h('span', { class: 'visually-hidden' }, 'Select')), ['Recording', 'Started', 'Copies (origin, source, state)', 'Codec', 'Retention', 'Legal hold'].map((c) => h('th', { scope: 'col' }, c))));
  table.append(h('caption', { class: 'visually-hidden' }, 'Recordings found'), header, tbody);

  const ac = new AbortController();
  const show = (items: RecordingMeta[], next: string | null, append: boolean, params: Record<string, string>) => {
    if (!append) {
      tbody.replaceChildren();
      checks.length = 0;
    }
    items.forEach((r) => tbody.append(row(r)));
    const count = tbody.rows.length;
    replace(results, h('h2', { id: 'results-title' }, `${count} recording${count === 1 ? '' : 's'}${next ? ' (more available)' : ''}`), toolbar, count ? table : notice('info', 'Nothing matches. Any id looks in every identifier; the other fields filter the catalog.'), more);
    replace(more, next ? h('button', { type: 'button', class: 'secondary', onclick: () => void load({ ...params, cursor: next }, true) }, 'Load more') : null);
  };

  const load = async (params: Record<string, string>, append = false) => {
    replace(status, notice('info', 'Searching…'));
    try {
      if (params.ref) {
        const r = await json<RecordingMeta>('GET', `/api/v1/recordings/${encodeURIComponent(params.ref)}`, undefined, ac.signal);
        show([r], null, false, params);
      } else {
        const { ref: _r, ...rest } = params;
        const page = await json<{ items: RecordingMeta[]; next_cursor: string | null }>('GET', `/api/v1/recordings${qs({ ...rest, limit: 50 })}`, undefined, ac.signal);
        show(page.items, page.next_cursor, append, params);
      }
      replace(status);
    } catch (e) {
      if ((e as Error).name === 'AbortError') return;
      if (e instanceof ApiError && e.status === 404) {
        show([], null, false, params);
        replace(status, notice('info', `No recording of your tenant matches “${params.ref}”.`));
      } else replace(status, errorNotice(e, 'Search failed'));
    }
  };

  replace(main, h('h1', {}, 'Find recordings'), form, status, results);
  updateToolbar();
  if (q.get('run')) {
    const params: Record<string, string> = {};
    for (const k of FIELDS) {
      const v = q.get(k);
      if (v) params[k] = v;
    }
    void load(params);
  }
  return () => ac.abort();
};
