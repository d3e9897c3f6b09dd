import type { Copy, Recording } from '../catalog/model.js';

/** States in which a copy's bytes can be read right now. */
const READABLE = new Set(['AVAILABLE', 'RESTORED']);

/**
 * Orders the copies to try: the preferred world first (default: the cloud copy when it is
 * readable), then the other as fallback. Copies that cannot be read now are left out; the
 * caller reports why when none is left.
 */
export function orderCopies(rec: Recording, prefer: 'cloud' | 'legacy', now = new Date()): Copy[] {
  const readable = rec.copies.filter(
    (c) => READABLE.has(c.state) && !(c.sourceRetentionExpiry && Date.parse(c.sourceRetentionExpiry) <= now.getTime()),
  );
  const first = prefer === 'cloud' ? 'GENESYS_CLOUD' : 'LEGACY_ARCHIVE';
  return [...readable.filter((c) => c.origin === first), ...readable.filter((c) => c.origin !== first)];
}
