import { ApiError, type CopyMeta, type RecordingMeta } from '../api.js';
import { badge, h, notice } from '../dom.js';

export function errorNotice(e: unknown, what: string): HTMLElement {
  if (e instanceof ApiError) {
    return notice('error', `${what}: ${e.message}`, h('span', { class: 'code' }, ` ${e.code}${e.requestId ? ` · request ${e.requestId}` : ''}`));
  }
  return notice('error', `${what}: ${String(e)}`);
}

export function retentionBadge(r: RecordingMeta): HTMLElement {
  const kind = r.retention_status === 'ACTIVE' ? 'ok' : r.retention_status === 'LEGAL_HOLD' ? 'warn' : 'bad';
  return badge(r.retention_status.replace('_', ' '), kind);
}

export function holdBadge(r: RecordingMeta): HTMLElement {
  return r.legal_hold ? badge('Legal hold', 'warn') : h('span', { class: 'muted' }, 'No');
}

export function originLabel(o: CopyMeta['origin']): string {
  return o === 'GENESYS_CLOUD' ? 'Genesys Cloud' : 'Legacy archive';
}

/** Which copies exist: origin, source system, state. */
export function copiesList(r: RecordingMeta): HTMLElement {
  return h(
    'ul',
    { class: 'copies' },
    r.copies.map((c) =>
      h(
        'li',
        {},
        badge(originLabel(c.origin), c.origin === 'GENESYS_CLOUD' ? 'cloud' : 'legacy'),
        ' ',
        h('span', {}, c.source_system),
        ' ',
        badge(c.state, c.state === 'AVAILABLE' || c.state === 'RESTORED' ? 'ok' : c.state === 'DELETED' || c.state === 'ERROR' ? 'bad' : 'warn'),
      ),
    ),
  );
}

export function codecs(r: RecordingMeta): string {
  const set = [...new Set(r.copies.map((c) => c.codec).filter((c): c is string => !!c))];
  return set.length ? set.join(', ') : 'not catalogued';
}

/** Primary display name of a recording. */
export function label(r: RecordingMeta): string {
  return r.call_id ?? r.customer_ref ?? r.copies[0]?.legacy_archive_id ?? r.copies[0]?.recording_id ?? r.id;
}
