import { Counter, type Registry } from 'prom-client';

/** Sync counters; labels are bounded sets (source kind, outcome), never tenant or source names. */
export interface SyncMetrics {
  runs: Counter<'kind' | 'status'>;
  pages: Counter<'kind'>;
  items: Counter<'kind' | 'outcome'>;
  crosswalk: Counter<'result'>;
}

const byRegistry = new WeakMap<Registry, SyncMetrics>();

/** One set per registry (the gateway's), created on first use so no shared file needs to know of it. */
export function syncMetrics(registry: Registry): SyncMetrics {
  let m = byRegistry.get(registry);
  if (!m) {
    m = {
      runs: new Counter({ name: 'custodian_sync_runs_total', help: 'Sync runs by source kind and final status', labelNames: ['kind', 'status'] as const, registers: [registry] }),
      pages: new Counter({ name: 'custodian_sync_pages_total', help: 'Pages (Genesys query pages, legacy batches) applied to the catalog', labelNames: ['kind'] as const, registers: [registry] }),
      items: new Counter({
        name: 'custodian_sync_items_total',
        help: 'Copies seen by the sync: inserted, changed (audited old → new), unchanged, invalid (skipped)',
        labelNames: ['kind', 'outcome'] as const,
        registers: [registry],
      }),
      crosswalk: new Counter({ name: 'custodian_crosswalk_total', help: 'Crosswalk results: linked, ambiguous, conflict, mismatch', labelNames: ['result'] as const, registers: [registry] }),
    };
    byRegistry.set(registry, m);
  }
  return m;
}
