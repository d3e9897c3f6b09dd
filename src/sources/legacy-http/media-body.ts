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
  // Only a 200 cut down to a range leaves bytes unread; every other body is read to its end.
  const cut = res.statusCode !== 206 && range !== undefined && totalSize !== undefined && skip + (take ?? 0) < totalSize;
  const body = new ExactBody(res.body as Readable, skip, take, cut, signal, what);
  return {
    body,
    ...(totalSize !== undefined ? { totalSize } : {}),
    ...(covered ? { range: covered } : {}),
    ...(contentType ? { contentType } : {}),
  };
}

/**
 * The answer's body cut to [skip, skip + take): it ends cleanly only after exactly `take` bytes
 * (when known), and a body that breaks or ends short errors with a source error that carries
 * no request details.
 *
 * It buffers nothing of its own (highWaterMark 0): chunks go straight through to a consumer that
 * is reading, and the source is paused the moment the consumer stops, so while a slow client
 * holds the stream up the waiting chunk stays in undici's body, not in a copy here as well (with
 * 200 slow clients, stages that each held a 64 KiB chunk were most of the gateway's memory,
 * docs/BENCHMARKS.md). 'data' with pause/resume rather than read(): read() in paused mode joins
 * every buffered chunk into a new buffer, a copy of each byte. No async iterator either: at
 * hundreds of concurrent streams its per-chunk promises were a visible part of the CPU per GiB.
 */
class ExactBody extends Readable {
  private delivered = 0;
  private done = false;

  constructor(
    private readonly source: Readable,
    private skip: number,
    private readonly want: number | undefined,
    /** The source holds bytes past the wanted ones (a 200 to a range): stop reading once they are in. */
    private readonly cut: boolean,
    private readonly signal: AbortSignal,
    private readonly what: string,
  ) {
    super({ highWaterMark: 0 });
    source.pause();
    source.on('data', (c: Buffer) => this.onChunk(c));
    source.once('end', () => this.onEnd());
    source.once('error', (e) => this.fail(e));
    source.once('close', () => {
      if (!this.done) this.fail(Object.assign(new Error('Premature close'), { code: 'ERR_STREAM_PREMATURE_CLOSE' }));
    });
    if (want === 0 && cut) this.finish();
  }

  override _read(): void {
    if (!this.done) this.source.resume();
  }

  override _destroy(err: Error | null, cb: (error?: Error | null) => void): void {
    this.done = true;
    this.source.destroy();
    cb(err);
  }

  private onChunk(chunk: Buffer): void {
    if (this.done) return;
    let buf = chunk;
    if (this.skip > 0) {
      if (buf.length <= this.skip) {
        this.skip -= buf.length;
        return;
      }
      buf = buf.subarray(this.skip);
      this.skip = 0;
    }
    if (this.want !== undefined && buf.length > this.want - this.delivered) buf = buf.subarray(0, this.want - this.delivered);
    if (buf.length === 0) return;
    this.delivered += buf.length;
    this.push(buf);
    if (this.cut && this.delivered >= this.want!) this.finish();
    // The source stops as soon as a chunk had to be kept (nobody reading) or the consumer paused
    // while taking it; push()'s answer says neither (it is true whenever the buffer was empty).
    else if (this.readableLength > 0 || this.readableFlowing !== true) this.source.pause();
  }

  private onEnd(): void {
    if (this.done) return;
    if (this.want !== undefined && this.delivered < this.want) {
      this.done = true;
      this.destroy(new AppError('source.unavailable', `${this.what}: the transfer ended after ${this.delivered} of ${this.want} bytes`, { extra: { delivered_bytes: this.delivered } }));
      return;
    }
    this.finish();
  }

  /**
   * Every byte wanted arrived. A body read to its end ends here and leaves its connection to the
   * pool for the next request; a 200 cut to a range is let go of (its connection with it).
   */
  private finish(): void {
    this.done = true;
    this.push(null);
    if (this.cut) this.source.destroy();
  }

  private fail(e: unknown): void {
    if (this.done) return;
    this.done = true;
    this.destroy(this.mapped(e));
  }

  private mapped(e: unknown): Error {
    if (this.signal.aborted) return abortedError();
    // A composed body (an Avaya call) fails with its own error, naming the segment that broke.
    if (e instanceof AppError) return e;
    // Only the code travels on: undici errors can carry request details.
    const code = netCodeOf(e) ?? 'error';
    return new AppError('source.unavailable', `${this.what}: the transfer broke after ${this.delivered} bytes (${code})`, { extra: { delivered_bytes: this.delivered } });
  }
}
