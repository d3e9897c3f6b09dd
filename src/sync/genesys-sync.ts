import { filterOnly } from '../catalog/filter-only.js';
import { AppError, isAppError } from '../errors.js';
import { isCallRecording } from '../resolve/genesys-finder.js';
import type { GenesysConnector } from '../sources/genesys/connector.js';
import type { AnalyticsConversation, ConversationQuery, RecordingMetadata } from '../sources/genesys/models.js';
import { addResults, type ApplyItem, type ApplyResult, applyRecords, emptyResult, type SyncContext } from './apply.js';
import type { SyncTenantConfig } from './config.js';
import type { Progress } from './progress.js';
import { advanceWindow, planWindows, splitWindow, type WindowCursor, windowCount } from './windows.js';

export { nextWindowEnd, windowCount } from './windows.js';

/** Where an unfinished Genesys run stands: the run's range, the current window and the next page. */
export type GenesysCursor = WindowCursor<'genesys'>;

export interface PageInfo {
  windowStart: string;
  page: number;
  conversations: number;
  pagesDone: number;
}

export interface GenesysSyncOptions {
  connector: GenesysConnector;
  cfg: SyncTenantConfig;
  /** Start of the range instead of the stored position (a fresh run, the stored cursor is dropped). */
  since?: Date;
  /** End of the range (default: now). */
  until?: Date;
  /** Called after each page is written and the cursor saved; tests throw here to simulate a crash. */
  onPage?: (p: PageInfo) => void | Promise<void>;
  progress?: Progress;
  leaseOwner: string;
  /** Where a skipped conversation is told (the runner's logger); never given credentials or links. */
  log?: (level: 'warn', msg: string, o: object) => void;
}

export interface GenesysRunStats extends ApplyResult {
  from: string;
  to: string;
  resumed: boolean;
  windows: number;
  pages: number;
  conversations: number;
  recordings: number;
  /** Copies the catalog knew for a listed conversation that Genesys no longer lists: marked DELETED. */
  vanished: number;
  /** Windows halved because they held more conversations than the query pages (max_window_results). */
  splits: number;
  /** Windows at min_window_ms still over-full: paged as deep as the API allows, the rest missed (interval and totalHits). */
  overfull: { interval: string; totalHits: number }[];
  /**
   * Conversations whose recordings the client may not list (a 403 naming a division or policy of
   * that conversation): skipped, each in `skipped` and `invalid` too; their known copies are kept as they are.
   */
  notPermitted: number;
  /** Recordings left out because their media is not audio (chat, email, message transcripts). */
  nonAudio: number;
  /** Conversations skipped by earlier runs (`notPermitted`) asked again at the start of this one, whatever its range. */
  retried: number;
  /** Of those, the ones now synced, or gone from Genesys (404): no longer retried. */
  recovered: number;
  /** Conversations left to retry after this run (still refused, plus this run's `notPermitted`), at most MAX_SKIPPED. */
  stillSkipped: number;
  /** Oldest skipped conversations dropped from the retry list to keep it within MAX_SKIPPED (logged at warn); only a --since over their day recovers them. */
  skippedDropped: number;
  /**
   * Conversations this run's windows read before they were complete (incompleteReason: in
   * progress, no recording listed yet, a recording still UPLOADING): carried to be read again.
   */
  incomplete: number;
  /** Conversations carried by earlier runs as incomplete, read again at the start of this one (those in its range are left to its windows). */
  rechecked: number;
  /** Carried conversations found complete by this run (read again first, or by a window): no longer carried. */
  settled: number;
  /** Incomplete conversations left to read again after this run, at most MAX_PENDING. */
  stillPending: number;
  /**
   * Incomplete conversations given up: still incomplete PENDING_MAX_AGE_MS after their start
   * (`too_old`), or the oldest beyond MAX_PENDING (`list_full`). Logged at warn; the first 100 named
   * in `gaveUp` (and so in the run's sync.run audit event). A --since over their day reads them again.
   */
  pendingGivenUp: number;
  gaveUp: { conversation: string; start: string; reason: PendingReason; why: 'too_old' | 'list_full' }[];
}

/** A conversation skipped for a 403 of its own, retried by the next runs until it syncs or is gone. */
export interface SkippedConversation {
  id: string;
  /** conversationStart: the day the details query is asked about when it is readable again. */
  start: string;
}

/**
 * Why a conversation, as read, is not complete yet: `in_progress` (the details query gives no
 * conversationEnd), `no_recording` (over, but GET …/recordingmetadata lists no recording yet: they
 * are uploaded after the call, from an edge or BYOC premises hours later), `uploading` (a recording
 * listed in fileState UPLOADING: its state, dates and size are not final).
 */
export type PendingReason = 'in_progress' | 'no_recording' | 'uploading';
const PENDING_REASONS = new Set<string>(['in_progress', 'no_recording', 'uploading']);

/**
 * A conversation read before it was complete. Listed by its start, it would never be read again
 * once the runs' ranges have passed it (only the last `overlap_ms` is read twice): it is carried
 * and read again by the next runs until it is complete or given up.
 */
export interface PendingConversation {
  id: string;
  /** conversationStart: the day its details are asked about, and its age. */
  start: string;
  /** conversationEnd once known: while no recording is listed, its details need not be asked again. */
  end?: string;
  reason: PendingReason;
  /** Not read again by a run ending before this (pendingBackoff): a call over for a day need not be asked about every 15 minutes. */
  next?: string;
}

/** Most incomplete conversations carried (the same costs and bound as MAX_SKIPPED); the oldest beyond it are given up. */
export const MAX_PENDING = 2000;
/** How long after its start an incomplete conversation is waited for (edge uploads can lag for hours, a site be cut off for days). */
export const PENDING_MAX_AGE_MS = 7 * 86_400_000;

/** How long after a read an incomplete conversation waits to be read again: an eighth of its age, at most 6 hours. */
export function pendingBackoff(ageMs: number): number {
  return Math.min(6 * 3_600_000, Math.max(0, Math.floor(ageMs / 8)));
}

/** Why this conversation, as read, is not complete yet (PendingReason); undefined when it is. */
export function incompleteReason(c: AnalyticsConversation, recs: RecordingMetadata[]): PendingReason | undefined {
  if (!c.conversationEnd) return 'in_progress';
  if (!recs.length) return 'no_recording';
  if (recs.some((m) => m.fileState === 'UPLOADING')) return 'uploading';
  return undefined;
}

/**
 * Most skipped conversations kept for retry. The list rides in the cursor, rewritten after every
 * page (~80 bytes each), and each entry costs a metadata listing per run: a bound on both.
 */
export const MAX_SKIPPED = 2000;

const DAY = 86_400_000;
const STATES = new Set(['AVAILABLE', 'ARCHIVED', 'RESTORING', 'RESTORED', 'DELETED', 'UPLOADING', 'ERROR']);
/**
 * 403 codes of GET …/recordingmetadata (recording.yml x-inin-error-codes) that concern one
 * conversation — its division, a policy on it, the view check of its recording or of one of that
 * recording's segments — not the client as a whole: that conversation is
 * skipped and reported. Any other 403 (missing.permissions, missing.any.permissions,
 * app.not.authorized.for.scope, not.authorized, no code) means the client lacks the right
 * altogether: skipping would pass every conversation by, so it fails the page as before.
 */
const CONVERSATION_DENIED = new Set([
  'missing.division.permission',
  'missing.any.division.permissions',
  'recording.recording.view.permission.check.failed',
  'recording.recordingsegment.view.permission.check.failed',
  'authz.policy.denied',
]);

/** The Genesys code of a 403 about this one conversation, or undefined. */
function conversationDenied(e: unknown): string | undefined {
  if (!isAppError(e) || e.code !== 'source.auth_failed') return undefined;
  const extra = e.extra as { genesys_status?: unknown; genesys_code?: unknown } | undefined;
  return extra?.genesys_status === 403 && typeof extra.genesys_code === 'string' && CONVERSATION_DENIED.has(extra.genesys_code) ? extra.genesys_code : undefined;
}

/**
 * The retry list after a page: the newly skipped appended (one already listed keeps its place:
 * its age is when it was first skipped), those that synced removed, and the oldest dropped beyond
 * `max`, counted.
 */
export function keepSkipped(list: SkippedConversation[], add: SkippedConversation[], synced: Set<string>, max = MAX_SKIPPED): { list: SkippedConversation[]; dropped: number } {
  const kept = keepList(list, add, synced, max);
  return { list: kept.list, dropped: kept.dropped.length };
}

/**
 * The incomplete conversations to carry after a read: as keepSkipped (one already carried keeps
 * its place, its age being its start; the complete removed), one read again taking its latest
 * reason; the oldest beyond `max` handed back, to be given up.
 */
export function keepPending(list: PendingConversation[], add: PendingConversation[], done: Set<string>, max = MAX_PENDING): { list: PendingConversation[]; dropped: PendingConversation[] } {
  return keepList(list, add, done, max);
}

function keepList<T extends { id: string }>(list: T[], add: T[], done: Set<string>, max: number): { list: T[]; dropped: T[] } {
  const out = list.filter((s) => !done.has(s.id));
  const at = new Map(out.map((s, i) => [s.id, i]));
  for (const s of add) {
    if (done.has(s.id)) continue;
    const i = at.get(s.id);
    if (i !== undefined) {
      out[i] = s;
      continue;
    }
    at.set(s.id, out.length);
    out.push(s);
  }
  const n = Math.max(0, out.length - max);
  return { list: out.slice(n), dropped: out.slice(0, n) };
}

/** The retry list handed on by the previous run (store `carry`); anything else read as none. */
function skippedOf(carry: unknown): SkippedConversation[] {
  const list = (carry as { skipped?: unknown } | undefined)?.skipped;
  if (!Array.isArray(list)) return [];
  return list.filter((s): s is SkippedConversation => typeof s?.id === 'string' && typeof s?.start === 'string' && !Number.isNaN(Date.parse(s.start)));
}

/** The incomplete conversations handed on by the previous run (store `carry`); anything else read as none. */
function pendingOf(carry: unknown): PendingConversation[] {
  const list = (carry as { pending?: unknown } | undefined)?.pending;
  if (!Array.isArray(list)) return [];
  return list.filter(
    (p): p is PendingConversation =>
      typeof p?.id === 'string' && typeof p?.start === 'string' && !Number.isNaN(Date.parse(p.start)) && PENDING_REASONS.has(p?.reason) &&
      (p.end === undefined || typeof p.end === 'string') &&
      (p.next === undefined || (typeof p.next === 'string' && !Number.isNaN(Date.parse(p.next)))),
  );
}

/** The range a run covers: the explicit --since, the unfinished run's, or the last success minus the overlap. */
export function planRange(cfg: SyncTenantConfig, stored: { cursor: unknown; syncedUntil: string | null }, since: Date | undefined, until: Date): { cursor: GenesysCursor; resumed: boolean } {
  return planWindows('genesys', cfg, stored, since, until);
}

async function mapLimit<T, R>(items: T[], limit: number, fn: (t: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i]!);
      }
    }),
  );
  return out;
}

function callFacts(c: AnalyticsConversation): { sipCallId: string | null; ani: string | null; dnis: string | null } {
  const sessions = (c.participants ?? []).flatMap((p) => (p.sessions ?? []).map((s) => ({ purpose: p.purpose, ...s })));
  const voice = sessions.filter((s) => !s.mediaType || s.mediaType === 'voice');
  const customer = voice.find((s) => s.purpose === 'customer' || s.purpose === 'external') ?? voice[0];
  return {
    sipCallId: voice.find((s) => s.protocolCallId)?.protocolCallId ?? null,
    ani: customer?.ani ?? null,
    dnis: customer?.dnis ?? null,
  };
}

/** Catalog records (and facts) of one conversation's call recordings (audio only: isCallRecording, shared with the resolver's finder). */
export function recordsOf(source: string, c: AnalyticsConversation, recs: RecordingMetadata[]): ApplyItem[] {
  const { sipCallId, ani, dnis } = callFacts(c);
  const start = c.conversationStart ? Date.parse(c.conversationStart) : NaN;
  const end = c.conversationEnd ? Date.parse(c.conversationEnd) : NaN;
  return recs
    .filter(isCallRecording)
    .map((m) => ({
      origin: `conversation ${c.conversationId} recording ${m.id}`,
      record: {
        source_system: 'genesys_cloud',
        recording_id: m.id,
        conversation_id: c.conversationId,
        connector: source,
        storage_location: 'GENESYS_CLOUD',
        ...(m.fileState && STATES.has(m.fileState) ? { state: m.fileState } : {}),
        ...(c.conversationStart ? { started_at: c.conversationStart } : {}),
        // Always sent, null when Genesys has none: a delete date removed there (the recording PUT
        // removes it) is cleared in the catalog, not kept to call the copy deleted after it.
        source_retention_expiry: m.deleteDate || null,
        ...(c.externalTag ? { external_tag: c.externalTag } : {}),
        ...(sipCallId ? { sip_call_id: sipCallId } : {}),
      },
      facts: {
        startedAt: Number.isNaN(start) ? null : new Date(start).toISOString(),
        durationMs: Number.isNaN(start) || Number.isNaN(end) ? null : end - start,
        ani,
        dnis,
        archiveDate: m.archiveDate ?? null,
      },
    }));
}

/**
 * Pages the analytics conversation details query (conversations with recordings) window by
 * window over the run's range, lists each conversation's recording metadata and upserts the
 * catalog copies. After each page the cursor is saved, so a crashed run resumes at the next page.
 * Rate limits and 429s are the connector's business (shared gate, Retry-After, bounded retries).
 */
export async function syncGenesys(ctx: SyncContext, opts: GenesysSyncOptions): Promise<GenesysRunStats> {
  const { cfg, connector } = opts;
  const stored = await ctx.store.read(ctx.tenantId, ctx.source);
  const plan = planRange(cfg, stored, opts.since, opts.until ?? new Date());
  let cur = plan.cursor;
  const stats: GenesysRunStats = {
    ...emptyResult(),
    from: cur.from,
    to: cur.to,
    resumed: plan.resumed,
    windows: 0,
    pages: 0,
    conversations: 0,
    recordings: 0,
    vanished: 0,
    splits: 0,
    overfull: [],
    notPermitted: 0,
    nonAudio: 0,
    retried: 0,
    recovered: 0,
    stillSkipped: 0,
    skippedDropped: 0,
    incomplete: 0,
    rechecked: 0,
    settled: 0,
    stillPending: 0,
    pendingGivenUp: 0,
    gaveUp: [],
  };
  // Kept beside the cursor, page by page, and handed on when the run ends well (SyncStore carry); a --since run keeps them too.
  let skipped = skippedOf(stored.carry);
  let pending = pendingOf(stored.carry);
  const save = () => ctx.store.saveCursor(ctx.tenantId, ctx.source, opts.leaseOwner, cur, { skipped, pending });
  /** Pages the API gives in one interval. */
  const maxPages = Math.max(1, Math.floor(cfg.max_window_results / cfg.page_size));
  let noSplitDay: number | null = null;
  const to = Date.parse(cur.to);

  /**
   * Writes what a page (or a batch of carried conversations) listed and brings both lists carried
   * to the next runs up to date: a conversation refused for a 403 of its own is skipped (reported,
   * kept for retry), one read incomplete is carried (or given up when too old), one read complete
   * leaves both. Returns how many call recordings were listed.
   */
  const absorb = async (convs: AnalyticsConversation[], listed: (RecordingMetadata[] | { denied: string })[], from: 'window' | 'recheck'): Promise<number> => {
    const readable: { c: AnalyticsConversation; recs: RecordingMetadata[] }[] = [];
    const denied: SkippedConversation[] = [];
    convs.forEach((c, i) => {
      const got = listed[i]!;
      if (Array.isArray(got)) return void readable.push({ c, recs: got });
      denied.push({ id: c.conversationId!, start: c.conversationStart! });
      stats.notPermitted++;
      stats.skipped++;
      if (stats.invalid.length < 100) stats.invalid.push({ origin: `conversation ${c.conversationId}`, message: `not permitted to list its recordings (Genesys 403 ${got.denied})` });
      opts.log?.('warn', 'genesys sync: skipped a conversation whose recordings the client may not list', {
        tenant: ctx.tenantId,
        source: ctx.source,
        run_id: ctx.runId,
        conversation_id: c.conversationId,
        genesys_status: 403,
        genesys_code: got.denied,
      });
    });
    const items = await writeReadable(ctx, readable, stats);
    // Saved with the cursor by the caller: a crash after this page still retries them.
    const kept = keepSkipped(skipped, denied, new Set(readable.map(({ c }) => c.conversationId!)));
    skipped = kept.list;
    dropSkipped(ctx, opts, kept.dropped, stats);

    // A refused one is the skipped list's now; a complete one is done with.
    const done = new Set(denied.map((d) => d.id));
    const carried = new Set(pending.map((p) => p.id));
    const add: PendingConversation[] = [];
    const tooOld: PendingConversation[] = [];
    for (const { c, recs } of readable) {
      const id = c.conversationId!;
      const reason = incompleteReason(c, recs);
      if (!reason) {
        done.add(id);
        if (carried.has(id)) stats.settled++;
        continue;
      }
      if (from === 'window') stats.incomplete++;
      const age = to - Date.parse(c.conversationStart!);
      const p: PendingConversation = { id, start: c.conversationStart!, ...(c.conversationEnd ? { end: c.conversationEnd } : {}), reason, next: new Date(to + pendingBackoff(age)).toISOString() };
      if (age > PENDING_MAX_AGE_MS) {
        done.add(id);
        tooOld.push(p);
      } else add.push(p);
    }
    const next = keepPending(pending, add, done);
    pending = next.list;
    giveUp(ctx, opts, tooOld, 'too_old', stats);
    giveUp(ctx, opts, next.dropped, 'list_full', stats);
    return items;
  };

  opts.progress?.start(windowCount(cur.windowStart, cur.to, cfg.window_ms), `genesys ${ctx.source}`);
  await save();
  // Conversations earlier runs skipped are asked again first, a page's worth at a time: the cursor
  // has passed them, so no window of this run would.
  const refused = skipped;
  for (let i = 0; i < refused.length; i += cfg.page_size) {
    if (ctx.signal.aborted) throw new AppError('source.unavailable', 'sync aborted');
    const done = await retrySkipped(ctx, opts, refused.slice(i, i + cfg.page_size), stats);
    skipped = skipped.filter((s) => !done.has(s.id));
    await save();
    if (!(await ctx.store.heartbeat(ctx.tenantId, ctx.source, opts.leaseOwner, cfg.lease_ms))) throw new AppError('sync.busy', 'the sync lost its lease to another instance');
  }
  // Conversations earlier runs read before they were complete are read again the same way, a
  // page's worth at a time, once their backoff has passed, except those whose start this run's
  // windows still have to read.
  const rest = Date.parse(cur.page === 1 ? cur.windowStart : cur.windowEnd);
  const due = pending.filter((p) => (!p.next || Date.parse(p.next) <= to) && (Date.parse(p.start) < rest || Date.parse(p.start) >= to));
  for (let i = 0; i < due.length; i += cfg.page_size) {
    if (ctx.signal.aborted) throw new AppError('source.unavailable', 'sync aborted');
    const batch = due.slice(i, i + cfg.page_size);
    stats.rechecked += batch.length;
    const read = await mapLimit(batch, cfg.concurrency, (p) => recheck(ctx, opts, p));
    stats.recordings += await absorb(
      read.map((r) => r.c),
      read.map((r) => r.recs),
      'recheck',
    );
    await save();
    if (!(await ctx.store.heartbeat(ctx.tenantId, ctx.source, opts.leaseOwner, cfg.lease_ms))) throw new AppError('sync.busy', 'the sync lost its lease to another instance');
  }

  while (Date.parse(cur.windowStart) < to) {
    if (ctx.signal.aborted) throw new AppError('source.unavailable', 'sync aborted');
    const query: ConversationQuery = {
      interval: `${cur.windowStart}/${cur.windowEnd}`,
      order: 'asc',
      orderBy: 'conversationStart',
      paging: { pageSize: cfg.page_size, pageNumber: cur.page },
      segmentFilters: [{ type: 'and', predicates: [{ type: 'dimension', dimension: 'recording', operator: 'matches', value: 'true' }] }],
    };
    const answer = await connector.api.queryConversationDetails(query, ctx.signal);
    // More than the query pages in this window: halve it (down to min_window_ms) before writing anything.
    const overfull = cur.page === 1 && answer.totalHits !== undefined && answer.totalHits > maxPages * cfg.page_size;
    if (overfull) {
      // Should the API answer whole days whatever the interval (one reading of "conversations that
      // started on a day touched by the interval"), it lists conversations outside the window:
      // halving that day cannot narrow it, so the splitting stops instead of going down to minutes.
      const day = Math.floor(Date.parse(cur.windowStart) / DAY);
      const ws0 = Date.parse(cur.windowStart);
      const we0 = Date.parse(cur.windowEnd);
      if ((answer.conversations ?? []).some((c) => !c.conversationStart || Date.parse(c.conversationStart) < ws0 || Date.parse(c.conversationStart) >= we0)) noSplitDay = day;
      const half = noSplitDay === day ? null : splitWindow(cur, cfg.min_window_ms);
      if (half) {
        stats.splits++;
        cur = half;
        await save();
        continue;
      }
      stats.overfull.push({ interval: query.interval, totalHits: answer.totalHits! });
    }
    const got = answer.conversations ?? [];
    const ws = Date.parse(cur.windowStart);
    const we = Date.parse(cur.windowEnd);
    // The API answers whole days touched by the interval: keep what starts inside the window.
    const seen = new Set<string>();
    const convs = got.filter((c) => {
      const t = c.conversationStart ? Date.parse(c.conversationStart) : NaN;
      if (!c.conversationId || seen.has(c.conversationId) || Number.isNaN(t) || t < ws || t >= we) return false;
      seen.add(c.conversationId);
      return true;
    });
    const listed = await mapLimit(convs, cfg.concurrency, async (c): Promise<RecordingMetadata[] | { denied: string }> => {
      try {
        return await connector.listRecordings(c.conversationId!, ctx.signal);
      } catch (e) {
        // A conversation without recordings (or gone): nothing listed, known copies vanish below.
        if (e instanceof AppError && e.code === 'recording.not_found') return [];
        // One conversation out of the client's reach (its division, a policy): skipped, not the page.
        const denied = conversationDenied(e);
        if (denied) return { denied };
        throw e;
      }
    });
    const items = await absorb(convs, listed, 'window');
    stats.pages++;
    stats.conversations += convs.length;
    stats.recordings += items;
    ctx.metrics?.pages.inc({ kind: 'genesys' });

    const last = got.length < cfg.page_size || (answer.totalHits !== undefined && cur.page * cfg.page_size >= answer.totalHits) || cur.page >= maxPages;
    if (last) {
      stats.windows++;
      opts.progress?.tick(1, `genesys ${ctx.source} ${cur.windowStart.slice(0, 10)}`);
      cur = advanceWindow(cur, cfg.window_ms);
    } else {
      cur = { ...cur, page: cur.page + 1 };
    }
    await save();
    if (!(await ctx.store.heartbeat(ctx.tenantId, ctx.source, opts.leaseOwner, cfg.lease_ms))) throw new AppError('sync.busy', 'the sync lost its lease to another instance');
    await opts.onPage?.({ windowStart: query.interval.split('/')[0]!, page: query.paging!.pageNumber, conversations: convs.length, pagesDone: stats.pages });
  }
  stats.stillSkipped = skipped.length;
  stats.stillPending = pending.length;
  return stats;
}

/**
 * Reads a carried incomplete conversation again: the same listing as a window's, then the same
 * details query as retrySkipped (narrowed to the conversation and its day) for its end and what the
 * records carry of it — unless it is known to be over and still lists no recording (a late upload:
 * one listing a run). Not in the analytics answer: read with what was carried (its start, its end
 * when known). A 404 is no recording yet; a 403 of its own is handed on as refused.
 */
async function recheck(ctx: SyncContext, opts: GenesysSyncOptions, p: PendingConversation): Promise<{ c: AnalyticsConversation; recs: RecordingMetadata[] | { denied: string } }> {
  const { connector } = opts;
  const bare: AnalyticsConversation = { conversationId: p.id, conversationStart: p.start, ...(p.end ? { conversationEnd: p.end } : {}) };
  let recs: RecordingMetadata[];
  try {
    recs = await connector.listRecordings(p.id, ctx.signal);
  } catch (e) {
    if (e instanceof AppError && e.code === 'recording.not_found') recs = [];
    else {
      const denied = conversationDenied(e);
      if (denied) return { c: bare, recs: { denied } };
      throw e;
    }
  }
  if (p.end && !recs.length) return { c: bare, recs };
  const day = Math.floor(Date.parse(p.start) / DAY) * DAY;
  const found = await connector.findConversations({ conversationId: p.id, interval: { start: new Date(day), end: new Date(day + DAY) }, limit: 1 }, ctx.signal);
  return { c: found.find((c) => c.conversationId === p.id) ?? bare, recs };
}

/** Incomplete conversations no longer waited for: counted, the first 100 named in the stats, logged at warn. */
function giveUp(ctx: SyncContext, opts: GenesysSyncOptions, list: PendingConversation[], why: 'too_old' | 'list_full', stats: GenesysRunStats): void {
  if (!list.length) return;
  stats.pendingGivenUp += list.length;
  for (const p of list) if (stats.gaveUp.length < 100) stats.gaveUp.push({ conversation: p.id, start: p.start, reason: p.reason, why });
  opts.log?.(
    'warn',
    why === 'too_old'
      ? 'genesys sync: gave up waiting for conversations still incomplete (in progress, no recording listed, or a recording UPLOADING) long after their start; a --since over their day reads them again'
      : 'genesys sync: the list of incomplete conversations to read again is full; the oldest were given up (a --since over their day reads them again)',
    {
      tenant: ctx.tenantId,
      source: ctx.source,
      run_id: ctx.runId,
      given_up: list.length,
      why,
      ...(why === 'too_old' ? { max_age_ms: PENDING_MAX_AGE_MS } : { max: MAX_PENDING }),
      conversation_ids: list.slice(0, 100).map((p) => p.id),
    },
  );
}

/**
 * Writes the recordings of conversations listed in full (their copies upserted, the copies they
 * no longer list marked DELETED); returns how many call recordings were listed. Only conversations
 * listed in full: the copies of a skipped one are kept as they are.
 */
async function writeReadable(ctx: SyncContext, readable: { c: AnalyticsConversation; recs: RecordingMetadata[] }[], stats: GenesysRunStats): Promise<number> {
  const items = readable.flatMap(({ c, recs }) => recordsOf(ctx.source, c, recs));
  // Recordings of other media count as listed: a copy cataloged from one earlier is not taken for deleted.
  const other = readable.flatMap(({ recs }) => recs.filter((m) => m.id && !isCallRecording(m)).map((m) => m.id!));
  stats.nonAudio += other.length;
  const vanished = await vanishedCopies(
    ctx,
    readable.map(({ c }) => c.conversationId!),
    new Set([...items.map((it) => String(it.record.recording_id)), ...other]),
  );
  addResults(stats, await applyRecords(ctx, [...items, ...vanished]));
  stats.vanished += vanished.length;
  return items.length;
}

function dropSkipped(ctx: SyncContext, opts: GenesysSyncOptions, dropped: number, stats: GenesysRunStats): void {
  if (!dropped) return;
  stats.skippedDropped += dropped;
  opts.log?.('warn', 'genesys sync: the list of skipped conversations to retry is full; the oldest were dropped (a --since over their day recovers them)', {
    tenant: ctx.tenantId,
    source: ctx.source,
    run_id: ctx.runId,
    dropped,
    max: MAX_SKIPPED,
  });
}

/**
 * Asks again about conversations earlier runs skipped for a 403 of their own: the same listing
 * (GET …/recordingmetadata), then, for one now readable, the same details query as the windows,
 * narrowed to that conversation and its day, for what the records carry of the conversation (tag,
 * SIP Call-ID, ANI/DNIS, duration). Returns the ids done with: synced, or gone (404: the copies
 * the catalog knows of it are marked DELETED, as for a listed conversation without them). Still
 * refused: kept. Any other failure fails the run like a page, the list staying as it was.
 */
async function retrySkipped(ctx: SyncContext, opts: GenesysSyncOptions, batch: SkippedConversation[], stats: GenesysRunStats): Promise<Set<string>> {
  const { connector, cfg } = opts;
  stats.retried += batch.length;
  const answers = await mapLimit(batch, cfg.concurrency, async (s): Promise<{ c: AnalyticsConversation; recs: RecordingMetadata[] } | null> => {
    const bare: AnalyticsConversation = { conversationId: s.id, conversationStart: s.start };
    let recs: RecordingMetadata[];
    try {
      recs = await connector.listRecordings(s.id, ctx.signal);
    } catch (e) {
      if (e instanceof AppError && e.code === 'recording.not_found') return { c: bare, recs: [] };
      if (conversationDenied(e)) return null;
      throw e;
    }
    if (!recs.some(isCallRecording)) return { c: bare, recs };
    const day = Math.floor(Date.parse(s.start) / DAY) * DAY;
    const found = await connector.findConversations({ conversationId: s.id, interval: { start: new Date(day), end: new Date(day + DAY) }, limit: 1 }, ctx.signal);
    // Not in the analytics answer (yet): the start it was skipped with is enough to catalog its recordings.
    return { c: found.find((c) => c.conversationId === s.id) ?? bare, recs };
  });
  const readable = answers.filter((a) => a !== null);
  stats.recordings += await writeReadable(ctx, readable, stats);
  stats.recovered += readable.length;
  return new Set(readable.map(({ c }) => c.conversationId!));
}

/** Copies the catalog holds for these conversations that the listing no longer has: DELETED at the source. */
async function vanishedCopies(ctx: SyncContext, conversationIds: string[], listed: Set<string>): Promise<ApplyItem[]> {
  if (!conversationIds.length) return [];
  const rows = await liveCloudCopiesQuery(ctx, conversationIds).execute();
  return rows
    .filter((r) => r.genesys_recording_id && !listed.has(r.genesys_recording_id))
    .map((r) => ({
      origin: `conversation ${r.conversation_id} recording ${r.genesys_recording_id} (no longer listed)`,
      record: { source_system: 'genesys_cloud', recording_id: r.genesys_recording_id, conversation_id: r.conversation_id, connector: ctx.source, state: 'DELETED' },
    }));
}

/**
 * Live Genesys copies of this source for recordings of these conversations. The conversation ids
 * drive the search: their refs (whose key starts with the value), the recordings whose conversation
 * id it is, then their copies. Started from the copies (recordings.conversation_id has no index),
 * SQLite read every Genesys copy of the tenant for each page: 105 ms a page of 100 conversations
 * at 50 000 cloud copies (now 1 ms), a sync quadratic in the tenant's size. The terms on r and c only filter
 * (filter-only.ts). Every recording has a `conversation_id` ref for its conversation id
 * (recording-repository.ts writes one with the column; a crosswalk merge carries the refs along).
 */
export function liveCloudCopiesQuery(ctx: Pick<SyncContext, 'db' | 'tenantId' | 'source'>, conversationIds: string[]) {
  const db = ctx.db;
  return db
    .selectFrom('recording_refs as f')
    .innerJoin('recordings as r', (j) => j.onRef('r.id', '=', 'f.recording_pk').onRef('r.conversation_id', '=', 'f.value'))
    .innerJoin('recording_copies as c', 'c.recording_pk', 'r.id')
    .select(['c.genesys_recording_id', 'r.conversation_id'])
    .where('f.value', 'in', conversationIds)
    .where('f.tenant_id', '=', ctx.tenantId)
    .where('f.kind', '=', 'conversation_id')
    .where(filterOnly(db, 'r.tenant_id'), '=', ctx.tenantId)
    .where(filterOnly(db, 'c.tenant_id'), '=', ctx.tenantId)
    .where(filterOnly(db, 'c.source_system'), '=', 'genesys_cloud')
    .where('c.connector', '=', ctx.source)
    .where('c.state', '!=', 'DELETED');
}
