import type { Copy, Recording } from '../catalog/model.js';

/** States in which a copy's bytes can be read right now. */
const READABLE = new Set(['AVAILABLE', 'RESTORED']);

/**
 * Genesys fileStates that mean "the bytes exist but need time": a restore to start (ARCHIVED), one
 * under way (RESTORING), an upload not finished (UPLOADING). The catalog's word is only what the
 * last sync or lookup saw; the Genesys connector reads the live fileState on every open and throws
 * source.archived / source.restoring / source.media_not_ready, which the retrieve endpoint turns
 * into a 202 job (open-copy.ts PREPARING_CODES) whose worker starts the restore (run-job.ts).
 * Left out of them, such a copy was never opened, so nothing restored it: 503 for ever.
 *
 * Only Genesys copies: legacy connectors have no restore and no live state to read (filesystem,
 * S3 and the legacy HTTP recorders read whatever is at the locator), so a legacy copy the catalog
 * calls ARCHIVED could only fail to open or serve bytes the catalog says are offline — it stays
 * out, and with no other copy the answer stays 503 recording.no_copy_available.
 *
 * Never tried, whatever the origin: DELETED (gone at the source; the sync's vanish step also writes
 * it for copies a source no longer lists) and ERROR (Genesys's failed transcode or unusable
 * customer key: neither time nor a restore mends it, and trying would cost a metadata call and a
 * key retry to earn a 502; the next sync rewrites the state if Genesys recovers).
 */
const PREPARING_IN_GENESYS = new Set(['ARCHIVED', 'RESTORING', 'UPLOADING']);

const pastSourceDate = (c: Copy, now: Date) => !!c.sourceRetentionExpiry && Date.parse(c.sourceRetentionExpiry) <= now.getTime();

function byPreference(copies: Copy[], prefer: 'cloud' | 'legacy'): Copy[] {
  const first = prefer === 'cloud' ? 'GENESYS_CLOUD' : 'LEGACY_ARCHIVE';
  return [...copies.filter((c) => c.origin === first), ...copies.filter((c) => c.origin !== first)];
}

/**
 * The copies whose catalog state says they can be read now, in policy order: no source call
 * needed to know. For callers that must not wait on a restore (the integrity check compares what
 * is readable today).
 */
export function readableCopies(rec: Recording, prefer: 'cloud' | 'legacy', now = new Date()): Copy[] {
  return byPreference(
    rec.copies.filter((c) => READABLE.has(c.state) && !pastSourceDate(c, now)),
    prefer,
  );
}

/**
 * Orders the copies to try: the preferred world first (default: the cloud copy when it is
 * readable), then the other as fallback; after every readable copy, the Genesys copies that are
 * archived, restoring or uploading. They come last so that a
 * recording readable today is served exactly as before (no Genesys round trip, no wait on it),
 * and they are there at all so that a recording with nothing readable is restored (202) instead
 * of refused. Copies that can never be read (DELETED, ERROR, a legacy copy not readable, past its
 * source's deletion date) are left out; the caller reports why when none is left.
 */
export function orderCopies(rec: Recording, prefer: 'cloud' | 'legacy', now = new Date()): Copy[] {
  const preparing = rec.copies.filter((c) => c.origin === 'GENESYS_CLOUD' && PREPARING_IN_GENESYS.has(c.state) && !pastSourceDate(c, now));
  return [...readableCopies(rec, prefer, now), ...preparing];
}
