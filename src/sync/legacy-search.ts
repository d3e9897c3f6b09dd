import { AppError } from '../errors.js';
import type { LegacyTimeSearch, TimeSearchHit } from '../sources/legacy-http/time-search.js';
import { addResults, type ApplyItem, type ApplyResult, applyRecords, emptyResult, type SyncContext } from './apply.js';
import type { LegacySearchSource, SyncTenantConfig } from './config.js';
import type { Progress } from './progress.js';
import { copiesStartedIn, deletedItems, type GoneCopy } from './vanish.js';
import { advanceWindow, planWindows, splitWindow, type WindowCursor, windowCount } from './windows.js';

/** Where an unfinished search-API run stands (page n asks offset (n-1) × page_size). */
export type LegacySearchCursor = WindowCursor<'legacy-search'>;

export interface LegacySearchPageInfo {
  windowStart: string;
  page: number;
  hits: number;
  pagesDone: number;
}

export interface LegacySearchRunStats extends ApplyResult {
  from: string;
  to: string;
  resumed: boolean;
  windows: number;
  pages: number;
  hits: number;
  /** Copies the catalog held for a fully read window that the recorder no longer lists (confirmed by a second read): marked DELETED. */
  vanished: number;
  /** Windows halved because they held more than the search pages (max_window_results). */
  splits: number;
  /** Windows at min_window_ms still over-full: paged as deep as the recorder allows, the rest missed. */
  overfull: { interval: string; total: number | null }[];
}

/** MediaSense states meaning the media is gone from the recorder. */
const GONE_STATES = new Set(['DELETED', 'PRUNED']);

/** The catalog item of one search hit: an Avaya segment (inum:<inum>) or a MediaSense session (its id). */
export function searchItem(ctx: SyncContext, sourceSystem: string, h: TimeSearchHit): ApplyItem {
  const gone = h.state !== null && GONE_STATES.has(h.state);
  return {
    origin: `${sourceSystem} ${h.id}`,
    record: {
      source_system: sourceSystem,
      connector: ctx.source,
      storage_location: 'LEGACY_ARCHIVE',
      legacy_archive_id: h.id,
      locator: h.locator,
      ...(h.startedAt ? { started_at: h.startedAt } : {}),
      // The UCID is what a migration tags the Genesys conversation with: the crosswalk's external_tag key.
      ...(h.ucid ? { external_tag: h.ucid } : {}),
      ...(gone ? { state: 'DELETED' } : {}),
    },
    facts: { startedAt: h.startedAt, durationMs: h.durationMs, ani: h.ani, dnis: h.dnis, archiveDate: null },
    ...(gone ? {} : { present: true }),
  };
}

/**
 * Syncs a legacy recorder through its search-by-time API, window by window over the run's range
 * (the Genesys sync's windows, cursor and resume), paging each window by offset. A window holding
 * more than the recorder pages is halved down to min_window_ms. Copies of a window read whole in
 * this run that the recorder no longer lists are confirmed by a second read and, once the whole
 * run has ended well, marked DELETED.
 */
export async function syncLegacySearch(
  ctx: SyncContext,
  opts: {
    search: LegacyTimeSearch;
    src: LegacySearchSource;
    sourceSystem: string;
    cfg: SyncTenantConfig;
    leaseOwner: string;
    since?: Date;
    until?: Date;
    progress?: Progress;
    onPage?: (p: LegacySearchPageInfo) => void | Promise<void>;
  },
): Promise<LegacySearchRunStats> {
  const { search, src, cfg, sourceSystem } = opts;
  const stored = await ctx.store.read(ctx.tenantId, ctx.source);
  const plan = planWindows('legacy-search', cfg, stored, opts.since, opts.until ?? new Date());
  let cur = plan.cursor;
  const stats: LegacySearchRunStats = { ...emptyResult(), from: cur.from, to: cur.to, resumed: plan.resumed, windows: 0, pages: 0, hits: 0, vanished: 0, splits: 0, overfull: [] };
  const to = Date.parse(cur.to);
  const size = src.page_size;
  const maxPages = Math.max(1, Math.floor(src.max_window_results / size));
  opts.progress?.start(windowCount(cur.windowStart, cur.to, cfg.window_ms), `legacy-http ${ctx.source}`);
  await ctx.store.saveCursor(ctx.tenantId, ctx.source, opts.leaseOwner, cur);

  /** Ids listed in the current window, when it was read from its first page in this run (else null: no vanish check). */
  let seen: Set<string> | null = cur.page === 1 ? new Set() : null;
  let truncated = false;
  const candidates: { window: [string, string]; copies: GoneCopy[] }[] = [];

  while (Date.parse(cur.windowStart) < to) {
    if (ctx.signal.aborted) throw new AppError('source.unavailable', 'sync aborted');
    const ws = new Date(cur.windowStart);
    const we = new Date(cur.windowEnd);
    const interval = `${cur.windowStart}/${cur.windowEnd}`;
    const ans = await search.page(ws, we, (cur.page - 1) * size, size, ctx.signal);
    // Over-full: the recorder counts more than it pages, or (no total) the deepest page is still full.
    const overfull = (cur.page === 1 && ans.total !== null && ans.total > maxPages * size) || (ans.total === null && cur.page >= maxPages && ans.count >= size);
    if (overfull && !truncated) {
      const half = splitWindow(cur, cfg.min_window_ms);
      if (half) {
        stats.splits++;
        cur = half;
        seen = new Set();
        await ctx.store.saveCursor(ctx.tenantId, ctx.source, opts.leaseOwner, cur);
        continue;
      }
      truncated = true;
      stats.overfull.push({ interval, total: ans.total });
    }
    const inWindow = ans.hits.filter((h) => h.startedAt === null || (h.startedAt >= cur.windowStart && h.startedAt < cur.windowEnd));
    for (const h of inWindow) seen?.add(h.id);
    addResults(stats, await applyRecords(ctx, inWindow.map((h) => searchItem(ctx, sourceSystem, h))));
    stats.pages++;
    stats.hits += inWindow.length;
    ctx.metrics?.pages.inc({ kind: 'legacy-http' });

    const last = ans.count < size || (ans.total !== null && cur.page * size >= ans.total) || cur.page >= maxPages;
    if (last) {
      if (seen && !truncated) {
        const gone = (await copiesStartedIn(ctx, sourceSystem, cur.windowStart, cur.windowEnd)).filter((g) => !seen!.has(g.legacy_archive_id ?? g.source_key));
        if (gone.length) candidates.push({ window: [cur.windowStart, cur.windowEnd], copies: gone });
      }
      stats.windows++;
      opts.progress?.tick(1, `legacy-http ${ctx.source} ${cur.windowStart.slice(0, 10)}`);
      cur = advanceWindow(cur, cfg.window_ms);
      seen = new Set();
      truncated = false;
    } else {
      cur = { ...cur, page: cur.page + 1 };
    }
    await ctx.store.saveCursor(ctx.tenantId, ctx.source, opts.leaseOwner, cur);
    if (!(await ctx.store.heartbeat(ctx.tenantId, ctx.source, opts.leaseOwner, cfg.lease_ms))) throw new AppError('sync.busy', 'the sync lost its lease to another instance');
    await opts.onPage?.({ windowStart: ws.toISOString(), page: cur.page, hits: inWindow.length, pagesDone: stats.pages });
  }

  // The run read its whole range: confirm each candidate window by reading it again (a recording
  // removed mid-paging shifts the offsets and can hide a neighbour), then mark what is still absent.
  for (const c of candidates) {
    const listed = await listWindow(search, new Date(c.window[0]), new Date(c.window[1]), size, maxPages, ctx.signal);
    if (listed === null) continue;
    const gone = c.copies.filter((g) => !listed.has(g.legacy_archive_id ?? g.source_key));
    for (let i = 0; i < gone.length; i += 200) {
      const r = await applyRecords(ctx, deletedItems(ctx, gone.slice(i, i + 200), 'no longer listed by the recorder'));
      addResults(stats, r);
      stats.vanished += r.changed;
    }
  }
  return stats;
}

/** Every id the recorder lists for a window, or null when the window cannot be read whole. */
async function listWindow(search: LegacyTimeSearch, from: Date, to: Date, size: number, maxPages: number, signal: AbortSignal): Promise<Set<string> | null> {
  const ids = new Set<string>();
  for (let page = 1; ; page++) {
    const ans = await search.page(from, to, (page - 1) * size, size, signal);
    for (const h of ans.hits) ids.add(h.id);
    if (ans.count < size || (ans.total !== null && page * size >= ans.total)) return ids;
    if (page >= maxPages) return null;
  }
}
