import type { Readable } from 'node:stream';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Kysely } from 'kysely';
import type { AuditEvent } from '../audit/event.js';
import { recordingMetadata } from '../catalog/metadata.js';
import type { Recording } from '../catalog/model.js';
import type { Database } from '../catalog/tables.js';
import type { AppDeps } from '../deps.js';
import { AppError } from '../errors.js';
import type { AudioFormat, FormatPreference } from '../media/format.js';
import type { Job } from '../jobs/job-repository.js';
import { stageOpened } from '../jobs/run-job.js';
import { orderCopies } from '../resolve/copy-policy.js';
import { NoCopyOpened, type OpenedCopy, PREPARING_CODES } from '../resolve/open-copy.js';
import { openRecording } from '../resolve/open-recording.js';
import { type RetentionStatus, copyRetentionStatus, expiryReason, retentionStatus } from '../resolve/retention.js';
import { locationOf } from '../sources/registry.js';
import { Slice } from './meter.js';
import { auditOrRefuse, noteServedMedia, resolveOrAudit } from './evidence.js';
import { streamOut } from './stream-out.js';
import { entityTag, ifRangeHolds, type RangeRequest, resolveRange } from './range.js';

export interface ServeOptions {
  ref: string;
  format: FormatPreference;
  includeMetadata: boolean;
  /** Only the player endpoint honours Range. */
  range: RangeRequest | null;
  /** The request's If-Range: the Range applies only while it names the bytes to be served (range.ts ifRangeHolds). */
  ifRange?: string | string[] | undefined;
  /** The retrieve contract streams with chunked encoding (and a SHA-256 trailer); players get Content-Length. */
  chunked: boolean;
  /** The retrieve endpoint may answer 202 and continue as a job; players cannot follow that. */
  allowJobs: boolean;
}

/** Aborted when the client goes away, so connectors and ffmpeg stop working for nobody. */
export function clientSignal(reply: FastifyReply): AbortSignal {
  const ac = new AbortController();
  reply.raw.once('close', () => {
    if (!reply.raw.writableFinished) ac.abort();
  });
  return ac.signal;
}

/** X-Recording-Metadata: the normalised record, base64url JSON (direct retrievals and job content alike). */
export const metadataHeader = (rec: Recording, retention: RetentionStatus): string => Buffer.from(JSON.stringify(recordingMetadata(rec, retention))).toString('base64url');

/**
 * The one path from a ref to bytes on the wire, shared by the retrieve endpoint and the player
 * endpoint: resolve in the caller's tenant, apply retention, pick a copy (falling back to the
 * other copy while nothing has been sent), sniff and convert, audit, then stream with
 * backpressure. Once a byte has left, a failure aborts the connection — never a clean end.
 */
export async function serveRecording(deps: AppDeps, req: FastifyRequest, reply: FastifyReply, opts: ServeOptions): Promise<void> {
  const principal = req.principal!;
  const signal = clientSignal(reply);
  req.audit.ref = opts.ref;
  req.audit.detail = { ...req.audit.detail, format: opts.format };

  const recording = await resolveOrAudit(deps, req, opts.ref, signal, { waitMs: lookupWaitMs(deps, principal.tenantId, opts.allowJobs, reply.elapsedTime) });
  req.audit.recordingPk = recording.id;
  const retention = retentionStatus(recording);
  reply.header('X-Retention-Status', retention);
  if (retention === 'EXPIRED') {
    throw new AppError('recording.expired', expiryReason(recording), { headers: { 'X-Retention-Status': 'EXPIRED' } });
  }

  if (opts.format === 'json') {
    const origin = orderCopies(recording, deps.config.policy.prefer)[0]?.origin ?? recording.copies[0]?.origin ?? null;
    req.audit.origin = origin;
    const ev = await auditOrRefuse(deps, req, { outcome: 'completed', status: 200 });
    reply.header('X-Audit-Event-Id', ev.id).header('Cache-Control', 'no-store').header('Content-Type', 'application/json');
    if (origin) reply.header('X-Recording-Origin', origin);
    reply.header('X-Transcoded', 'false');
    await reply.send(recordingMetadata(recording, retention));
    return;
  }

  const format = opts.format;
  const opened = await openOrHandOff(deps, req, reply, recording, format, opts, signal);
  if (!opened) return;
  const { copy, prepared } = opened;
  // A copy found by a rediscovery is located (and described) by the recording as re-read.
  const served = opened.rediscovered ?? recording;
  req.audit.copyId = copy.id;
  req.audit.origin = copy.origin;
  // Which bytes leave (the headers say it to the client; the events to the auditor): before `allowed`.
  noteServedMedia(req, { codec: prepared.codec, transcoded: prepared.transcoded, notes: prepared.sniff.notes }, copy.sha256);
  // The source's own statements about these bytes (Genesys: whether they may be redacted).
  if (opened.sourceDetail) req.audit.detail = { ...req.audit.detail, ...opened.sourceDetail };
  // The header describes the copy served: a hold, the catalog's date, then that copy's source date.
  const servedRetention = copyRetentionStatus(served, copy);

  // Stored bytes have a strong validator: the copy and its catalog digest or size. A transcoded
  // output has none: its bytes are the transcoder's, and another instance's ffmpeg may differ.
  const etag = prepared.transcoded ? undefined : entityTag('copy', copy.id, copy.sha256, opened.totalSize);
  const range = opts.range && ifRangeHolds(opts.ifRange, etag) ? opts.range : null;
  if (opts.range && !range) req.audit.detail = { ...req.audit.detail, if_range: 'not_current' };
  let body: Readable = prepared.body;
  let status = 200;
  let contentRange: string | undefined;
  let length = prepared.length;
  let acceptRanges = length !== undefined;
  try {
    if (range) {
      const whole = prepared.transcoded ? prepared.length : opened.totalSize;
      if (whole === undefined) {
        acceptRanges = false; // an output of unknown length cannot be sliced honestly: send it whole (RFC 9110 allows)
      } else {
        const r = resolveRange(range, whole);
        status = 206;
        contentRange = `bytes ${r.start}-${r.end}/${whole}`;
        length = r.end - r.start + 1;
        if (req.method === 'HEAD') {
          // The head alone: no body is read, so there is no range to fetch or cut (streamOut closes it).
        } else if (!prepared.transcoded) {
          // Stored bytes: ask the source for just the range instead of reading up to it.
          prepared.body.destroy();
          const media = await opened.connector.open(locationOf(copy, served.conversationId), { signal, range: r });
          body = media.body;
        } else {
          body = prepared.body.pipe(new Slice(r.start, r.end));
          prepared.body.once('error', (e) => body.destroy(e));
        }
      }
    }
  } catch (e) {
    prepared.body.destroy();
    throw e;
  }

  const wholeOriginal = status === 200 && !prepared.transcoded;
  const allowed = await auditOrRefuse(deps, req, { outcome: 'allowed', status }).catch((e: unknown) => {
    body.destroy();
    throw e;
  });

  const headers: Record<string, string | number> = {
    'Content-Type': prepared.contentType,
    'Cache-Control': 'no-store',
    'X-Content-Type-Options': 'nosniff',
    'X-Recording-Origin': copy.origin,
    'X-Retention-Status': servedRetention,
    'X-Audio-Codec': prepared.codec,
    'X-Transcoded': String(prepared.transcoded),
    'X-Request-Id': req.id,
    'X-Audit-Event-Id': allowed.id,
    'Accept-Ranges': acceptRanges ? 'bytes' : 'none',
  };
  if (contentRange) headers['Content-Range'] = contentRange;
  if (etag) headers.ETag = etag;
  if (opts.includeMetadata) headers['X-Recording-Metadata'] = metadataHeader(served, servedRetention);
  if (wholeOriginal && copy.sha256) headers['X-Content-SHA256'] = copy.sha256;
  if (opts.chunked) headers.Trailer = 'X-Content-SHA256';
  else if (length !== undefined) headers['Content-Length'] = length;

  await streamOut(deps, req, reply, body, headers, status, {
    allowedEventId: allowed.id,
    chunked: opts.chunked,
    expectSha256: wholeOriginal ? copy.sha256 : null,
    origin: copy.origin,
    transcoded: prepared.transcoded,
  });
}

/**
 * How long the retrieve endpoint waits for a catalog miss's search in the tenant's sources (their
 * finders: a Genesys analytics query, say). product.md: the answer comes "fast (seconds at most)
 * no matter how slow the source is" — and a search can wait a Genesys 429's Retry-After, or the
 * shared request budget, for far longer. A 202 needs a job, and a job a recording, which a search
 * that has not finished does not have: so past the budget the answer is 503
 * `recording.lookup_pending` and the search goes on (Resolver.resolve), its write-back there for
 * the retry. The budget is the searched sources' first-byte budget (the strictest of them), counted
 * from the request's arrival with the hand-off's headroom, as for a copy (handoff-clock.ts); what
 * the search leaves of it is the copy's. Unbounded (the caller waits) for the player endpoint, which
 * cannot follow a 202 either, and when a searched source is in `sync` mode.
 */
function lookupWaitMs(deps: AppDeps, tenantId: string, allowJobs: boolean, elapsedMs: number): number | undefined {
  if (!allowJobs) return undefined;
  const searched = new Set(deps.resolver.finderSources(tenantId));
  const configs = deps.sources.sourcesOf(tenantId).flatMap(({ config }) => (searched.has(config.name) ? [config] : []));
  if (configs.length === 0 || configs.some((c) => c.mode === 'sync')) return undefined;
  return deps.handoffClock.remaining(Math.min(...configs.map((c) => c.first_byte_budget_ms)), elapsedMs);
}

/**
 * Opens a copy for streaming, or — for the retrieve endpoint — answers 202 with a job when the
 * source is slow, asynchronous by configuration, or still preparing the bytes (archived,
 * transcoding). A slow fetch is not restarted: the same fetch goes on into staging.
 * Returns null when a 202 was sent.
 */
async function openOrHandOff(
  deps: AppDeps,
  req: FastifyRequest,
  reply: FastifyReply,
  rec: Recording,
  format: AudioFormat,
  { allowJobs, includeMetadata }: Pick<ServeOptions, 'allowJobs' | 'includeMetadata'>,
  clientGone: AbortSignal,
): Promise<OpenedCopy | null> {
  const p = req.principal!;
  if (allowJobs && req.audit.requestId) {
    const existing = await deps.jobs.byRequestId(p.tenantId, req.audit.requestId);
    // A job is its starter's (and admins'): a repeat by another principal would get a 202 for a job
    // it cannot poll (routes/jobs.ts). The same request_id from someone else is another request.
    if (existing && existing.principalId !== p.id && !p.scopes.has('admin')) {
      throw new AppError('request.idempotency_conflict', `request_id "${req.audit.requestId}" was used before by another principal`);
    }
    if (existing) {
      // A job that ended answers its outcome, not a 202 "Retrieval initiated" to poll a job that
      // will never run again (and no Retry-After: asking again changes nothing; a new request_id
      // starts a new retrieval). A ready one is still a 202: its poll offers the content.
      req.audit.detail = { ...req.audit.detail, job_id: existing.id };
      if (existing.status === 'expired') throw new AppError('job.expired', `the job of request_id "${req.audit.requestId}" has expired; retrieve again with a new request_id`, { extra: { job_id: existing.id } });
      if (existing.status === 'failed') {
        throw new AppError('job.failed', `the job of request_id "${req.audit.requestId}" failed: ${existing.errorCode ?? 'unknown'}`, { extra: { job_id: existing.id, job_error: existing.errorCode } });
      }
      return accepted(deps, req, reply, async () => ({ job: existing, created: false }));
    }
  }
  const first = orderCopies(rec, deps.config.policy.prefer)[0];
  const source = first ? deps.sources.configFor(rec.tenantId, first) : undefined;
  const mode = allowJobs ? (source?.mode ?? 'sync') : 'sync';
  const newJob = (running: boolean, db?: Kysely<Database>) =>
    deps.jobs.create({
      tenantId: p.tenantId,
      principalId: p.id,
      callerId: req.audit.callerId ?? null,
      requestId: req.audit.requestId ?? null,
      auditLogId: req.audit.auditLogId ?? null,
      ref: req.audit.ref ?? rec.id,
      recordingPk: rec.id,
      format,
      includeMetadata,
      maxAttempts: deps.config.jobs.max_attempts,
      ...(running ? { leaseOwner: deps.instanceId, leaseMs: deps.config.jobs.lease_ms } : {}),
    }, db);
  if (mode === 'async') return accepted(deps, req, reply, (trx) => newJob(false, trx), { poke: true });

  // The fetch outlives the client only once it is handed to a job.
  const fetchAc = new AbortController();
  let handedOff = false;
  clientGone.addEventListener('abort', () => handedOff || fetchAc.abort(), { once: true });
  const log = (msg: string, o: object) => req.log.warn(o, msg);
  // Keys first, one retry on a source's key refusal; every copy gone and none in the cloud: one finder round (open-recording.ts).
  const note = (d: Record<string, unknown>) => (req.audit.detail = { ...req.audit.detail, ...d });
  const opening = openRecording(deps, rec, format, fetchAc.signal, note, log);
  // The budget counts from the request's arrival, and ends early by what a hand-off costs (handoff-clock.ts).
  const budget = mode === 'auto' ? (source?.first_byte_budget_ms ?? 2000) : undefined;
  const outcome = await settleWithin(opening, budget === undefined ? undefined : deps.handoffClock.remaining(budget, reply.elapsedTime));
  if (outcome === 'timeout') {
    const handoffStart = performance.now();
    reply.raw.once('finish', () => deps.handoffClock.record(performance.now() - handoffStart));
    const { job, created, event } = await recordHandOff(deps, req, (trx) => newJob(true, trx));
    handedOff = true;
    if (created) {
      const handed = { abort: fetchAc, done: stageOpened(deps, job, opening, fetchAc) };
      deps.handedOff.add(handed);
      void handed.done.finally(() => deps.handedOff.delete(handed));
    }
    else fetchAc.abort(); // a concurrent duplicate already owns the work
    return sendAccepted(deps, reply, job, event.id);
  }
  if ('error' in outcome) {
    const e = outcome.error;
    if (e instanceof NoCopyOpened) {
      req.audit.detail = { ...req.audit.detail, attempts: e.attempts };
      if (allowJobs && PREPARING_CODES.has(e.last.code)) return accepted(deps, req, reply, (trx) => newJob(false, trx), { poke: true });
      throw e.last;
    }
    throw e;
  }
  if (outcome.value.fallbackFrom.length) req.audit.detail = { ...req.audit.detail, fallback_from: outcome.value.fallbackFrom };
  return outcome.value;
}

async function settleWithin<T>(p: Promise<T>, ms: number | undefined): Promise<{ value: T } | { error: unknown } | 'timeout'> {
  const settled = p.then(
    (value) => ({ value }),
    (error: unknown) => ({ error }),
  );
  if (ms === undefined) return settled;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), ms)));
  try {
    return await Promise.race([settled, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Writes a job (or returns the request's existing one) inside the hand-off's transaction. */
type JobWrite = (trx: Kysely<Database>) => Promise<{ job: Job; created: boolean }>;

/**
 * The job row and its "allowed" 202 event: one commit, never one without the other — an audit
 * trail that cannot be written rolls the job back, so no job runs (or stages media) without evidence.
 */
async function recordHandOff(deps: AppDeps, req: FastifyRequest, write: JobWrite): Promise<{ job: Job; created: boolean; event: AuditEvent }> {
  return auditOrRefuse(deps, req, { outcome: 'allowed', status: 202 }, async (trx, record) => {
    const r = await write(trx);
    req.audit.detail = { ...req.audit.detail, job_id: r.job.id, job_created: r.created };
    return { ...r, event: await record() };
  });
}

/** 202 Accepted with the job to poll (product.md), audited as an allowed access in the job's commit. */
async function accepted(deps: AppDeps, req: FastifyRequest, reply: FastifyReply, write: JobWrite, opts: { poke?: boolean } = {}): Promise<null> {
  const { job, event } = await recordHandOff(deps, req, write);
  // Only after the commit: a worker woken earlier could miss the row, or claim one about to roll back.
  if (opts.poke) deps.worker?.poke();
  return sendAccepted(deps, reply, job, event.id);
}

/**
 * Retry-After for a job not done yet: `jobs.retry_after_s`, or — a queued job whose next attempt is
 * further away (a backoff, an archive restore polled every `restore_poll_ms`) — the seconds until
 * that attempt, at most an hour: a poll before it can only find the job as it is.
 */
export function jobRetryAfterS(deps: Pick<AppDeps, 'config'>, job: Pick<Job, 'status' | 'runAfter'>, now = Date.now()): number {
  const base = deps.config.jobs.retry_after_s;
  if (job.status !== 'queued') return base;
  const untilNext = Math.ceil((Date.parse(job.runAfter) - now) / 1000);
  return Number.isFinite(untilNext) ? Math.min(Math.max(untilNext, base), Math.max(base, 3600)) : base;
}

async function sendAccepted(deps: AppDeps, reply: FastifyReply, job: Job, eventId: string): Promise<null> {
  const poll = `/api/v1/recordings/status/${job.id}`;
  const retryAfter = String(jobRetryAfterS(deps, job));
  await reply
    .code(202)
    .header('Location', poll)
    .header('Retry-After', retryAfter)
    .header('X-Audit-Event-Id', eventId)
    .header('Cache-Control', 'no-store')
    .send({ status: 202, message: 'Retrieval initiated', job_id: job.id, poll_endpoint: poll });
  return null;
}
