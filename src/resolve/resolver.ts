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
  find(tenantId: string, ref: string, signal: AbortSignal): Promise<CatalogRecord[] | null>;
}

export interface Resolution {
  recording: Recording;
  /** Set when the catalog did not know the ref and a finder discovered it (a self-heal). */
  discoveredBy?: string;
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
}
