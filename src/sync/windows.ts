import { AppError } from '../errors.js';

const DAY = 86_400_000;

/**
 * Where an unfinished windowed run stands: the run's range, the current window and the next page
 * in it. Shared by the Genesys analytics sync and the legacy search-API sync; `kind` tells a
 * stored cursor of one from the other's.
 */
export interface WindowCursor<K extends string = string> {
  kind: K;
  from: string;
  to: string;
  windowStart: string;
  windowEnd: string;
  /** Next page to fetch (1-based) in the current window. */
  page: number;
}

/** What the range planning needs of the tenant's sync settings. */
export interface WindowSettings {
  overlap_ms: number;
  initial_lookback_days: number;
  window_ms: number;
}

/** The next window from `start`: at most window_ms long, never crossing a UTC midnight (the APIs answer whole days) nor `to`. */
export function nextWindowEnd(start: number, to: number, windowMs: number): number {
  const midnight = Math.floor(start / DAY) * DAY + DAY;
  return Math.min(start + windowMs, midnight, to);
}

/** Windows a range splits into (for a progress total). */
export function windowCount(from: string, to: string, windowMs: number): number {
  let n = 0;
  for (let t = Date.parse(from), end = Date.parse(to); t < end; t = nextWindowEnd(t, end, windowMs)) n++;
  return n;
}

/**
 * The range a run covers: the explicit --since (a fresh run), the unfinished run's stored cursor
 * (resumed at its page), or the last success minus the overlap (first run: the lookback).
 */
export function planWindows<K extends string>(
  kind: K,
  cfg: WindowSettings,
  stored: { cursor: unknown; syncedUntil: string | null },
  since: Date | undefined,
  until: Date,
): { cursor: WindowCursor<K>; resumed: boolean } {
  const c = stored.cursor as WindowCursor | null;
  if (!since && c && c.kind === kind) return { cursor: c as WindowCursor<K>, resumed: true };
  const from = since
    ? since.getTime()
    : stored.syncedUntil
      ? Date.parse(stored.syncedUntil) - cfg.overlap_ms
      : until.getTime() - cfg.initial_lookback_days * DAY;
  const to = until.getTime();
  if (!(from < to)) throw new AppError('request.invalid', '--since must be before the end of the sync range');
  const iso = (t: number) => new Date(t).toISOString();
  return { cursor: { kind, from: iso(from), to: iso(to), windowStart: iso(from), windowEnd: iso(nextWindowEnd(from, to, cfg.window_ms)), page: 1 }, resumed: false };
}

/** The cursor at the first page of the window after the current one. */
export function advanceWindow<K extends string>(cur: WindowCursor<K>, windowMs: number): WindowCursor<K> {
  const start = Date.parse(cur.windowEnd);
  return { ...cur, windowStart: cur.windowEnd, windowEnd: new Date(nextWindowEnd(start, Date.parse(cur.to), windowMs)).toISOString(), page: 1 };
}

/**
 * The first half of an over-full window (more results than the API pages), or null when it is
 * already at `minMs`. The second half needs no bookkeeping: after the first half, the next
 * window starts at its end and is cut at the same midnight as before, and is split again in
 * turn if it is still too full. So the cursor keeps its shape and a crash resumes anywhere.
 */
export function splitWindow<K extends string>(cur: WindowCursor<K>, minMs: number): WindowCursor<K> | null {
  const s = Date.parse(cur.windowStart);
  const e = Date.parse(cur.windowEnd);
  const half = Math.floor((e - s) / 2);
  if (half < minMs) return null;
  return { ...cur, windowEnd: new Date(s + half).toISOString(), page: 1 };
}
