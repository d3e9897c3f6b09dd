import type { IncomingHttpHeaders } from 'node:http';
import { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { AppError } from '../../errors.js';
import type { ByteRange } from '../port.js';
import type { GenesysApiClient, GenesysCounters, MediaRange } from './api-client.js';
import type { GenesysFormat } from './config.js';
import { abortedError, header } from './http-util.js';
import { assertPlayable, pickMediaUri } from './recording-state.js';

export interface ResumableMediaOptions {
  api: GenesysApiClient;
  conversationId: string;
  recordingId: string;
  format: GenesysFormat;
  range: ByteRange | undefined;
  maxResumes: number;
  counters: GenesysCounters;
  /** Aborted when the caller goes away or the body is destroyed. */
  signal: AbortSignal;
}

interface Opened {
  res: Dispatcher.ResponseData;
  /** Bytes at the head of this answer that were already delivered (a server that ignored Range). */
  skip: number;
}

/**
 * One download of one recording that survives expiring links and broken transfers: whenever the
 * media link answers 4xx or the transfer breaks, a fresh link is minted (GET recording again) and
 * the download continues with `Range: bytes=<next>-`. The consumer gets every byte exactly once;
 * when it cannot continue (no resumes left, the object changed) the body errors — it never ends short.
 */
export class ResumableMedia {
  #next: number;
  /** Inclusive last byte to deliver, once known (asked range end, or size - 1). */
  #end: number | undefined;
  #total: number | undefined;
  #etag: string | undefined;
  #uri: string | undefined;
  #resumesLeft: number;
  #contentType: string | undefined;

  constructor(private readonly o: ResumableMediaOptions) {
    this.#next = o.range?.start ?? 0;
    this.#end = o.range?.end;
    this.#resumesLeft = o.maxResumes;
  }

  get totalSize(): number | undefined {
    return this.#total;
  }
  get contentType(): string | undefined {
    return this.#contentType;
  }
  /** The range the body covers, when one was asked for and its end is known. */
  get range(): { start: number; end: number } | undefined {
    if (!this.o.range || this.#end === undefined) return undefined;
    return { start: this.o.range.start, end: this.#end };
  }

  /** Mints a link and makes the first media request; errors here happen before any byte is delivered. */
  async start(firstUri?: string): Promise<Readable> {
    this.#uri = firstUri;
    const first = await this.#fetch(true);
    return Readable.from(this.#bytes(first), { objectMode: false, highWaterMark: 64 * 1024 });
  }

  async #mintLink(): Promise<string> {
    const rec = await this.o.api.getRecordingWhenReady(this.o.conversationId, this.o.recordingId, this.o.format, this.o.signal);
    assertPlayable(rec);
    return pickMediaUri(rec);
  }

  #spendResume(reason: string, code: 'source.bad_gateway' | 'source.unavailable'): void {
    if (this.#resumesLeft <= 0) {
      throw new AppError(code, `${reason}; the download cannot be resumed (max_resumes ${this.o.maxResumes} spent)`, {
        extra: { delivered_up_to: this.#next },
      });
    }
    this.#resumesLeft--;
    this.o.counters.resumes++;
  }

  async #fetch(first: boolean): Promise<Opened> {
    for (;;) {
      if (this.o.signal.aborted) throw abortedError();
      if (!this.#uri) this.#uri = await this.#mintLink();
      const uri = this.#uri;
      const range: MediaRange | undefined = this.#next > 0 || this.#end !== undefined ? { start: this.#next, ...(this.#end !== undefined ? { end: this.#end } : {}) } : undefined;
      const res = await this.o.api.retrying(() => this.o.api.fetchMedia(uri, range, this.o.signal), this.o.signal, 'media download');
      const s = res.statusCode;
      if (s === 200 || s === 206) {
        try {
          return { res, skip: this.#accept(res, first) };
        } catch (e) {
          res.body.destroy();
          throw e;
        }
      }
      await res.body.dump().catch(() => {});
      if (s === 416) {
        const size = totalOf(header(res.headers, 'content-range'));
        if (first) {
          throw new AppError('range.not_satisfiable', undefined, {
            ...(size !== undefined ? { extra: { size }, headers: { 'Content-Range': `bytes */${size}` } } : {}),
          });
        }
        throw new AppError('source.bad_gateway', 'the media link refused a resume range (416): the recording changed');
      }
      if (s >= 400 && s < 500) {
        // Expired (or otherwise refused) pre-authorised link: mint another.
        this.#uri = undefined;
        this.#spendResume(`the media link answered ${s}`, 'source.bad_gateway');
        continue;
      }
      throw new AppError('source.bad_gateway', `the media link answered ${s}`);
    }
  }

  /** Checks an answer against what was asked and delivered so far; returns the bytes to skip. */
  #accept(res: Dispatcher.ResponseData, first: boolean): number {
    const h = res.headers;
    let total: number | undefined;
    let skip = 0;
    if (res.statusCode === 206) {
      const cr = parseContentRange(header(h, 'content-range'));
      if (!cr || cr.start !== this.#next) throw new AppError('source.bad_gateway', 'the media link answered 206 for another range than asked');
      total = cr.total;
    } else {
      // 200: the whole object, whatever Range said.
      const len = contentLength(h);
      total = len;
      skip = this.#next;
    }
    const etag = header(h, 'etag');
    if ((this.#total !== undefined && total !== undefined && total !== this.#total) || (this.#etag && etag && etag !== this.#etag)) {
      throw new AppError('source.bad_gateway', 'the recording changed between parts of one download');
    }
    this.#total ??= total;
    this.#etag ??= etag;
    if (first) this.#contentType = header(h, 'content-type');
    if (this.#total !== undefined) {
      if (first && this.o.range && this.o.range.start >= this.#total) {
        throw new AppError('range.not_satisfiable', undefined, { extra: { size: this.#total }, headers: { 'Content-Range': `bytes */${this.#total}` } });
      }
      this.#end = Math.min(this.#end ?? this.#total - 1, this.#total - 1);
    }
    return skip;
  }

  #complete(): boolean {
    return this.#end !== undefined && this.#next > this.#end;
  }

  async *#bytes(first: Opened): AsyncGenerator<Buffer> {
    let cur = first;
    for (;;) {
      let failure: unknown;
      let skip = cur.skip;
      try {
        for await (const chunk of cur.res.body as AsyncIterable<Buffer>) {
          let buf = chunk;
          if (skip > 0) {
            if (buf.length <= skip) {
              skip -= buf.length;
              continue;
            }
            buf = buf.subarray(skip);
            skip = 0;
          }
          if (this.#end !== undefined) {
            const room = this.#end - this.#next + 1;
            if (buf.length > room) buf = buf.subarray(0, room);
          }
          if (buf.length > 0) {
            this.#next += buf.length;
            yield buf;
          }
          if (this.#complete()) break;
        }
      } catch (e) {
        failure = e;
      }
      if (this.#complete()) {
        cur.res.body.destroy();
        return;
      }
      if (this.o.signal.aborted) throw abortedError();
      // Ended cleanly with no known size: nothing says bytes are missing.
      if (failure === undefined && this.#end === undefined) return;
      cur.res.body.destroy();
      this.#uri = undefined;
      this.#spendResume(failure === undefined ? 'the media transfer ended early' : 'the media transfer broke', 'source.unavailable');
      cur = await this.#fetch(false);
    }
  }
}

function contentLength(h: IncomingHttpHeaders): number | undefined {
  if (header(h, 'content-encoding') && header(h, 'content-encoding') !== 'identity') return undefined;
  const v = header(h, 'content-length');
  return v !== undefined && /^\d+$/.test(v) ? Number(v) : undefined;
}

export function parseContentRange(v: string | undefined): { start: number; end: number; total: number | undefined } | undefined {
  const m = v ? /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(v.trim()) : null;
  if (!m) return undefined;
  return { start: Number(m[1]), end: Number(m[2]), total: m[3] === '*' ? undefined : Number(m[3]) };
}

function totalOf(v: string | undefined): number | undefined {
  const m = v ? /^bytes \*\/(\d+)$/.exec(v.trim()) : null;
  return m ? Number(m[1]) : undefined;
}
