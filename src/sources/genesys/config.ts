import { z } from 'zod';
import { secretRef } from '../../config/secret.js';
import { sourceCommon } from '../common-config.js';

/** Genesys Cloud region environments (docs/genesys-cloud.md): OAuth at login.<env>, API at api.<env>. */
export const GENESYS_ENVIRONMENTS = [
  'mypurecloud.com',
  'mypurecloud.ie',
  'mypurecloud.de',
  'mypurecloud.jp',
  'mypurecloud.com.au',
  'usw2.pure.cloud',
  'cac1.pure.cloud',
  'euw2.pure.cloud',
  'apne2.pure.cloud',
  'aps1.pure.cloud',
  'sae1.pure.cloud',
  'mec1.pure.cloud',
  'apne3.pure.cloud',
  'euc2.pure.cloud',
  'mxc1.pure.cloud',
  'apse1.pure.cloud',
  'use2.us-gov-pure.cloud',
] as const;

/** `formatId` values of GET /api/v2/conversations/{conversationId}/recordings/{recordingId}. */
export const GENESYS_FORMATS = ['WAV', 'WAV_ULAW', 'MP3', 'OGG_OPUS', 'WEBM', 'OGG_VORBIS', 'NONE'] as const;
export type GenesysFormat = (typeof GENESYS_FORMATS)[number];

/** `view_sensitive_data`: read the grants, or the operator's declaration of the permission. */
export const VIEW_SENSITIVE_DATA = ['auto', 'granted', 'not_granted'] as const;
export type ViewSensitiveData = (typeof VIEW_SENSITIVE_DATA)[number];

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]', '::1']);

/** The client secret and bearer token go over these: plain HTTP only to loopback (tests, a local proxy). */
const baseUrl = z.url().refine((u) => {
  const url = new URL(u);
  return url.protocol === 'https:' || (url.protocol === 'http:' && LOOPBACK.has(url.hostname));
}, 'must be https (plain http only on loopback)');

export const genesysSourceConfig = sourceCommon
  .extend({
    type: z.literal('genesys'),
    /** Region environment, e.g. "mypurecloud.ie"; any string when both base URLs are given. */
    environment: z.string().min(1),
    /** Overrides https://login.<environment> (tests, proxies). */
    login_base_url: baseUrl.optional(),
    /** Overrides https://api.<environment> (tests, proxies). */
    api_base_url: baseUrl.optional(),
    client_id: z.string().min(1),
    client_secret: secretRef(),
    /** formatId asked of Genesys; it transcodes (answering 202 meanwhile). */
    default_format: z.enum(GENESYS_FORMATS).default('WAV'),
    /** Polling while Genesys answers 202 (transcoding): backoff from initial_ms up to max_ms, at most budget_ms in all. */
    transcode_poll: z
      .object({
        initial_ms: z.number().int().min(10).max(60_000).default(500),
        max_ms: z.number().int().min(10).max(300_000).default(5_000),
        budget_ms: z.number().int().min(0).max(3_600_000).default(30_000),
      })
      .strict()
      .refine((p) => p.initial_ms <= p.max_ms, { message: 'initial_ms must not exceed max_ms', path: ['initial_ms'] })
      .default({ initial_ms: 500, max_ms: 5_000, budget_ms: 30_000 }),
    /** How often one download may mint a fresh media link and continue with a Range request. */
    max_resumes: z.number().int().min(0).max(100).default(5),
    /**
     * When the catalog does not know a ref (the migration sync lags), look it up in Genesys
     * (analytics query by conversation id, external tag or SIP Call-ID) and write it back.
     */
    fallback_lookup: z.boolean().default(true),
    /** Search window when the ref carries no call time; Genesys limits query intervals. */
    fallback_lookback_days: z.number().int().min(1).max(31).default(7),
    /**
     * Whether the OAuth client's roles hold recording:recording:viewSensitiveData (unredacted
     * media), as the operator knows it. `auto`: only the client's grants say (GET
     * /api/v2/authorization/subjects/me), which Genesys may refuse a client-credentials token, and
     * then every retrieval is audited may_be_redacted. A declaration stands in for grants that
     * cannot be read; readable grants still decide the audit event (preflight.ts).
     */
    view_sensitive_data: z.enum(VIEW_SENSITIVE_DATA).default('auto'),
    /**
     * How long /readyz reuses this source's preflight (login, rights probes, settings, clock): each
     * run costs a handful of API calls out of the client's rate budget.
     */
    readiness_cache_ms: z.number().int().min(0).max(3_600_000).default(10_000),
    /**
     * Platform API calls these credentials may make per window, shared by every gateway instance
     * (kept in the catalog's PostgreSQL when there is one). Genesys allows about 300 per minute
     * per client by default; 0 = no budget of our own (a 429 still pauses this instance).
     */
    request_budget: z
      .object({
        max: z.number().int().min(0).max(1_000_000).default(0),
        window_ms: z.number().int().min(1_000).max(3_600_000).default(60_000),
      })
      .strict()
      .prefault({}),
    /** Polling of batch download jobs (POST/GET /api/v2/recording/batchrequests): backoff from initial_ms to max_ms, at most budget_ms per job. */
    batch_poll: z
      .object({
        initial_ms: z.number().int().min(10).max(60_000).default(1_000),
        max_ms: z.number().int().min(10).max(300_000).default(10_000),
        budget_ms: z.number().int().min(0).max(3_600_000).default(600_000),
      })
      .strict()
      .refine((p) => p.initial_ms <= p.max_ms, { message: 'initial_ms must not exceed max_ms', path: ['initial_ms'] })
      .default({ initial_ms: 1_000, max_ms: 10_000, budget_ms: 600_000 }),
  })
  .strict()
  .refine(
    (c) => (GENESYS_ENVIRONMENTS as readonly string[]).includes(c.environment) || (c.login_base_url !== undefined && c.api_base_url !== undefined),
    { message: `environment must be one of ${GENESYS_ENVIRONMENTS.join(', ')} unless login_base_url and api_base_url are both given`, path: ['environment'] },
  );
export type GenesysSourceConfig = z.infer<typeof genesysSourceConfig>;

/** Base URLs without a trailing slash; a path prefix (proxy) is kept. */
export function genesysBaseUrls(cfg: Pick<GenesysSourceConfig, 'environment' | 'login_base_url' | 'api_base_url'>): { login: string; api: string } {
  const trim = (u: string) => u.replace(/\/+$/, '');
  return {
    login: trim(cfg.login_base_url ?? `https://login.${cfg.environment}`),
    api: trim(cfg.api_base_url ?? `https://api.${cfg.environment}`),
  };
}
