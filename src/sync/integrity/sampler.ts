import { isAppError } from '../../errors.js';
import type { Recording } from '../../catalog/model.js';
import type { RecordingRepository } from '../../catalog/recording-repository.js';
import { judgeRecording, keepVerdict, type IntegrityDeps } from './check.js';
import { type IntegrityCheck, IntegrityRepository, type Verdict } from './integrity-repository.js';
import type { IntegrityThresholds } from './judge.js';

export interface SampleRequest {
  tenantId: string;
  /** Pairs to check: a count, or a fraction (0 < f ≤ 1) of the tenant's pairs, rounded up. */
  count?: number;
  fraction?: number;
  /** Checks at once; capped so the sampler never asks the transcoder pool for more slots than it has. */
  concurrency?: number;
  principalId: string;
  thresholds?: Partial<IntegrityThresholds>;
  signal?: AbortSignal;
  /** Called after each verdict is stored and audited (progress). */
  onVerdict?: (c: IntegrityCheck) => void;
}

export interface SampleReport {
  tenant: string;
  pairs: number;
  sampled: number;
  verdicts: Record<Verdict, number>;
  checks: IntegrityCheck[];
}

/** Both kinds of copy still exist (not DELETED): what the repository's pairs are made of, read again at check time. */
function livePair(rec: Recording): boolean {
  const live = rec.copies.filter((c) => c.state !== 'DELETED');
  return live.some((c) => c.origin === 'GENESYS_CLOUD') && live.some((c) => c.origin !== 'GENESYS_CLOUD');
}

/**
 * Checks randomly chosen linked pairs of a tenant, a bounded number at a time, storing and
 * auditing each verdict as it is reached (a crash keeps what was done). Each check may hold
 * two ffmpeg slots (one per copy), so at most half the pool's slots are asked for: the pool's
 * queue never fills up because of the sampler, and live retrievals keep the rest.
 */
export async function sampleIntegrity(deps: IntegrityDeps & { recordings: RecordingRepository }, req: SampleRequest): Promise<SampleReport> {
  const repo = new IntegrityRepository(deps.catalog.db);
  const { pairs } = await repo.pairCounts(req.tenantId);
  let n = req.count ?? 0;
  if (req.fraction !== undefined) {
    if (!(req.fraction > 0 && req.fraction <= 1)) throw new RangeError('fraction must be in (0, 1]');
    n = Math.ceil(pairs * req.fraction);
  }
  const pks = await repo.samplePairs(req.tenantId, n);
  const slots = Math.max(1, Math.floor(deps.config.media.max_concurrent_transcodes / 2));
  const concurrency = Math.max(1, Math.min(req.concurrency ?? slots, slots));
  const timeoutMs = deps.config.media.transcode_timeout_ms;
  const verdicts: Record<Verdict, number> = { identical: 0, match: 0, mismatch: 0, unreadable: 0 };
  const checks: IntegrityCheck[] = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < pks.length) {
      req.signal?.throwIfAborted();
      const pk = pks[next++]!;
      const rec = await deps.recordings.get(req.tenantId, pk);
      // Merged away or deleted since it was picked, or a side's only copy became DELETED: no pair to compare any more.
      if (!rec || !livePair(rec)) continue;
      const signal = req.signal ? AbortSignal.any([req.signal, AbortSignal.timeout(timeoutMs)]) : AbortSignal.timeout(timeoutMs);
      let check: IntegrityCheck;
      try {
        check = await judgeRecording(deps, rec, { principalId: req.principalId, trigger: 'sample', signal, ...(req.thresholds ? { thresholds: req.thresholds } : {}) });
      } catch (e) {
        // A copy moved between the pick and the read: no longer a pair.
        if (isAppError(e) && e.code === 'integrity.not_a_pair') continue;
        throw e;
      }
      await keepVerdict(deps, check, { principalId: req.principalId, principalKind: 'system' });
      verdicts[check.verdict]++;
      checks.push(check);
      req.onVerdict?.(check);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, pks.length) }, worker));
  return { tenant: req.tenantId, pairs, sampled: checks.length, verdicts, checks };
}

