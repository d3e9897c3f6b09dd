import { z } from 'zod';
import { LONE_SURROGATE } from '../lone-surrogate.js';
import { CODECS } from '../media/sniff.js';
import type { Copy, Recording } from './model.js';

/**
 * Identifiers are opaque but printable: no control, format or separator characters, bounded length.
 * The same characters are refused in every query string (http/query-string.ts).
 */
// eslint-disable-next-line no-control-regex
export const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]/;
export const identifier = z
  .string()
  .min(1)
  .max(256)
  .refine((s) => !UNPRINTABLE.test(s), 'must not contain control or invisible characters')
  // JSON can carry a lone surrogate as an escape ("\ud800"): no UTF-8 form, no database stores it as given.
  .refine((s) => !LONE_SURROGATE.test(s), 'must be well-formed Unicode (a lone surrogate is not)')
  .refine((s) => s.trim() === s, 'must not start or end with white space');

/**
 * What free text people write and auditors read (a purpose of access, a hold's matter and reason)
 * may not hold: text that does not read as what it is. Every control character (C0, DEL, C1:
 * \p{Cc}); every format character (\p{Cf}: the bidi embeddings, overrides and isolates
 * U+202A–U+202E/U+2066–U+2069 and U+061C, which make a line of the trail read in another order
 * than it is stored; the zero-width U+200B–U+200F, U+2060–U+2064 and U+FEFF; the soft hyphen; the
 * invisible tag characters U+E0000–U+E007F that smuggle text past a reader); the line and paragraph
 * separators U+2028/U+2029; noncharacters; a lone surrogate. A superset of UNPRINTABLE (which
 * identifiers and every query value already obey), so a purpose is refused alike in a body and a
 * query string. The cost is ZWJ emoji sequences and the ZWNJ of Persian or Indic spelling: these
 * fields are case references and short justifications, and an invisible character in evidence is
 * worth less than one a reader can see. Refused, never stripped: the trail keeps what was sent.
 */
const FREE_TEXT_REFUSED = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Noncharacter_Code_Point}]/u;
/** The same, with LF allowed: a reason may run to paragraphs. CR and tab stay refused (one line break, one form). */
const FREE_TEXT_REFUSED_MULTILINE = /(?!\n)[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Noncharacter_Code_Point}]/u;

/** Whether `s` is free text as the API takes it (FREE_TEXT_REFUSED); `multiline` lets LF through. */
export const isFreeText = (s: string, multiline = false): boolean =>
  !(multiline ? FREE_TEXT_REFUSED_MULTILINE : FREE_TEXT_REFUSED).test(s) && !LONE_SURROGATE.test(s);

/**
 * The one schema of every free-text field of the API, in a body or a query string: checked as
 * sent (so white space the rule refuses is not trimmed away first), then trimmed, then 1..max
 * characters. A field that breaks it is 422 request.invalid with its JSON pointer.
 */
export const freeText = (max: number, opts: { multiline?: boolean } = {}) =>
  z
    .string()
    .refine((s) => isFreeText(s, opts.multiline), opts.multiline ? 'must not contain control or invisible characters (a line feed is allowed)' : 'must not contain control or invisible characters, or line breaks')
    .trim()
    .min(1)
    .max(max);

const isoDate = z.iso.datetime({ offset: true }).or(z.iso.date());

/** A codec spelling with case, white space and `.`, `-`, `_` taken out: "G.729", "g729" and "G 729" are one key. */
export const codecKey = (codec: string): string => codec.toLowerCase().replace(/[\s._-]/g, '');

/**
 * Other spellings of the codecs the media layer names (media/sniff.ts CODECS), by codecKey. The
 * catalog's codec is what a raw file is decoded as (media/prepare.ts: a bare G.729 file plays only
 * as `g729`), and archives spell it their own way: Cisco "G729", "G.729", "g729a", "PCMU".
 * G.729 Annex A is the same bitstream (sniff.ts reads Sipro's G.729A tag as g729); Annex B is not
 * listed: its silence frames are not 10 bytes, so a raw G.729B file is not plain g729 frames.
 */
const CODEC_ALIASES: Readonly<Record<string, (typeof CODECS)[number]>> = {
  g729a: 'g729',
  g7231: 'g723_1',
  g723: 'g723_1', // telephony's "G.723" (RTP payload type 4) is G.723.1
  g72616: 'g726',
  g72624: 'g726',
  g72632: 'g726',
  g72640: 'g726',
  ulaw: 'mulaw',
  'µlaw': 'mulaw', // micro sign
  'μlaw': 'mulaw', // Greek mu
  pcmu: 'mulaw',
  g711u: 'mulaw',
  g711ulaw: 'mulaw',
  g711mulaw: 'mulaw',
  'g711µlaw': 'mulaw',
  'g711μlaw': 'mulaw',
  pcma: 'alaw',
  g711a: 'alaw',
  g711alaw: 'alaw',
  gsm: 'gsm_ms',
  gsm610: 'gsm_ms',
  msgsm: 'gsm_ms',
  linear16: 'pcm_s16le',
  s16le: 'pcm_s16le',
};
const CANONICAL_CODECS = new Map<string, string>([...CODECS.map((c) => [codecKey(c), c] as const), ...Object.entries(CODEC_ALIASES)]);

/** The catalog's name for a codec: the media layer's name when the spelling is one of its codecs, else the text lower-cased. */
export function canonicalCodec(codec: string): string {
  return CANONICAL_CODECS.get(codecKey(codec)) ?? codec.toLowerCase();
}
const nullable = <T extends z.ZodType>(t: T) => t.nullable().optional();

/**
 * The import/export record: the original brief's shape (call_id … encryption_status) plus the
 * fields a real migration needs. One record describes one physical copy; records sharing
 * (tenant_id, call_id) are copies of one logical recording.
 */
export const catalogRecord = z
  .object({
    tenant_id: z.string().regex(/^[a-z0-9][a-z0-9_-]{0,62}$/),
    call_id: nullable(identifier),
    source_system: z.string().regex(/^[a-z0-9][a-z0-9_.-]{0,62}$/, 'lower-case word such as genesys_cloud or avaya_aura'),
    recording_id: nullable(identifier),
    legacy_archive_id: nullable(identifier),
    storage_location: nullable(z.string().min(1).max(128)),
    retention_expiry: nullable(isoDate),
    encryption_status: nullable(z.string().min(1).max(64)),
    customer_ref: nullable(identifier),
    conversation_id: nullable(identifier),
    started_at: nullable(isoDate),
    connector: nullable(z.string().regex(/^[a-z0-9][a-z0-9_-]{0,62}$/)),
    locator: nullable(z.string().min(1).max(1024)),
    /** Absent keeps the stored state (AVAILABLE for a new copy): a partial re-import must not reset an ARCHIVED copy. */
    state: z.enum(['AVAILABLE', 'ARCHIVED', 'RESTORING', 'RESTORED', 'DELETED', 'UPLOADING', 'ERROR']).optional(),
    /** Stored canonical (canonicalCodec): "G.729" is filed as g729, so the raw file it names plays. */
    codec: nullable(z.string().trim().min(1).max(32).transform(canonicalCodec)),
    size_bytes: nullable(z.number().int().min(0)),
    sha256: nullable(z.string().regex(/^[0-9a-f]{64}$/, '64 lower-case hex digits')),
    legal_hold: z.boolean().default(false),
    key_id: nullable(z.string().min(1).max(256)),
    source_retention_expiry: nullable(isoDate),
    /** Cross-reference keys: Genesys externalTag (often the legacy id) and SIP Call-ID; indexed as refs. */
    external_tag: nullable(identifier),
    sip_call_id: nullable(identifier),
  })
  .strict()
  .refine((r) => r.recording_id || r.legacy_archive_id || r.locator, {
    message: 'a record needs recording_id, legacy_archive_id or locator',
    path: ['recording_id'],
  })
  .refine((r) => r.source_system !== 'genesys_cloud' || (r.recording_id && r.conversation_id), {
    message: 'a genesys_cloud copy needs recording_id and conversation_id (every Genesys read is keyed by both)',
    path: ['conversation_id'],
  });

export type CatalogRecord = z.output<typeof catalogRecord>;

/** Call ids often begin with the call's start time (the brief's "2023-10-27T14:30:00Z-8923"). */
export function startedAtFromCallId(callId: string | null | undefined): string | null {
  const m = callId?.match(/^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2}))/);
  if (!m?.[1]) return null;
  const t = Date.parse(m[1]);
  return Number.isNaN(t) ? null : new Date(t).toISOString();
}

export function toIso(date: string | null | undefined): string | null {
  if (!date) return null;
  const t = Date.parse(date);
  return Number.isNaN(t) ? null : new Date(t).toISOString();
}

/**
 * The keys a recording is found by that no column holds: only its recording_refs rows say them
 * (external_tag and sip_call_id, from imports, the sync and the self-heal's write-back). Each list
 * sorted. The export reads them (RecordingRepository.iterate) so a re-import indexes them again.
 */
export interface CrossRefs {
  external_tag: string[];
  sip_call_id: string[];
}

/** A recording as the export reads it: with its cross-reference keys. */
export type ExportedRecording = Recording & { crossRefs?: CrossRefs };

/** A stable order of a recording's copies, the same in any catalog holding them: by natural key, not by creation. */
const copyOrder = (c: Copy): string => [c.sourceSystem, c.genesysRecordingId ?? '', c.legacyArchiveId ?? '', c.locator ?? ''].join('\u0000');

/**
 * Export: one record per copy, the same shape import reads, so an export re-imports to the same
 * catalog. The record has one external_tag and one sip_call_id, but they belong to the recording
 * (a ref names the recording, not a copy) and it can have more than one of each (a cloud copy and
 * a legacy copy linked by the crosswalk, a conversation whose tag changed): the copies, in natural
 * key order, carry them one each; keys beyond the number of copies ride on repeats of the first
 * copy's record, which a re-import reads as that copy again (unchanged) plus a ref.
 */
export function toCatalogRecords(rec: ExportedRecording): CatalogRecord[] {
  const tags = rec.crossRefs?.external_tag ?? [];
  const sips = rec.crossRefs?.sip_call_id ?? [];
  const records = rec.copies.map((c) => copyRecord(rec, c));
  // Which record carries the i-th key: the same in every catalog, so an export of the re-imported catalog is this one.
  const keys = rec.copies.map(copyOrder);
  const order = keys.map((_, i) => i).sort((a, b) => (keys[a]! < keys[b]! ? -1 : keys[a]! > keys[b]! ? 1 : 0));
  for (let i = 0; order.length && i < Math.max(tags.length, sips.length); i++) {
    const refs = { external_tag: tags[i] ?? null, sip_call_id: sips[i] ?? null };
    if (i < order.length) Object.assign(records[order[i]!]!, refs);
    else records.push({ ...copyRecord(rec, rec.copies[order[0]!]!), ...refs });
  }
  return records;
}

function copyRecord(rec: Recording, c: Copy): CatalogRecord {
  return {
    tenant_id: rec.tenantId,
    call_id: rec.callId,
    source_system: c.sourceSystem,
    recording_id: c.genesysRecordingId,
    legacy_archive_id: c.legacyArchiveId,
    storage_location: c.storageLocation,
    retention_expiry: rec.retentionExpiry,
    encryption_status: c.encryptionStatus,
    customer_ref: rec.customerRef,
    conversation_id: rec.conversationId,
    started_at: rec.startedAt,
    connector: c.connector,
    locator: c.locator,
    state: c.state as NonNullable<CatalogRecord['state']>,
    codec: c.codec,
    size_bytes: c.sizeBytes,
    sha256: c.sha256,
    legal_hold: rec.legalHold,
    key_id: c.keyId,
    source_retention_expiry: c.sourceRetentionExpiry,
    external_tag: null,
    sip_call_id: null,
  };
}
