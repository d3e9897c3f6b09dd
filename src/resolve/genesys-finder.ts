import type { CatalogRecord } from '../catalog/record.js';
import { startedAtFromCallId } from '../catalog/record.js';
import { AppError, isAppError } from '../errors.js';
import type { GenesysConnector } from '../sources/genesys/connector.js';
import type { AnalyticsConversation, RecordingMetadata } from '../sources/genesys/models.js';
import type { FindHint, RefFinder } from './resolver.js';

const DAY = 86_400_000;
type Search = { key: 'conversationId' | 'externalTag' | 'protocolCallId'; value: string };
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** Conversations asked of one search; this many found may mean more exist. */
const SEARCH_LIMIT = 5;

/**
 * A call recording: RecordingMetadata.media is "audio, chat, email, or message" (recording.yml);
 * transcripts of digital channels are no call recording, for the finder nor for the sync
 * (src/sync/genesys-sync.ts). No media given is taken for audio.
 */
export function isCallRecording(m: Pick<RecordingMetadata, 'id' | 'media'>): boolean {
  return !!m.id && (!m.media || m.media === 'audio');
}

/** A conversation with no recordings (or gone) is no candidate. */
function noneWhenMissing(e: unknown): CatalogRecord[] {
  if (isAppError(e) && (e.code === 'recording.not_found' || e.code === 'source.object_missing')) return [];
  throw e;
}

/**
 * The original brief's edge case 1: the catalog lags the migration, so a ref it does not know may
 * already be in Genesys Cloud. Asks the analytics details query — as a conversation id, as an
 * external tag (where migrations put legacy ids), as a SIP Call-ID — within a window around the
 * call time (Genesys limits intervals), then lists the recordings found. The call time is the
 * catalogued recording's start when the caller knows one (a rediscovery: `hint.startedAt`), else
 * the date a call id begins with; without either, the last `lookbackDays` days.
 */
export class GenesysRefFinder implements RefFinder {
  readonly name: string;
  readonly source: string;

  constructor(
    private readonly connector: GenesysConnector,
    private readonly lookbackDays: number,
  ) {
    this.name = `genesys:${connector.name}`;
    this.source = connector.name;
  }

  async find(tenantId: string, ref: string, signal: AbortSignal, hint?: FindHint): Promise<CatalogRecord[] | null> {
    const known = hint?.startedAt ? Date.parse(hint.startedAt) : NaN;
    const fromRef = startedAtFromCallId(ref);
    const at = !Number.isNaN(known) ? known : fromRef ? Date.parse(fromRef) : NaN;
    // ±1 day around the call: the API answers every conversation that started on a UTC day the
    // interval touches, so this asks three days at most — a recorder's clock or time zone off by
    // hours still falls inside, and the interval stays far below what Genesys accepts.
    const interval = !Number.isNaN(at)
      ? { start: new Date(at - DAY), end: new Date(at + DAY) }
      : { start: new Date(Date.now() - this.lookbackDays * DAY), end: new Date() };
    const searches: Search[] = [];
    searches.push({ key: 'externalTag', value: ref });
    if (ref.includes('@')) searches.push({ key: 'protocolCallId', value: ref });

    // A conversation id needs no search (and no interval): its recordings can be listed directly.
    if (UUID.test(ref)) {
      const direct = await this.recordsOf(tenantId, { conversationId: ref }, ref, 'conversationId', signal).catch(noneWhenMissing);
      if (direct.length) return direct;
    }
    for (const s of searches) {
      const conversations = await this.connector.findConversations({ [s.key]: s.value, interval, limit: SEARCH_LIMIT }, signal);
      const found: { conv: AnalyticsConversation; records: CatalogRecord[] }[] = [];
      for (const conv of conversations) {
        const records = await this.recordsOf(tenantId, conv, ref, s.key, signal).catch(noneWhenMissing);
        if (records.length) found.push({ conv, records });
      }
      // Several calls carry this tag or Call-ID: guessing would serve (and file) the wrong one.
      if (found.length > 1) {
        throw new AppError('recording.ambiguous_ref', `the reference matches ${found.length} conversations in Genesys Cloud (by ${s.key}); ask for one of them by its conversation id`, {
          extra: {
            matched_by: s.key,
            candidates: found.map(({ conv, records }) => ({
              conversation_id: conv.conversationId,
              recording_ids: records.map((r) => r.recording_id),
              ...(conv.conversationStart ? { conversation_start: conv.conversationStart } : {}),
            })),
            ...(conversations.length >= SEARCH_LIMIT ? { candidates_truncated: true } : {}),
          },
        });
      }
      if (found[0]) return found[0].records;
    }
    return null;
  }

  private async recordsOf(tenantId: string, conv: AnalyticsConversation, ref: string, foundBy: Search['key'], signal: AbortSignal): Promise<CatalogRecord[]> {
    const records: CatalogRecord[] = [];
    if (!conv.conversationId) return records;
    const recordings = await this.connector.listRecordings(conv.conversationId, signal);
    for (const r of recordings) {
      if (!isCallRecording(r)) continue;
      records.push({
            tenant_id: tenantId,
            source_system: 'genesys_cloud',
            connector: this.connector.name,
            recording_id: r.id,
            conversation_id: conv.conversationId,
            storage_location: 'GENESYS_CLOUD_ARCHIVE',
            ...(r.fileState ? { state: r.fileState } : {}),
            // A legacy call id carried as external tag joins the cloud copy to the legacy recording.
            ...(foundBy === 'externalTag' && startedAtFromCallId(ref) ? { call_id: ref } : {}),
            ...(conv.externalTag ? { external_tag: conv.externalTag } : {}),
            ...(foundBy === 'protocolCallId' ? { sip_call_id: ref } : {}),
            ...(conv.conversationStart ? { started_at: conv.conversationStart } : {}),
            // Null when Genesys has none: the write-back clears a date lifted there (as the sync does).
            source_retention_expiry: r.deleteDate || null,
            legal_hold: false,
          } as CatalogRecord);
    }
    return records;
  }
}
