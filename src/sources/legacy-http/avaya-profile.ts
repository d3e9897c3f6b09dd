import type { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { AppError } from '../../errors.js';
import type { ByteRange, CopyLocation } from '../port.js';
import { SEGMENT_HEAD_BYTES, joinedBody, parseSegmentHead, piecesFor, planJoin, segmentError, type SegmentHead, type SegmentPosition } from './avaya-segments.js';
import type { AvayaProfile } from './config.js';
import { TransientError, clientErrorToAppError, discard, fillTemplate, header, netCodeOf, readSmallBody, type LegacyHttp } from './http.js';
import { notSatisfiable, parseContentRange, toSourceMedia } from './media-body.js';
import { mediaOrError, probe, vendorKey, type ComposedAnswer, type MediaAnswer, type ProviderStrategy } from './strategy.js';
import { XmlRefused, extractRecords } from './xml.js';

/** One segment of a call in Avaya Contact Recorder: its inum is the replay key. */
export interface AvayaSegment {
  inum: string;
  /** The value segments were ordered by (profile order_field), when present. */
  order?: string;
}

/**
 * What a copy names: one segment by inum, a whole call by UCID (all its segments, in order, as
 * one WAV), or one segment of a call. Forms: "123456789012345", "inum:123456789012345",
 * "ucid:00001002071523456789", "ucid:00001002071523456789#2" (1-based, in call order).
 */
export type AvayaKey = { kind: 'inum'; inum: string } | { kind: 'ucid'; ucid: string; segment: number | 'all' };

export function parseAvayaKey(key: string): AvayaKey {
  if (key.startsWith('ucid:')) {
    const m = /^ucid:([^#]+)(?:#([1-9][0-9]{0,3}))?$/.exec(key);
    if (!m?.[1]) throw new AppError('source.object_missing', 'the copy names a UCID in an unknown form (expected ucid:<ucid> or ucid:<ucid>#<n>)');
    return { kind: 'ucid', ucid: m[1], segment: m[2] ? Number(m[2]) : 'all' };
  }
  const inum = key.startsWith('inum:') ? key.slice(5) : key;
  if (inum === '') throw new AppError('source.object_missing', 'the copy names an empty inum');
  return { kind: 'inum', inum };
}

const SEARCH_LIMIT = 1024 * 1024;

/**
 * Avaya Contact Recorder "search and replay": stateless HTTP with the configured (typically
 * basic) credentials. A UCID is searched (XML), giving the call's segments; a segment is
 * replayed by inum (WAV).
 */
export class AvayaStrategy implements ProviderStrategy {
  readonly mediaWhat = 'Avaya replay';

  constructor(
    private readonly http: LegacyHttp,
    private readonly profile: AvayaProfile,
  ) {}

  /** The call's segments in order (profile order_field, else document order). */
  async segments(ucid: string, signal: AbortSignal): Promise<AvayaSegment[]> {
    const what = 'Avaya search';
    const url = fillTemplate(this.http.endpoint, this.profile.search_path, { ucid });
    const xml = await this.http.retrying(
      async () => {
        const res = await this.http.send({ method: 'GET', url, what, signal, credentials: true, headers: { accept: 'application/xml, text/xml' } });
        if (res.statusCode !== 200) {
          await discard(res);
          throw clientErrorToAppError(res.statusCode, what, 'object');
        }
        return (await readSmallBody(res, what, SEARCH_LIMIT)).toString('utf8');
      },
      signal,
      what,
    );
    const { segment_element, inum_field, order_field } = this.profile;
    let records;
    try {
      records = extractRecords(xml, segment_element, order_field ? [inum_field, order_field] : [inum_field]);
    } catch (e) {
      if (e instanceof XmlRefused) throw new AppError('source.bad_gateway', `${what}: the answer is not acceptable XML (${e.message})`);
      throw e;
    }
    const segs: AvayaSegment[] = [];
    for (const r of records) {
      const inum = r.fields[inum_field];
      if (!inum) continue;
      const order = order_field ? r.fields[order_field] : undefined;
      segs.push(order ? { inum, order } : { inum });
    }
    return order_field ? sortSegments(segs) : segs;
  }

  async media(copy: CopyLocation, range: ByteRange | undefined, signal: AbortSignal): Promise<MediaAnswer> {
    const key = parseAvayaKey(vendorKey(copy));
    if (key.kind === 'inum') return this.#replay(key.inum, range, signal);
    const segs = await this.segments(key.ucid, signal);
    if (segs.length === 0) throw new AppError('source.object_missing', 'Avaya search: the recorder has no segment for this UCID');
    if (key.segment === 'all') {
      // One segment is the call: its file as the recorder has it, byte for byte.
      if (segs.length === 1) return this.#replay(segs[0]!.inum, range, signal);
      return this.#wholeCall(segs, range, signal);
    }
    const seg = segs[key.segment - 1];
    if (!seg) throw new AppError('source.object_missing', `Avaya search: the call has ${segs.length} segment(s), not ${key.segment}`, { extra: { segments: segs.length } });
    return this.#replay(seg.inum, range, signal);
  }

  /** One segment as the recorder answers it (200, 206 or 416), unread. */
  async #replay(inum: string, range: ByteRange | undefined, signal: AbortSignal, what = this.mediaWhat): Promise<Dispatcher.ResponseData> {
    const url = fillTemplate(this.http.endpoint, this.profile.replay_path, { inum });
    const res = await this.http.retrying(
      () => this.http.send({ method: 'GET', url, what, signal, credentials: true, ...(range ? { range } : {}), headers: { accept: 'audio/*, */*' } }),
      signal,
      what,
    );
    return mediaOrError(res, what);
  }

  /**
   * The call's segments joined into one WAV (avaya-segments.ts): every header first, one ranged
   * request each, so a mismatch or an unknowable size fails before the first byte; then the data
   * of the segments the range touches, one request at a time, while the client reads.
   */
  async #wholeCall(segs: readonly AvayaSegment[], range: ByteRange | undefined, signal: AbortSignal): Promise<ComposedAnswer> {
    const heads: SegmentHead[] = [];
    for (const [i, s] of segs.entries()) heads.push(await this.#head({ n: i + 1, of: segs.length, inum: s.inum }, signal));
    const plan = planJoin(heads);
    let start = 0;
    let end = plan.size - 1;
    if (range) {
      if (range.start >= plan.size) throw notSatisfiable(plan.size);
      start = range.start;
      end = Math.min(range.end ?? end, end);
    }
    const body = joinedBody(piecesFor(plan, start, end), (seg, from, to) => this.#segmentData(seg, from, to, signal));
    const headers: Record<string, string> = { 'content-type': 'audio/wav', 'content-length': String(end - start + 1) };
    if (range) headers['content-range'] = `bytes ${start}-${end}/${plan.size}`;
    return { statusCode: range ? 206 : 200, headers, body };
  }

  /** A segment's header, from a ranged GET of its first bytes (a recorder ignoring Range answers 200: the rest is not read). */
  async #head(pos: SegmentPosition, signal: AbortSignal): Promise<SegmentHead> {
    const what = `${this.mediaWhat} (segment ${pos.n} of ${pos.of}, header)`;
    const url = fillTemplate(this.http.endpoint, this.profile.replay_path, { inum: pos.inum });
    const { head, totalSize } = await this.http.retrying(
      async () => {
        const res = await this.http.send({ method: 'GET', url, what, signal, credentials: true, range: { start: 0, end: SEGMENT_HEAD_BYTES - 1 }, headers: { accept: 'audio/*, */*' } });
        if (res.statusCode === 416) {
          await discard(res);
          throw segmentError(pos, 'is empty');
        }
        await mediaOrError(res, what);
        let totalSize: number | undefined;
        if (res.statusCode === 206) {
          const cr = parseContentRange(header(res.headers, 'content-range'));
          if (cr?.start !== 0) {
            res.body.destroy();
            throw new AppError('source.bad_gateway', `${what}: the source answered 206 for another range than asked`);
          }
          totalSize = cr.total;
        } else {
          const cl = header(res.headers, 'content-length');
          totalSize = cl !== undefined && /^\d+$/.test(cl) && !header(res.headers, 'content-encoding') ? Number(cl) : undefined;
        }
        return { head: await readHead(res), totalSize };
      },
      signal,
      what,
    );
    return parseSegmentHead(head, totalSize, pos);
  }

  /** Bytes from..to of a segment's data, exactly (toSourceMedia errors on anything short or broken). */
  async #segmentData(seg: SegmentHead, from: number, to: number, signal: AbortSignal): Promise<Readable> {
    const what = `${this.mediaWhat} (segment ${seg.n} of ${seg.of})`;
    const range = { start: seg.dataOffset + from, end: seg.dataOffset + to };
    let media;
    try {
      media = await toSourceMedia(await this.#replay(seg.inum, range, signal, what), range, signal, what);
    } catch (e) {
      // The header promised these bytes: a segment that no longer has them changed under us.
      if (e instanceof AppError && e.code === 'range.not_satisfiable') throw segmentError(seg, 'is shorter than its header said when its data was read');
      throw e;
    }
    if (seg.totalSize !== undefined && media.totalSize !== undefined && media.totalSize !== seg.totalSize) {
      media.body.destroy();
      throw segmentError(seg, `changed size between its header and its data reads (${seg.totalSize} → ${media.totalSize} bytes)`);
    }
    return media.body;
  }

  check(signal: AbortSignal): Promise<void> {
    const url = fillTemplate(this.http.endpoint, this.profile.check_path || '{api_endpoint}', {});
    return probe(this.http, url, this.profile.check_method, signal, 'Avaya probe');
  }
}

/** Stable sort: numeric when every key is a number, else by string (ISO times sort as strings); keyless last. */
export function sortSegments(segs: AvayaSegment[]): AvayaSegment[] {
  const keyed = segs.filter((s) => s.order !== undefined);
  const numeric = keyed.every((s) => /^-?\d+(\.\d+)?$/.test(s.order ?? ''));
  const cmp = (a: AvayaSegment, b: AvayaSegment): number => {
    if (a.order === undefined || b.order === undefined) return a.order === undefined ? (b.order === undefined ? 0 : 1) : -1;
    if (numeric) return Number(a.order) - Number(b.order);
    return a.order < b.order ? -1 : a.order > b.order ? 1 : 0;
  };
  return segs
    .map((s, i) => ({ s, i }))
    .sort((x, y) => cmp(x.s, y.s) || x.i - y.i)
    .map((x) => x.s);
}

/** Up to SEGMENT_HEAD_BYTES of an answer, then the rest is dropped; a broken read is worth another attempt. */
async function readHead(res: Dispatcher.ResponseData): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of res.body as AsyncIterable<Buffer>) {
      chunks.push(chunk);
      size += chunk.length;
      if (size >= SEGMENT_HEAD_BYTES) break;
    }
  } catch (e) {
    throw new TransientError(undefined, netCodeOf(e) ?? 'EUNKNOWN');
  } finally {
    res.body.destroy();
  }
  return Buffer.concat(chunks).subarray(0, SEGMENT_HEAD_BYTES);
}
