import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { UNPRINTABLE } from '../catalog/record.js';
import { AppError } from '../errors.js';
import { LONE_SURROGATE } from '../lone-surrogate.js';

/**
 * Query strings, read one way for every route (the console's and the sync's included).
 *
 * fastify's own parser (fast-querystring) keeps a value that does not percent-decode as the raw
 * text, so `purpose=case%207%FF` was served and audited as the purpose "case%207%FF", something the
 * caller never sent; the JSON body parser refuses the same bytes (json-body.ts). And a value may
 * decode to a NUL or another control character, which PostgreSQL refuses in a text parameter (a 500
 * where SQLite answered an empty list) and which no field of ours has a use for. So:
 * - a key or value that is not well-formed percent-encoded UTF-8 is 400 `request.bad_url`, the URL's
 *   code (the body's is `request.malformed_json`);
 * - a key or value holding a control, format or separator character is 422 `request.invalid`,
 *   the rule identifiers follow (catalog/record.ts `identifier`), with the field named.
 * Both are refused, never repaired, after authentication (a stranger gets 401 first) and before
 * the route's schema, so no handler and no audit detail ever sees such a value.
 */

/** Text a query value may carry: printable, well-formed Unicode. */
export const printable = (s: string): boolean => !UNPRINTABLE.test(s) && !LONE_SURROGATE.test(s);

type Query = Record<string, string | string[]>;

/** Parsed query objects some part of which did not percent-decode, with the first such raw key. */
const MALFORMED = new WeakMap<object, string>();

const PLUS = /\+/g;
function decode(s: string): string | null {
  const spaced = s.includes('+') ? s.replace(PLUS, ' ') : s;
  if (!spaced.includes('%')) return spaced;
  try {
    // Strict: a stray "%", an invalid or overlong byte sequence, an encoded surrogate all throw.
    return decodeURIComponent(spaced);
  } catch {
    return null;
  }
}

/**
 * fast-querystring's shape (`a=1&a=2` is an array, `a` alone is "", "+" is a space, a null-prototype
 * object), decoded strictly. Never throws: the router calls it before any hook can answer, so a
 * part that does not decode is left out and the result remembered for `refuseBadQueryStrings`.
 */
export function parseQueryString(input: string): Query {
  const out = Object.create(null) as Query;
  if (!input) return out;
  for (const part of input.split('&')) {
    if (!part) continue;
    const eq = part.indexOf('=');
    const rawKey = eq < 0 ? part : part.slice(0, eq);
    const key = decode(rawKey);
    const value = eq < 0 ? '' : decode(part.slice(eq + 1));
    if (key === null || value === null) {
      if (!MALFORMED.has(out)) MALFORMED.set(out, rawKey);
      continue;
    }
    const had = out[key];
    if (had === undefined) out[key] = value;
    else if (Array.isArray(had)) had.push(value);
    else out[key] = [had, value];
  }
  return out;
}

/** What a raw key may be shown as in a problem detail: bounded, and only its printable ASCII. */
const shown = (raw: string) => raw.slice(0, 64).replace(/[^\x20-\x7e]/g, '?');

/** The first key or value of a parsed query string that breaks the printable rule, by its JSON pointer. */
export function unprintableAt(query: Query): string | null {
  for (const [key, v] of Object.entries(query)) {
    // A key that breaks the rule is named by its printable ASCII only.
    if (!printable(key)) return `/${shown(key)}`;
    const at = `/${key.replace(/~/g, '~0').replace(/\//g, '~1')}`;
    const values = Array.isArray(v) ? v : [v];
    for (let i = 0; i < values.length; i++) if (!printable(values[i]!)) return Array.isArray(v) ? `${at}/${i}` : at;
  }
  return null;
}

/**
 * A whole number in a query string, the one way every route reads one: decimal digits as written,
 * nothing else, between `min` and `max`. z.coerce.number() took whatever Number() takes — "" as 0,
 * "0x10" as 16, "0b11" as 3, "1e2" as 100, " 1e1 " as 10 — so `?limit=` listed nothing and the
 * audit detail recorded a number the caller never wrote. No sign, no leading zero, no white space,
 * no exponent: a value is refused (422 request.invalid, the field named), never read some other way.
 */
export function queryInt(o: { min: number; max: number }) {
  const message = `must be a whole number from ${o.min} to ${o.max}, in decimal digits`;
  const written = new RegExp(`^(0|[1-9][0-9]{0,${String(o.max).length - 1}})$`);
  return z
    .string()
    .describe(`A whole number from ${o.min} to ${o.max}, in decimal digits`)
    .regex(written, message)
    .transform(Number)
    .refine((n) => n >= o.min && n <= o.max, message);
}

/**
 * A time window [from, to) of a query string, in the catalog's form (UTC, milliseconds), or a 422:
 * `from` at or after `to` is an empty window, and every route that takes one refuses it alike
 * (recordings, audit events and the audit export) rather than answering some with an empty list.
 */
export function timeWindow(q: { from: string; to: string }): { from: string; to: string };
export function timeWindow(q: { from?: string | undefined; to?: string | undefined }): { from?: string; to?: string };
export function timeWindow(q: { from?: string | undefined; to?: string | undefined }): { from?: string; to?: string } {
  const from = q.from === undefined ? undefined : new Date(q.from).toISOString();
  const to = q.to === undefined ? undefined : new Date(q.to).toISOString();
  if (from !== undefined && to !== undefined && from >= to) {
    const message = 'from must be before to';
    throw new AppError('request.invalid', message, { extra: { errors: [{ path: '/from', message }], location: 'querystring' } });
  }
  return { ...(from !== undefined ? { from } : {}), ...(to !== undefined ? { to } : {}) };
}

/** The parser and the check, for every route of `app`. */
export function useStrictQueryStrings(app: FastifyInstance): void {
  app.addHook('preValidation', async (req) => {
    const query = req.query as Query | undefined;
    if (!query || typeof query !== 'object') return;
    const bad = MALFORMED.get(query);
    if (bad !== undefined) throw new AppError('request.bad_url', `the query string is not valid percent-encoded UTF-8 (at "${shown(bad)}")`);
    const at = unprintableAt(query);
    if (at !== null) {
      const message = 'must not contain control or invisible characters';
      throw new AppError('request.invalid', `${at}: ${message}`, { extra: { errors: [{ path: at, message }], location: 'querystring' } });
    }
  });
}
