import type { Kysely } from 'kysely';
import type { Recording } from '../catalog/model.js';
import { RecordingRepository } from '../catalog/recording-repository.js';
import type { Database } from '../catalog/tables.js';
import { type IntegrityCheck, IntegrityRepository, type Verdict } from './integrity/integrity-repository.js';
import type { Progress } from './progress.js';
import { type Finding, SyncStore } from './store.js';

export const CATEGORIES = ['legacy_only', 'cloud_only', 'both', 'ambiguous', 'mismatched', 'retention_gap'] as const;
export type Category = (typeof CATEGORIES)[number];

export interface ReportItem {
  recording: string;
  call_id: string | null;
  conversation_id: string | null;
  started_at: string | null;
  retention_expiry: string | null;
  legal_hold: boolean;
  source_systems: string[];
  /** Earliest date a live copy's source will delete it, when any copy has one. */
  source_deletes_at: string | null;
  /** Why the recording is in this list (finding rule, candidates, durations, which copy expires first). */
  detail: string | null;
}

export interface MigrationReport {
  tenant: string;
  generated_at: string;
  counts: Record<Category, number> & { recordings: number };
  lists: Record<Category, ReportItem[]>;
  /** True when a list was cut at the limit (the counts are always complete). */
  truncated: boolean;
  /**
   * Decoded-audio checks of the `both` recordings (custodian verify integrity): latest verdict
   * per pair, and pairs never checked (or checked only on copies they no longer have).
   */
  integrity: { pairs: number; never_checked: number; latest: Record<Verdict, number> };
  last_runs: { source: string; kind: string; status: string; started_at: string; finished_at: string | null }[];
}

/**
 * A copy that exists: every state but DELETED (the sync keeps a vanished copy as DELETED, never
 * removes it). An ERROR copy still exists at its source, so it counts here, in the where-is-it
 * categories and the integrity pairs alike as in the retention gap.
 */
const LIVE = (state: string) => state !== 'DELETED';

/**
 * The retention gap: the tenant must keep the recording until `retention_expiry` (forever under
 * legal hold), but every copy that still exists will be deleted by its source before then, and
 * none is kept without a source deletion date. A recording whose obligation already ended has no gap.
 * `deletesAt` is when the first live copy goes, `lastDeletesAt` when the last one does (in a gap:
 * when the recording is gone from every source); both null when no live copy has a date.
 */
export function retentionGap(rec: Recording, now = new Date()): { gap: boolean; deletesAt: string | null; lastDeletesAt: string | null } {
  const live = rec.copies.filter((c) => LIVE(c.state));
  const dates = live.map((c) => c.sourceRetentionExpiry).filter((d): d is string => !!d).sort((a, b) => Date.parse(a) - Date.parse(b));
  const deletesAt = dates[0] ?? null;
  const lastDeletesAt = dates[dates.length - 1] ?? null;
  const obligationEnd = rec.legalHold ? Infinity : rec.retentionExpiry ? Date.parse(rec.retentionExpiry) : null;
  if (obligationEnd === null || obligationEnd <= now.getTime() || rec.copies.length === 0) return { gap: false, deletesAt, lastDeletesAt };
  const kept = live.some((c) => !c.sourceRetentionExpiry || Date.parse(c.sourceRetentionExpiry) >= obligationEnd);
  return { gap: !kept, deletesAt, lastDeletesAt };
}

function gapDetail(rec: Recording, deletesAt: string | null, lastDeletesAt: string | null): string {
  const until = `retention runs to ${rec.legalHold ? 'legal hold' : rec.retentionExpiry}`;
  if (lastDeletesAt === null) return `no live copy is left (every copy is DELETED); ${until}`;
  return `the last live copy is deleted by its source on ${lastDeletesAt}${deletesAt !== lastDeletesAt ? ` (the first on ${deletesAt})` : ''}; ${until}`;
}

function itemOf(rec: Recording, deletesAt: string | null, detail: string | null): ReportItem {
  return {
    recording: rec.id,
    call_id: rec.callId,
    conversation_id: rec.conversationId,
    started_at: rec.startedAt,
    retention_expiry: rec.retentionExpiry,
    legal_hold: rec.legalHold,
    source_systems: [...new Set(rec.copies.map((c) => c.sourceSystem))].sort(),
    source_deletes_at: deletesAt,
    detail,
  };
}

/** The latest check still speaks for the recording only while it holds both compared copies. */
function current(c: IntegrityCheck | undefined, rec: Recording): IntegrityCheck | undefined {
  const ids = new Set(rec.copies.map((x) => x.id));
  return c && (!c.legacy.copyId || ids.has(c.legacy.copyId)) && (!c.cloud.copyId || ids.has(c.cloud.copyId)) ? c : undefined;
}

function checkDetail(c: IntegrityCheck): string {
  const t = c.detail.thresholds as { min_similarity?: number; duration_tolerance_ms?: number } | undefined;
  return `decoded audio ${c.verdict} (${String(c.detail.reason)}): similarity ${c.similarity ?? '-'} (min ${t?.min_similarity ?? '-'}), offset ${c.offsetMs ?? '-'} ms, durations legacy ${c.legacy.durationMs ?? '-'} ms / cloud ${c.cloud.durationMs ?? '-'} ms (tolerance ${t?.duration_tolerance_ms ?? '-'} ms), checked ${c.checkedAt}`;
}

function findingDetail(f: Finding): string {
  if (f.kind === 'integrity_mismatch' || f.kind === 'integrity_match') return `duration ${JSON.stringify(f.detail)}`;
  return `${f.kind} by ${f.rule ?? '?'}: candidates ${f.candidates.join(' ')}${f.detail?.reason ? ` (${String(f.detail.reason)})` : ''}`;
}

/** Builds the migration report of one tenant in one pass over its catalog; lists are cut at `limit` each. */
export async function migrationReport(db: Kysely<Database>, tenantId: string, opts: { limit?: number; progress?: Progress; now?: Date } = {}): Promise<MigrationReport> {
  const limit = opts.limit ?? Number.MAX_SAFE_INTEGER;
  const repo = new RecordingRepository(db);
  const store = new SyncStore(db);
  const findings = await store.findings(tenantId);
  const checks = await new IntegrityRepository(db).latest(tenantId);
  const integrity: MigrationReport['integrity'] = { pairs: 0, never_checked: 0, latest: { identical: 0, match: 0, mismatch: 0, unreadable: 0 } };
  const ambiguous = new Map<string, Finding>();
  const mismatched = new Map<string, Finding>();
  for (const f of findings) {
    if (f.kind === 'ambiguous' || f.kind === 'conflict') ambiguous.set(f.recordingPk, f);
    if (f.kind === 'integrity_mismatch') mismatched.set(f.recordingPk, f);
  }
  const counts = { recordings: 0, legacy_only: 0, cloud_only: 0, both: 0, ambiguous: 0, mismatched: 0, retention_gap: 0 };
  const lists: Record<Category, ReportItem[]> = { legacy_only: [], cloud_only: [], both: [], ambiguous: [], mismatched: [], retention_gap: [] };
  let truncated = false;
  const put = (cat: Category, item: ReportItem) => {
    counts[cat]++;
    if (lists[cat].length < limit) lists[cat].push(item);
    else truncated = true;
  };
  opts.progress?.start(await repo.count(tenantId), 'migration report');
  for await (const rec of repo.iterate(tenantId)) {
    counts.recordings++;
    opts.progress?.tick(1);
    // Where the recording is: copies that exist only. One whose every copy is DELETED is in none of the three.
    const legacy = rec.copies.some((c) => c.origin === 'LEGACY_ARCHIVE' && LIVE(c.state));
    const cloud = rec.copies.some((c) => c.origin === 'GENESYS_CLOUD' && LIVE(c.state));
    const { gap, deletesAt, lastDeletesAt } = retentionGap(rec, opts.now);
    if (legacy && cloud) put('both', itemOf(rec, deletesAt, null));
    else if (legacy) put('legacy_only', itemOf(rec, deletesAt, null));
    else if (cloud) put('cloud_only', itemOf(rec, deletesAt, null));
    const amb = ambiguous.get(rec.id);
    if (amb) put('ambiguous', itemOf(rec, deletesAt, findingDetail(amb)));
    const check = legacy && cloud ? current(checks.get(rec.id), rec) : undefined;
    if (legacy && cloud) {
      integrity.pairs++;
      if (check) integrity.latest[check.verdict]++;
      else integrity.never_checked++;
    }
    // Mismatched: durations from the sources' metadata differ, or the decoded audio does.
    const mis = mismatched.get(rec.id);
    const why = [mis ? findingDetail(mis) : null, check?.verdict === 'mismatch' ? checkDetail(check) : null].filter((d) => d !== null);
    if (why.length) put('mismatched', itemOf(rec, deletesAt, why.join('; ')));
    if (gap) put('retention_gap', itemOf(rec, deletesAt, gapDetail(rec, deletesAt, lastDeletesAt)));
  }
  opts.progress?.done();
  const runs = await store.runs(tenantId, 20);
  return {
    tenant: tenantId,
    generated_at: (opts.now ?? new Date()).toISOString(),
    counts,
    lists,
    truncated,
    integrity,
    last_runs: runs.map((r) => ({ source: r.source, kind: r.kind, status: r.status, started_at: r.startedAt, finished_at: r.finishedAt })),
  };
}

const CSV_COLUMNS = ['tenant', 'category', 'recording', 'call_id', 'conversation_id', 'started_at', 'retention_expiry', 'legal_hold', 'source_systems', 'source_deletes_at', 'detail'] as const;

/** A CSV cell: quoted when needed; a leading = + - @ is neutralised so a spreadsheet never runs it as a formula. */
export function csvCell(v: unknown): string {
  let s = v === null || v === undefined ? '' : Array.isArray(v) ? v.join(' ') : String(v);
  if (/^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/**
 * CSV (RFC 4180, CRLF), one header for all tenants: first one row per count (`category` =
 * `count:<name>`, the number in the `recording` column), then one row per listed recording and category.
 */
export function reportCsv(reports: MigrationReport[]): string {
  const lines = [CSV_COLUMNS.join(',')];
  for (const r of reports) {
    const integrity = { integrity_pairs: r.integrity.pairs, integrity_never_checked: r.integrity.never_checked, ...Object.fromEntries(Object.entries(r.integrity.latest).map(([k, n]) => [`integrity_${k}`, n])) };
    for (const [k, n] of Object.entries({ ...r.counts, ...integrity })) lines.push([r.tenant, `count:${k}`, String(n), '', '', '', '', '', '', '', ''].map(csvCell).join(','));
    for (const cat of CATEGORIES) {
      for (const it of r.lists[cat]) {
        lines.push(
          [r.tenant, cat, it.recording, it.call_id, it.conversation_id, it.started_at, it.retention_expiry, it.legal_hold, it.source_systems, it.source_deletes_at, it.detail]
            .map(csvCell)
            .join(','),
        );
      }
    }
  }
  return lines.join('\r\n') + '\r\n';
}
