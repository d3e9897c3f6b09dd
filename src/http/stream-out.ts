import type { Readable } from 'node:stream';
import { finished, pipeline } from 'node:stream/promises';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { AppDeps } from '../deps.js';
import { isAppError } from '../errors.js';
import { ResponseSink } from './response-sink.js';

/**
 * Sends a media response: the head, then the body through ResponseSink, then the ".end" event with
 * the bytes that left and their SHA-256. Shared by every route that streams media or packages.
 * A HEAD gets the same head and no body: the source is closed unread (node would discard the body
 * of a HEAD yet call back as if the socket took it, so piping would read the whole source for
 * nobody and audit a transfer that never happened).
 */
export async function streamOut(
  deps: AppDeps,
  req: FastifyRequest,
  reply: FastifyReply,
  body: Readable,
  headers: Record<string, string | number>,
  status: number,
  ctx: { allowedEventId: string; chunked: boolean; expectSha256: string | null; origin: string; transcoded: boolean },
): Promise<void> {
  const res = reply.raw;
  reply.hijack();
  const head = req.method === 'HEAD';
  if (head) body.destroy();
  res.writeHead(status, headers);
  const declared = headers['Content-Length'];
  const sent = head ? await sendHeadOnly(res) : await pipeBody(deps, req, res, body, { ...ctx, declaredLength: declared === undefined ? undefined : Number(declared) });
  deps.metrics.bytesStreamed.inc({ origin: ctx.origin, transcoded: String(ctx.transcoded) }, sent.bytes);
  deps.metrics.requests.inc({ route: req.routeOptions.url ?? '', origin: ctx.origin, outcome: sent.outcome, status: String(status) });
  try {
    await deps.audit.record(req, {
      outcome: sent.outcome,
      status,
      bytesSent: sent.bytes,
      sha256: sent.sha256,
      errorCode: sent.errorCode,
      relatedEventId: ctx.allowedEventId,
      action: `${req.audit.action}.end`,
      ...(head ? { detail: { ...req.audit.detail, head: true } } : {}),
    });
  } catch (e) {
    req.log.error({ err: e }, 'audit completion event could not be written');
  }
}

interface Sent {
  outcome: 'completed' | 'aborted' | 'failed';
  errorCode: string | null;
  bytes: number;
  /** Of the bytes sent; null when no body was sent (a HEAD). */
  sha256: string | null;
}

async function sendHeadOnly(res: FastifyReply['raw']): Promise<Sent> {
  try {
    res.end();
    await finished(res);
    return { outcome: 'completed', errorCode: null, bytes: 0, sha256: null };
  } catch {
    return { outcome: 'aborted', errorCode: 'client.disconnected', bytes: 0, sha256: null };
  }
}

async function pipeBody(
  deps: AppDeps,
  req: FastifyRequest,
  res: FastifyReply['raw'],
  body: Readable,
  ctx: { chunked: boolean; expectSha256: string | null; declaredLength: number | undefined },
): Promise<Sent> {
  // Meters what the socket took, not what was queued: the audit event names the bytes that left.
  // Trailers go out with the last chunk; the digest is of exactly the bytes sent.
  const sink = new ResponseSink(res, { expectSha256: ctx.expectSha256, trailer: ctx.chunked });
  let sourceError: unknown;
  body.once('error', (e) => (sourceError ??= e));
  try {
    await pipeline(body, sink);
    return { outcome: 'completed', errorCode: null, bytes: sink.bytes, sha256: sink.sha256() };
  } catch (e) {
    // A client that hung up once the socket had taken every byte of the Content-Length has the
    // whole answer: a player or curl closes then, which can be before the body has ended here (a
    // transcoder flushing and exiting). That download is completed — unless those bytes were a
    // whole stored object whose catalog digest they do not match.
    // (clientGone is set only when the close came before any failure of the body.)
    if (sink.clientGone && ctx.declaredLength !== undefined && sink.bytes === ctx.declaredLength) {
      body.destroy();
      const sha256 = sink.sha256();
      if (ctx.expectSha256 && ctx.expectSha256 !== sha256) return { outcome: 'failed', errorCode: 'source.integrity_mismatch', bytes: sink.bytes, sha256 };
      return { outcome: 'completed', errorCode: null, bytes: sink.bytes, sha256 };
    }
    // pipeline() destroys every stream on any failure; who failed first decides the outcome. A
    // client going away also aborts the source (its signal), so the source's error comes second.
    const clientGone = sink.clientGone || (sourceError === undefined && !isAppError(e));
    const errorCode = clientGone ? 'client.disconnected' : isAppError(e) ? e.code : 'source.stream_broken';
    deps.metrics.streamAborts.inc({ reason: errorCode === 'source.integrity_mismatch' ? 'integrity' : clientGone ? 'client' : 'source' });
    // Never end cleanly after a failure: the client must see an incomplete transfer.
    res.destroy();
    body.destroy();
    req.log.warn({ code: errorCode, bytes: sink.bytes }, 'stream cut short');
    return { outcome: clientGone ? 'aborted' : 'failed', errorCode, bytes: sink.bytes, sha256: sink.sha256() };
  }
}
