import { createHash } from 'node:crypto';
import { AppError } from '../errors.js';

export type RangeRequest = { start: number; end?: number } | { suffix: number };

/**
 * Parses a single-range `Range: bytes=…` header (RFC 9110 §14.1.2). Several ranges are not
 * served (null: the whole representation is sent, which the RFC allows); syntax errors are a
 * clear 400 rather than silently ignored, so a broken player is noticed.
 */
export function parseRange(header: string | undefined): RangeRequest | null {
  if (header === undefined) return null;
  const m = /^bytes=(.*)$/i.exec(header.trim());
  if (!m) throw new AppError('range.malformed', 'only byte ranges are supported (Range: bytes=start-end)');
  const specs = m[1]!.split(',').map((s) => s.trim());
  if (specs.some((s) => !/^(\d{1,15}-\d{0,15}|-\d{1,15})$/.test(s))) throw new AppError('range.malformed');
  if (specs.length > 1) return null;
  const spec = specs[0]!;
  if (spec.startsWith('-')) {
    return { suffix: Number(spec.slice(1)) };
  }
  const [a, b] = spec.split('-');
  const start = Number(a);
  if (b === '') return { start };
  const end = Number(b);
  if (end < start) throw new AppError('range.malformed', 'range end is before its start');
  return { start, end };
}

/** Resolves a range against a known length; throws 416 (with Content-Range: bytes *\/len) when it selects nothing. */
export function resolveRange(r: RangeRequest, length: number): { start: number; end: number } {
  const unsatisfiable = () => new AppError('range.not_satisfiable', undefined, { extra: { size: length }, headers: { 'Content-Range': `bytes */${length}` } });
  if ('suffix' in r) {
    // A zero-length suffix selects nothing (RFC 9110 §14.1.3).
    if (length === 0 || r.suffix === 0) throw unsatisfiable();
    return { start: Math.max(0, length - r.suffix), end: length - 1 };
  }
  if (r.start >= length) throw unsatisfiable();
  return { start: r.start, end: Math.min(r.end ?? length - 1, length - 1) };
}

/**
 * RFC 9110 §13.1.5: a Range sent with If-Range applies only while the validator still names the
 * representation — a strong entity tag equal to ours. No Last-Modified is issued, so a date never
 * matches, and a representation without an entity tag (a transcoded output) matches nothing.
 * When it does not hold the whole representation is sent (200), never a slice of other bytes: the
 * same ref may be served from another copy between a download and its resumption.
 */
export function ifRangeHolds(ifRange: string | string[] | undefined, etag: string | undefined): boolean {
  const v = (Array.isArray(ifRange) ? ifRange[0] : ifRange)?.trim();
  if (v === undefined) return true;
  return etag !== undefined && v === etag;
}

/** A strong entity tag for the bytes `parts` name, opaque: ids and digests stay inside. */
export function entityTag(...parts: (string | number | null | undefined)[]): string {
  return `"${createHash('sha256').update(parts.map((p) => String(p ?? '')).join('\0')).digest('base64url').slice(0, 27)}"`;
}
