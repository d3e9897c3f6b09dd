import { createHash } from 'node:crypto';
import type { AnalyticsConversation, AnalyticsConversationQueryResponse, AnalyticsSession, DetailQueryFilter, DetailQueryPredicate } from './models.js';

/**
 * The simulator's POST /api/v2/analytics/conversations/details/query: conversations derived from
 * the seeded recordings, filtered by dimension predicates (conversation level: conversationId,
 * externalTag, originatingDirection, divisionId; segment level: protocolCallId, recording, and a
 * few more), answered as an AnalyticsConversationQueryResponse. Anything else is a 400, so a test
 * never passes on a filter the simulator silently ignored.
 */

export interface SimCallFacts {
  conversationId: string;
  startTime: Date;
  durationMs: number;
  externalTag: string | undefined;
  protocolCallId: string | undefined;
  direction: 'inbound' | 'outbound';
  ani: string;
  dnis: string;
  /**
   * The call is still going on: the conversation (and its segments) have no end yet, as the details
   * query gives a conversation in progress (AnalyticsConversation.conversationEnd is optional and
   * `conversationEnd` a dimension a predicate can test for existence).
   */
  ongoing?: boolean;
}

export type AnalyticsOutcome = { status: 200; body: AnalyticsConversationQueryResponse } | { status: 400; code: 'bad.request' | 'invalid.date'; message?: string };

export const SIM_DIVISION_ID = '5c6e9d3e-3b6a-4f3c-9d0e-6b2a1f0c9a11';
const CONV_DIMS = new Set(['conversationId', 'externalTag', 'originatingDirection', 'divisionId']);
const SEG_DIMS = new Set(['protocolCallId', 'recording', 'mediaType', 'direction', 'ani', 'dnis', 'purpose', 'userId', 'segmentType', 'participantName']);
const DAY = 86_400_000;

class Unsupported extends Error {}

/** A stable UUID-shaped id derived from a seed, so answers are repeatable. */
export function uuidFrom(seed: string): string {
  const h = createHash('sha256').update(seed).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

export function conversationsOf(calls: Iterable<SimCallFacts>): AnalyticsConversation[] {
  const byConv = new Map<string, SimCallFacts[]>();
  for (const r of calls) byConv.set(r.conversationId, [...(byConv.get(r.conversationId) ?? []), r]);
  const out: AnalyticsConversation[] = [];
  for (const [conversationId, recs] of byConv) {
    const start = new Date(Math.min(...recs.map((r) => r.startTime.getTime())));
    const end = new Date(Math.max(...recs.map((r) => r.startTime.getTime() + r.durationMs)));
    const first = recs[0] as SimCallFacts;
    const tag = recs.find((r) => r.externalTag)?.externalTag;
    const callId = recs.find((r) => r.protocolCallId)?.protocolCallId;
    const ongoing = recs.some((r) => r.ongoing);
    const session = (who: string): AnalyticsSession => ({
      sessionId: uuidFrom(`${conversationId}/session/${who}`),
      mediaType: 'voice',
      direction: first.direction,
      ani: first.ani,
      dnis: first.dnis,
      ...(callId ? { protocolCallId: callId } : {}),
      recording: true,
      segments: [{ segmentStart: start.toISOString(), ...(ongoing ? {} : { segmentEnd: end.toISOString() }), segmentType: 'interact' }],
    });
    out.push({
      conversationId,
      conversationStart: start.toISOString(),
      ...(ongoing ? {} : { conversationEnd: end.toISOString() }),
      originatingDirection: first.direction,
      divisionIds: [SIM_DIVISION_ID],
      ...(tag ? { externalTag: tag } : {}),
      participants: [
        { participantId: uuidFrom(`${conversationId}/customer`), participantName: 'Customer', purpose: 'customer', sessions: [session('customer')] },
        { participantId: uuidFrom(`${conversationId}/agent`), participantName: 'Agent', purpose: 'agent', userId: uuidFrom(`${conversationId}/agent-user`), sessions: [session('agent')] },
      ],
    });
  }
  return out;
}

function predicateHolds(p: DetailQueryPredicate, values: Record<string, string | string[] | undefined>, dims: Set<string>): boolean {
  if ((p.type ?? 'dimension') !== 'dimension' || !p.dimension) throw new Unsupported('the simulator supports dimension predicates only');
  if (!dims.has(p.dimension)) throw new Unsupported(`the simulator does not support dimension ${p.dimension} here`);
  const v = values[p.dimension];
  const present = v !== undefined && (!Array.isArray(v) || v.length > 0);
  switch (p.operator ?? 'matches') {
    case 'exists':
      return present;
    case 'notExists':
      return !present;
    case 'matches':
      if (typeof p.value !== 'string') throw new Unsupported('matches needs a value');
      return Array.isArray(v) ? v.includes(p.value) : v === p.value;
    default:
      throw new Unsupported(`unknown operator ${String(p.operator)}`);
  }
}

function filterHolds(f: DetailQueryFilter, test: (p: DetailQueryPredicate) => boolean): boolean {
  if (f.type !== 'and' && f.type !== 'or') throw new Unsupported('filter type must be and|or');
  const results = [...(f.predicates ?? []).map(test), ...(f.clauses ?? []).map((c) => (c.type === 'or' ? c.predicates.some(test) : c.predicates.every(test)))];
  return f.type === 'or' ? results.some(Boolean) : results.every(Boolean);
}

function segmentValues(c: AnalyticsConversation): Record<string, string | undefined>[] {
  return (c.participants ?? []).flatMap((p) =>
    (p.sessions ?? []).flatMap((s) =>
      (s.segments ?? []).map((g) => ({
        protocolCallId: s.protocolCallId,
        recording: s.recording === undefined ? undefined : String(s.recording),
        mediaType: s.mediaType,
        direction: s.direction,
        ani: s.ani,
        dnis: s.dnis,
        purpose: p.purpose,
        userId: p.userId,
        participantName: p.participantName,
        segmentType: g.segmentType,
      })),
    ),
  );
}

export function queryConversationDetails(calls: Iterable<SimCallFacts>, body: Buffer, maxResults = 10_000, match: 'day' | 'interval' = 'day'): AnalyticsOutcome {
  let q: {
    interval?: unknown;
    conversationFilters?: DetailQueryFilter[];
    segmentFilters?: DetailQueryFilter[];
    paging?: { pageSize?: number; pageNumber?: number };
    order?: string;
  };
  try {
    q = JSON.parse(body.toString('utf8')) as typeof q;
    if (!q || typeof q !== 'object' || Array.isArray(q)) throw new Error('not an object');
  } catch {
    return { status: 400, code: 'bad.request' };
  }
  const iv = typeof q.interval === 'string' ? q.interval.split('/') : [];
  const from = iv.length === 2 ? Date.parse(iv[0] as string) : NaN;
  const to = iv.length === 2 ? Date.parse(iv[1] as string) : NaN;
  if (Number.isNaN(from) || Number.isNaN(to) || to <= from) return { status: 400, code: 'invalid.date' };
  const pageSize = q.paging?.pageSize ?? 25;
  const pageNumber = q.paging?.pageNumber ?? 1;
  if (!Number.isInteger(pageSize) || pageSize < 1 || pageSize > 100 || !Number.isInteger(pageNumber) || pageNumber < 1) {
    return { status: 400, code: 'bad.request', message: 'paging.pageSize must be 1..100 and paging.pageNumber at least 1' };
  }
  // The query pages only so deep (the limit is the simulator's knob); narrower intervals reach the rest.
  if (pageNumber * pageSize > maxResults) return { status: 400, code: 'bad.request', message: `paging beyond ${maxResults} results is not supported; narrow the interval` };
  // The extract: "Results will only include conversations that started on a day touched by the interval."
  const dayFrom = match === 'day' ? Math.floor(from / DAY) * DAY : from;
  const dayTo = match === 'day' ? Math.floor((to - 1) / DAY) * DAY + DAY : to;
  let matched: AnalyticsConversation[];
  try {
    matched = conversationsOf(calls).filter((c) => {
      const t = Date.parse(c.conversationStart as string);
      if (t < dayFrom || t >= dayTo) return false;
      const conv = { conversationId: c.conversationId, externalTag: c.externalTag, originatingDirection: c.originatingDirection, divisionId: c.divisionIds };
      if (!(q.conversationFilters ?? []).every((f) => filterHolds(f, (p) => predicateHolds(p, conv, CONV_DIMS)))) return false;
      const segs = segmentValues(c);
      return (q.segmentFilters ?? []).every((f) => segs.some((v) => filterHolds(f, (p) => predicateHolds(p, v, SEG_DIMS))));
    });
  } catch (e) {
    if (e instanceof Unsupported) return { status: 400, code: 'bad.request', message: e.message };
    throw e;
  }
  matched.sort((a, b) => Date.parse(a.conversationStart as string) - Date.parse(b.conversationStart as string));
  if (q.order === 'desc') matched.reverse();
  const page = matched.slice((pageNumber - 1) * pageSize, pageNumber * pageSize);
  // An empty result has no `conversations` member.
  return { status: 200, body: page.length ? { conversations: page, totalHits: matched.length } : { totalHits: matched.length } };
}
