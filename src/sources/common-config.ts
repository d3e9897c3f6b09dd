import { z } from 'zod';

/** Fields every source entry has, whatever its type. */
export const sourceCommon = z
  .object({
    /** Unique within the tenant; catalog copies name their connector by it. */
    name: z.string().regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, 'lower-case letters, digits, - and _'),
    /**
     * Catalog `source_system` values this source serves (e.g. ["avaya_aura", "verint"]), so copies
     * imported without a connector name find their source.
     */
    source_systems: z.array(z.string().min(1)).default([]),
    /** Upper bound for connecting and for the first byte of a read. */
    timeout_ms: z.number().int().min(100).max(600_000).default(30_000),
  })
  .strict();
