import type { Recording } from '../catalog/model.js';
import type { CatalogRecord } from '../catalog/record.js';
import type { RecordingRepository } from '../catalog/recording-repository.js';
import { AppError } from '../errors.js';

/**
 * Looks a ref up somewhere other than the catalog (e.g. Genesys Cloud's analytics query when the
 * migration sync lags) and returns records to write back, or null.
 */
export interface RefFinder {
  readonly name: string;
  find(tenantId: string, ref: string, signal: AbortSignal, hint?: FindHint): Promise<CatalogRecord[] | null>;
}

/** What the catalog knows of the call a ref names, for a finder that searches by time. */
export interface FindHint {
  /** The catalogued recording's start (`started_at`): a search by time looks around it. */
  startedAt?: string | null;
}

export interface Resolution {
  recording: Recording;
  /** Set when the catalog did not know the ref and a finder discovered it (a self-heal). */
  discoveredBy?: string;
}

export interface Rediscovery {
  /** The recording read again after the write-back: same id, now with the copy the finder found. */
  recording: Recording;
  by: string;
  /**
   * Legal holds the write-back placed: a found copy the catalog had filed on another recording
   * moves to this one and that recording's holds follow it (HoldRepository.followCopy). The
   * reader's audit event counts them (`holds_placed`, open-copy.ts), as an import's event does.
   */
  holdsPlaced: number;
}

export class Resolver {
  constructor(
    private readonly repo: RecordingRepository,
    private readonly finders: (tenantId: string) => RefFinder[] = () => [],
  ) {}

  /** Catalog first, then each finder of the tenant; writes what a finder found back so the next lookup is direct. */
  async resolve(tenantId: string, ref: string, signal: AbortSignal): Promise<Resolution> {
    const rec = await this.repo.findByRef(tenantId, ref);
    if (rec) return { recording: rec };
    for (const finder of this.finders(tenantId)) {
      const found = await finder.find(tenantId, ref, signal);
      if (!found?.length) continue;
      await this.repo.upsertAll(found.map((r) => ({ ...r, tenant_id: tenantId })));
      const healed = await this.repo.findByRef(tenantId, ref);
      if (healed) return { recording: healed, discoveredBy: finder.name };
    }
    throw new AppError('recording.not_found');
  }

  /** Whether rediscover could ask anyone: the tenant has finders and the recording a call id to file a find under. */
  canRediscover(rec: Recording): boolean {
    return !!rec.callId && this.finders(rec.tenantId).length > 0;
  }

  /**
   * The same lag seen from a recording the catalog does know, whose legacy copies are gone and
   * whose cloud copy is not catalogued yet (open-copy.ts `openOrRediscover` decides when). Asks each
   * finder by the recording's call id, then its conversation id, and writes what one found back
   * filed under that call id: upsertAll joins a copy to a recording by call id only, and a finder
   * files one under a call id only when the id looks like a date-stamped legacy one — without it the
   * cloud copy would become a second recording of the same call. What a finder answers to the
   * recording's own ids is that call, so filing it there is no guess. A recording without a call id
   * has nothing to join by, and is not looked for. The recording's start goes with the question:
   * a finder searching by time looks around it, not only at its recent past (a call id need not
   * carry a date: an Avaya UCID does not). Returns null when no finder found a cloud copy.
   */
  async rediscover(rec: Recording, signal: AbortSignal): Promise<Rediscovery | null> {
    const callId = rec.callId;
    if (!callId || !this.canRediscover(rec)) return null;
    const refs = [...new Set([callId, rec.conversationId].filter((r): r is string => !!r))];
    let holdsPlaced = 0;
    for (const finder of this.finders(rec.tenantId)) {
      for (const ref of refs) {
        const found = await finder.find(rec.tenantId, ref, signal, { startedAt: rec.startedAt });
        if (!found?.length) continue;
        holdsPlaced += (await this.repo.upsertAll(found.map((r) => ({ ...r, tenant_id: rec.tenantId, call_id: callId })))).holdsPlaced;
        const fresh = await this.repo.get(rec.tenantId, rec.id);
        if (fresh?.copies.some((c) => c.origin === 'GENESYS_CLOUD')) return { recording: fresh, by: finder.name, holdsPlaced };
      }
    }
    return null;
  }
}
