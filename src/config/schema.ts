import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { z } from 'zod';
import { API_KEY_ID, isKeyOf, keyFormatHint } from '../access/key-format.js';
import { filesystemSourceConfig } from '../sources/filesystem/config.js';
import { genesysSourceConfig } from '../sources/genesys/config.js';
import { isLoopback, legacyHttpSourceConfig, normaliseLegacyBlock } from '../sources/legacy-http/config.js';
import { refineS3Credentials, s3Connection, s3SourceConfig } from '../sources/s3/config.js';
import { syncTenantConfig } from '../sync/config.js';
import { Secret, secretRef } from './secret.js';

/** More gateway processes than this on one host is a mistake, not a plan (server.workers). */
export const MAX_WORKERS = 64;
const WORKERS_HINT = `must be an integer from 1 to ${MAX_WORKERS}, or "auto" (one per core)`;
const HEAP_GROWTH_HINT = "must be an integer from 0 (V8's own choice) to 300";

export const SCOPES = ['recordings:read', 'recordings:export', 'audit:read', 'admin'] as const;
export type Scope = (typeof SCOPES)[number];

export const sourceConfig = z.discriminatedUnion('type', [filesystemSourceConfig, s3SourceConfig, genesysSourceConfig, legacyHttpSourceConfig]);
export type SourceConfig = z.infer<typeof sourceConfig>;

const tenantId = z.string().regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, 'lower-case letters, digits, - and _');

const tenantConfig = z
  .object({
    id: tenantId,
    display_name: z.string().optional(),
    // The original brief's `{ legacy_connector: {...} }` block is accepted as a source entry too.
    sources: z.array(z.preprocess(normaliseLegacyBlock, sourceConfig)).default([]),
    /** Migration sync of this tenant's sources into the catalog (docs/SYNC.md). */
    sync: syncTenantConfig.optional(),
  })
  .strict()
  .superRefine((t, ctx) => {
    const seen = new Set<string>();
    t.sources.forEach((s, i) => {
      if (seen.has(s.name)) ctx.addIssue({ code: 'custom', path: ['sources', i, 'name'], message: `duplicate source name "${s.name}"` });
      seen.add(s.name);
    });
    // The sync names sources of this tenant: legacy walks need a filesystem or s3 source, the cloud sync a genesys one.
    t.sync?.legacy.forEach((l, i) => {
      const src = t.sources.find((s) => s.name === l.source);
      if (!src || (src.type !== 'filesystem' && src.type !== 's3')) ctx.addIssue({ code: 'custom', path: ['sync', 'legacy', i, 'source'], message: `"${l.source}" is not a filesystem or s3 source of this tenant` });
    });
    // Search-API sync: a legacy-http recorder that can search by time (Avaya ACR, Cisco MediaSense).
    t.sync?.legacy_search.forEach((l, i) => {
      const src = t.sources.find((s) => s.name === l.source);
      if (!src || src.type !== 'legacy-http') ctx.addIssue({ code: 'custom', path: ['sync', 'legacy_search', i, 'source'], message: `"${l.source}" is not a legacy-http source of this tenant` });
      else if (src.provider === 'generic_http') ctx.addIssue({ code: 'custom', path: ['sync', 'legacy_search', i, 'source'], message: `"${l.source}" is a generic_http source, which has no search API (use avaya_aura or cisco_mediasense)` });
    });
    t.sync?.genesys_sources?.forEach((n, i) => {
      if (t.sources.find((s) => s.name === n)?.type !== 'genesys') ctx.addIssue({ code: 'custom', path: ['sync', 'genesys_sources', i], message: `"${n}" is not a genesys source of this tenant` });
    });
  });

/** A URL credentials or trust go over: https, plain http only on loopback (tests, a local proxy); nothing else (ftp:, file:). */
const httpsUrl = z.url().refine((u) => {
  const url = new URL(u);
  return url.protocol === 'https:' || (url.protocol === 'http:' && isLoopback(url));
}, 'must be https (plain http only on loopback)');

/** A PostgreSQL connection URL: postgres:// or postgresql:// that parses. The message never repeats it (it may hold a password). */
function isPostgresUrl(s: Secret): boolean {
  try {
    return ['postgres:', 'postgresql:'].includes(new URL(s.reveal()).protocol);
  } catch {
    return false;
  }
}

const jwtConfig = z
  .object({
    issuer: z.string().min(1),
    audience: z.string().min(1),
    algorithms: z.array(z.enum(['RS256', 'RS384', 'RS512', 'PS256', 'ES256', 'ES384', 'EdDSA'])).min(1).default(['RS256']),
    /** Either a JWKS URL of the identity provider or static public keys (PEM, SPKI). */
    jwks_url: httpsUrl.optional(),
    public_keys: z.array(z.string().min(1)).optional(),
    /** Claim names: the IdP decides them, so they are configurable. */
    tenant_claim: z.string().default('tenant'),
    scope_claim: z.string().default('scope'),
    principal_claim: z.string().default('sub'),
    clock_tolerance_s: z.number().int().min(0).max(300).default(30),
  })
  .strict()
  .refine((j) => (j.jwks_url === undefined) !== (j.public_keys === undefined), {
    message: 'give exactly one of jwks_url or public_keys',
    path: ['jwks_url'],
  });

/**
 * The key service: `local` keeps an AES master key and an Ed25519 signing key in
 * `<data_dir>/keys/` (0600); `aws_kms` keeps them in AWS KMS and checks catalog key ids there.
 */
const keysConfig = z
  .object({
    provider: z.enum(['local', 'aws_kms']).default('local'),
    aws_kms: z
      .object({
        region: z.string().min(1),
        endpoint: httpsUrl.optional(),
        /** Symmetric key (ENCRYPT_DECRYPT) that wraps staging data keys: id, ARN or alias/… */
        data_key_id: z.string().min(1),
        /** Asymmetric ECC_NIST_EDWARDS25519 key (SIGN_VERIFY) for checkpoints and export manifests. */
        signing_key_id: z.string().min(1),
        access_key_id: secretRef().optional(),
        secret_access_key: secretRef().optional(),
        session_token: secretRef().optional(),
        /** How long a DescribeKey answer about a catalog key is reused (0 = ask every time). */
        check_cache_ms: z.number().int().min(0).max(3_600_000).default(30_000),
      })
      .strict()
      .refine((c) => (c.access_key_id === undefined) === (c.secret_access_key === undefined), {
        message: 'access_key_id and secret_access_key go together',
        path: ['secret_access_key'],
      })
      .optional(),
  })
  .strict()
  .refine((k) => k.provider !== 'aws_kms' || k.aws_kms !== undefined, { message: 'provider aws_kms needs the aws_kms block', path: ['aws_kms'] })
  // Given with the local key service it would be ignored: staged media and signatures would not be where the file says.
  .refine((k) => k.provider === 'aws_kms' || k.aws_kms === undefined, { message: 'is used only with keys.provider: aws_kms (the provider is local); set the provider or remove the block', path: ['aws_kms'] });

/** API keys declared in config (bootstrap, demo, automation); others are issued with `custodian keys create`. */
const staticApiKey = z
  .object({
    /** Letters, digits and "-": the id is the part of cst_<id>_<secret> before the second "_". */
    id: z.string().regex(API_KEY_ID, '3 to 64 letters, digits and -'),
    tenant: tenantId,
    principal: z.string().min(1).max(200),
    scopes: z.array(z.enum(SCOPES)).min(1),
    key: secretRef(),
  })
  .strict();

/**
 * server.trust_proxy is handed to fastify's trustProxy, which reads a string as a comma-separated
 * list and compiles the list with @fastify/proxy-addr when the app is built: a value it cannot
 * compile crashed start-up there with a stack that named no field. It is compiled here with the
 * same module (the copy fastify itself loads), so config accepts exactly what fastify will.
 */
type ProxyAddr = { compile(list: string[]): unknown };
let proxyAddr: ProxyAddr | undefined;
function trustProxyProblem(list: string[]): string | null {
  proxyAddr ??= createRequire(createRequire(import.meta.url).resolve('fastify'))('@fastify/proxy-addr') as ProxyAddr;
  try {
    proxyAddr.compile(list);
    return null;
  } catch (e) {
    return (e as Error).message;
  }
}
const TRUST_PROXY_HINT = "true, false, or the proxies' IP addresses and CIDR ranges (or loopback, linklocal, uniquelocal) as a list or a comma-separated string";
const trustProxy = z
  .union([z.boolean(), z.string(), z.array(z.string())], {
    // fastify 5 no longer trusts by hop count (it cannot check the nearest peer): a number would silently trust nobody.
    error: (iss) => (typeof iss.input === 'number' ? `a hop count is not trusted by fastify (it cannot tell the nearest peer is a proxy); give ${TRUST_PROXY_HINT}` : `must be ${TRUST_PROXY_HINT}`),
  })
  .superRefine((v, ctx) => {
    if (typeof v === 'boolean') return;
    if (typeof v === 'string') {
      const problem = trustProxyProblem(v.split(',').map((it) => it.trim()));
      if (problem) ctx.addIssue({ code: 'custom', message: `${problem}; must be ${TRUST_PROXY_HINT}` });
      return;
    }
    v.forEach((item, i) => {
      const problem = trustProxyProblem([item]);
      if (problem) ctx.addIssue({ code: 'custom', path: [i], message: `${problem}; must be ${TRUST_PROXY_HINT}` });
    });
  });

const IDLE_LOGOFF_HINT = 'must be an integer from 1000 to 900000 (15 minutes, the most PCI DSS allows)';

/**
 * The auditor console (docs/console/README.md). `oidc`: organisation sign-in by the OAuth 2.0
 * authorization code flow with PKCE (S256), the console being a public client (no secret). The
 * access token it gets is sent to the API as a bearer JWT, so the issuer must be the one
 * `auth.jwt` trusts (checked below). http issuers are accepted on loopback only (tests, demo).
 */
const consoleConfig = z
  .object({
    oidc: z
      .object({
        issuer: z.url().refine((u) => {
          const url = new URL(u);
          return url.protocol === 'https:' || (url.protocol === 'http:' && ['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname));
        }, 'https (http only on loopback)'),
        client_id: z.string().min(1).max(200),
        scopes: z
          .array(z.string().regex(/^[\x21\x23-\x5B\x5D-\x7E]+$/, 'an OAuth scope token'))
          .default(['openid'])
          .refine((s) => s.includes('openid'), 'must include openid'),
        /** Where the IdP sends the browser back (register `<console origin><redirect_path>` with the IdP). */
        redirect_path: z
          .string()
          .regex(/^\/console\/[A-Za-z0-9_-]+(\/[A-Za-z0-9_-]+)*$/, 'a path under /console/, e.g. /console/callback')
          .refine((p) => !p.startsWith('/console/assets'), 'not under /console/assets')
          .default('/console/callback'),
        /** Extra origins the page may call (CSP connect-src) when the token endpoint is not on the issuer's origin. */
        connect_origins: z.array(z.url().transform((u) => new URL(u).origin)).default([]),
      })
      .strict()
      .optional(),
    /**
     * Automatic logoff (PCI DSS 8.2.8: re-authenticate after at most 15 idle minutes; HIPAA
     * 164.312(a)(2)(iii)): a console tab with no pointer, key, touch or scroll input for this long
     * signs out. At most 15 minutes; the 1 s floor exists for tests, not for operators.
     */
    idle_logoff_ms: z
      .number({ error: IDLE_LOGOFF_HINT })
      .int(IDLE_LOGOFF_HINT)
      .min(1_000, IDLE_LOGOFF_HINT)
      .max(900_000, IDLE_LOGOFF_HINT)
      .default(900_000),
  })
  .strict();

export const configSchema = z
  .object({
    server: z
      .object({
        host: z.string().default('127.0.0.1'),
        port: z.number().int().min(0).max(65535).default(8080),
        /** Plain HTTP is refused off loopback unless this is set (e.g. TLS terminated by a proxy). */
        allow_insecure_http: z.boolean().default(false),
        tls: z.object({ cert_file: z.string().min(1), key_file: z.string().min(1) }).strict().optional(),
        body_limit_bytes: z.number().int().min(1024).max(10 * 1024 * 1024).default(64 * 1024),
        /** Trust X-Forwarded-For from this proxy list (fastify trustProxy), checked as fastify will read it. */
        trust_proxy: trustProxy.default(false),
        /** Longest a graceful shutdown waits for streams before aborting them. */
        shutdown_grace_ms: z.number().int().min(0).max(600_000).default(10_000),
        /**
         * Gateway processes sharing the port (node:cluster): one JS thread is the ceiling of one
         * process, so a 2-core host serves with 2. "auto" = os.availableParallelism(). 1 = no cluster.
         */
        workers: z
          .union([z.literal('auto'), z.number().int(WORKERS_HINT).min(1, WORKERS_HINT).max(MAX_WORKERS, WORKERS_HINT)], { error: WORKERS_HINT })
          .default(1)
          .transform((w) => (w === 'auto' ? Math.min(MAX_WORKERS, availableParallelism()) : w)),
        /**
         * Who hands connections to the workers: the primary in turn ("round_robin", node:cluster's
         * default on Linux), or the kernel ("os": every worker accepts on the shared socket).
         * Measured (docs/BENCHMARKS.md): with V8's own old-generation growth, round robin kept one
         * worker running a full GC every ~150 ms at 200 concurrent streams (4.7 vs 2.5 CPU-s per
         * GiB); with heap_growing_percent at its default the two measure alike. "os" may spread a
         * few connections unevenly.
         */
        worker_scheduling: z.enum(['round_robin', 'os'], { error: 'must be "round_robin" or "os"' }).default('round_robin'),
        /**
         * How far V8 lets the old generation grow past what the last full GC left alive before it
         * starts the next one, in percent (100 = up to twice the live heap); 0 = V8's own choice.
         * Under streaming load V8 chooses ~20 %, and a gateway with ~33 MB live then ran a full
         * mark-compact every ~350 ms (docs/BENCHMARKS.md); with 100: fewer, 10–26 % less CPU per
         * GiB streamed, and a lower peak RSS with 200 slow clients.
         */
        heap_growing_percent: z.number({ error: HEAP_GROWTH_HINT }).int(HEAP_GROWTH_HINT).min(0, HEAP_GROWTH_HINT).max(300, HEAP_GROWTH_HINT).default(100),
      })
      .strict()
      .prefault({}),
    data_dir: z.string().min(1).default('./data'),
    allow_inline_secrets: z.boolean().default(false),
    catalog: z
      .discriminatedUnion('driver', [
        z.object({ driver: z.literal('sqlite'), path: z.string().min(1).optional() }).strict(),
        z
          .object({
            driver: z.literal('postgres'),
            url: secretRef().refine((s) => !(s instanceof Secret) || isPostgresUrl(s), 'must be a postgres:// or postgresql:// URL'),
            pool_size: z.number().int().min(1).max(200).default(10),
            /**
             * Connections kept open however idle. Each holds the catalog's prepared statements
             * (named-statements.ts): a connection closed when idle is a re-prepare (4–7 ms under
             * load) for the first lookup on its replacement, after every quiet spell.
             */
            pool_min: z.number().int().min(0).max(200).default(2),
            /** Connections above pool_min close after this long idle; 0 = never. */
            pool_idle_timeout_ms: z.number().int().min(0).max(86_400_000).default(300_000),
          })
          .strict()
          .refine((c) => c.pool_min <= c.pool_size, { message: 'pool_min must not exceed pool_size', path: ['pool_min'] }),
      ])
      .prefault({ driver: 'sqlite' }),
    auth: z
      .object({
        jwt: jwtConfig.optional(),
        api_keys: z.array(staticApiKey).default([]),
        rate_limit: z
          .object({
            /** Requests per principal per window; 0 turns it off. */
            max: z.number().int().min(0).default(600),
            // At most a day: Node's timers overflow at 2^31 ms, and a longer window is no rate limit.
            window_ms: z.number().int().min(1000).max(86_400_000).default(60_000),
          })
          .strict()
          .prefault({}),
      })
      .strict()
      .prefault({}),
    policy: z
      .object({
        /** Which copy to try first when a recording has copies in both worlds. */
        prefer: z.enum(['cloud', 'legacy']).default('cloud'),
      })
      .strict()
      .prefault({}),
    media: z
      .object({
        ffmpeg_path: z.string().default('ffmpeg'),
        max_concurrent_transcodes: z.number().int().min(1).max(256).default(4),
        max_queued_transcodes: z.number().int().min(0).max(10_000).default(16),
        // At most an hour: Node's timers overflow at 2^31 ms (every transcode would time out at once).
        transcode_timeout_ms: z.number().int().min(1000).max(3_600_000).default(600_000),
      })
      .strict()
      .prefault({}),
    jobs: z
      .object({
        /** Worker loops per instance. */
        concurrency: z.number().int().min(0).max(64).default(2),
        poll_interval_ms: z.number().int().min(10).max(60_000).default(500),
        /** A job whose worker stops heart-beating for this long is taken over by another worker. */
        lease_ms: z.number().int().min(1000).max(600_000).default(30_000),
        heartbeat_ms: z.number().int().min(100).max(300_000).default(5_000),
        max_attempts: z.number().int().min(1).max(100).default(5),
        /** Backoff between attempts: base × 2^(attempt-1), capped at 10 minutes. */
        retry_base_ms: z.number().int().min(10).max(600_000).default(2_000),
        /** How often an archived recording under restore is checked again. */
        restore_poll_ms: z.number().int().min(10).max(86_400_000).default(300_000),
        /** How long a restored recording stays restored at the source. */
        restore_keep_days: z.number().int().min(1).max(365).default(7),
        /** Staged media is purged this long after it became ready. */
        staging_ttl_ms: z.number().int().min(1000).max(30 * 86_400_000).default(86_400_000),
        /** Poll hint sent as Retry-After with a 202. */
        retry_after_s: z.number().int().min(1).max(3600).default(2),
        /**
         * Where staged media lives: `local` is <data_dir>/staging (one instance, or a directory every
         * instance mounts); `s3` is a bucket every instance reads, so any of them serves any job.
         */
        staging: z
          .discriminatedUnion(
            'type',
            [
              z.object({ type: z.literal('local') }).strict(),
              refineS3Credentials(
                z
                  .object({
                    type: z.literal('s3'),
                    ...s3Connection,
                    bucket: s3Connection.bucket.regex(/^[a-z0-9][a-z0-9.-]*[a-z0-9]$/, 'an S3 bucket name: lower-case letters, digits, "." and "-"'),
                    // Staged media and the credentials' signatures go over it: plain http only to loopback (tests, a local gateway).
                    endpoint: s3Connection.endpoint.refine((u) => {
                      // Not a URL at all is z.url()'s complaint; this check only judges URLs.
                      if (u === undefined || !URL.canParse(u)) return true;
                      const url = new URL(u);
                      return url.protocol === 'https:' || (url.protocol === 'http:' && ['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname));
                    }, 'must be https (plain http only on loopback)'),
                    /** Object keys are <prefix><job id>: a lifecycle rule can target the prefix. */
                    prefix: z
                      .string()
                      .max(512)
                      .regex(/^([A-Za-z0-9!_.*'()-]+\/)*$/, 'empty, or path segments of letters, digits and !_.*\'()- each ending with "/" (e.g. custodian/staging/)')
                      .refine((p) => !p.split('/').some((seg) => seg === '.' || seg === '..'), 'no "." or ".." segments')
                      .default('custodian-staging/'),
                    /** Multipart part size; one part per writing job is held in memory. S3 needs at least 5 MiB. */
                    part_size_mib: z.number().int().min(5, 'at least 5 (the S3 minimum part size)').max(512).default(8),
                    /** Server-side encryption of the staged objects (already encrypted by custodian; this is the bucket's own layer). */
                    sse: z
                      .object({
                        mode: z.enum(['AES256', 'aws:kms']),
                        kms_key_id: z.string().min(1).max(2048).optional(),
                      })
                      .strict()
                      .refine((e) => e.kms_key_id === undefined || e.mode === 'aws:kms', { message: 'kms_key_id goes with mode aws:kms', path: ['kms_key_id'] })
                      .optional(),
                  })
                  .strict(),
              ),
            ],
            { error: (iss) => (iss.code === 'invalid_union' ? 'type must be "local" or "s3"' : undefined) },
          )
          .default({ type: 'local' }),
      })
      .strict()
      // A running job renews its lease every heartbeat_ms: a beat at or past the lease lets another
      // loop take the job over mid-fetch. Half the lease leaves room for one late beat (a slow catalog).
      // The console's evidence jobs run under the same two values.
      .superRefine((j, ctx) => {
        if (typeof j.heartbeat_ms === 'number' && typeof j.lease_ms === 'number' && j.heartbeat_ms * 2 > j.lease_ms) {
          ctx.addIssue({
            code: 'custom',
            path: ['heartbeat_ms'],
            message: `must be at most half of jobs.lease_ms (${j.lease_ms}), so a beat can be late once without losing the lease; got ${j.heartbeat_ms}`,
          });
        }
      })
      .prefault({}),
    audit: z
      .object({
        /** A signed checkpoint of the chain head is written after this many events (per instance)… */
        checkpoint_every_events: z.number().int().min(1).max(1_000_000).default(1000),
        /** …or this long after the last one when events have been appended since, and on graceful shutdown. */
        checkpoint_interval_ms: z.number().int().min(100).max(86_400_000).default(60_000),
      })
      .strict()
      .prefault({}),
    keys: keysConfig.prefault({}),
    logging: z
      .object({ level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info') })
      .strict()
      .prefault({}),
    tenants: z.array(tenantConfig).default([]),
    console: consoleConfig.prefault({}),
  })
  .strict()
  .superRefine((c, ctx) => {
    const ids = new Set<string>();
    c.tenants.forEach((t, i) => {
      if (ids.has(t.id)) ctx.addIssue({ code: 'custom', path: ['tenants', i, 'id'], message: `duplicate tenant "${t.id}"` });
      ids.add(t.id);
    });
    // Keys are looked up by id alone (cst_<id>_<secret>): a second key with an id would replace the first, in any tenant.
    const keyIds = new Map<string, number>();
    c.auth.api_keys.forEach((k, i) => {
      const first = keyIds.get(k.id);
      if (first !== undefined) ctx.addIssue({ code: 'custom', path: ['auth', 'api_keys', i, 'id'], message: `duplicate api key id "${k.id}" (also auth.api_keys[${first}]); each key id must be unique` });
      else keyIds.set(k.id, i);
      if (!ids.has(k.tenant)) ctx.addIssue({ code: 'custom', path: ['auth', 'api_keys', i, 'tenant'], message: `unknown tenant "${k.tenant}"` });
      // The message names the expected form, never the value given.
      if (k.key instanceof Secret && API_KEY_ID.test(k.id) && !isKeyOf(k.id, k.key.reveal())) {
        ctx.addIssue({ code: 'custom', path: ['auth', 'api_keys', i, 'key'], message: keyFormatHint(k.id) });
      }
    });
  })
  .superRefine((c, ctx) => {
    // The console's tokens go to the API as JWTs: they must come from the issuer auth.jwt trusts.
    const oidc = c.console.oidc;
    if (!oidc) return;
    if (!c.auth.jwt) ctx.addIssue({ code: 'custom', path: ['console', 'oidc', 'issuer'], message: 'needs auth.jwt (the gateway verifies the access tokens the console gets)' });
    else if (oidc.issuer.replace(/\/$/, '') !== c.auth.jwt.issuer.replace(/\/$/, '')) {
      ctx.addIssue({ code: 'custom', path: ['console', 'oidc', 'issuer'], message: `must be the issuer auth.jwt trusts ("${c.auth.jwt.issuer}")` });
    }
  });

export type Config = z.infer<typeof configSchema>;
export type TenantConfig = Config['tenants'][number];
export type JwtConfig = z.infer<typeof jwtConfig>;
export type ConsoleOidcConfig = NonNullable<Config['console']['oidc']>;
export type KmsConfig = NonNullable<z.infer<typeof keysConfig>['aws_kms']>;
