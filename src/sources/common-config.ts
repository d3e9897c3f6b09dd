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
    /**
     * sync: the client waits for the bytes; async: always a 202 job; auto: stream if the first
     * byte comes within first_byte_budget_ms, else answer 202 while the same fetch goes on into staging.
     */
    mode: z.enum(['sync', 'async', 'auto']).default('auto'),
    first_byte_budget_ms: z.number().int().min(0).max(60_000).default(2_000),
    /** After `failures` consecutive outages the source is not called for `half_open_after_ms`. */
    circuit_breaker: z
      .object({
        failures: z.number().int().min(1).max(1_000).default(5),
        half_open_after_ms: z.number().int().min(100).max(3_600_000).default(30_000),
      })
      .strict()
      .prefault({}),
  })
  .strict();
