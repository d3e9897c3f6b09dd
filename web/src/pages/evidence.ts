import { type RecordingMeta, json, request, selection, session } from '../api.js';
import { field, fmtBytes, h, notice, replace, saveBlob } from '../dom.js';
import { type Page, href } from '../nav.js';
import { errorNotice, label } from './common.js';

interface JobStatus {
  job_id: string;
  status: 'queued' | 'running' | 'ready' | 'failed' | 'expired';
  progress: { recordings_total: number; recordings_done: number; files_done: number; bytes_done: number };
  content_endpoint?: string;
  size?: number;
  sha256?: string;
  problems?: number;
  expires_at?: string;
  error?: { code: string; detail: string };
}

async function sha256Hex(blob: Blob): Promise<string> {
  const d = await crypto.subtle.digest('SHA-256', await blob.arrayBuffer());
  return [...new Uint8Array(d)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

/**
 * Evidence package: the selected recordings → POST /api/v1/evidence. Small sets stream back at
 * once; larger ones run as a job whose progress is polled. The ZIP holds original bytes, a playable
 * copy, metadata, audit events, a manifest, SHA256SUMS and its Ed25519 signature, and a README on
 * verifying it offline.
 */
export const evidencePage: Page = (main) => {
  const canExport = session.can('recordings:export') && session.can('audit:read');
  const list = h('div');
  const status = h('div', { class: 'status-slot', 'aria-live': 'polite' });
  const progress = h('div', { class: 'progress-slot' });
  const result = h('div');
  const keyInfo = h('p', { class: 'muted' });
  let stop = false;

  const renderList = () => {
    const items = selection.all();
    if (!items.length) {
      replace(list, notice('info', 'No recordings selected. Pick them on ', h('a', { href: href('find') }, 'Find'), ' or add one by id below.'));
      build.disabled = true;
      return;
    }
    build.disabled = !canExport;
    replace(
      list,
      h(
        'table',
        { class: 'data' },
        h('caption', { class: 'visually-hidden' }, 'Recordings in the package'),
        h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Recording'), h('th', { scope: 'col' }, 'Id'), h('th', { scope: 'col' }, h('span', { class: 'visually-hidden' }, 'Remove')))),
        h(
          'tbody',
          {},
          items.map((s) =>
            h(
              'tr',
              {},
              h('th', { scope: 'row' }, h('a', { href: href('recording', s.id) }, s.label)),
              h('td', { class: 'mono' }, s.id),
              h('td', {}, h('button', { type: 'button', class: 'link', 'aria-label': `Remove ${s.label}`, onclick: () => (selection.toggle(s, false), renderList()) }, 'Remove')),
            ),
          ),
        ),
      ),
    );
  };

  const addRef = h('input', { type: 'text', id: 'ev-add', autocomplete: 'off', spellcheck: 'false' });
  const addForm = h('form', { class: 'inline-form' }, field('Add a recording by any id', addRef), h('button', { type: 'submit', class: 'secondary' }, 'Add'));
  addForm.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const ref = addRef.value.trim();
    if (!ref) return;
    try {
      const r = await json<RecordingMeta>('GET', `/api/v1/recordings/${encodeURIComponent(ref)}`);
      selection.toggle({ id: r.id, label: label(r) }, true);
      addRef.value = '';
      replace(status);
      renderList();
    } catch (e) {
      replace(status, errorNotice(e, `Cannot add “${ref}”`));
    }
  });

  const build = h('button', { type: 'button', class: 'primary', id: 'build-evidence' }, 'Build evidence package');

  const showReady = (name: string, blob: Blob, sha: string, problems: number) => {
    const again = h('button', { type: 'button', class: 'primary', id: 'download-evidence' }, `Download ${name} again`);
    again.addEventListener('click', () => saveBlob(blob, name));
    replace(
      result,
      notice(problems ? 'warn' : 'ok', `Package ready: ${name}, ${fmtBytes(blob.size)}.`, problems ? ` ${problems} file(s) could not be read: see "problems" in manifest.json.` : ''),
      h('dl', { class: 'facts' }, h('dt', {}, 'SHA-256 of the ZIP'), h('dd', { class: 'mono', id: 'zip-sha' }, sha)),
      h('div', { class: 'actions' }, again),
    );
  };

  const fetchJob = async (job: JobStatus) => {
    const name = `evidence-${job.job_id.replace(/^evjob_/, '')}.zip`;
    const dlb = h('button', { type: 'button', class: 'primary', id: 'download-evidence' }, `Download ${name} (${fmtBytes(job.size)})`);
    dlb.addEventListener('click', async () => {
      dlb.disabled = true;
      try {
        const blob = await (await request('GET', job.content_endpoint!)).blob();
        saveBlob(blob, name);
        showReady(name, blob, job.sha256 ?? (await sha256Hex(blob)), job.problems ?? 0);
      } catch (e) {
        replace(status, errorNotice(e, 'Download failed'));
        dlb.disabled = false;
      }
    });
    replace(
      result,
      notice(job.problems ? 'warn' : 'ok', `Package ready (${job.progress.files_done} files). It stays on the gateway, encrypted, until ${job.expires_at ?? '?'}.`),
      h('dl', { class: 'facts' }, h('dt', {}, 'SHA-256 of the ZIP'), h('dd', { class: 'mono', id: 'zip-sha' }, job.sha256 ?? '—')),
      h('div', { class: 'actions' }, dlb),
    );
    dlb.focus();
  };

  build.addEventListener('click', async () => {
    const items = selection.all();
    if (!items.length) return;
    if (!session.purpose) {
      replace(status, notice('error', 'Give a purpose of access (top of the page) first.'));
      return;
    }
    build.disabled = true;
    replace(result);
    replace(status, notice('info', `Building a package of ${items.length} recording(s)…`));
    try {
      const res = await request('POST', '/api/v1/evidence', { body: { refs: items.map((s) => s.id), purpose: session.purpose, mode: 'auto' } });
      if (res.status === 200) {
        const name = `evidence-${res.headers.get('X-Evidence-Package-Id') ?? 'package'}.zip`;
        const blob = await res.blob();
        saveBlob(blob, name);
        replace(status);
        showReady(name, blob, await sha256Hex(blob), 0);
        return;
      }
      const { poll_endpoint } = (await res.json()) as { poll_endpoint: string };
      const bar = h('progress', { id: 'evidence-progress', max: items.length, value: 0, 'aria-label': 'Evidence package progress' });
      const text = h('span', { class: 'muted' });
      replace(progress, h('div', { class: 'progress' }, bar, text));
      replace(status, notice('info', 'The package is built on the gateway as a job; progress follows.'));
      for (;;) {
        if (stop) return;
        const s = await json<JobStatus>('GET', poll_endpoint);
        bar.max = Math.max(1, s.progress.recordings_total);
        bar.value = s.progress.recordings_done;
        replace(text, ` ${s.progress.recordings_done} of ${s.progress.recordings_total} recordings · ${s.progress.files_done} files · ${fmtBytes(s.progress.bytes_done)} · ${s.status}`);
        if (s.status === 'ready') {
          replace(status);
          await fetchJob(s);
          return;
        }
        if (s.status === 'failed' || s.status === 'expired') {
          replace(status, notice('error', `The package ${s.status}: ${s.error?.code ?? ''} ${s.error?.detail ?? ''}`));
          return;
        }
        await new Promise((r) => setTimeout(r, 400));
      }
    } catch (e) {
      replace(status, errorNotice(e, 'The package could not be built'));
    } finally {
      build.disabled = false;
    }
  });

  replace(
    main,
    h('h1', {}, 'Evidence package'),
    h(
      'section',
      { class: 'card', 'aria-labelledby': 'sel-title' },
      h('h2', { id: 'sel-title' }, 'Recordings'),
      list,
      addForm,
    ),
    h(
      'section',
      { class: 'card', 'aria-labelledby': 'build-title' },
      h('h2', { id: 'build-title' }, 'Build'),
      canExport ? null : notice('warn', 'Your credential needs the recordings:export and audit:read scopes to export evidence.'),
      h('p', {}, 'The ZIP holds, per recording, the original bytes, a playable WAV (when the original needs transcoding), the normalised metadata and its audit events; plus a manifest with the SHA-256 of every file, signed by the gateway, and a README on verifying it offline. Each recording’s trail records the export (', h('code', {}, 'recording.export'), ') with your purpose of access.'),
      h('div', { class: 'actions' }, build),
      progress,
      status,
      result,
    ),
    h(
      'section',
      { class: 'card', 'aria-labelledby': 'verify-title' },
      h('h2', { id: 'verify-title' }, 'Verify offline'),
      h(
        'pre',
        { class: 'code-block' },
        'unzip evidence-….zip -d evidence && cd evidence\nopenssl pkeyutl -verify -pubin -inkey public-key.pem -rawin -in SHA256SUMS.sha256 -sigfile SHA256SUMS.sha256.sig\nsha256sum -c SHA256SUMS.sha256 && sha256sum -c SHA256SUMS\nopenssl pkey -pubin -in public-key.pem -outform DER | sha256sum   # = the fingerprint below',
      ),
      keyInfo,
    ),
  );
  renderList();
  if (canExport) {
    json<{ key_id: string; algorithm: string; public_key_sha256: string }>('GET', '/api/v1/evidence/public-key')
      .then((k) => replace(keyInfo, `Signing key (${k.algorithm}) fingerprint: `, h('code', { id: 'key-id', title: k.key_id }, k.public_key_sha256)))
      .catch((e: unknown) => replace(keyInfo, errorNotice(e, 'Signing key unavailable')));
  }
  return () => {
    stop = true;
  };
};
