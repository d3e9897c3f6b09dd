import { z } from 'zod';
import { LONE_SURROGATE } from '../lone-surrogate.js';
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

const isoDate = z.iso.datetime({ offset: true }).or(z.iso.date());
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
    codec: nullable(z.string().min(1).max(32)),
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

/** Export: one record per copy, the same shape import reads, so an export re-imports to the same catalog. */
export function toCatalogRecords(rec: Recording): CatalogRecord[] {
  return rec.copies.map((c: Copy) => ({
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
  }));
}
