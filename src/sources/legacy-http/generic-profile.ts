import type { Dispatcher } from 'undici';
import { AppError } from '../../errors.js';
import type { ByteRange, CopyLocation } from '../port.js';
import type { GenericProfile } from './config.js';
import { encodeId, fillTemplate, type LegacyHttp } from './http.js';
import { mediaOrError, probe, type ProviderStrategy } from './strategy.js';

/**
 * Any archive that serves a recording with one GET: the URL comes from media_url_template (or,
 * when the copy has a locator, the locator as a path under api_endpoint), with the configured
 * basic, bearer, header or no credentials.
 */
export class GenericStrategy implements ProviderStrategy {
  readonly mediaWhat = 'media download';

  constructor(
    private readonly http: LegacyHttp,
    private readonly profile: GenericProfile,
  ) {}

  urlOf(copy: CopyLocation): URL {
    if (copy.locator) {
      // Percent-encoded per segment, ".." refused: the locator can only name a path under api_endpoint.
      return new URL(`${this.http.endpoint.href.replace(/\/+$/, '')}/${encodeId(copy.locator.replace(/^\/+/, ''))}`);
    }
    return fillTemplate(this.http.endpoint, this.profile.media_url_template, {
      legacy_archive_id: copy.legacyArchiveId,
      recording_id: copy.genesysRecordingId,
      conversation_id: copy.conversationId,
    });
  }

  async media(copy: CopyLocation, range: ByteRange | undefined, signal: AbortSignal): Promise<Dispatcher.ResponseData> {
    const url = this.urlOf(copy);
    if (url.origin !== this.http.endpoint.origin) throw new AppError('source.path_refused', 'the locator leaves api_endpoint');
    const res = await this.http.retrying(
      () => this.http.send({ method: 'GET', url, what: this.mediaWhat, signal, credentials: true, ...(range ? { range } : {}) }),
      signal,
      this.mediaWhat,
    );
    return mediaOrError(res, this.mediaWhat);
  }

  check(signal: AbortSignal): Promise<void> {
    const url = fillTemplate(this.http.endpoint, this.profile.check_path || '{api_endpoint}', {});
    return probe(this.http, url, this.profile.check_method, signal, 'probe');
  }
}
