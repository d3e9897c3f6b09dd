import { z } from 'zod';
import { secretRef } from '../../config/secret.js';
import { sourceCommon } from '../common-config.js';

export const LEGACY_PROVIDERS = ['avaya_aura', 'cisco_mediasense', 'generic_http'] as const;
export type LegacyProvider = (typeof LEGACY_PROVIDERS)[number];
export const LEGACY_AUTH_TYPES = ['basic', 'bearer', 'header', 'session', 'none'] as const;
export type LegacyAuthType = (typeof LEGACY_AUTH_TYPES)[number];

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]', '::1']);

export function isLoopback(url: URL): boolean {
  return LOOPBACK.has(url.hostname);
}

/** Credentials go over it: no userinfo (use username/password), no query or fragment (templates add those). */
const endpointUrl = z
  .url()
  .refine((u) => ['https:', 'http:'].includes(new URL(u).protocol), 'must be an http(s) URL')
  .refine((u) => {
    const url = new URL(u);
    return url.username === '' && url.password === '';
  }, 'must not carry credentials; use username and password (a secret reference)')
  .refine((u) => {
    const url = new URL(u);
    return url.search === '' && url.hash === '';
  }, 'must not have a query string or fragment');

/** An origin (scheme://host[:port]) a profile may download from besides api_endpoint's. */
const originUrl = z.url().refine((u) => {
  const url = new URL(u);
  return (url.protocol === 'https:' || url.protocol === 'http:') && url.origin === u.replace(/\/$/, '');
}, 'must be a bare origin such as https://mediasense.example:8446');

const xmlName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_.-]*$/, 'an XML element or attribute name (no prefix)');
const jsonField = z.string().regex(/^[A-Za-z_$][A-Za-z0-9_$-]*$/, 'a JSON member name');
const jsonPath = z.string().regex(/^[A-Za-z_$][A-Za-z0-9_$-]*(\.[A-Za-z_$][A-Za-z0-9_$-]*)*$/, 'a dotted JSON path such as responseBody.sessions');

/**
 * A URL template: either relative to api_endpoint ("/replay?inum={inum}") or starting with
 * "{api_endpoint}" followed by "/" or "?". Either way it can only ever address api_endpoint's
 * origin. Placeholders are filled with percent-encoded values.
 */
function urlTemplate(placeholders: readonly string[]) {
  return z
    .string()
    .min(1)
    .refine((t) => t.startsWith('/') || /^\{api_endpoint\}([/?]|$)/.test(t), 'must start with "/" or "{api_endpoint}/"')
    .refine((t) => !/[\s#]/.test(t), 'must not contain spaces or "#"')
    .superRefine((t, ctx) => {
      for (const m of t.matchAll(/\{([^{}]*)\}/g)) {
        const name = m[1] ?? '';
        if (name !== 'api_endpoint' && !placeholders.includes(name)) {
          ctx.addIssue({ code: 'custom', message: `unknown placeholder {${name}}; allowed: ${['api_endpoint', ...placeholders].map((p) => `{${p}}`).join(', ')}` });
        }
      }
      if (/\{api_endpoint\}/.test(t.slice(1))) ctx.addIssue({ code: 'custom', message: '{api_endpoint} may only start the template' });
    });
}

/**
 * Vendor profile: URL templates and field names. Vendors do not all publish their paths
 * (docs/legacy-and-compliance.md), so every value is overridable; defaults are below. Only the
 * keys of the entry's provider are accepted.
 */
const profileSchema = z
  .object({
    // --- avaya_aura (Avaya Contact Recorder search-and-replay; XML search, WAV replay) ---
    /** Search by UCID; {ucid}. The answer is XML with one element per segment. */
    search_path: urlTemplate(['ucid']).optional(),
    /** Replay one segment; {inum}. */
    replay_path: urlTemplate(['inum']).optional(),
    /** The element of the search answer that is one segment. */
    segment_element: xmlName.optional(),
    /** Child element (or attribute) of a segment holding its inum. */
    inum_field: xmlName.optional(),
    /** Child element (or attribute) to order segments by (numbers or ISO times); null keeps document order. */
    order_field: xmlName.nullable().optional(),
    /** Sync: search segments by time window; {from}, {to} (time_search_time_format), {offset} (0-based), {limit}. Same answer shape as search_path. */
    time_search_path: urlTemplate(['from', 'to', 'offset', 'limit']).optional(),
    /** How {from} and {to} are written: ISO-8601 UTC, epoch milliseconds or epoch seconds. */
    time_search_time_format: z.enum(['iso', 'epoch_ms', 'epoch_s']).optional(),
    /** Attribute of the answer's root element counting every match of the window (null: page until a short page). */
    total_attribute: xmlName.nullable().optional(),
    /** Segment fields of the time search: UCID, start (ISO or epoch), duration (duration_unit), calling and called numbers (null: not given). */
    ucid_field: xmlName.nullable().optional(),
    start_field: xmlName.optional(),
    duration_field: xmlName.nullable().optional(),
    duration_unit: z.enum(['s', 'ms']).optional(),
    ani_field: xmlName.nullable().optional(),
    dnis_field: xmlName.nullable().optional(),

    // --- cisco_mediasense (ORA API, JSESSIONID session) ---
    sign_in_path: urlTemplate([]).optional(),
    /** POST: JSON {"requestParameters":{"sessionId":…}}; GET: the template carries {session_id}. */
    session_query_path: urlTemplate(['session_id']).optional(),
    session_query_method: z.enum(['POST', 'GET']).optional(),
    /** Cookie the sign-in sets and every later request carries. */
    session_cookie: z.string().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, 'a cookie name').optional(),
    /** How the session travels: as a cookie, as a header of the same name (older ORA examples), or both. */
    session_transport: z.enum(['cookie', 'header', 'both']).optional(),
    response_code_field: jsonField.optional(),
    /** responseCode values meaning "session expired or invalid": sign in again once. */
    session_expired_codes: z.array(z.number().int()).optional(),
    sessions_field: jsonPath.optional(),
    session_state_field: jsonField.optional(),
    /** Session states whose tracks can be downloaded. */
    playable_states: z.array(z.string().min(1)).min(1).optional(),
    tracks_field: jsonField.optional(),
    track_number_field: jsonField.optional(),
    track_media_type_field: jsonField.optional(),
    audio_media_types: z.array(z.string().min(1)).min(1).optional(),
    download_url_field: jsonField.optional(),
    /**
     * Which audio tracks: "all" (every audio track with a downloadUrl; two or more are served as one
     * WAV, a channel per track, mediasense-tracks.ts), "first" (the lowest trackNumber with a
     * downloadUrl) or a trackNumber.
     */
    track: z.union([z.literal('all'), z.literal('first'), z.number().int().min(0)]).optional(),
    /** A track's codec (a hint for a track with no container) and its participants (named in the audit of a merged call). */
    track_codec_field: jsonField.optional(),
    participants_field: jsonField.optional(),
    participant_ref_field: jsonField.optional(),
    /** Sync: POST query of sessions by start time (JSON requestParameters "between", paginationParams offset/limit). */
    time_query_path: urlTemplate([]).optional(),
    /** The session field the time query filters and orders on (epoch ms), also read as the session's start. */
    time_query_field: jsonField.optional(),
    session_id_field: jsonField.optional(),
    /** Session duration in ms (null: not given). */
    session_duration_field: jsonField.nullable().optional(),
    /**
     * Origins besides api_endpoint's that a downloadUrl may point at (MediaSense serves media on
     * another port than its API). The session goes there too; any other origin is refused unsent.
     */
    allow_download_origins: z.array(originUrl).optional(),

    // --- generic_http ---
    /**
     * Placeholders {legacy_archive_id}, {recording_id}, {conversation_id}. A copy with a locator
     * ignores the template: the locator is a path under api_endpoint.
     */
    media_url_template: urlTemplate(['legacy_archive_id', 'recording_id', 'conversation_id']).optional(),

    // --- avaya_aura, generic_http: readiness probe ---
    check_path: z.union([z.literal(''), urlTemplate([])]).optional(),
    check_method: z.enum(['HEAD', 'GET']).optional(),
  })
  .strict();

export type LegacyProfileInput = z.infer<typeof profileSchema>;

export const PROFILE_KEYS: Record<LegacyProvider, readonly (keyof LegacyProfileInput)[]> = {
  avaya_aura: [
    'search_path',
    'replay_path',
    'segment_element',
    'inum_field',
    'order_field',
    'time_search_path',
    'time_search_time_format',
    'total_attribute',
    'ucid_field',
    'start_field',
    'duration_field',
    'duration_unit',
    'ani_field',
    'dnis_field',
    'check_path',
    'check_method',
  ],
  cisco_mediasense: [
    'sign_in_path',
    'session_query_path',
    'session_query_method',
    'session_cookie',
    'session_transport',
    'response_code_field',
    'session_expired_codes',
    'sessions_field',
    'session_state_field',
    'playable_states',
    'tracks_field',
    'track_number_field',
    'track_media_type_field',
    'audio_media_types',
    'download_url_field',
    'track',
    'track_codec_field',
    'participants_field',
    'participant_ref_field',
    'allow_download_origins',
    'time_query_path',
    'time_query_field',
    'session_id_field',
    'session_duration_field',
  ],
  generic_http: ['media_url_template', 'check_path', 'check_method'],
};

export const AVAYA_DEFAULTS = {
  search_path: '/searchapi?command=search&ucid={ucid}',
  replay_path: '/replay?inum={inum}',
  segment_element: 'result',
  inum_field: 'inum',
  order_field: 'startedat' as string | null,
  time_search_path: '/searchapi?command=search&from={from}&to={to}&offset={offset}&max={limit}',
  time_search_time_format: 'iso' as 'iso' | 'epoch_ms' | 'epoch_s',
  total_attribute: 'total' as string | null,
  ucid_field: 'ucid' as string | null,
  start_field: 'startedat',
  duration_field: 'duration' as string | null,
  duration_unit: 's' as 's' | 'ms',
  ani_field: 'ani' as string | null,
  dnis_field: 'dnis' as string | null,
  check_path: '',
  check_method: 'HEAD' as 'HEAD' | 'GET',
};
export type AvayaProfile = typeof AVAYA_DEFAULTS;

export const MEDIASENSE_DEFAULTS = {
  sign_in_path: '/ora/authenticationService/authentication/signIn',
  session_query_path: '/ora/queryService/query/getSessionBySessionId',
  session_query_method: 'POST' as 'POST' | 'GET',
  session_cookie: 'JSESSIONID',
  session_transport: 'cookie' as 'cookie' | 'header' | 'both',
  response_code_field: 'responseCode',
  session_expired_codes: [4021] as number[],
  sessions_field: 'responseBody.sessions',
  session_state_field: 'sessionState',
  playable_states: ['CLOSED_NORMAL'] as string[],
  tracks_field: 'tracks',
  track_number_field: 'trackNumber',
  track_media_type_field: 'trackMediaType',
  audio_media_types: ['AUDIO'] as string[],
  download_url_field: 'downloadUrl',
  track: 'all' as 'all' | 'first' | number,
  track_codec_field: 'codec',
  participants_field: 'participants',
  participant_ref_field: 'deviceRef',
  allow_download_origins: [] as string[],
  time_query_path: '/ora/queryService/query/getSessions',
  time_query_field: 'sessionStartDate',
  session_id_field: 'sessionId',
  session_duration_field: 'sessionDuration' as string | null,
};
export type MediaSenseProfile = typeof MEDIASENSE_DEFAULTS;

export const GENERIC_DEFAULTS = {
  media_url_template: '{api_endpoint}/recordings/{legacy_archive_id}.wav',
  check_path: '',
  check_method: 'HEAD' as 'HEAD' | 'GET',
};
export type GenericProfile = typeof GENERIC_DEFAULTS;

export const legacyHttpSourceConfig = sourceCommon
  .extend({
    type: z.literal('legacy-http'),
    provider: z.enum(LEGACY_PROVIDERS),
    /** Base URL of the recorder's API; credentials are sent to its origin only. */
    api_endpoint: endpointUrl,
    auth_type: z.enum(LEGACY_AUTH_TYPES),
    username: z.string().min(1).optional(),
    password: secretRef().optional(),
    /** bearer: the token; header: the header's value. */
    token: secretRef().optional(),
    /** header: the header that carries `token`, e.g. X-Api-Key. */
    header_name: z
      .string()
      .regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, 'an HTTP header name')
      .refine(
        (h) => !['host', 'content-length', 'transfer-encoding', 'connection', 'cookie', 'range', 'te', 'upgrade', 'keep-alive', 'proxy-authorization'].includes(h.toLowerCase()),
        'this header is reserved',
      )
      .optional(),
    /** Attempts after the first one for 5xx answers and connection errors, before any byte is handed over. */
    max_retries: z.number().int().min(0).max(10).default(3),
    /** Backoff between those attempts (exponential with jitter). */
    backoff: z
      .object({
        initial_ms: z.number().int().min(1).max(60_000).default(200),
        max_ms: z.number().int().min(1).max(300_000).default(5_000),
      })
      .strict()
      .refine((b) => b.initial_ms <= b.max_ms, { message: 'initial_ms must not exceed max_ms', path: ['initial_ms'] })
      .prefault({}),
    /** Plain http to a non-loopback host sends credentials in clear: refused unless set. */
    allow_insecure_http: z.boolean().default(false),
    /** PEM file of the CA that signed the recorder's certificate (on-premises PKI). Never "skip verification". */
    tls_ca_file: z.string().min(1).optional(),
    profile: profileSchema.prefault({}),
    /**
     * Only present when normaliseLegacyBlock found a field both inside `legacy_connector` and
     * beside it; always refused, so the clash is reported instead of one value silently winning.
     */
    legacy_connector: z.undefined({ error: 'these fields are given both inside legacy_connector and beside it; keep one' }).optional(),
  })
  .strict()
  .superRefine((c, ctx) => {
    const need = (field: 'username' | 'password' | 'token' | 'header_name', why: string) => {
      if (c[field] === undefined) ctx.addIssue({ code: 'custom', path: [field], message: `${field} is required ${why}` });
    };
    switch (c.auth_type) {
      case 'basic':
        need('username', 'when auth_type is basic');
        need('password', 'when auth_type is basic');
        break;
      case 'bearer':
        need('token', 'when auth_type is bearer');
        break;
      case 'header':
        need('header_name', 'when auth_type is header');
        need('token', 'when auth_type is header');
        break;
      case 'session':
        if (c.provider !== 'cisco_mediasense') {
          ctx.addIssue({ code: 'custom', path: ['auth_type'], message: 'auth_type session is the Cisco MediaSense sign-in; use it with provider cisco_mediasense' });
        }
        need('username', 'when auth_type is session');
        need('password', 'when auth_type is session');
        break;
      case 'none':
        break;
    }
    if (c.provider === 'cisco_mediasense' && c.auth_type !== 'session') {
      ctx.addIssue({ code: 'custom', path: ['auth_type'], message: 'cisco_mediasense needs auth_type session (signIn, then the JSESSIONID cookie)' });
    }
    if (c.auth_type !== 'header' && c.header_name !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['header_name'], message: 'header_name is only used with auth_type header' });
    }
    const url = new URL(c.api_endpoint);
    if (url.protocol === 'http:' && !isLoopback(url) && !c.allow_insecure_http) {
      ctx.addIssue({ code: 'custom', path: ['api_endpoint'], message: 'must be https (plain http only on loopback, or set allow_insecure_http)' });
    }
    const allowed = PROFILE_KEYS[c.provider];
    for (const key of Object.keys(c.profile) as (keyof LegacyProfileInput)[]) {
      if (c.profile[key] !== undefined && !allowed.includes(key)) {
        ctx.addIssue({ code: 'custom', path: ['profile', key], message: `not a ${c.provider} profile field (allowed: ${allowed.join(', ')})` });
      }
    }
    for (const [i, o] of (c.profile.allow_download_origins ?? []).entries()) {
      const u = new URL(o);
      if (u.protocol === 'http:' && !isLoopback(u) && !c.allow_insecure_http) {
        ctx.addIssue({ code: 'custom', path: ['profile', 'allow_download_origins', i], message: 'must be https (plain http only on loopback, or set allow_insecure_http)' });
      }
    }
  });
export type LegacyHttpSourceConfig = z.infer<typeof legacyHttpSourceConfig>;

/** The profile of an entry with its provider's defaults filled in. */
export function avayaProfile(cfg: LegacyHttpSourceConfig): AvayaProfile {
  return { ...AVAYA_DEFAULTS, ...defined(cfg.profile, PROFILE_KEYS.avaya_aura) };
}
export function mediaSenseProfile(cfg: LegacyHttpSourceConfig): MediaSenseProfile {
  return { ...MEDIASENSE_DEFAULTS, ...defined(cfg.profile, PROFILE_KEYS.cisco_mediasense) };
}
export function genericProfile(cfg: LegacyHttpSourceConfig): GenericProfile {
  return { ...GENERIC_DEFAULTS, ...defined(cfg.profile, PROFILE_KEYS.generic_http) };
}

function defined(p: LegacyProfileInput, keys: readonly string[]): Record<string, unknown> {
  return Object.fromEntries(Object.entries(p).filter(([k, v]) => v !== undefined && keys.includes(k)));
}

// ---- the original brief's block -------------------------------------------------------------

const BLOCK_KEY = 'legacy_connector';

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Accepts the original brief's block as a source entry and returns the flat `legacy-http` entry:
 *
 *   { "legacy_connector": { "provider": "avaya_aura", "api_endpoint": "https://…", "auth_type": "basic",
 *     "username": "svc_rec_retrieval", "timeout_ms": 30000, "max_retries": 3 },
 *     "name": "avaya", "password": "env:AVAYA_PASSWORD" }
 *
 * Fields may sit inside the block or beside it (name, password, source_systems, …). Missing `name`
 * becomes the provider ("avaya_aura"), missing `source_systems` becomes [provider], so catalog
 * copies imported with that source_system find the source. A field given in both places with
 * different values is kept back under `legacy_connector`, which the schema refuses with a message
 * naming it. Anything that is not such a block is returned unchanged (the same reference), so this
 * can run on every source entry before the union parses it.
 */
export function normaliseLegacyBlock(raw: unknown): unknown {
  if (!isPlainObject(raw) || !isPlainObject(raw[BLOCK_KEY])) return raw;
  if (raw.type !== undefined && raw.type !== 'legacy-http') return raw;
  const inner = raw[BLOCK_KEY];
  const outer = Object.fromEntries(Object.entries(raw).filter(([k]) => k !== BLOCK_KEY));
  const out: Record<string, unknown> = { ...outer };
  const clashes: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(inner)) {
    if (k in outer && !sameValue(outer[k], v)) clashes[k] = v;
    else out[k] = v;
  }
  out.type = 'legacy-http';
  const provider = typeof out.provider === 'string' ? out.provider : undefined;
  if (out.name === undefined && provider && (LEGACY_PROVIDERS as readonly string[]).includes(provider)) out.name = provider;
  if (out.source_systems === undefined && provider && (LEGACY_PROVIDERS as readonly string[]).includes(provider)) out.source_systems = [provider];
  if (Object.keys(clashes).length > 0) out[BLOCK_KEY] = clashes;
  return out;
}

function sameValue(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** `normaliseLegacyBlock` then the `legacy-http` schema, for use as one zod type. */
export const legacyConnectorBlock = z.preprocess((v) => normaliseLegacyBlock(v), legacyHttpSourceConfig);
