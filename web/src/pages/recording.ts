import { ApiError, type RecordingMeta, json, request, selection, session } from '../api.js';
import { fmtBytes, fmtTime, h, notice, replace, saveBlob } from '../dom.js';
import { type Page, href } from '../nav.js';
import { createPlayer } from '../player.js';
import { codecs, errorNotice, holdBadge, label, originLabel, retentionBadge } from './common.js';

const EXT: Record<string, string> = { 'audio/wav': 'wav', 'audio/mpeg': 'mp3', 'audio/ogg': 'ogg' };

/**
 * Downloads go through POST /api/v1/recordings/retrieve — the contract's entry point, audited as
 * recording.retrieve (a download), with the purpose of access. A slow source answers 202: poll
 * the job, then fetch its content.
 */
async function download(rec: RecordingMeta, format: 'original' | 'wav', status: HTMLElement): Promise<void> {
  const who = session.who!;
  replace(status, notice('info', `Requesting the ${format === 'original' ? 'original bytes' : 'WAV'}…`));
  let res = await request('POST', '/api/v1/recordings/retrieve', {
    body: {
      request_id: `console_${crypto.randomUUID()}`,
      caller_id: who.principal,
      target_recording_ref: rec.id,
      format_preference: format,
      include_metadata: false,
      purpose: session.purpose,
    },
  });
  if (res.status === 202) {
    const { poll_endpoint } = (await res.json()) as { poll_endpoint: string };
    for (;;) {
      const s = await json<{ status: string; bytes_done: number; bytes_total?: number; content_endpoint?: string; error?: { code: string } }>('GET', poll_endpoint);
      if (s.status === 'ready' && s.content_endpoint) {
        res = await request('GET', s.content_endpoint);
        break;
      }
      if (s.status === 'failed' || s.status === 'expired') throw new ApiError(502, s.error?.code ?? 'job.failed', `the retrieval job ${s.status}`, null);
      replace(status, notice('info', `The source is slow; the gateway is fetching it (${fmtBytes(s.bytes_done)}${s.bytes_total ? ` of ${fmtBytes(s.bytes_total)}` : ''})…`));
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
  const type = (res.headers.get('Content-Type') ?? '').split(';')[0]!;
  const blob = await res.blob();
  const name = `${label(rec).replace(/[^A-Za-z0-9._-]+/g, '_')}.${format === 'original' ? (EXT[type] ?? 'bin') : 'wav'}`;
  saveBlob(blob, name);
  replace(status, notice('ok', `Downloaded ${name} (${fmtBytes(blob.size)}, codec ${res.headers.get('X-Audio-Codec') ?? '?'}, transcoded ${res.headers.get('X-Transcoded') ?? '?'}).`));
}

export const recordingPage: Page = (main, route) => {
  const status = h('div', { class: 'status-slot', 'aria-live': 'polite' });
  replace(main, h('h1', {}, 'Recording'), status);
  replace(status, notice('info', 'Loading…'));
  let player: ReturnType<typeof createPlayer> | null = null;
  const ac = new AbortController();

  void (async () => {
    let rec: RecordingMeta;
    try {
      rec = await json<RecordingMeta>('GET', `/api/v1/recordings/${encodeURIComponent(route.arg)}`, undefined, ac.signal);
    } catch (e) {
      if ((e as Error).name !== 'AbortError') replace(status, errorNotice(e, 'Cannot open the recording'));
      return;
    }
    if (ac.signal.aborted) return;
    replace(status);
    document.title = `${label(rec)} · custodian console`;
    const dl = (rows: [string, Node | string][]) => h('dl', { class: 'facts' }, rows.map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
    const sel = h('input', { type: 'checkbox', id: 'rec-select' });
    sel.checked = selection.has(rec.id);
    sel.addEventListener('change', () => selection.toggle({ id: rec.id, label: label(rec) }, sel.checked));

    const copies = h(
      'table',
      { class: 'data' },
      h('caption', {}, 'Copies'),
      h('thead', {}, h('tr', {}, ['Origin', 'Source system', 'State', 'Ids', 'Codec', 'Size', 'SHA-256', 'Encryption'].map((c) => h('th', { scope: 'col' }, c)))),
      h(
        'tbody',
        {},
        rec.copies.map((c) =>
          h(
            'tr',
            {},
            h('th', { scope: 'row' }, originLabel(c.origin)),
            h('td', {}, c.source_system),
            h('td', {}, c.state),
            h('td', { class: 'mono' }, [c.recording_id, c.legacy_archive_id, c.storage_location].filter(Boolean).join(' · ') || '—'),
            h('td', {}, c.codec ?? '—'),
            h('td', {}, fmtBytes(c.size_bytes)),
            h('td', { class: 'mono', title: c.sha256 ?? '' }, c.sha256 ? `${c.sha256.slice(0, 12)}…` : '—'),
            h('td', {}, c.encryption_status ?? '—'),
          ),
        ),
      ),
    );

    player = createPlayer(rec);
    const dlStatus = h('div', { class: 'status-slot', 'aria-live': 'polite' });
    const dlButton = (format: 'original' | 'wav', text: string) => {
      const b = h('button', { type: 'button', class: 'secondary' }, text);
      b.addEventListener('click', async () => {
        b.disabled = true;
        try {
          await download(rec, format, dlStatus);
        } catch (e) {
          replace(dlStatus, errorNotice(e, 'Download failed'));
        } finally {
          b.disabled = false;
        }
      });
      if (rec.retention_status === 'EXPIRED') b.disabled = true;
      return b;
    };

    replace(
      main,
      h('h1', {}, label(rec)),
      h('p', { class: 'muted mono' }, rec.id),
      h(
        'div',
        { class: 'cols' },
        h(
          'section',
          { class: 'card', 'aria-labelledby': 'facts-title' },
          h('h2', { id: 'facts-title' }, 'Catalog record'),
          dl([
            ['Call id', rec.call_id ?? '—'],
            ['Customer ref', rec.customer_ref ?? '—'],
            ['Conversation id', rec.conversation_id ?? '—'],
            ['Started', fmtTime(rec.started_at)],
            ['Retention', h('span', {}, retentionBadge(rec), ` until ${fmtTime(rec.retention_expiry)}`)],
            ['Legal hold', holdBadge(rec)],
            ['Codec (catalog)', codecs(rec)],
          ]),
          h('div', { class: 'actions' }, h('label', { class: 'check' }, sel, ' Include in the evidence package'), h('a', { class: 'button secondary', href: href('audit', '', { recording: rec.id }) }, 'Audit trail of this recording')),
        ),
        h(
          'section',
          { class: 'card', 'aria-labelledby': 'dl-title' },
          h('h2', { id: 'dl-title' }, 'Download'),
          h('p', { class: 'muted' }, 'Downloading is audited as ', h('code', {}, 'recording.retrieve'), ' — a different event from playing — with your purpose of access.'),
          h('div', { class: 'actions' }, dlButton('original', 'Original bytes'), dlButton('wav', 'PCM WAV')),
          dlStatus,
        ),
      ),
      player.el,
      h('section', { class: 'card' }, copies),
    );
    const h1 = main.querySelector('h1');
    h1?.setAttribute('tabindex', '-1');
    h1?.focus({ preventScroll: true });
  })();

  // The player's revocation of its ticket is returned: sign-out awaits it before clearing the credential.
  return () => {
    ac.abort();
    return player?.destroy();
  };
};
