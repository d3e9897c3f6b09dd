import { AppError } from '../errors.js';
import type { GenesysConnector } from '../sources/genesys/connector.js';
import type { AnalyticsConversation, ConversationQuery, RecordingMetadata } from '../sources/genesys/models.js';
import { addResults, type ApplyItem, type ApplyResult, applyRecords, emptyResult, type SyncContext } from './apply.js';
import type { SyncTenantConfig } from './config.js';
import type { Progress } from './progress.js';

/** Where an unfinished Genesys run stands: the run's range, the current window and the next page. */
export interface GenesysCursor {
  kind: 'genesys';
  from: string;
  to: string;
  windowStart: string;
  windowEnd: string;
  /** Next page to fetch (1-based) in the current window. */
  page: number;
}

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
}

const DAY = 86_400_000;
const STATES = new Set(['AVAILABLE', 'ARCHIVED', 'RESTORING', 'RESTORED', 'DELETED', 'UPLOADING', 'ERROR']);

/** The next window from `start`: at most window_ms long, never crossing a UTC midnight (the API answers whole days) nor `to`. */
export function nextWindowEnd(start: number, to: number, windowMs: number): number {
  const midnight = Math.floor(start / DAY) * DAY + DAY;
  return Math.min(start + windowMs, midnight, to);
}

/** The range a run covers: the explicit --since, the unfinished run's, or the last success minus the overlap. */
export function planRange(cfg: SyncTenantConfig, stored: { cursor: unknown; syncedUntil: string | null }, since: Date | undefined, until: Date): { cursor: GenesysCursor; resumed: boolean } {
  const c = stored.cursor as GenesysCursor | null;
  if (!since && c && c.kind === 'genesys') return { cursor: c, resumed: true };
  const from = since
    ? since.getTime()
    : stored.syncedUntil
      ? Date.parse(stored.syncedUntil) - cfg.overlap_ms
      : until.getTime() - cfg.initial_lookback_days * DAY;
  const to = until.getTime();
  if (!(from < to)) throw new AppError('request.invalid', '--since must be before the end of the sync range');
  return {
    cursor: { kind: 'genesys', from: new Date(from).toISOString(), to: new Date(to).toISOString(), windowStart: new Date(from).toISOString(), windowEnd: new Date(nextWindowEnd(from, to, cfg.window_ms)).toISOString(), page: 1 },
    resumed: false,
  };
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

/** Catalog records (and facts) of one conversation's recordings. */
export function recordsOf(source: string, c: AnalyticsConversation, recs: RecordingMetadata[]): ApplyItem[] {
  const { sipCallId, ani, dnis } = callFacts(c);
  const start = c.conversationStart ? Date.parse(c.conversationStart) : NaN;
  const end = c.conversationEnd ? Date.parse(c.conversationEnd) : NaN;
  return recs
    .filter((m) => m.id)
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
        ...(m.deleteDate ? { source_retention_expiry: m.deleteDate } : {}),
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
  const stats: GenesysRunStats = { ...emptyResult(), from: cur.from, to: cur.to, resumed: plan.resumed, windows: 0, pages: 0, conversations: 0, recordings: 0, vanished: 0 };
  const to = Date.parse(cur.to);
  opts.progress?.start(windowCount(cur.windowStart, cur.to, cfg.window_ms), `genesys ${ctx.source}`);
  await ctx.store.saveCursor(ctx.tenantId, ctx.source, opts.leaseOwner, cur);

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
    const listed = await mapLimit(convs, cfg.concurrency, async (c) => {
      try {
        return await connector.listRecordings(c.conversationId!, ctx.signal);
      } catch (e) {
        // A conversation without recordings (or gone): nothing listed, known copies vanish below.
        if (e instanceof AppError && e.code === 'recording.not_found') return [];
        throw e;
      }
    });
    const items = convs.flatMap((c, i) => recordsOf(ctx.source, c, listed[i]!));
    const vanished = await vanishedCopies(ctx, convs.map((c) => c.conversationId!), new Set(items.map((it) => String(it.record.recording_id))));
    const r = await applyRecords(ctx, [...items, ...vanished]);
    addResults(stats, r);
    stats.pages++;
    stats.conversations += convs.length;
    stats.recordings += items.length;
    stats.vanished += vanished.length;
    ctx.metrics?.pages.inc({ kind: 'genesys' });

    const last = got.length < cfg.page_size || (answer.totalHits !== undefined && cur.page * cfg.page_size >= answer.totalHits);
    if (last) {
      stats.windows++;
      opts.progress?.tick(1, `genesys ${ctx.source} ${cur.windowStart.slice(0, 10)}`);
      const nextStart = we;
      cur = { ...cur, windowStart: new Date(nextStart).toISOString(), windowEnd: new Date(nextWindowEnd(nextStart, to, cfg.window_ms)).toISOString(), page: 1 };
    } else {
      cur = { ...cur, page: cur.page + 1 };
    }
    await ctx.store.saveCursor(ctx.tenantId, ctx.source, opts.leaseOwner, cur);
    if (!(await ctx.store.heartbeat(ctx.tenantId, ctx.source, opts.leaseOwner, cfg.lease_ms))) throw new AppError('sync.busy', 'the sync lost its lease to another instance');
    await opts.onPage?.({ windowStart: query.interval.split('/')[0]!, page: query.paging!.pageNumber, conversations: convs.length, pagesDone: stats.pages });
  }
  return stats;
}

/** Copies the catalog holds for these conversations that the listing no longer has: DELETED at the source. */
async function vanishedCopies(ctx: SyncContext, conversationIds: string[], listed: Set<string>): Promise<ApplyItem[]> {
  if (!conversationIds.length) return [];
  const rows = await ctx.db
    .selectFrom('recording_copies as c')
    .innerJoin('recordings as r', 'r.id', 'c.recording_pk')
    .select(['c.genesys_recording_id', 'r.conversation_id'])
    .where('c.tenant_id', '=', ctx.tenantId)
    .where('c.source_system', '=', 'genesys_cloud')
    .where('c.connector', '=', ctx.source)
    .where('c.state', '!=', 'DELETED')
    .where('r.conversation_id', 'in', conversationIds)
    .execute();
  return rows
    .filter((r) => r.genesys_recording_id && !listed.has(r.genesys_recording_id))
    .map((r) => ({
      origin: `conversation ${r.conversation_id} recording ${r.genesys_recording_id} (no longer listed)`,
      record: { source_system: 'genesys_cloud', recording_id: r.genesys_recording_id, conversation_id: r.conversation_id, connector: ctx.source, state: 'DELETED' },
    }));
}

/** Windows a range splits into (for a progress total). */
export function windowCount(from: string, to: string, windowMs: number): number {
  let n = 0;
  for (let t = Date.parse(from), end = Date.parse(to); t < end; t = nextWindowEnd(t, end, windowMs)) n++;
  return n;
}
