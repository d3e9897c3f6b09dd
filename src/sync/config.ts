import { z } from 'zod';
import { DEFAULT_THRESHOLDS } from './integrity/judge.js';

/**
 * Catalog columns a legacy sidecar can feed, plus the facts the crosswalk and the integrity
 * check compare (duration, ANI, DNIS). `legacy_archive_id` defaults to the media file's base name.
 */
export const MAPPABLE = [
  'call_id',
  'legacy_archive_id',
  'customer_ref',
  'conversation_id',
  'started_at',
  'retention_expiry',
  'source_retention_expiry',
  'encryption_status',
  'codec',
  'sha256',
  'size_bytes',
  'legal_hold',
  'key_id',
  'external_tag',
  'sip_call_id',
  'duration_ms',
  'duration_s',
  'ani',
  'dnis',
] as const;
export type Mappable = (typeof MAPPABLE)[number];

const sourceName = z.string().regex(/^[a-z0-9][a-z0-9_-]{0,62}$/);

/** One legacy archive (a filesystem or s3 source of the tenant) walked with its sidecars. */
export const legacySyncSource = z
  .object({
    /** Name of a `filesystem` or `s3` source of the same tenant. */
    source: sourceName,
    /** source_system written on the catalog copies (e.g. verint, nice, avaya_aura). */
    source_system: z.string().regex(/^[a-z0-9][a-z0-9_.-]{0,62}$/).default('verint'),
    /** Sub-tree to walk, relative to the source's root (filesystem) or key prefix (s3). */
    prefix: z.string().default(''),
    /** Media file extensions (lower case, no dot). */
    media_extensions: z.array(z.string().regex(/^[a-z0-9]{1,8}$/)).min(1).default(['wav']),
    /** Sidecar beside each media file, `<id>.<format>`: Verint writes JSON. */
    sidecar: z.enum(['json', 'csv', 'xml', 'none']).default('json'),
    /** XML: the element holding one recording's fields (the document root when absent). */
    xml_record_element: z.string().min(1).optional(),
    /**
     * Catalog column → sidecar field: a dotted path in JSON (`contact.ani`), a column header in
     * CSV (first data row), an element or attribute name in XML.
     */
    mapping: z.partialRecord(z.enum(MAPPABLE), z.string().min(1).max(200)).default({}),
    /** A media file without a readable sidecar is skipped (and counted) instead of cataloged bare. */
    require_sidecar: z.boolean().default(false),
    /** Largest sidecar read, bytes. */
    max_sidecar_bytes: z.number().int().min(256).max(16 * 1024 * 1024).default(256 * 1024),
  })
  .strict();
export type LegacySyncSource = z.infer<typeof legacySyncSource>;

/**
 * One legacy recorder reached over HTTP (a `legacy-http` source of the tenant, Avaya ACR or Cisco
 * MediaSense) synced through its search-by-time API, window by window like the Genesys sync. The
 * paths and field names of the search are the source's profile (time_search_* / time_query_*).
 */
export const legacySearchSource = z
  .object({
    /** Name of a `legacy-http` source of the same tenant with provider avaya_aura or cisco_mediasense. */
    source: sourceName,
    /** source_system written on the catalog copies (default: the provider, avaya_aura or cisco_mediasense). */
    source_system: z.string().regex(/^[a-z0-9][a-z0-9_.-]{0,62}$/).optional(),
    /** Results asked per search request. */
    page_size: z.number().int().min(1).max(1000).default(100),
    /** Most results the recorder's search pages in one time window; a fuller window is split in halves. */
    max_window_results: z.number().int().min(1).max(1_000_000).default(1000),
  })
  .strict();
export type LegacySearchSource = z.infer<typeof legacySearchSource>;

export const CROSSWALK_KEYS = ['call_id', 'external_tag', 'sip_call_id'] as const;

export const syncTenantConfig = z
  .object({
    /** Each Genesys run starts this long before the end of the last successful one. */
    overlap_ms: z.number().int().min(0).max(7 * 86_400_000).default(3_600_000),
    /** Analytics intervals are limited: a long range is queried in windows of at most this size. */
    window_ms: z.number().int().min(60_000).max(7 * 86_400_000).default(86_400_000),
    /** First run without --since: this far back. */
    initial_lookback_days: z.number().int().min(1).max(3650).default(30),
    page_size: z.number().int().min(1).max(100).default(100),
    /** Recording listings fetched at once per page. */
    concurrency: z.number().int().min(1).max(32).default(8),
    /** A run holds its source's lease this long between heartbeats (one run per source across instances). */
    lease_ms: z.number().int().min(1_000).max(86_400_000).default(600_000),
    /**
     * Most results the analytics details query pages in one interval (100 pages of 100); a window
     * holding more is split in halves, down to min_window_ms.
     */
    max_window_results: z.number().int().min(100).max(1_000_000).default(10_000),
    /** Smallest window a split makes; a window this small that is still over-full is paged as far as the API allows and reported. */
    min_window_ms: z.number().int().min(1_000).max(86_400_000).default(60_000),
    /** Gateway only: start a sync of this tenant every this many ms (off when absent). Runs never overlap; leases keep one run per source across instances. */
    schedule_interval_ms: z.number().int().min(1_000).max(7 * 86_400_000).optional(),
    /** Genesys sources to sync (default: every genesys source of the tenant). */
    genesys_sources: z.array(sourceName).optional(),
    legacy: z.array(legacySyncSource).default([]),
    /** Legacy recorders synced through their search-by-time API (Avaya ACR, Cisco MediaSense). */
    legacy_search: z.array(legacySearchSource).default([]),
    crosswalk: z
      .object({
        /** Exact keys linking a legacy copy to a cloud copy (legacy call id / id ↔ Genesys externalTag, SIP Call-ID). */
        keys: z.array(z.enum(CROSSWALK_KEYS)).default([...CROSSWALK_KEYS]),
        /** Fuzzy rule for what keys leave unmatched: same start (± tolerance), ANI/DNIS, duration (± tolerance). */
        rule: z
          .object({
            start_tolerance_ms: z.number().int().min(0).max(3_600_000).default(5_000),
            duration_tolerance_ms: z.number().int().min(0).max(3_600_000).default(2_000),
            match_ani: z.boolean().default(true),
            match_dnis: z.boolean().default(true),
          })
          .strict()
          .optional(),
        /** Integrity of linked pairs: durations further apart than this are a mismatch. */
        duration_tolerance_ms: z.number().int().min(0).max(3_600_000).default(2_000),
        /** Decoded-audio comparison (custodian verify integrity, POST …/integrity; docs/SYNC.md). */
        integrity: z
          .object({
            /** Envelope similarity at or above which two copies hold the same audio (same-call copies measured ≥ 0.98, other calls ≤ 0.35). */
            min_similarity: z.number().min(0.5).max(1).default(DEFAULT_THRESHOLDS.minSimilarity),
            /** Largest leading offset searched between the two copies. */
            max_offset_ms: z.number().int().min(0).max(30_000).default(DEFAULT_THRESHOLDS.maxOffsetMs),
          })
          .strict()
          .prefault({}),
      })
      .strict()
      .prefault({}),
  })
  .strict()
  .superRefine((c, ctx) => {
    const seen = new Set<string>();
    c.legacy.forEach((l, i) => {
      if (seen.has(l.source)) ctx.addIssue({ code: 'custom', path: ['legacy', i, 'source'], message: `source "${l.source}" is listed twice` });
      seen.add(l.source);
    });
    c.legacy_search.forEach((l, i) => {
      if (seen.has(l.source)) ctx.addIssue({ code: 'custom', path: ['legacy_search', i, 'source'], message: `source "${l.source}" is listed twice` });
      seen.add(l.source);
      if (l.max_window_results < l.page_size) ctx.addIssue({ code: 'custom', path: ['legacy_search', i, 'max_window_results'], message: 'must be at least page_size' });
    });
    if (c.min_window_ms > c.window_ms) ctx.addIssue({ code: 'custom', path: ['min_window_ms'], message: 'must not exceed window_ms' });
    if (c.max_window_results < c.page_size) ctx.addIssue({ code: 'custom', path: ['max_window_results'], message: 'must be at least page_size' });
  });
export type SyncTenantConfig = z.infer<typeof syncTenantConfig>;

export const DEFAULT_SYNC_CONFIG: SyncTenantConfig = syncTenantConfig.parse({});
