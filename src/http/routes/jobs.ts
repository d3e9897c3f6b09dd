import type { FastifyRequest } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { AppDeps } from '../../deps.js';
import { AppError } from '../../errors.js';
import type { Job } from '../../jobs/job-repository.js';
import { discardStaged, openStagedContent } from '../../jobs/staged-content.js';
import { keyStateError } from '../../resolve/key-guard.js';
import { copyRetentionStatus, expiryReason, retentionStatus } from '../../resolve/retention.js';
import { entityTag, ifRangeHolds, parseRange, resolveRange } from '../range.js';
import { auditOrRefuse, noteServedMedia } from '../evidence.js';
import { jobRetryAfterS, metadataHeader } from '../serve-recording.js';
import { streamOut } from '../stream-out.js';

const jobParams = z.object({ job_id: z.string().regex(/^job_[0-9a-f-]{36}$/, 'not a job id') }).strict();

/**
 * A job is visible to its tenant's principal that started it (and to admins): same answer as
 * "no such job" otherwise, like recordings of another tenant.
 */
async function visibleJob(deps: AppDeps, req: FastifyRequest, id: string): Promise<Job> {
  const p = req.principal!;
  const job = await deps.jobs.get(p.tenantId, id);
  if (!job || (job.principalId !== p.id && !p.scopes.has('admin'))) throw new AppError('job.not_found');
  req.audit.recordingPk = job.recordingPk;
  req.audit.ref = job.ref;
  req.audit.requestId = job.requestId;
  req.audit.origin = job.origin;
  req.audit.detail = { ...req.audit.detail, job_id: job.id };
  return job;
}

/** Polling and download of asynchronous retrievals (product.md "Jobs"). */
export function jobRoutes(deps: AppDeps): FastifyPluginAsyncZod {
  return async (app) => {
    app.get(
      '/api/v1/recordings/status/:job_id',
      { config: { auth: true, scope: 'recordings:read', action: 'job.status' }, schema: { summary: 'Status of a retrieval job', params: jobParams } },
      async (req, reply) => {
        req.audit.callerId = req.principal!.id;
        const job = await visibleJob(deps, req, req.params.job_id);
        const ev = await auditOrRefuse(deps, req, { outcome: 'completed', status: 200 });
        reply.header('X-Audit-Event-Id', ev.id).header('Cache-Control', 'no-store');
        if (job.status === 'queued' || job.status === 'running') reply.header('Retry-After', String(jobRetryAfterS(deps, job)));
        return {
          job_id: job.id,
          status: job.status,
          origin: job.origin,
          bytes_done: job.bytesDone,
          ...(job.bytesTotal !== null ? { bytes_total: job.bytesTotal } : {}),
          ...(job.status === 'failed' || job.errorCode ? { error: { code: job.errorCode, detail: job.errorDetail } } : {}),
          ...(job.sourceState ? { source_state: job.sourceState } : {}),
          attempts: job.attempts,
          ...(job.status === 'ready' ? { content_endpoint: `/api/v1/recordings/jobs/${job.id}/content`, expires_at: job.expiresAt, sha256: job.sha256 } : {}),
        };
      },
    );

    app.get(
      '/api/v1/recordings/jobs/:job_id/content',
      {
        config: { auth: true, scope: 'recordings:read', action: 'job.content' },
        schema: { summary: 'Download the staged media of a ready job (supports Range)', params: jobParams },
      },
      async (req, reply) => {
        req.audit.callerId = req.principal!.id;
        const job = await visibleJob(deps, req, req.params.job_id);
        if (job.status === 'expired') throw new AppError('job.expired');
        if (job.status === 'failed') throw new AppError('job.failed', `the job failed: ${job.errorCode ?? 'unknown'}`, { extra: { job_error: job.errorCode } });
        if (job.status !== 'ready' || !job.stagingKey || !job.dekWrapped || !job.dekKeyId || job.bytesTotal === null) {
          throw new AppError('job.not_ready', `the job is ${job.status}`, { headers: { 'Retry-After': String(jobRetryAfterS(deps, job)) } });
        }
        // Retention and the key are checked again at download, on the recording that holds the
        // staged copy now: retention may have lapsed since the job ran, a key been withdrawn, and the
        // copy may have moved to another recording (an import learnt its call id, a merge) whose
        // retention and holds are the ones that govern its bytes — as a direct retrieval of it would.
        // What may never be served again is discarded at once (staged-content.ts discardStaged): the
        // job says `expired` instead of offering content until its TTL.
        const stagingKey = job.stagingKey;
        const discard = () => discardStaged(deps, stagingKey, () => deps.jobs.markExpired(job.id));
        const rec = job.copyId ? await deps.recordings.byCopyId(job.tenantId, job.copyId) : null;
        const staged = rec?.copies.find((c) => c.id === job.copyId);
        if (!rec || !staged) {
          await discard();
          throw new AppError('job.expired', 'the copy the job staged is no longer in the catalog');
        }
        req.audit.recordingPk = rec.id;
        req.audit.copyId = staged.id;
        if (retentionStatus(rec) === 'EXPIRED') {
          await discard();
          throw new AppError('recording.expired', expiryReason(rec), { headers: { 'X-Retention-Status': 'EXPIRED' } });
        }
        // The copy staged alone deleted at its source (its delete date passed, another copy still
        // there): a direct retrieval would no longer try it, so its staged bytes are not served
        // either; a new retrieval serves another copy.
        const retention = copyRetentionStatus(rec, staged);
        if (retention === 'EXPIRED') {
          await discard();
          throw new AppError('job.expired', `the copy the job staged was deleted at its source (${staged.sourceRetentionExpiry}); retrieve the recording again`);
        }
        // So is the key of the copy the job staged (key-guard.ts): a key disabled or deleted since is
        // the customer withdrawing the recording (crypto-shredding); the staged copy, sealed with
        // our own key, must not outlive that for the rest of its TTL.
        if (staged.keyId) {
          const { state } = await deps.keys.checkKey(staged.keyId);
          if (state !== 'enabled') {
            const refusal = { copy_id: staged.id, key_id: staged.keyId, state };
            req.audit.detail = { ...req.audit.detail, key_refused: [refusal] };
            throw keyStateError(refusal);
          }
        }

        const size = job.bytesTotal;
        // Staged once, by the attempt that marked the job ready: its digest names its bytes.
        const etag = entityTag('job', job.id, job.stagingKey, job.sha256);
        const rangeHeader = req.headers.range;
        const asked = parseRange(Array.isArray(rangeHeader) ? rangeHeader[0] : rangeHeader);
        const range = asked && ifRangeHolds(req.headers['if-range'], etag) ? asked : null;
        const r = range ? resolveRange(range, size) : { start: 0, end: size - 1 };
        // Gone for good (purged, or sealed under a rotated master key) is 410 and the job expires; a
        // first record that fails its check is a 500 problem: both before anything is allowed or sent.
        const body = await openStagedContent(deps, { stagingKey: job.stagingKey, dekKeyId: job.dekKeyId, dekWrapped: job.dekWrapped, size }, r, 'media', () => deps.jobs.markExpired(job.id), req.method === 'HEAD');
        // What the staging attempt sniffed and sent (as the headers below say it): the staged bytes are
        // that attempt's output, so a transcode is linked to the stored copy it came from.
        noteServedMedia(req, { codec: job.codec ?? 'unknown', transcoded: job.transcoded ?? false }, staged.sha256);
        // And what the source stated about them when they were staged (Genesys: whether they may be
        // redacted), kept with the job (0015): as a direct retrieval's events carry them.
        if (job.sourceDetail) req.audit.detail = { ...req.audit.detail, ...job.sourceDetail };
        const allowed = await auditOrRefuse(deps, req, { outcome: 'allowed', status: range ? 206 : 200 }).catch((e: unknown) => {
          body.destroy();
          throw e;
        });
        const headers: Record<string, string | number> = {
          'Content-Type': job.contentType ?? 'application/octet-stream',
          'Content-Length': size === 0 ? 0 : r.end - r.start + 1,
          'Cache-Control': 'no-store',
          'X-Content-Type-Options': 'nosniff',
          'X-Recording-Origin': job.origin ?? '',
          'X-Retention-Status': retention,
          'X-Audio-Codec': job.codec ?? 'unknown',
          'X-Transcoded': String(job.transcoded ?? false),
          'X-Request-Id': req.id,
          'X-Audit-Event-Id': allowed.id,
          'Accept-Ranges': 'bytes',
          ETag: etag,
          ...(range ? { 'Content-Range': `bytes ${r.start}-${r.end}/${size}` } : job.sha256 ? { 'X-Content-SHA256': job.sha256 } : {}),
          // As a direct retrieval with include_metadata would have sent it (the catalog as it is now).
          ...(job.includeMetadata ? { 'X-Recording-Metadata': metadataHeader(rec, retention) } : {}),
        };
        await streamOut(deps, req, reply, body, headers, range ? 206 : 200, {
          allowedEventId: allowed.id,
          chunked: false,
          // The whole staged file must hash to what was staged: decryption already authenticates records.
          expectSha256: range ? null : job.sha256,
          origin: job.origin ?? 'LEGACY_ARCHIVE',
          transcoded: job.transcoded ?? false,
        });
      },
    );
  };
}
