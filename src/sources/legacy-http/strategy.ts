import type { IncomingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { AppError } from '../../errors.js';
import type { ByteRange, CopyLocation } from '../port.js';
import { clientErrorToAppError, discard, type LegacyHttp } from './http.js';

/**
 * An answer a strategy made itself from several upstream answers (an Avaya call joined from its
 * segments, a MediaSense session's tracks merged into channels). The connector reads it exactly like an upstream one, so the same checks apply:
 * Content-Length / Content-Range must match the body, a short or broken body errors.
 */
export interface ComposedAnswer {
  statusCode: 200 | 206;
  headers: IncomingHttpHeaders;
  body: Readable;
  /** Facts about the composition for the retrieval's audit event (SourceMedia.auditDetail), e.g. which track is which channel. */
  auditDetail?: Readonly<Record<string, string | number | boolean>>;
  /** The bytes are computed (SourceMedia.computed: tracks merged by ffmpeg), not an object the recorder stores as it is. */
  computed?: boolean;
}

/** What media() hands the connector: the provider's answer, unread, or one it composed. */
export type MediaAnswer = Dispatcher.ResponseData | ComposedAnswer;

/** One provider's way from a catalog copy to the media answer. */
export interface ProviderStrategy {
  /** Label for errors of the media request ("Avaya replay"). */
  readonly mediaWhat: string;
  /**
   * Does whatever the provider needs first (search, sign-in, session query), then the media
   * request. Returns its answer unread when the status is 200, 206 or 416; maps anything else.
   * A composed answer is 200 or 206 (an unsatisfiable range is thrown, not answered).
   */
  media(copy: CopyLocation, range: ByteRange | undefined, signal: AbortSignal): Promise<MediaAnswer>;
  /** A cheap call proving the source is reachable with these credentials. */
  check(signal: AbortSignal): Promise<void>;
  /** Sign-ins and re-sign-ins (session providers). */
  stats?(): Record<string, number>;
}

/** Statuses the connector turns into a body (200, 206) or a range error (416). */
export function isMediaStatus(s: number): boolean {
  return s === 200 || s === 206 || s === 416;
}

/** Finishes a media answer of a stateless provider: media statuses pass, others are mapped. */
export async function mediaOrError(res: Dispatcher.ResponseData, what: string): Promise<Dispatcher.ResponseData> {
  if (isMediaStatus(res.statusCode)) return res;
  await discard(res);
  throw clientErrorToAppError(res.statusCode, what, 'object');
}

/**
 * Readiness probe of a stateless provider: HEAD (or GET) with the configured credentials.
 * Refused credentials fail; any other answer below 500 proves the source is there.
 */
export async function probe(http: LegacyHttp, url: URL, method: 'HEAD' | 'GET', signal: AbortSignal, what: string): Promise<void> {
  const res = await http.retrying(() => http.send({ method, url, what, signal, credentials: true }), signal, what);
  await discard(res);
  if (res.statusCode === 401 || res.statusCode === 403) throw clientErrorToAppError(res.statusCode, what, 'upstream');
}

/** The vendor id of a copy: its locator when set (more specific), else legacyArchiveId. */
export function vendorKey(copy: CopyLocation): string {
  const key = copy.locator ?? copy.legacyArchiveId;
  if (!key) throw new AppError('source.object_missing', 'the copy has neither a locator nor a legacy archive id');
  return key;
}
