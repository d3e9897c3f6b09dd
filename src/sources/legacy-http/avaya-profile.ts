import type { Dispatcher } from 'undici';
import { AppError } from '../../errors.js';
import type { ByteRange, CopyLocation } from '../port.js';
import type { AvayaProfile } from './config.js';
import { clientErrorToAppError, discard, fillTemplate, readSmallBody, type LegacyHttp } from './http.js';
import { mediaOrError, probe, vendorKey, type ProviderStrategy } from './strategy.js';
import { XmlRefused, extractRecords } from './xml.js';

/** One segment of a call in Avaya Contact Recorder: its inum is the replay key. */
export interface AvayaSegment {
  inum: string;
  /** The value segments were ordered by (profile order_field), when present. */
  order?: string;
}

/**
 * What a copy names: one segment by inum, or a call by UCID (optionally its n-th segment).
 * Forms: "123456789012345", "inum:123456789012345", "ucid:00001002071523456789",
 * "ucid:00001002071523456789#2" (1-based segment number in search order).
 */
export type AvayaKey = { kind: 'inum'; inum: string } | { kind: 'ucid'; ucid: string; segment: number };

export function parseAvayaKey(key: string): AvayaKey {
  if (key.startsWith('ucid:')) {
    const m = /^ucid:([^#]+)(?:#([1-9][0-9]{0,3}))?$/.exec(key);
    if (!m?.[1]) throw new AppError('source.object_missing', 'the copy names a UCID in an unknown form (expected ucid:<ucid> or ucid:<ucid>#<n>)');
    return { kind: 'ucid', ucid: m[1], segment: m[2] ? Number(m[2]) : 1 };
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

  async media(copy: CopyLocation, range: ByteRange | undefined, signal: AbortSignal): Promise<Dispatcher.ResponseData> {
    const key = parseAvayaKey(vendorKey(copy));
    let inum: string;
    if (key.kind === 'inum') inum = key.inum;
    else {
      const segs = await this.segments(key.ucid, signal);
      if (segs.length === 0) throw new AppError('source.object_missing', 'Avaya search: the recorder has no segment for this UCID');
      const seg = segs[key.segment - 1];
      if (!seg) throw new AppError('source.object_missing', `Avaya search: the call has ${segs.length} segment(s), not ${key.segment}`, { extra: { segments: segs.length } });
      inum = seg.inum;
    }
    const url = fillTemplate(this.http.endpoint, this.profile.replay_path, { inum });
    const res = await this.http.retrying(
      () => this.http.send({ method: 'GET', url, what: this.mediaWhat, signal, credentials: true, ...(range ? { range } : {}), headers: { accept: 'audio/*, */*' } }),
      signal,
      this.mediaWhat,
    );
    return mediaOrError(res, this.mediaWhat);
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
