import { randomUUID } from 'node:crypto';

let lastMs = 0;
let seq = 0;

/**
 * A new row id: a UUIDv7 (RFC 9562) — 48 bits of Unix milliseconds, a 12-bit counter within the
 * millisecond (method 1, so ids made by one process sort in creation order), then 62 random bits.
 * Random v4 ids scattered every insert of an import across the primary-key and `recording_pk`
 * indexes (a page miss per row and index); ids in creation order append at the right edge.
 * They still reveal nothing but the creation time, which the rows carry anyway (created_at).
 */
export function newId(): string {
  let ms = Date.now();
  if (ms > lastMs) {
    lastMs = ms;
    seq = 0;
  } else if (++seq > 0xfff) {
    // More than 4 096 ids in one millisecond: borrow the next one rather than break the order.
    lastMs++;
    seq = 0;
  }
  ms = lastMs;
  const t = ms.toString(16).padStart(12, '0');
  // randomUUID's last two groups: the variant bits and 60 random bits, already formatted.
  return `${t.slice(0, 8)}-${t.slice(8)}-7${seq.toString(16).padStart(3, '0')}-${randomUUID().slice(19)}`;
}
