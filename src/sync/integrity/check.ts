import { randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { AuditRepository } from '../../audit/audit-repository.js';
import type { AuditEventInput } from '../../audit/event.js';
import { writeTransaction } from '../../catalog/database.js';
import type { Copy, Recording } from '../../catalog/model.js';
import type { Database } from '../../catalog/tables.js';
import type { Config } from '../../config/schema.js';
import { AppError, type ErrorCode } from '../../errors.js';
import { readableCopies } from '../../resolve/copy-policy.js';
import { DEFAULT_SYNC_CONFIG } from '../config.js';
import { type CopyDigest, type DigestDeps, digestCopy } from './copy-digest.js';
import { type IntegrityCheck, IntegrityRepository, type SideResult } from './integrity-repository.js';
import { type IntegrityThresholds, judge } from './judge.js';

/** What a check needs of the composition root (AppDeps has all of it). */
export interface IntegrityDeps extends DigestDeps {
  config: Config;
  catalog: { db: Kysely<Database> };
  auditRepo: AuditRepository;
}

export interface CheckOptions {
  /** Who asked, for the stored row and the audit trail. */
  principalId: string;
  trigger: IntegrityCheck['trigger'];
  signal: AbortSignal;
  thresholds?: Partial<IntegrityThresholds>;
}

/** The tenant's thresholds: the crosswalk's duration tolerance, the fingerprint defaults, then overrides. */
export function thresholdsFor(config: Config, tenantId: string, overrides: Partial<IntegrityThresholds> = {}): IntegrityThresholds {
  const sync = config.tenants.find((t) => t.id === tenantId)?.sync ?? DEFAULT_SYNC_CONFIG;
  const i = sync.crosswalk.integrity;
  return { minSimilarity: i.min_similarity, maxOffsetMs: i.max_offset_ms, durationToleranceMs: sync.crosswalk.duration_tolerance_ms, ...overrides };
}

type Side = { copy: Copy } | { copy: Copy | null; error: AppError };

/** Why no copy of one side can be read now, from the state of the first one. */
function unreadableSide(copies: Copy[]): AppError {
  const c = copies[0]!;
  const code: ErrorCode = c.state === 'ARCHIVED' ? 'source.archived' : c.state === 'RESTORING' ? 'source.restoring' : 'recording.no_copy_available';
  const why = code === 'recording.no_copy_available' && (c.state === 'AVAILABLE' || c.state === 'RESTORED') ? 'its source deletion date has passed' : `state ${c.state}`;
  return new AppError(code, `no ${c.origin === 'GENESYS_CLOUD' ? 'cloud' : 'legacy'} copy is readable now (${why})`);
}

/**
 * The two copies to compare: the first readable legacy copy and the first readable cloud copy,
 * in policy order. A recording lacking one kind of copy altogether is not a pair ('integrity.not_a_pair').
 */
export function pairOf(rec: Recording): { legacy: Side; cloud: Side } {
  const legacy = rec.copies.filter((c) => c.origin === 'LEGACY_ARCHIVE');
  const cloud = rec.copies.filter((c) => c.origin === 'GENESYS_CLOUD');
  if (!legacy.length || !cloud.length) {
    throw new AppError('integrity.not_a_pair', `the recording has ${legacy.length} legacy and ${cloud.length} cloud copies`, {
      extra: { legacy_copies: legacy.length, cloud_copies: cloud.length },
    });
  }
  // What the catalog says is readable now: a check compares today's bytes and never waits on a restore.
  const readable = readableCopies(rec, 'legacy');
  const pick = (copies: Copy[]): Side => {
    const c = readable.find((r) => copies.includes(r));
    return c ? { copy: c } : { copy: copies[0] ?? null, error: unreadableSide(copies) };
  };
  return { legacy: pick(legacy), cloud: pick(cloud) };
}

/**
 * Compares the legacy and the cloud copy of one recording by their decoded audio. Both copies are
 * read at once, each through its own connector and at most one ffmpeg slot. Stores nothing: the
 * verdict is kept in one commit with its audit event (`keepVerdict` for the CLI and the sampler,
 * the route's auditOrRefuse), never one without the other.
 */
export async function judgeRecording(deps: IntegrityDeps, rec: Recording, opts: CheckOptions): Promise<IntegrityCheck> {
  const t = thresholdsFor(deps.config, rec.tenantId, opts.thresholds);
  const pair = pairOf(rec);
  const digest = (s: Side): Promise<CopyDigest> => ('error' in s ? Promise.reject(s.error) : digestCopy(deps, rec, s.copy, opts.signal));
  const [l, c] = await Promise.allSettled([digest(pair.legacy), digest(pair.cloud)]);
  const side = (s: Side, r: PromiseSettledResult<CopyDigest>): SideResult => ({
    copyId: s.copy?.id ?? null,
    durationMs: r.status === 'fulfilled' ? r.value.durationMs : null,
    pcmSha256: r.status === 'fulfilled' ? r.value.pcmSha256 : null,
  });
  const sideDetail = (s: Side, r: PromiseSettledResult<CopyDigest>) => ({
    source_system: s.copy?.sourceSystem ?? null,
    codec: r.status === 'fulfilled' ? r.value.codec : (s.copy?.codec ?? null),
    ...(r.status === 'rejected' ? { error: errorOf(r.reason) } : {}),
  });
  const base = {
    id: randomUUID(),
    tenantId: rec.tenantId,
    recordingPk: rec.id,
    legacy: side(pair.legacy, l),
    cloud: side(pair.cloud, c),
    trigger: opts.trigger,
    checkedBy: opts.principalId,
    checkedAt: new Date().toISOString(),
  };
  const thresholds = { min_similarity: t.minSimilarity, max_offset_ms: t.maxOffsetMs, duration_tolerance_ms: t.durationToleranceMs };
  const details = { legacy: sideDetail(pair.legacy, l), cloud: sideDetail(pair.cloud, c), thresholds };
  let check: IntegrityCheck;
  if (l.status === 'rejected' || c.status === 'rejected') {
    const failed = l.status === 'rejected' ? l : (c as PromiseRejectedResult);
    check = {
      ...base,
      verdict: 'unreadable',
      similarity: null,
      offsetMs: null,
      errorCode: errorOf(failed.reason).code,
      detail: { reason: 'copy_unreadable', failed_side: l.status === 'rejected' ? 'legacy' : 'cloud', ...details },
    };
  } else {
    const j = judge(l.value, c.value, t);
    check = { ...base, verdict: j.verdict, similarity: j.similarity, offsetMs: j.offsetMs, errorCode: null, detail: { reason: j.reason, ...details } };
  }
  return check;
}

function errorOf(e: unknown): { code: string; message: string } {
  const err = e instanceof AppError ? e : new AppError('internal', String((e as Error)?.message ?? e));
  return { code: err.code, message: err.message.slice(0, 300) };
}

/** The verdict as an audit event's detail (and the API's answer). */
export function verdictView(c: IntegrityCheck): Record<string, unknown> {
  return {
    check_id: c.id,
    recording: c.recordingPk,
    verdict: c.verdict,
    similarity: c.similarity,
    offset_ms: c.offsetMs,
    legacy: { copy_id: c.legacy.copyId, duration_ms: c.legacy.durationMs, pcm_sha256: c.legacy.pcmSha256, ...(c.detail.legacy as object) },
    cloud: { copy_id: c.cloud.copyId, duration_ms: c.cloud.durationMs, pcm_sha256: c.cloud.pcmSha256, ...(c.detail.cloud as object) },
    error_code: c.errorCode,
    reason: c.detail.reason,
    thresholds: c.detail.thresholds,
    trigger: c.trigger,
    checked_by: c.checkedBy,
    checked_at: c.checkedAt,
  };
}

/**
 * Keeps a verdict reached outside a request (CLI, sampler) with its `sync.integrity.verdict` event,
 * in one commit: a verdict is never stored without its evidence (nor the event without the row).
 */
export async function keepVerdict(deps: Pick<IntegrityDeps, 'catalog' | 'auditRepo'>, c: IntegrityCheck, principal: Pick<AuditEventInput, 'principalId' | 'principalKind'>): Promise<void> {
  const event = await writeTransaction(deps.catalog.db, async (trx) => {
    await new IntegrityRepository(trx).insert(c);
    return deps.auditRepo.appendIn(trx, {
      tenantId: c.tenantId,
      ...principal,
      action: 'sync.integrity.verdict',
      outcome: 'completed',
      recordingPk: c.recordingPk,
      detail: verdictView(c),
    });
  });
  deps.auditRepo.published([event]);
}
