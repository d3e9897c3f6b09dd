import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { recordingMetadata } from '../catalog/metadata.js';
import type { Copy, Recording } from '../catalog/model.js';
import type { AppDeps } from '../deps.js';
import { AppError, isAppError, isRetryable } from '../errors.js';
import type { FormatPreference } from '../media/format.js';
import { type PreparedMedia, prepareMedia } from '../media/prepare.js';
import { orderCopies } from '../resolve/copy-policy.js';
import { type RetentionStatus, retentionStatus } from '../resolve/retention.js';
import type { SourceConnector } from '../sources/port.js';
import { locationOf } from '../sources/registry.js';
import { Meter, Slice } from './meter.js';
import { type RangeRequest, resolveRange } from './range.js';

export interface ServeOptions {
  ref: string;
  format: FormatPreference;
  includeMetadata: boolean;
  /** Only the player endpoint honours Range. */
  range: RangeRequest | null;
  /** The retrieve contract streams with chunked encoding (and a SHA-256 trailer); players get Content-Length. */
  chunked: boolean;
}

interface Opened {
  copy: Copy;
  connector: SourceConnector;
  prepared: PreparedMedia;
  totalSize: number | undefined;
}

/** Aborted when the client goes away, so connectors and ffmpeg stop working for nobody. */
function clientSignal(req: FastifyRequest, reply: FastifyReply): AbortSignal {
  const ac = new AbortController();
  reply.raw.once('close', () => {
    if (!reply.raw.writableFinished) ac.abort();
  });
  return ac.signal;
}

const b64url = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');

/**
 * The one path from a ref to bytes on the wire, shared by the retrieve endpoint and the player
 * endpoint: resolve in the caller's tenant, apply retention, pick a copy (falling back to the
 * other copy while nothing has been sent), sniff and convert, audit, then stream with
 * backpressure. Once a byte has left, a failure aborts the connection — never a clean end.
 */
export async function serveRecording(deps: AppDeps, req: FastifyRequest, reply: FastifyReply, opts: ServeOptions): Promise<void> {
  const principal = req.principal!;
  const signal = clientSignal(req, reply);
  req.audit.ref = opts.ref;
  req.audit.detail = { ...req.audit.detail, format: opts.format };

  const recording = await resolveOrAudit(deps, req, opts.ref, signal);
  req.audit.recordingPk = recording.id;
  const retention = retentionStatus(recording);
  reply.header('X-Retention-Status', retention);
  if (retention === 'EXPIRED') {
    throw new AppError('recording.expired', `retention ended ${recording.retentionExpiry}`, { headers: { 'X-Retention-Status': 'EXPIRED' } });
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

  const opened = await openFirstCopy(deps, req, recording, opts, signal);
  const { copy, prepared } = opened;
  req.audit.copyId = copy.id;
  req.audit.origin = copy.origin;

  let body: Readable = prepared.body;
  let status = 200;
  let contentRange: string | undefined;
  let length = prepared.length;
  let acceptRanges = length !== undefined;
  try {
    if (opts.range) {
      const whole = prepared.transcoded ? prepared.length : opened.totalSize;
      if (whole === undefined) {
        acceptRanges = false; // an output of unknown length cannot be sliced honestly: send it whole (RFC 9110 allows)
      } else {
        const r = resolveRange(opts.range, whole);
        status = 206;
        contentRange = `bytes ${r.start}-${r.end}/${whole}`;
        length = r.end - r.start + 1;
        if (!prepared.transcoded) {
          // Stored bytes: ask the source for just the range instead of reading up to it.
          prepared.body.destroy();
          const media = await opened.connector.open(locationOf(copy, recording.conversationId), { signal, range: r });
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
    'X-Retention-Status': retention,
    'X-Audio-Codec': prepared.codec,
    'X-Transcoded': String(prepared.transcoded),
    'X-Request-Id': req.id,
    'X-Audit-Event-Id': allowed.id,
    'Accept-Ranges': acceptRanges ? 'bytes' : 'none',
  };
  if (contentRange) headers['Content-Range'] = contentRange;
  if (opts.includeMetadata) headers['X-Recording-Metadata'] = b64url(recordingMetadata(recording, retention));
  if (wholeOriginal && copy.sha256) headers['X-Content-SHA256'] = copy.sha256;
  if (opts.chunked) headers.Trailer = 'X-Content-SHA256';
  else if (length !== undefined) headers['Content-Length'] = length;

  await streamOut(deps, req, reply, body, headers, status, {
    allowedEventId: allowed.id,
    chunked: opts.chunked,
    expectSha256: wholeOriginal ? copy.sha256 : null,
    origin: copy.origin,
    transcoded: prepared.transcoded,
    retention,
  });
}

async function resolveOrAudit(deps: AppDeps, req: FastifyRequest, ref: string, signal: AbortSignal): Promise<Recording> {
  const tenantId = req.principal!.tenantId;
  try {
    const { recording, discoveredBy } = await deps.resolver.resolve(tenantId, ref, signal);
    if (discoveredBy) req.audit.detail = { ...req.audit.detail, self_heal: discoveredBy };
    return recording;
  } catch (e) {
    if (isAppError(e) && e.code === 'recording.not_found') {
      // Same answer as "does not exist", but the attempt is evidence for the owner too.
      const owners = await deps.recordings.otherTenantsHoldingRef(ref, tenantId);
      if (owners.length) {
        req.audit.detail = { ...req.audit.detail, cross_tenant_attempt: true };
        for (const owner of owners) {
          await deps.audit.repo.append({
            ...deps.audit.base(req),
            tenantId: owner,
            action: 'recording.cross_tenant_attempt',
            outcome: 'denied',
            status: 404,
            errorCode: 'recording.not_found',
            detail: { requesting_tenant: tenantId },
          });
        }
      }
    }
    throw e;
  }
}

/** Tries the copies in policy order; another copy is tried only for failures a retry can help. */
async function openFirstCopy(deps: AppDeps, req: FastifyRequest, rec: Recording, opts: ServeOptions, signal: AbortSignal): Promise<Opened> {
  const copies = orderCopies(rec, deps.config.policy.prefer);
  if (copies.length === 0) {
    throw new AppError('recording.no_copy_available', 'no copy is in a readable state', {
      extra: { copies: rec.copies.map((c) => ({ origin: c.origin, state: c.state })) },
    });
  }
  const attempts: { copy_id: string; origin: string; code: string }[] = [];
  let last: AppError | undefined;
  for (const copy of copies) {
    const started = process.hrtime.bigint();
    let connector: SourceConnector | undefined;
    try {
      connector = deps.sources.forCopy(rec.tenantId, copy);
      const media = await connector.open(locationOf(copy, rec.conversationId), { signal });
      deps.metrics.sourceLatency.observe({ kind: connector.kind, outcome: 'ok' }, Number(process.hrtime.bigint() - started) / 1e9);
      const want = opts.format === 'json' ? 'wav' : opts.format;
      const prepared = await prepareMedia(media.body, want, {
        transcoder: deps.transcoder,
        signal,
        ...(media.totalSize !== undefined ? { sourceSize: media.totalSize } : {}),
        ...(copy.codec ? { rawCodecHint: copy.codec } : {}),
      }).catch((e: unknown) => {
        media.body.destroy();
        throw e;
      });
      if (attempts.length) req.audit.detail = { ...req.audit.detail, fallback_from: attempts };
      return { copy, connector, prepared, totalSize: media.totalSize };
    } catch (e) {
      const err = isAppError(e) ? e : new AppError('source.unavailable', 'the source failed', { cause: e });
      if (connector) deps.metrics.sourceLatency.observe({ kind: connector.kind, outcome: 'error' }, Number(process.hrtime.bigint() - started) / 1e9);
      attempts.push({ copy_id: copy.id, origin: copy.origin, code: err.code });
      last = err;
      const sourceFault = err.code.startsWith('source.') || isRetryable(err);
      if (!sourceFault || signal.aborted) break;
      req.log.warn({ copy: copy.id, code: err.code }, 'copy failed, trying the next one');
    }
  }
  req.audit.detail = { ...req.audit.detail, attempts };
  throw last!;
}

async function auditOrRefuse(deps: AppDeps, req: FastifyRequest, fields: { outcome: 'allowed' | 'completed'; status: number }) {
  try {
    return await deps.audit.record(req, fields);
  } catch (e) {
    // Fail closed: no evidence, no access.
    req.log.error({ err: e }, 'audit write failed; refusing access');
    req.audit.written = true;
    throw new AppError('audit.unavailable', undefined, { cause: e });
  }
}

async function streamOut(
  deps: AppDeps,
  req: FastifyRequest,
  reply: FastifyReply,
  body: Readable,
  headers: Record<string, string | number>,
  status: number,
  ctx: { allowedEventId: string; chunked: boolean; expectSha256: string | null; origin: string; transcoded: boolean; retention: RetentionStatus },
): Promise<void> {
  const res = reply.raw;
  const meter = new Meter({
    expectSha256: ctx.expectSha256,
    // Trailers go out with the last chunk; the digest is of exactly the bytes sent.
    onEnd: (sha) => {
      if (ctx.chunked) res.addTrailers({ 'X-Content-SHA256': sha });
    },
  });
  reply.hijack();
  res.writeHead(status, headers);
  let outcome: 'completed' | 'aborted' | 'failed' = 'completed';
  let errorCode: string | null = null;
  let sourceError: unknown;
  body.once('error', (e) => (sourceError ??= e));
  try {
    await pipeline(body, meter, res);
  } catch (e) {
    // pipeline() destroys every stream on any failure; who failed first decides the outcome.
    const clientGone = sourceError === undefined && !isAppError(e);
    outcome = clientGone ? 'aborted' : 'failed';
    errorCode = isAppError(e) ? e.code : clientGone ? 'client.disconnected' : 'source.stream_broken';
    deps.metrics.streamAborts.inc({ reason: errorCode === 'source.integrity_mismatch' ? 'integrity' : clientGone ? 'client' : 'source' });
    // Never end cleanly after a failure: the client must see an incomplete transfer.
    res.destroy();
    body.destroy();
    req.log.warn({ code: errorCode, bytes: meter.bytes }, 'stream cut short');
  }
  deps.metrics.bytesStreamed.inc({ origin: ctx.origin, transcoded: String(ctx.transcoded) }, meter.bytes);
  deps.metrics.requests.inc({ route: req.routeOptions.url ?? '', origin: ctx.origin, outcome, status: String(status) });
  try {
    await deps.audit.record(req, {
      outcome,
      status,
      bytesSent: meter.bytes,
      sha256: meter.sha256(),
      errorCode,
      relatedEventId: ctx.allowedEventId,
      action: `${req.audit.action}.end`,
    });
  } catch (e) {
    req.log.error({ err: e }, 'audit completion event could not be written');
  }
}
