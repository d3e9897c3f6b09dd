import type { Dispatcher } from 'undici';
import type { Secret } from '../../config/secret.js';
import { AppError } from '../../errors.js';
import type { ByteRange, CopyLocation } from '../port.js';
import type { MediaSenseProfile } from './config.js';
import {
  TransientError,
  abortable,
  clientErrorToAppError,
  discard,
  fillTemplate,
  header,
  headerList,
  readJson,
  readSmallBody,
  type LegacyHttp,
} from './http.js';
import type { Transcoder } from '../../media/transcoder.js';
import { toSourceMedia } from './media-body.js';
import { MAX_MERGED_TRACKS, defaultMergePool, mergeTracks, sniffTrack, type TrackInfo } from './mediasense-tracks.js';
import { isMediaStatus, vendorKey, type ComposedAnswer, type MediaAnswer, type ProviderStrategy } from './strategy.js';

/** Returned by a step when MediaSense says the session is no longer valid (401, or an expired-session responseCode). */
const EXPIRED = Symbol('session expired');
type Expired = typeof EXPIRED;

export interface MediaSenseSessionOptions {
  http: LegacyHttp;
  profile: MediaSenseProfile;
  username: string;
  password: Secret;
  timeoutMs: number;
  /** Aborted when the connector closes; a sign-in in flight stops. */
  closing: AbortSignal;
}

/**
 * The MediaSense JSESSIONID of one connector, kept in memory only. Sign-ins are single-flight:
 * however many requests find no session (or an expired one), one signIn is made and all of them
 * await it. The password goes only in the signIn body, to api_endpoint's origin; the session value
 * never appears in errors.
 */
export class MediaSenseSession {
  #value: string | undefined;
  #inflight: Promise<string> | undefined;
  #signIns = 0;
  #signInFailures = 0;

  constructor(private readonly o: MediaSenseSessionOptions) {}

  get signIns(): number {
    return this.#signIns;
  }
  get signInFailures(): number {
    return this.#signInFailures;
  }

  async get(signal: AbortSignal): Promise<string> {
    if (this.#value !== undefined) return this.#value;
    return abortable(this.#signIn(), signal);
  }

  /** Forgets the session after MediaSense refused it — unless a concurrent sign-in already replaced it. */
  invalidate(value: string): void {
    if (this.#value === value) this.#value = undefined;
  }

  /** The request headers carrying a session value. */
  headers(value: string): Record<string, string> {
    const name = this.o.profile.session_cookie;
    const t = this.o.profile.session_transport;
    return {
      ...(t === 'cookie' || t === 'both' ? { cookie: `${name}=${value}` } : {}),
      ...(t === 'header' || t === 'both' ? { [name.toLowerCase()]: value } : {}),
    };
  }

  #signIn(): Promise<string> {
    if (!this.#inflight) {
      const p = this.#doSignIn();
      this.#inflight = p;
      const clear = () => {
        if (this.#inflight === p) this.#inflight = undefined;
      };
      p.then(clear, clear);
    }
    return this.#inflight;
  }

  async #doSignIn(): Promise<string> {
    const { http, profile, username, password, timeoutMs, closing } = this.o;
    const what = 'MediaSense sign-in';
    const url = fillTemplate(http.endpoint, profile.sign_in_path, {});
    // Not the caller's signal: other callers share this sign-in.
    const signal = AbortSignal.any([closing, AbortSignal.timeout(timeoutMs)]);
    let res: Dispatcher.ResponseData;
    try {
      res = await http.send({
        method: 'POST',
        url,
        what,
        signal,
        credentials: false,
        headers: { 'content-type': 'application/json', accept: 'application/json' },
        body: JSON.stringify({ requestParameters: { username, password: password.reveal() } }),
      });
    } catch (e) {
      this.#signInFailures++;
      if (signal.aborted && !closing.aborted) throw new TransientError(undefined, 'ETIMEDOUT');
      throw e;
    }
    try {
      if (res.statusCode !== 200) {
        await discard(res);
        throw clientErrorToAppError(res.statusCode, what, 'upstream');
      }
      const cookie = sessionCookie(headerList(res.headers, 'set-cookie'), profile.session_cookie);
      const text = (await readSmallBody(res, what, 64 * 1024)).toString('utf8');
      let code: number | undefined;
      try {
        code = responseCode(JSON.parse(text) as unknown, profile.response_code_field);
      } catch {
        code = undefined;
      }
      if (code !== undefined && !isSuccessCode(code)) {
        throw new AppError('source.auth_failed', `${what}: MediaSense refused user ${username} (responseCode ${code})`, { extra: { mediasense_code: code } });
      }
      if (!cookie) throw new AppError('source.bad_gateway', `${what}: MediaSense answered without a ${profile.session_cookie} cookie`);
      this.#signIns++;
      this.#value = cookie;
      return cookie;
    } catch (e) {
      this.#signInFailures++;
      throw e;
    }
  }
}

/** The value of cookie `name` among Set-Cookie headers; refuses values that could split a header. */
export function sessionCookie(setCookies: string[], name: string): string | undefined {
  for (const sc of setCookies) {
    const first = sc.split(';', 1)[0] ?? '';
    const eq = first.indexOf('=');
    if (eq < 0 || first.slice(0, eq).trim() !== name) continue;
    const value = first.slice(eq + 1).trim().replace(/^"(.*)"$/, '$1');
    if (value !== '' && /^[\x21\x23-\x2B\x2D-\x3A\x3C-\x5B\x5D-\x7E]+$/.test(value)) return value;
  }
  return undefined;
}

/** MediaSense answers HTTP 200 with its own code: 2xxx is success. */
function isSuccessCode(code: number): boolean {
  return code >= 2000 && code < 3000;
}

function responseCode(json: unknown, field: string): number | undefined {
  if (!json || typeof json !== 'object') return undefined;
  const v = (json as Record<string, unknown>)[field];
  return typeof v === 'number' ? v : typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : undefined;
}

function at(json: unknown, path: string): unknown {
  let cur = json;
  for (const k of path.split('.')) {
    if (!cur || typeof cur !== 'object' || Array.isArray(cur)) return undefined;
    cur = (cur as Record<string, unknown>)[k];
  }
  return cur;
}

type Json = Record<string, unknown>;

/**
 * Cisco MediaSense ORA API: signIn → JSESSIONID; getSessionBySessionId → the session, its state
 * and tracks; the chosen audio tracks' downloadUrls, fetched with the session (one track: its
 * bytes as stored; several, profile.track `all`: merged into one WAV, a channel per track,
 * mediasense-tracks.ts). A 401 or an expired-session responseCode signs in again once and repeats
 * the step.
 */
export class MediaSenseStrategy implements ProviderStrategy {
  readonly mediaWhat = 'MediaSense download';
  #reauths = 0;

  constructor(
    private readonly http: LegacyHttp,
    private readonly profile: MediaSenseProfile,
    readonly session: MediaSenseSession,
    /** The ffmpeg pool merging multi-track sessions (the app's transcoder); else the process's default (mediasense-tracks.ts). */
    private readonly mixer?: Transcoder,
  ) {}

  stats(): Record<string, number> {
    return { signIns: this.session.signIns, signInFailures: this.session.signInFailures, reauths: this.#reauths };
  }

  /** Runs a step with the session; on EXPIRED, signs in again once and repeats it. */
  async #withSession<T>(signal: AbortSignal, what: string, step: (session: Record<string, string>) => Promise<T | Expired>): Promise<T> {
    let renewed = false;
    for (;;) {
      const value = await this.session.get(signal);
      const r = await step(this.session.headers(value));
      if (r !== EXPIRED) return r as T;
      this.session.invalidate(value);
      if (renewed) throw new AppError('source.auth_failed', `${what}: MediaSense refused a fresh session`);
      renewed = true;
      this.#reauths++;
    }
  }

  /** The session object of a MediaSense session id. */
  async querySession(sessionId: string, signal: AbortSignal): Promise<Json> {
    const what = 'MediaSense session query';
    const p = this.profile;
    const url = fillTemplate(this.http.endpoint, p.session_query_path, { session_id: sessionId });
    const json = await this.http.retrying(
      () =>
        this.#withSession(signal, what, async (session) => {
          const res = await this.http.send({
            method: p.session_query_method,
            url,
            what,
            signal,
            session,
            credentials: false,
            headers: { accept: 'application/json', ...(p.session_query_method === 'POST' ? { 'content-type': 'application/json' } : {}) },
            ...(p.session_query_method === 'POST' ? { body: JSON.stringify({ requestParameters: { sessionId } }) } : {}),
          });
          if (res.statusCode === 401) {
            await discard(res);
            return EXPIRED;
          }
          if (res.statusCode !== 200) {
            await discard(res);
            throw clientErrorToAppError(res.statusCode, what, 'upstream');
          }
          const body = await readJson(res, what);
          const code = responseCode(body, p.response_code_field);
          if (code !== undefined && p.session_expired_codes.includes(code)) return EXPIRED;
          if (code !== undefined && !isSuccessCode(code)) {
            throw new AppError('source.bad_gateway', `${what}: MediaSense answered responseCode ${code}`, { extra: { mediasense_code: code } });
          }
          return body;
        }),
      signal,
      what,
    );
    const found = at(json, p.sessions_field);
    const list = Array.isArray(found) ? found : found && typeof found === 'object' ? [found] : [];
    const sessions = list.filter((s): s is Json => !!s && typeof s === 'object' && !Array.isArray(s));
    const match = sessions.find((s) => String(s.sessionId ?? '') === sessionId) ?? (sessions.length === 1 && sessions[0]?.sessionId === undefined ? sessions[0] : undefined);
    if (!match) throw new AppError('source.object_missing', `${what}: MediaSense has no such session`);
    return match;
  }

  /** The session's audio tracks with a download URL, in trackNumber order; refuses a session that is not playable. */
  audioTracks(session: Json): Json[] {
    const p = this.profile;
    const state = session[p.session_state_field];
    if (typeof state !== 'string' || !p.playable_states.includes(state)) {
      const s = typeof state === 'string' ? state : 'unknown';
      const extra = { session_state: s };
      if (s === 'ACTIVE') {
        throw new AppError('source.media_not_ready', 'MediaSense is still recording this session (ACTIVE); retry after the call ends', { extra, headers: { 'Retry-After': '60' } });
      }
      if (s === 'DELETED' || s === 'PRUNED') throw new AppError('source.object_missing', `MediaSense no longer has the media of this session (${s})`, { extra });
      throw new AppError('source.bad_gateway', `MediaSense session is ${s}: only ${p.playable_states.join(', ')} sessions have downloadable media`, { extra });
    }
    const rawTracks = session[p.tracks_field];
    const tracks = (Array.isArray(rawTracks) ? rawTracks : []).filter((t): t is Json => !!t && typeof t === 'object');
    return tracks
      .filter((t) => {
        const type = t[p.track_media_type_field];
        return (type === undefined || (typeof type === 'string' && p.audio_media_types.includes(type))) && typeof t[p.download_url_field] === 'string';
      })
      .sort((a, b) => Number(a[p.track_number_field] ?? 0) - Number(b[p.track_number_field] ?? 0));
  }

  /**
   * The tracks to serve, per profile.track: `all` every audio track (two or more are merged,
   * mediasense-tracks.ts), `first` the lowest-numbered, a number that track.
   */
  chosenTracks(session: Json): Json[] {
    const p = this.profile;
    const audio = this.audioTracks(session);
    const chosen = p.track === 'all' ? audio : p.track === 'first' ? audio.slice(0, 1) : audio.filter((t) => Number(t[p.track_number_field]) === p.track).slice(0, 1);
    if (!chosen.length) {
      throw new AppError('source.bad_gateway', `MediaSense session has no audio track${typeof p.track === 'number' ? ` number ${p.track}` : ''} with a ${p.download_url_field}`);
    }
    if (chosen.length > MAX_MERGED_TRACKS) {
      throw new AppError('source.bad_gateway', `MediaSense session has ${chosen.length} audio tracks, more than the ${MAX_MERGED_TRACKS} custodian merges into one recording; profile.track names one track to serve alone`, {
        extra: { tracks: chosen.length },
      });
    }
    return chosen;
  }

  /** The downloadUrl of a track, checked for origin. */
  trackUrl(track: Json): URL {
    const p = this.profile;
    let url: URL;
    try {
      url = new URL(String(track[p.download_url_field]), this.http.endpoint);
    } catch {
      throw new AppError('source.bad_gateway', `MediaSense gave a ${p.download_url_field} that is not a URL`);
    }
    if (!this.http.isTrusted(url)) {
      // Refused unsent: the session must not reach an origin the entry does not name.
      throw new AppError('source.bad_gateway', `MediaSense gave a ${p.download_url_field} on another origin than api_endpoint; list it in profile.allow_download_origins to allow it`);
    }
    return url;
  }

  /** What the audit and the merged file say about a track. */
  #trackInfo(track: Json): TrackInfo {
    const p = this.profile;
    const codec = track[p.track_codec_field];
    const raw = track[p.participants_field];
    const participants = (Array.isArray(raw) ? raw : [])
      .map((x: unknown) => (x && typeof x === 'object' ? (x as Json)[p.participant_ref_field] : undefined))
      .filter((v): v is string | number => typeof v === 'string' || typeof v === 'number')
      .map(String);
    return { trackNumber: Number(track[p.track_number_field] ?? 0), codec: typeof codec === 'string' ? codec : undefined, participants };
  }

  async media(copy: CopyLocation, range: ByteRange | undefined, signal: AbortSignal): Promise<MediaAnswer> {
    const key = vendorKey(copy);
    const sessionId = key.startsWith('session:') ? key.slice('session:'.length) : key;
    const session = await this.querySession(sessionId, signal);
    const tracks = this.chosenTracks(session);
    const urls = tracks.map((t) => this.trackUrl(t));
    if (tracks.length === 1) return this.#download(urls[0] as URL, range, signal);
    return this.#merged(tracks, urls, signal);
  }

  /**
   * Several tracks as one WAV: every track's answer and header first (any failure here is the
   * open's error, nothing sent yet), then one ffmpeg merge. The whole is computed: a Range is cut
   * from it by toSourceMedia (a 200 with its Content-Length), as the transcoded paths do.
   */
  async #merged(tracks: Json[], urls: URL[], signal: AbortSignal): Promise<ComposedAnswer> {
    const infos = tracks.map((t) => this.#trackInfo(t));
    const opened = await Promise.allSettled(
      urls.map(async (url, i) => {
        const res = await this.#download(url, undefined, signal);
        const what = `${this.mediaWhat} of track ${infos[i]?.trackNumber}`;
        const m = await toSourceMedia(res, undefined, signal, what);
        return sniffTrack(infos[i] as TrackInfo, m.body, m.totalSize, signal);
      }),
    );
    const ok = opened.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    const failed = opened.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) {
      for (const t of ok) t.stream.destroy();
      throw failed.reason;
    }
    const merged = await mergeTracks(this.mixer ?? defaultMergePool(), ok, signal);
    return {
      statusCode: 200,
      headers: { 'content-type': 'audio/wav', ...(merged.length !== undefined ? { 'content-length': String(merged.length) } : {}) },
      body: merged.body,
      auditDetail: merged.auditDetail,
      computed: true,
    };
  }

  /** One track's download with the session: its answer unread (200, 206, 416), else mapped. */
  #download(url: URL, range: ByteRange | undefined, signal: AbortSignal): Promise<Dispatcher.ResponseData> {
    const what = this.mediaWhat;
    return this.http.retrying(
      () =>
        this.#withSession(signal, what, async (s) => {
          const res = await this.http.send({ method: 'GET', url, what, signal, session: s, credentials: false, ...(range ? { range } : {}) });
          if (res.statusCode === 401) {
            await discard(res);
            return EXPIRED;
          }
          // An ORA error in place of media (JSON with a responseCode), e.g. an expired session.
          if (res.statusCode === 200 && /^application\/json\b/i.test(header(res.headers, 'content-type') ?? '')) {
            const body = await readJson(res, what);
            const code = responseCode(body, this.profile.response_code_field);
            if (code !== undefined && this.profile.session_expired_codes.includes(code)) return EXPIRED;
            throw new AppError('source.bad_gateway', `${what}: MediaSense answered JSON instead of media${code !== undefined ? ` (responseCode ${code})` : ''}`);
          }
          if (isMediaStatus(res.statusCode)) return res;
          await discard(res);
          throw clientErrorToAppError(res.statusCode, what, 'object');
        }),
      signal,
      what,
    );
  }

  /** Reachable with these credentials: a session can be had (a fresh sign-in when none is held). */
  async check(signal: AbortSignal): Promise<void> {
    await this.http.retrying(() => this.session.get(signal), signal, 'MediaSense sign-in');
  }
}
