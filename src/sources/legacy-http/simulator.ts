import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pathToFileURL } from 'node:url';
import { AVAYA_DEFAULTS, MEDIASENSE_DEFAULTS, type LegacyProvider } from './config.js';
import { parseSimRange } from '../sim-range.js';
import { cliArg, closeServers } from '../sim-server.js';

/**
 * A legacy recorder simulator: a real HTTP server speaking the default paths of a provider
 * profile (config.ts) — Avaya Contact Recorder search (XML) and replay, Cisco MediaSense ORA
 * signIn / getSessionBySessionId / track download with a JSESSIONID that expires when idle, or a
 * generic "GET the file" archive — with Range support, knobs for WAN latency, slow bodies, broken
 * transfers, forced failures and mislabelled media, and a request log so tests can prove which
 * credentials reached it. Tests, the demo and anyone can start it:
 *
 *   npx tsx src/sources/legacy-http/simulator.ts --provider cisco_mediasense --port 8440 --file x.wav
 */

export interface LegacySimUser {
  username: string;
  password: string;
}

export interface LegacySimTrack {
  bytes?: Uint8Array | string;
  path?: string;
  /** trackMediaType (MediaSense); default AUDIO. */
  mediaType?: string;
  /** The track's `codec` as MediaSense names it (PCMU, PCMA, G729, G722); default PCMU. */
  codec?: string;
  /**
   * deviceRefs of the track's `participants` (a network-based recording: track 0 the near end,
   * track 1 the far end); default track 0 "1000", later tracks "+15551230000".
   */
  participants?: string[];
}

export interface LegacySimRecording {
  /** Avaya inum, MediaSense sessionId or generic archive id. */
  id: string;
  /** Avaya: the call (UCID) this segment belongs to. */
  ucid?: string;
  /** Avaya: position within the UCID (1-based; default: order of addition). Sets <startedat>. */
  segment?: number;
  bytes?: Uint8Array | string;
  /** Or a file to read the media from. */
  path?: string;
  contentType?: string;
  /** MediaSense sessionState; default CLOSED_NORMAL (only then do tracks carry a downloadUrl). */
  sessionState?: string;
  /**
   * MediaSense: the session's tracks (trackNumber = index), each with its own media (e.g. near and
   * far end of a call as two audio tracks); default one audio track with `bytes`/`path`.
   */
  tracks?: LegacySimTrack[];
  /** Generic: also served at <endpoint>/<urlPath> (locator tests). */
  urlPath?: string;
  /** Search by time: when the recording started (default: a fixed call time plus one minute per segment). */
  startedAt?: string | Date;
  /** Search by time: duration in ms (default: Avaya a second per 1000 bytes, MediaSense 35 s). */
  durationMs?: number;
  /** Avaya search by time: calling and called numbers. */
  ani?: string;
  dnis?: string;
}

export type LegacySimAuth = 'basic' | 'none' | { bearer: string } | { header: string; value: string };

export interface LegacySimKnobs {
  /** WAN latency before any answer's headers, ms. */
  latencyMs: number;
  /** Media bodies trickle at this rate (0 = as fast as possible). */
  bytesPerSecond: number;
  /** MediaSense: a session unused this long is invalid (real: 30 minutes). */
  sessionIdleMs: number;
  /** Media answers stop after this many body bytes and the socket is destroyed (undefined = off). */
  resetAfterBytes: number | undefined;
  /** Media is labelled text/html instead of its content type. */
  wrongContentType: boolean;
  /** Range headers are ignored: always 200 with the whole object (as some old archives do). */
  ignoreRange: boolean;
  /** Avaya: search answers list segments in reverse order (ordering must come from <startedat>). */
  reverseSearchOrder: boolean;
  /** MediaSense: downloadUrls point at this base instead of the simulator's own media base. */
  downloadBaseUrl: string | undefined;
  /** What avaya and generic requests must carry (MediaSense always uses its session). */
  auth: LegacySimAuth;
  /** Search by time (Avaya time search, MediaSense getSessions): results paged no deeper than this (a deeper page is refused). */
  searchMaxResults: number;
  /** Search by time: each is added when that many time searches have been answered (a recording appearing mid-run). */
  lateRecordings: { afterSearches: number; recording: LegacySimRecording }[];
}

export type LegacySimListener = 'api' | 'media';
export type LegacySimScope = 'any' | 'api' | 'media' | 'signin';

export interface LegacySimRequestLog {
  seq: number;
  at: number;
  listener: LegacySimListener;
  port: number;
  method: string;
  path: string;
  /** Raw query string without "?". */
  query: string;
  headers: IncomingHttpHeaders;
  /** First 64 KiB of the request body. */
  body: string;
  status?: number;
  /** Media body bytes written. */
  bytesSent?: number;
  /** The client went away before the answer was complete. */
  clientClosed?: boolean;
  /** The client's port: requests on one kept-alive connection share it. */
  clientPort: number;
}

export interface LegacySimulatorOptions {
  provider: LegacyProvider;
  users?: LegacySimUser[];
  recordings?: LegacySimRecording[];
  knobs?: Partial<LegacySimKnobs>;
  host?: string;
  /** Port of the API listener (0 = any). */
  port?: number;
  /** Path prefix of the API (the api_endpoint's path). Defaults: avaya /api/v1/recording, mediasense "", generic /archive. */
  basePath?: string;
  /** MediaSense: serve media on a second port, as the real product does (8446 beside 8440). */
  separateMediaPort?: boolean;
  logLimit?: number;
}

export interface LegacySimulator {
  readonly provider: LegacyProvider;
  /** Origin of the API listener, e.g. http://127.0.0.1:40123 */
  readonly baseUrl: string;
  /** What to configure as api_endpoint. */
  readonly endpoint: string;
  /** Origin media is served from (baseUrl unless separateMediaPort). */
  readonly mediaBaseUrl: string;
  readonly knobs: LegacySimKnobs;
  set(knobs: Partial<LegacySimKnobs>): void;
  addRecording(r: LegacySimRecording): void;
  /** Forgets a recording (it vanished from the recorder); false when there was none. */
  removeRecording(id: string): boolean;
  /** Time searches answered so far. */
  readonly timeSearches: number;
  /** The next n requests of the scope are answered with `status` (5xx or 401/403). */
  failNext(n: number, status?: number, scope?: LegacySimScope): void;
  /** Drops pending failNext failures. */
  clearFailures(): void;
  /** Forgets every MediaSense session (as after a restart). */
  expireSessions(): void;
  /** Successful MediaSense sign-ins. */
  readonly signIns: number;
  readonly requests: readonly LegacySimRequestLog[];
  clearLog(): void;
  close(): Promise<void>;
}

export const DEFAULT_SIM_USER: LegacySimUser = { username: 'custodian', password: 'custodian-sim-password' };

interface SimTrack {
  bytes: Buffer;
  mediaType: string;
  codec: string;
  participants: string[] | undefined;
}

interface SimRec {
  id: string;
  ucid: string | undefined;
  segment: number;
  bytes: Buffer;
  contentType: string;
  sessionState: string;
  tracks: SimTrack[];
  urlPath: string | undefined;
  startedAt: number;
  durationMs: number | undefined;
  ani: string | undefined;
  dnis: string | undefined;
}

const MS_SUCCESS = { responseCode: 2000, responseMessage: 'Success: Your request was successfully completed.' };
const MS_INVALID_SESSION = {
  responseCode: 4021,
  responseMessage: 'Failure: Invalid session. The session may have expired. Sign in again or enter a valid JSESSIONID.',
};
const MS_BAD_CREDENTIALS = { responseCode: 4010, responseMessage: 'Failure: Invalid credentials.' };
const MS_MEDIA_PREFIX = '/recordedMedia/oramedia/wav/';

function bytesOf(v: { bytes?: Uint8Array | string; path?: string }): Buffer {
  return v.path !== undefined ? readFileSync(v.path) : Buffer.from(v.bytes ?? '');
}

function xmlEscape(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** The path part of a profile default ("/replay?inum={inum}" → "/replay"). */
function pathOf(template: string): string {
  return template.split('?')[0] ?? template;
}

export async function startLegacySimulator(opts: LegacySimulatorOptions): Promise<LegacySimulator> {
  const provider = opts.provider;
  const knobs: LegacySimKnobs = {
    latencyMs: 0,
    bytesPerSecond: 0,
    sessionIdleMs: 30 * 60 * 1000,
    resetAfterBytes: undefined,
    wrongContentType: false,
    ignoreRange: false,
    reverseSearchOrder: false,
    downloadBaseUrl: undefined,
    auth: 'basic',
    searchMaxResults: 10_000,
    lateRecordings: [],
    ...opts.knobs,
  };
  const users = opts.users ?? [DEFAULT_SIM_USER];
  const host = opts.host ?? '127.0.0.1';
  const basePath = (opts.basePath ?? (provider === 'avaya_aura' ? '/api/v1/recording' : provider === 'generic_http' ? '/archive' : '')).replace(/\/+$/, '');
  const logLimit = opts.logLimit ?? 10_000;
  const recordings = new Map<string, SimRec>();
  const sessions = new Map<string, number>();
  const failures: { n: number; status: number; scope: LegacySimScope }[] = [];
  const log: LegacySimRequestLog[] = [];
  const timers = new Set<NodeJS.Timeout>();
  let seq = 0;
  let signIns = 0;
  const callStart = Date.parse('2026-03-04T10:15:00.000Z');

  function addRecording(r: LegacySimRecording): void {
    const bytes = bytesOf(r);
    const sameCall = r.ucid === undefined ? 0 : [...recordings.values()].filter((x) => x.ucid === r.ucid).length;
    const segment = r.segment ?? sameCall + 1;
    recordings.set(r.id, {
      id: r.id,
      ucid: r.ucid,
      segment,
      bytes,
      contentType: r.contentType ?? 'audio/wav',
      sessionState: r.sessionState ?? 'CLOSED_NORMAL',
      tracks: r.tracks
        ? r.tracks.map((t) => ({ bytes: bytesOf(t), mediaType: t.mediaType ?? 'AUDIO', codec: t.codec ?? 'PCMU', participants: t.participants }))
        : [{ bytes, mediaType: 'AUDIO', codec: 'PCMU', participants: undefined }],
      urlPath: r.urlPath?.replace(/^\/+/, ''),
      startedAt: r.startedAt !== undefined ? new Date(r.startedAt).getTime() : callStart + (segment - 1) * 60_000,
      durationMs: r.durationMs,
      ani: r.ani,
      dnis: r.dnis,
    });
  }
  for (const r of opts.recordings ?? []) addRecording(r);

  // ---- answers -----------------------------------------------------------------------------

  function send(res: ServerResponse, entry: LegacySimRequestLog, status: number, body: string | object | undefined, headers: Record<string, string> = {}): void {
    entry.status = status;
    const isText = typeof body === 'string';
    const text = body === undefined ? '' : isText ? body : JSON.stringify(body);
    res.writeHead(status, {
      ...(body === undefined ? {} : { 'content-type': isText ? 'text/plain; charset=utf-8' : 'application/json' }),
      'content-length': String(Buffer.byteLength(text)),
      ...headers,
    });
    res.end(entry.method === 'HEAD' ? undefined : text);
  }

  function unauthorized(res: ServerResponse, entry: LegacySimRequestLog): void {
    send(res, entry, 401, 'Unauthorized', provider === 'avaya_aura' || knobs.auth === 'basic' ? { 'www-authenticate': 'Basic realm="recorder"' } : {});
  }

  function staticAuthOk(req: IncomingMessage): boolean {
    const a = knobs.auth;
    if (a === 'none') return true;
    if (a === 'basic') {
      const m = /^Basic\s+([A-Za-z0-9+/=]+)$/.exec(req.headers.authorization ?? '');
      if (!m?.[1]) return false;
      const decoded = Buffer.from(m[1], 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      return colon > 0 && users.some((u) => u.username === decoded.slice(0, colon) && u.password === decoded.slice(colon + 1));
    }
    if ('bearer' in a) return req.headers.authorization === `Bearer ${a.bearer}`;
    return req.headers[a.header.toLowerCase()] === a.value;
  }

  function sessionOf(req: IncomingMessage): string | undefined {
    const name = MEDIASENSE_DEFAULTS.session_cookie;
    for (const part of (req.headers.cookie ?? '').split(';')) {
      const [k, ...v] = part.trim().split('=');
      if (k === name) return v.join('=');
    }
    const h = req.headers[name.toLowerCase()];
    return typeof h === 'string' ? h : undefined;
  }

  /** Valid and not idle past sessionIdleMs; a valid use renews it. */
  function sessionOk(req: IncomingMessage): boolean {
    const s = sessionOf(req);
    if (!s) return false;
    const last = sessions.get(s);
    if (last === undefined) return false;
    if (Date.now() - last > knobs.sessionIdleMs) {
      sessions.delete(s);
      return false;
    }
    sessions.set(s, Date.now());
    return true;
  }

  function serveMedia(req: IncomingMessage, res: ServerResponse, entry: LegacySimRequestLog, bytes: Buffer, contentType: string): void {
    const size = bytes.length;
    const base: Record<string, string> = { 'content-type': knobs.wrongContentType ? 'text/html; charset=utf-8' : contentType, 'accept-ranges': 'bytes' };
    let start = 0;
    let end = size - 1;
    let status = 200;
    const range = knobs.ignoreRange ? null : parseSimRange(req.headers.range, size);
    if (range === 'unsatisfiable') return send(res, entry, 416, undefined, { 'content-range': `bytes */${size}` });
    if (range) {
      ({ start, end } = range);
      status = 206;
      base['content-range'] = `bytes ${start}-${end}/${size}`;
    }
    const slice = bytes.subarray(start, end + 1);
    entry.status = status;
    res.writeHead(status, { ...base, 'content-length': String(slice.length) });
    if (req.method === 'HEAD') return void res.end();
    const limit = knobs.resetAfterBytes !== undefined && knobs.resetAfterBytes < slice.length ? knobs.resetAfterBytes : undefined;
    const out = limit !== undefined ? slice.subarray(0, limit) : slice;
    const finish = () => {
      if (limit !== undefined) res.socket?.destroy();
      else res.end();
    };
    entry.bytesSent = 0;
    if (knobs.bytesPerSecond <= 0) {
      entry.bytesSent = out.length;
      if (limit !== undefined) res.write(out, () => finish());
      else res.end(out);
      return;
    }
    const chunk = Math.max(1, Math.ceil(knobs.bytesPerSecond / 20));
    let off = 0;
    const tick = () => {
      if (res.destroyed) return;
      const part = out.subarray(off, off + chunk);
      off += part.length;
      entry.bytesSent = off;
      if (off >= out.length) return void res.write(part, () => finish());
      res.write(part);
      later(tick, 50);
    };
    tick();
  }

  function later(fn: () => void, ms: number): void {
    const t = setTimeout(() => {
      timers.delete(t);
      fn();
    }, ms);
    timers.add(t);
  }

  // ---- providers ----------------------------------------------------------------------------------

  function avaya(req: IncomingMessage, res: ServerResponse, entry: LegacySimRequestLog, url: URL, rel: string): void {
    if (!staticAuthOk(req)) return unauthorized(res, entry);
    if ((rel === '' || rel === '/') && (req.method === 'HEAD' || req.method === 'GET')) return send(res, entry, 200, req.method === 'GET' ? 'Avaya Contact Recorder search and replay' : undefined);
    if (rel === pathOf(AVAYA_DEFAULTS.search_path) && req.method === 'GET') {
      if (url.searchParams.get('command') !== 'search') return send(res, entry, 400, 'unknown command');
      const ucid = url.searchParams.get('ucid');
      if (!ucid) return send(res, entry, 400, 'ucid is required');
      const segs = [...recordings.values()].filter((r) => r.ucid === ucid).sort((a, b) => a.segment - b.segment);
      if (knobs.reverseSearchOrder) segs.reverse();
      const items = segs
        .map(
          (r) =>
            `  <result>\n    <inum>${xmlEscape(r.id)}</inum>\n    <ucid>${xmlEscape(ucid)}</ucid>\n    <startedat>${new Date(r.startedAt).toISOString()}</startedat>\n    <duration>${Math.round(r.bytes.length / 1000)}</duration>\n  </result>\n`,
        )
        .join('');
      const xml = `<?xml version="1.0" encoding="UTF-8"?>\n<!-- Avaya Contact Recorder search results (simulated) -->\n<searchresults ucid="${xmlEscape(ucid)}" count="${segs.length}">\n${items}</searchresults>\n`;
      entry.status = 200;
      res.writeHead(200, { 'content-type': 'application/xml; charset=utf-8', 'content-length': String(Buffer.byteLength(xml)) });
      return void res.end(xml);
    }
    if (rel === pathOf(AVAYA_DEFAULTS.replay_path) && (req.method === 'GET' || req.method === 'HEAD')) {
      const r = recordings.get(url.searchParams.get('inum') ?? '');
      if (!r) return send(res, entry, 404, 'no such inum');
      return serveMedia(req, res, entry, r.bytes, r.contentType);
    }
    send(res, entry, 404, 'not found');
  }

  function sessionJson(r: SimRec): object {
    const playable = r.sessionState === 'CLOSED_NORMAL';
    const mediaBase = knobs.downloadBaseUrl ?? mediaBaseUrl;
    return {
      sessionId: r.id,
      sessionState: r.sessionState,
      sessionStartDate: r.startedAt,
      sessionDuration: r.durationMs ?? 35_000,
      callControllerType: 'Cisco-CUCM',
      ccid: `ccid-${r.id}`,
      tags: [],
      tracks: r.tracks.map((t, i) => ({
        trackNumber: i,
        trackMediaType: t.mediaType,
        codec: t.codec,
        trackStartDate: r.startedAt,
        trackDuration: 35_000,
        ...(playable ? { downloadUrl: `${mediaBase}${MS_MEDIA_PREFIX}${encodeURIComponent(r.id)}-${i}.wav` } : {}),
        participants: (t.participants ?? [i === 0 ? '1000' : '+15551230000']).map((deviceRef) => ({
          deviceRef,
          participantStartDate: r.startedAt,
          participantDuration: 35_000,
          isConference: false,
        })),
      })),
    };
  }

  function mediasense(req: IncomingMessage, res: ServerResponse, entry: LegacySimRequestLog, url: URL, rel: string, body: Buffer, listener: LegacySimListener): void {
    if (listener === 'api' && rel === MEDIASENSE_DEFAULTS.sign_in_path && req.method === 'POST') {
      let p: { requestParameters?: { username?: unknown; password?: unknown } } | undefined;
      try {
        p = JSON.parse(body.toString('utf8')) as typeof p;
      } catch {
        return send(res, entry, 400, { responseCode: 4000, responseMessage: 'Failure: The request is not valid JSON.' });
      }
      const u = p?.requestParameters?.username;
      const pw = p?.requestParameters?.password;
      if (!users.some((x) => x.username === u && x.password === pw)) return send(res, entry, 200, MS_BAD_CREDENTIALS);
      const value = randomBytes(16).toString('hex').toUpperCase();
      sessions.set(value, Date.now());
      signIns++;
      return send(res, entry, 200, MS_SUCCESS, { 'set-cookie': `${MEDIASENSE_DEFAULTS.session_cookie}=${value}; Path=/; Secure; HttpOnly` });
    }
    if (listener === 'api' && rel === MEDIASENSE_DEFAULTS.session_query_path && (req.method === 'POST' || req.method === 'GET')) {
      if (!sessionOk(req)) return send(res, entry, 200, MS_INVALID_SESSION);
      let id: unknown;
      if (req.method === 'GET') id = url.searchParams.get('sessionId');
      else {
        try {
          id = (JSON.parse(body.toString('utf8')) as { requestParameters?: { sessionId?: unknown } }).requestParameters?.sessionId;
        } catch {
          return send(res, entry, 400, { responseCode: 4000, responseMessage: 'Failure: The request is not valid JSON.' });
        }
      }
      const r = typeof id === 'string' ? recordings.get(id) : undefined;
      return send(res, entry, 200, { ...MS_SUCCESS, responseBody: { sessions: r ? [sessionJson(r)] : [] } });
    }
    const mediaHere = opts.separateMediaPort ? listener === 'media' : true;
    if (mediaHere && rel.startsWith(MS_MEDIA_PREFIX) && (req.method === 'GET' || req.method === 'HEAD')) {
      if (!sessionOk(req)) return send(res, entry, 401, 'Unauthorized');
      const m = /^(.+)-(\d+)\.wav$/.exec(decodeURIComponent(rel.slice(MS_MEDIA_PREFIX.length)));
      const r = m?.[1] ? recordings.get(m[1]) : undefined;
      const t = r?.tracks[Number(m?.[2])];
      if (!r || !t || r.sessionState !== 'CLOSED_NORMAL') return send(res, entry, 404, 'Not Found');
      return serveMedia(req, res, entry, t.bytes, r.contentType);
    }
    send(res, entry, 404, 'Not Found');
  }

  function generic(req: IncomingMessage, res: ServerResponse, entry: LegacySimRequestLog, rel: string): void {
    if (!staticAuthOk(req)) return unauthorized(res, entry);
    if ((rel === '' || rel === '/') && (req.method === 'HEAD' || req.method === 'GET')) return send(res, entry, 200, req.method === 'GET' ? 'archive' : undefined);
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, entry, 405, 'method not allowed');
    const m = /^\/recordings\/(.+)\.wav$/.exec(rel);
    const byId = m?.[1] ? recordings.get(decodeURIComponent(m[1])) : undefined;
    const byPath = byId ?? [...recordings.values()].find((r) => r.urlPath !== undefined && `/${r.urlPath}` === decodeURIComponent(rel));
    if (!byPath) return send(res, entry, 404, 'not found');
    serveMedia(req, res, entry, byPath.bytes, byPath.contentType);
  }

  // ---- search by time (sync) ------------------------------------------------------------------

  let timeSearches = 0;

  /** The recordings started in [from, to), oldest first (ties by id: stable paging); late arrivals join first. */
  function startedBetween(from: number, to: number): SimRec[] {
    timeSearches++;
    for (const l of knobs.lateRecordings.filter((x) => x.afterSearches < timeSearches)) {
      knobs.lateRecordings.splice(knobs.lateRecordings.indexOf(l), 1);
      addRecording(l.recording);
    }
    return [...recordings.values()].filter((r) => r.startedAt >= from && r.startedAt < to).sort((a, b) => a.startedAt - b.startedAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  function isAvayaTimeSearch(req: IncomingMessage, url: URL, rel: string): boolean {
    return rel === pathOf(AVAYA_DEFAULTS.time_search_path) && req.method === 'GET' && url.searchParams.get('command') === 'search' && url.searchParams.has('from');
  }

  /** Avaya search by time window: ?command=search&from=ISO&to=ISO&offset=n&max=n → XML with a total. */
  function avayaTimeSearch(req: IncomingMessage, res: ServerResponse, entry: LegacySimRequestLog, url: URL): void {
    if (!staticAuthOk(req)) return unauthorized(res, entry);
    const from = Date.parse(url.searchParams.get('from') ?? '');
    const to = Date.parse(url.searchParams.get('to') ?? '');
    const offset = Number(url.searchParams.get('offset') ?? '0');
    const max = Number(url.searchParams.get('max') ?? '100');
    if (Number.isNaN(from) || Number.isNaN(to) || !(from < to)) return send(res, entry, 400, 'from and to must be ISO-8601 times, from before to');
    if (!Number.isInteger(offset) || offset < 0 || !Number.isInteger(max) || max < 1 || max > 1000) return send(res, entry, 400, 'offset >= 0 and 1 <= max <= 1000');
    if (offset + max > knobs.searchMaxResults) return send(res, entry, 400, `results beyond ${knobs.searchMaxResults} cannot be paged; narrow the time window`);
    const all = startedBetween(from, to);
    const tag = (name: string, v: string | undefined) => (v === undefined ? '' : `    <${name}>${xmlEscape(v)}</${name}>\n`);
    const items = all
      .slice(offset, offset + max)
      .map(
        (r) =>
          `  <result>\n${tag('inum', r.id)}${tag('ucid', r.ucid)}${tag('startedat', new Date(r.startedAt).toISOString())}${tag('duration', String(Math.round((r.durationMs ?? r.bytes.length) / 1000)))}${tag('ani', r.ani)}${tag('dnis', r.dnis)}  </result>\n`,
      )
      .join('');
    const xml = `<?xml version="1.0" encoding="UTF-8"?>\n<searchresults total="${all.length}" offset="${offset}">\n${items}</searchresults>\n`;
    entry.status = 200;
    res.writeHead(200, { 'content-type': 'application/xml; charset=utf-8', 'content-length': String(Buffer.byteLength(xml)) });
    res.end(xml);
  }

  /**
   * MediaSense getSessions by start time: requestParameters [{fieldName: sessionStartDate,
   * fieldConditions: [{fieldOperator: between, fieldValues: [from, to]}]}] (epoch ms, inclusive),
   * paginationParams {offset, limit}.
   */
  function mediasenseTimeQuery(req: IncomingMessage, res: ServerResponse, entry: LegacySimRequestLog, body: Buffer): void {
    if (!sessionOk(req)) return send(res, entry, 200, MS_INVALID_SESSION);
    type Cond = { fieldOperator?: unknown; fieldValues?: unknown };
    let q: { requestParameters?: { fieldName?: unknown; fieldConditions?: Cond[] }[]; paginationParams?: { offset?: unknown; limit?: unknown } };
    try {
      q = JSON.parse(body.toString('utf8')) as typeof q;
    } catch {
      return send(res, entry, 400, { responseCode: 4000, responseMessage: 'Failure: The request is not valid JSON.' });
    }
    const p = q.requestParameters?.find((x) => x.fieldName === MEDIASENSE_DEFAULTS.time_query_field);
    const c = p?.fieldConditions?.find((x) => x.fieldOperator === 'between');
    const vals = Array.isArray(c?.fieldValues) ? (c.fieldValues as unknown[]).map(Number) : [];
    const offset = Number(q.paginationParams?.offset ?? 0);
    const limit = Number(q.paginationParams?.limit ?? 100);
    if (vals.length !== 2 || vals.some((v) => !Number.isFinite(v)) || !Number.isInteger(offset) || offset < 0 || !Number.isInteger(limit) || limit < 1 || limit > 1000) {
      return send(res, entry, 200, { responseCode: 4000, responseMessage: 'Failure: Invalid request parameters.' });
    }
    if (offset + limit > knobs.searchMaxResults) return send(res, entry, 200, { responseCode: 4000, responseMessage: `Failure: results beyond ${knobs.searchMaxResults} cannot be paged.` });
    const page = startedBetween(vals[0]!, vals[1]! + 1).slice(offset, offset + limit);
    return send(res, entry, 200, page.length ? { ...MS_SUCCESS, responseBody: { sessions: page.map(sessionJson) } } : { responseCode: 2001, responseMessage: 'Success: No matching record found.' });
  }

  // ---- servers --------------------------------------------------------------------------------

  function takeFailure(scope: Exclude<LegacySimScope, 'any'>): number | undefined {
    const f = failures[0];
    if (!f || (f.scope !== 'any' && f.scope !== scope)) return undefined;
    f.n--;
    if (f.n <= 0) failures.shift();
    return f.status;
  }

  function scopeOf(listener: LegacySimListener, rel: string): Exclude<LegacySimScope, 'any'> {
    if (provider === 'cisco_mediasense') {
      if (rel === MEDIASENSE_DEFAULTS.sign_in_path) return 'signin';
      return rel.startsWith(MS_MEDIA_PREFIX) ? 'media' : 'api';
    }
    if (listener === 'media') return 'media';
    if (provider === 'avaya_aura') return rel === pathOf(AVAYA_DEFAULTS.replay_path) ? 'media' : 'api';
    return rel === '' || rel === '/' ? 'api' : 'media';
  }

  function handler(listener: LegacySimListener, port: () => number) {
    return (req: IncomingMessage, res: ServerResponse) => {
      const chunks: Buffer[] = [];
      let size = 0;
      req.on('data', (c: Buffer) => {
        size += c.length;
        if (size <= 1024 * 1024) chunks.push(c);
      });
      req.on('end', () => {
        const url = new URL(req.url ?? '/', 'http://sim');
        const entry: LegacySimRequestLog = {
          seq: ++seq,
          at: Date.now(),
          listener,
          port: port(),
          method: req.method ?? 'GET',
          path: url.pathname,
          query: url.search.replace(/^\?/, ''),
          headers: { ...req.headers },
          body: Buffer.concat(chunks).subarray(0, 64 * 1024).toString('utf8'),
          clientPort: req.socket.remotePort ?? 0,
        };
        log.push(entry);
        if (log.length > logLimit) log.splice(0, log.length - logLimit);
        res.once('close', () => {
          if (!res.writableFinished) entry.clientClosed = true;
        });
        const answer = () => {
          if (res.destroyed || req.socket.destroyed) {
            entry.clientClosed = true;
            return;
          }
          try {
            const inBase = listener === 'media' || basePath === '' || url.pathname === basePath || url.pathname.startsWith(`${basePath}/`);
            const rel = listener === 'media' ? url.pathname : url.pathname.slice(basePath.length);
            if (!inBase) return send(res, entry, 404, 'not found');
            const failStatus = takeFailure(scopeOf(listener, rel));
            if (failStatus !== undefined) {
              if (failStatus === 401) return unauthorized(res, entry);
              return send(res, entry, failStatus, `simulated failure ${failStatus}`);
            }
            if (size > 1024 * 1024) return send(res, entry, 413, 'too large');
            if (provider === 'avaya_aura' && isAvayaTimeSearch(req, url, rel)) return avayaTimeSearch(req, res, entry, url);
            if (provider === 'cisco_mediasense' && listener === 'api' && rel === MEDIASENSE_DEFAULTS.time_query_path && req.method === 'POST') return mediasenseTimeQuery(req, res, entry, Buffer.concat(chunks));
            if (provider === 'avaya_aura') return avaya(req, res, entry, url, rel);
            if (provider === 'cisco_mediasense') return mediasense(req, res, entry, url, rel, Buffer.concat(chunks), listener);
            return generic(req, res, entry, rel);
          } catch (e) {
            if (!res.headersSent) send(res, entry, 500, `simulator error: ${(e as Error).message}`);
            else res.destroy();
          }
        };
        if (knobs.latencyMs > 0) later(answer, knobs.latencyMs);
        else answer();
      });
    };
  }

  const servers: Server[] = [];
  async function listen(listener: LegacySimListener, port: number): Promise<string> {
    let actual = 0;
    const server = createServer({ keepAliveTimeout: 5_000 }, handler(listener, () => actual));
    servers.push(server);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve());
    });
    actual = (server.address() as AddressInfo).port;
    return `http://${host.includes(':') ? `[${host}]` : host}:${actual}`;
  }

  const baseUrl = await listen('api', opts.port ?? 0);
  const mediaBaseUrl = opts.separateMediaPort && provider === 'cisco_mediasense' ? await listen('media', 0) : baseUrl;

  return {
    provider,
    baseUrl,
    endpoint: baseUrl + basePath,
    mediaBaseUrl,
    knobs,
    set(k) {
      Object.assign(knobs, k);
    },
    addRecording,
    removeRecording: (id) => recordings.delete(id),
    get timeSearches() {
      return timeSearches;
    },
    failNext(n, status = 503, scope = 'any') {
      failures.push({ n, status, scope });
    },
    clearFailures() {
      failures.length = 0;
    },
    expireSessions() {
      sessions.clear();
    },
    get signIns() {
      return signIns;
    },
    requests: log,
    clearLog() {
      log.length = 0;
    },
    async close() {
      for (const t of timers) clearTimeout(t);
      timers.clear();
      await closeServers(servers);
    },
  };
}

// Standalone: `npx tsx src/sources/legacy-http/simulator.ts --provider avaya_aura|cisco_mediasense|generic_http [--port N] [--file media.wav]`
// MediaSense: `--file2 other.wav` makes the session two audio tracks (near end --file, far end --file2).
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const arg = (name: string) => cliArg(name);
  const provider = (arg('--provider') ?? 'avaya_aura') as LegacyProvider;
  if (!['avaya_aura', 'cisco_mediasense', 'generic_http'].includes(provider)) {
    console.error('--provider must be avaya_aura, cisco_mediasense or generic_http');
    process.exit(2);
  }
  const file = arg('--file');
  const file2 = provider === 'cisco_mediasense' ? arg('--file2') : undefined;
  const media = file ? { path: file } : { bytes: 'RIFF-demo-bytes' };
  const tracks = file2 ? { tracks: [media, { path: file2 }] } : {};
  const id = provider === 'avaya_aura' ? '100000000000001' : provider === 'cisco_mediasense' ? '1a2b3c4d5e6f0001' : 'REC-0001';
  const sim = await startLegacySimulator({
    provider,
    port: Number(arg('--port') ?? 0),
    host: arg('--host') ?? '127.0.0.1',
    recordings: [{ id, ...(provider === 'avaya_aura' ? { ucid: '00001002071523456789' } : {}), ...media, ...tracks }],
  });
  const auth = provider === 'cisco_mediasense' ? 'session' : 'basic';
  process.stdout.write(
    [
      `Legacy recorder simulator (${provider}) on ${sim.endpoint}`,
      `user ${DEFAULT_SIM_USER.username} / ${DEFAULT_SIM_USER.password}; recording ${id}${provider === 'avaya_aura' ? ' (ucid:00001002071523456789)' : ''}`,
      'source entry (allow_inline_secrets: true):',
      `  - { name: legacy-sim, type: legacy-http, provider: ${provider}, api_endpoint: "${sim.endpoint}", auth_type: ${auth}, username: ${DEFAULT_SIM_USER.username}, password: ${DEFAULT_SIM_USER.password} }`,
    ].join('\n') + '\n',
  );
}
