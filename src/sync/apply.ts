import type { Kysely } from 'kysely';
import type { AuditRepository } from '../audit/audit-repository.js';
import type { AuditEvent } from '../audit/event.js';
import { writeTransaction } from '../catalog/database.js';
import { type CatalogRecord, catalogRecord } from '../catalog/record.js';
import type { RecordingRepository } from '../catalog/recording-repository.js';
import type { Database } from '../catalog/tables.js';
import type { SyncMetrics } from './metrics.js';
import { type CopyRow, type Facts, natKey, SyncStore, sourceKeyOf } from './store.js';

/** What every step of one run needs. */
export interface SyncContext {
  db: Kysely<Database>;
  recordings: RecordingRepository;
  audit: AuditRepository;
  store: SyncStore;
  metrics: SyncMetrics | undefined;
  tenantId: string;
  /** Configured source name (or "crosswalk"). */
  source: string;
  kind: 'genesys' | 'filesystem' | 's3' | 'legacy-http' | 'crosswalk';
  runId: string;
  /** Who runs the sync, for the audit trail (e.g. "cli", "scheduler"). */
  principalId: string;
  signal: AbortSignal;
}

export interface ApplyItem {
  /** Unvalidated record; bad ones are skipped and reported, never half-written. */
  record: Record<string, unknown>;
  facts?: Omit<Facts, 'sourceSystem' | 'sourceKey'>;
  /** Where the record came from (a path or an id), for the report of skipped items. */
  origin: string;
  /** Set when the item is known bad before validation (e.g. an unreadable sidecar): skipped with this reason. */
  problem?: string;
  /** The source lists it now: a copy marked DELETED when it vanished comes back AVAILABLE (audited like any change). */
  present?: boolean;
}

export interface ApplyResult {
  inserted: number;
  updated: number;
  unchanged: number;
  /** Copies that moved to another recording or changed where/what they are (each audited). */
  changed: number;
  added: number;
  /** The first skipped items with their reason (bounded); `skipped` counts them all. */
  invalid: { origin: string; message: string }[];
  skipped: number;
  factsChanged: number;
}

/** Copy columns whose change is a mapping change an auditor must be able to see. */
const WATCHED = ['recording_pk', 'state', 'connector', 'locator', 'storage_location', 'genesys_recording_id', 'legacy_archive_id', 'source_retention_expiry', 'codec', 'size_bytes', 'sha256'] as const;

/** Moved to store.ts with the page's reads; still exported here for the callers of apply.ts. */
export { sourceKeyOf };

/**
 * Upserts one page of records and audits every mapping change: new copies (one event per page,
 * listing them) and changed copies (one event each, old → new, so a query by recording finds it).
 * Recording-level fields already known (start time, retention, customer ref) are not overwritten
 * by a sync: two sources disagreeing by a second must not flip a field back and forth on every run.
 */
export async function applyRecords(ctx: SyncContext, items: ApplyItem[]): Promise<ApplyResult> {
  const result: ApplyResult = { inserted: 0, updated: 0, unchanged: 0, changed: 0, added: 0, invalid: [], skipped: 0, factsChanged: 0 };
  const valid = new Map<string, { record: CatalogRecord; facts?: ApplyItem['facts']; present?: boolean }>();
  for (const it of items) {
    if (it.problem) {
      result.skipped++;
      result.invalid.push({ origin: it.origin, message: it.problem });
      continue;
    }
    const parsed = catalogRecord.safeParse({ ...it.record, tenant_id: ctx.tenantId });
    if (!parsed.success) {
      result.skipped++;
      result.invalid.push({ origin: it.origin, message: parsed.error.issues.map((i) => `${i.path.join('.') || 'record'}: ${i.message}`).join('; ') });
      continue;
    }
    // Duplicates inside a page (a conversation listed twice, overlapping windows): the last one wins.
    valid.set(natKey(parsed.data.source_system, sourceKeyOf(parsed.data)), { record: parsed.data, ...(it.facts ? { facts: it.facts } : {}), ...(it.present ? { present: true } : {}) });
  }
  if (!valid.size) return result;
  const keys = [...new Set([...valid.values()].map((v) => sourceKeyOf(v.record)))];
  const systems = [...new Set([...valid.values()].map((v) => v.record.source_system))];
  // The page and the audit events of its mapping changes commit together: a crash leaves both or neither.
  const events = await writeTransaction(ctx.db, async (trx) => {
    const store = new SyncStore(trx);
    // The page's keys locked first, then read: what the diff calls `old` is what the write replaces
    // (another writer of these copies commits before this read, or waits for this commit).
    await store.lockForUpsert([...valid.values()].map((v) => v.record));
    const before = await store.copiesByKey(ctx.tenantId, systems, keys);
    const recs = await store.knownRecordingFields(ctx.tenantId, [...new Set([...before.values()].map((c) => c.recording_pk))]);
    const records: CatalogRecord[] = [];
    for (const [k, v] of valid) {
      const existing = before.get(k);
      const rec = existing ? recs.get(existing.recording_pk) : undefined;
      const r = { ...v.record };
      if (rec?.started_at) delete r.started_at;
      if (rec?.retention_expiry) delete r.retention_expiry;
      if (rec?.customer_ref) delete r.customer_ref;
      if (v.present && existing?.state === 'DELETED' && r.state === undefined) r.state = 'AVAILABLE';
      records.push(r);
    }

    const counts = await ctx.recordings.upsertAllIn(trx, records);
    result.inserted = counts.inserted;
    result.updated = counts.updated;
    result.unchanged = counts.unchanged;

    const after = await store.copiesByKey(ctx.tenantId, systems, keys);
    const added: { source_system: string; source_key: string; recording_pk: string; copy_id: string }[] = [];
    const changes: { row: CopyRow; old: Record<string, unknown>; new: Record<string, unknown> }[] = [];
    for (const k of valid.keys()) {
      const now = after.get(k);
      if (!now) continue;
      const was = before.get(k);
      if (!was) {
        added.push({ source_system: now.source_system, source_key: now.source_key, recording_pk: now.recording_pk, copy_id: now.id });
        continue;
      }
      const old: Record<string, unknown> = {};
      const neu: Record<string, unknown> = {};
      for (const f of WATCHED) {
        const a = was[f] === null ? null : String(was[f]);
        const b = now[f] === null ? null : String(now[f]);
        if (a !== b) {
          old[f] = was[f];
          neu[f] = now[f];
        }
      }
      if (Object.keys(neu).length) changes.push({ row: now, old, new: neu });
    }
    result.added = added.length;
    result.changed = changes.length;

    // Last in the transaction: on PostgreSQL the chain's lock is held from here to the commit.
    const written: AuditEvent[] = [];
    const base = { tenantId: ctx.tenantId, principalId: ctx.principalId, principalKind: 'system' as const, outcome: 'completed' as const };
    if (added.length) {
      written.push(await ctx.audit.appendIn(trx, { ...base, action: 'sync.mapping.added', detail: { run_id: ctx.runId, source: ctx.source, kind: ctx.kind, count: added.length, copies: added } }));
    }
    // Legal holds the page placed (a record's legal_hold: true, or holds following a copy the page
    // moved to another recording): the hold records name them; this says a sync placed them.
    if (counts.holdsPlaced) {
      written.push(await ctx.audit.appendIn(trx, { ...base, action: 'sync.holds.placed', detail: { run_id: ctx.runId, source: ctx.source, kind: ctx.kind, count: counts.holdsPlaced } }));
    }
    for (const c of changes) {
      written.push(
        await ctx.audit.appendIn(trx, {
          ...base,
          action: 'sync.mapping.changed',
          ref: c.row.source_key,
          recordingPk: c.row.recording_pk,
          copyId: c.row.id,
          origin: c.row.origin,
          detail: { run_id: ctx.runId, source: ctx.source, kind: ctx.kind, reason: `the ${ctx.kind} source reported new values for ${Object.keys(c.new).join(', ')}`, old: c.old, new: c.new },
        }),
      );
    }
    return written;
  });
  ctx.audit.published(events);

  const facts: Facts[] = [];
  for (const v of valid.values()) if (v.facts) facts.push({ sourceSystem: v.record.source_system, sourceKey: sourceKeyOf(v.record), ...v.facts });
  result.factsChanged = facts.length ? await ctx.store.putFacts(ctx.tenantId, facts) : 0;
  ctx.metrics?.items.inc({ kind: ctx.kind, outcome: 'inserted' }, result.added);
  ctx.metrics?.items.inc({ kind: ctx.kind, outcome: 'changed' }, result.changed);
  ctx.metrics?.items.inc({ kind: ctx.kind, outcome: 'unchanged' }, result.unchanged);
  ctx.metrics?.items.inc({ kind: ctx.kind, outcome: 'invalid' }, result.skipped);
  return result;
}

export function addResults(into: ApplyResult, r: ApplyResult, keepInvalid = 100): void {
  into.inserted += r.inserted;
  into.updated += r.updated;
  into.unchanged += r.unchanged;
  into.changed += r.changed;
  into.added += r.added;
  into.factsChanged += r.factsChanged;
  into.skipped += r.skipped;
  for (const i of r.invalid) if (into.invalid.length < keepInvalid) into.invalid.push(i);
}

export function emptyResult(): ApplyResult {
  return { inserted: 0, updated: 0, unchanged: 0, changed: 0, added: 0, invalid: [], skipped: 0, factsChanged: 0 };
}
