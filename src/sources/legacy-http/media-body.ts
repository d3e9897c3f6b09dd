import type { IncomingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { AppError } from '../../errors.js';
import type { ByteRange, SourceMedia } from '../port.js';
import { ExactBody } from '../exact-body.js';
import { discard, header } from './http.js';
import type { ComposedAnswer, MediaAnswer } from './strategy.js';

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
  // Only a 200 cut down to a range leaves bytes unread; every other body is read to its end.
  const cut = res.statusCode !== 206 && range !== undefined && totalSize !== undefined && skip + (take ?? 0) < totalSize;
  const body = new ExactBody(res.body as Readable, skip, take, cut, signal, `${what}: the transfer`);
  // A composed answer's own statements (strategy.ts ComposedAnswer) travel with it.
  const composed = res as Partial<Pick<ComposedAnswer, 'auditDetail' | 'computed'>>;
  return {
    body,
    ...(totalSize !== undefined ? { totalSize } : {}),
    ...(covered ? { range: covered } : {}),
    ...(contentType ? { contentType } : {}),
    ...(composed.auditDetail ? { auditDetail: composed.auditDetail } : {}),
    ...(composed.computed ? { computed: true } : {}),
  };
}
