/**
 * A strict ISO-8601 date (`2024-03-01`, UTC midnight) or date-time with its zone
 * (`2024-03-01T10:00Z`, `2024-03-01T10:00:00.250+02:00`), or null. Round-trip checked: every field
 * given must be the one the instant has, so `2024-02-30` is not March 1 and `1` is not 2001 —
 * which Date.parse would both make of them.
 */
const ISO = /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z|[+-]\d{2}:\d{2}))?$/;

export function parseIsoInstant(v: string): Date | null {
  const m = ISO.exec(v);
  if (!m) return null;
  const [, y, mo, d, h = '00', mi = '00', s = '00', frac = '', zone = 'Z'] = m;
  const ms = Number((frac + '000').slice(0, 3));
  const utc = new Date(Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s), ms));
  // Date.UTC takes years 0–99 as 1900–1999: the round trip refuses those too.
  if (
    utc.getUTCFullYear() !== Number(y) ||
    utc.getUTCMonth() !== Number(mo) - 1 ||
    utc.getUTCDate() !== Number(d) ||
    utc.getUTCHours() !== Number(h) ||
    utc.getUTCMinutes() !== Number(mi) ||
    utc.getUTCSeconds() !== Number(s)
  ) {
    return null;
  }
  if (zone === 'Z') return utc;
  const oh = Number(zone.slice(1, 3));
  const om = Number(zone.slice(4, 6));
  if (oh > 23 || om > 59) return null;
  const offsetMs = (zone[0] === '-' ? -1 : 1) * (oh * 60 + om) * 60_000;
  return new Date(utc.getTime() - offsetMs);
}

/** The hint a refusal of such a value gives. */
export const ISO_HINT = 'an ISO date or date-time with its zone (ISO-8601, e.g. 2024-03-01 or 2024-03-01T00:00:00Z)';
