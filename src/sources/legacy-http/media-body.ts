import type { IncomingHttpHeaders } from 'node:http';
import { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { AppError } from '../../errors.js';
import type { ByteRange, SourceMedia } from '../port.js';
import { abortedError, discard, header, netCodeOf } from './http.js';
import type { MediaAnswer } from './strategy.js';

export function parseContentRange(v: string | undefined): { start: number; end: number; total: number | undefined } | undefined {
  const m = v ? /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(v.trim()) : null;
  if (!m) return undefined;
  const r = { start: Number(m[1]), end: Number(m[2]), total: m[3] === '*' ? undefined : Number(m[3]) };
  return r.end < r.start || (r.total !== undefined && r.end >= r.total) ? undefined : r;
}

function unsatisfiedSize(v: string | undefined): number | undefined {
  const m = v ? /^bytes \*\/(\d+)$/.exec(v.trim()) : null;
  return m ? Number(m[1]) : undefined;
}

function contentLength(h: IncomingHttpHeaders): number | undefined {
  const enc = header(h, 'content-encoding');
  if (enc && enc !== 'identity') return undefined;
  const v = header(h, 'content-length');
  return v !== undefined && /^\d+$/.test(v) ? Number(v) : undefined;
}

export function notSatisfiable(size: number | undefined): AppError {
  return new AppError('range.not_satisfiable', undefined, size !== undefined ? { extra: { size }, headers: { 'Content-Range': `bytes */${size}` } } : {});
}

/**
 * Turns a media answer (200, 206 or 416) into SourceMedia. The body delivers exactly the bytes
 * it claims: a 200 answer to a range request (the source ignored Range) is cut to the range here;
 * a body that breaks or ends short errors — it never ends cleanly with bytes missing.
 */
export async function toSourceMedia(res: MediaAnswer, range: ByteRange | undefined, signal: AbortSignal, what: string): Promise<SourceMedia> {
  const h = res.headers;
  const contentType = header(h, 'content-type');
  if (res.statusCode === 416) {
    await discard(res);
    throw notSatisfiable(unsatisfiedSize(header(h, 'content-range')));
  }
  let skip = 0;
  let take: number | undefined;
  let totalSize: number | undefined;
  let covered: { start: number; end: number } | undefined;
  try {
    if (res.statusCode === 206) {
      const cr = parseContentRange(header(h, 'content-range'));
      const want = range ?? { start: 0 };
      if (!cr || cr.start !== want.start || (want.end !== undefined && cr.end > want.end)) {
        throw new AppError('source.bad_gateway', `${what}: the source answered 206 for another range than asked`);
      }
      totalSize = cr.total;
      take = cr.end - cr.start + 1;
      if (range) covered = { start: cr.start, end: cr.end };
      else if (cr.start !== 0 || cr.total === undefined || cr.end !== cr.total - 1) {
        throw new AppError('source.bad_gateway', `${what}: the source answered 206 to a request without Range`);
      }
    } else {
      // 200: the whole object, whatever Range said.
      totalSize = contentLength(h);
      take = totalSize;
      if (range) {
        if (totalSize === undefined) throw new AppError('source.bad_gateway', `${what}: the source ignored Range and gave no Content-Length`);
        if (range.start >= totalSize) throw notSatisfiable(totalSize);
        const end = Math.min(range.end ?? totalSize - 1, totalSize - 1);
        skip = range.start;
        take = end - range.start + 1;
        covered = { start: range.start, end };
      }
    }
  } catch (e) {
    res.body.destroy();
    throw e;
  }
  const body = Readable.from(bytes(res, skip, take, signal, what), { objectMode: false, highWaterMark: 64 * 1024 });
  return {
    body,
    ...(totalSize !== undefined ? { totalSize } : {}),
    ...(covered ? { range: covered } : {}),
    ...(contentType ? { contentType } : {}),
  };
}

async function* bytes(res: MediaAnswer, skip: number, take: number | undefined, signal: AbortSignal, what: string): AsyncGenerator<Buffer> {
  let delivered = 0;
  try {
    for await (const chunk of res.body as AsyncIterable<Buffer>) {
      let buf = chunk;
      if (skip > 0) {
        if (buf.length <= skip) {
          skip -= buf.length;
          continue;
        }
        buf = buf.subarray(skip);
        skip = 0;
      }
      if (take !== undefined && buf.length > take - delivered) buf = buf.subarray(0, take - delivered);
      if (buf.length > 0) {
        delivered += buf.length;
        yield buf;
      }
      if (take !== undefined && delivered >= take) break;
    }
  } catch (e) {
    if (signal.aborted) throw abortedError();
    // A composed body (an Avaya call) fails with its own error, naming the segment that broke.
    if (e instanceof AppError) throw e;
    // Only the code travels on: undici errors can carry request details.
    const code = netCodeOf(e) ?? 'error';
    throw new AppError('source.unavailable', `${what}: the transfer broke after ${delivered} bytes (${code})`, { extra: { delivered_bytes: delivered } });
  } finally {
    res.body.destroy();
  }
  if (take !== undefined && delivered < take) {
    throw new AppError('source.unavailable', `${what}: the transfer ended after ${delivered} of ${take} bytes`, { extra: { delivered_bytes: delivered } });
  }
}
