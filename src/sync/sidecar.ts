import { parse as parseCsv } from 'csv-parse/sync';
import { extractRecords } from '../sources/legacy-http/xml.js';
import type { LegacySyncSource, Mappable } from './config.js';

export class SidecarError extends Error {}

/** Field lookup in a parsed sidecar: a dotted path (JSON) or a flat name (CSV, XML). */
export type Lookup = (field: string) => unknown;

function dotted(obj: unknown, path: string): unknown {
  let cur: unknown = obj;
  for (const part of path.split('.')) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur;
}

/** Parses a sidecar's text into a lookup; a sidecar that does not parse is an error (the item is skipped and reported). */
export function parseSidecar(text: string, cfg: Pick<LegacySyncSource, 'sidecar' | 'xml_record_element' | 'mapping'>): Lookup {
  switch (cfg.sidecar) {
    case 'json': {
      let doc: unknown;
      try {
        doc = JSON.parse(text);
      } catch {
        throw new SidecarError('the JSON sidecar does not parse');
      }
      if (!doc || typeof doc !== 'object' || Array.isArray(doc)) throw new SidecarError('the JSON sidecar is not an object');
      return (f) => dotted(doc, f);
    }
    case 'csv': {
      let rows: Record<string, string>[];
      try {
        rows = parseCsv(text, { columns: true, skip_empty_lines: true, trim: true, bom: true, to: 1 }) as Record<string, string>[];
      } catch (e) {
        throw new SidecarError(`the CSV sidecar does not parse (${(e as Error).message.slice(0, 120)})`);
      }
      const row = rows[0];
      if (!row) throw new SidecarError('the CSV sidecar has no data row');
      return (f) => row[f];
    }
    case 'xml': {
      const fields = Object.values(cfg.mapping).filter((v): v is string => !!v);
      let recs;
      try {
        recs = extractRecords(text, cfg.xml_record_element ?? 'recording', fields, 1);
      } catch (e) {
        throw new SidecarError(`the XML sidecar is refused (${(e as Error).message.slice(0, 120)})`);
      }
      const rec = recs[0];
      if (!rec) throw new SidecarError(`the XML sidecar has no <${cfg.xml_record_element ?? 'recording'}> element`);
      return (f) => rec.fields[f];
    }
    case 'none':
      return () => undefined;
  }
}

export interface MappedSidecar {
  record: Record<string, unknown>;
  facts: { startedAt: string | null; durationMs: number | null; ani: string | null; dnis: string | null };
}

const str = (v: unknown): string | null => {
  if (v === undefined || v === null) return null;
  if (typeof v === 'string') return v.trim() === '' ? null : v.trim();
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return null;
};

const DATE_COLUMNS = new Set<Mappable>(['started_at', 'retention_expiry', 'source_retention_expiry']);

/** A date as the catalog wants it: ISO-8601 with an offset; epoch seconds or milliseconds are converted; anything else is left for validation to refuse (a zone-less local time cannot be guessed). */
function dateOf(v: string): string {
  if (/^\d{10}$/.test(v)) return new Date(Number(v) * 1000).toISOString();
  if (/^\d{13}$/.test(v)) return new Date(Number(v)).toISOString();
  return v;
}

/** Applies the configured mapping: sidecar fields → catalog columns and crosswalk facts. */
export function mapSidecar(lookup: Lookup, mapping: LegacySyncSource['mapping']): MappedSidecar {
  const record: Record<string, unknown> = {};
  const facts: MappedSidecar['facts'] = { startedAt: null, durationMs: null, ani: null, dnis: null };
  for (const [col, field] of Object.entries(mapping) as [Mappable, string][]) {
    const v = str(lookup(field));
    if (v === null) continue;
    switch (col) {
      case 'duration_ms':
      case 'duration_s': {
        const n = Number(v);
        if (Number.isFinite(n) && n >= 0) facts.durationMs = Math.round(col === 'duration_s' ? n * 1000 : n);
        break;
      }
      case 'ani':
        facts.ani = v;
        break;
      case 'dnis':
        facts.dnis = v;
        break;
      case 'size_bytes':
        record.size_bytes = /^\d+$/.test(v) ? Number(v) : v;
        break;
      case 'legal_hold':
        record.legal_hold = ['true', '1', 'yes', 'y'].includes(v.toLowerCase());
        break;
      case 'sha256':
        record.sha256 = v.toLowerCase();
        break;
      default:
        record[col] = DATE_COLUMNS.has(col) ? dateOf(v) : v;
    }
  }
  if (typeof record.started_at === 'string' && !Number.isNaN(Date.parse(record.started_at))) facts.startedAt = new Date(Date.parse(record.started_at)).toISOString();
  return { record, facts };
}

/** Verint layout `yyyy/mm/dd/hh/<id>.wav`: the hour the path names, as a fallback start time. */
export function hourFromPath(path: string): string | null {
  const m = /(?:^|\/)(\d{4})\/(\d{2})\/(\d{2})\/(\d{2})\/[^/]+$/.exec(path);
  if (!m) return null;
  const iso = `${m[1]}-${m[2]}-${m[3]}T${m[4]}:00:00.000Z`;
  return Number.isNaN(Date.parse(iso)) ? null : iso;
}
