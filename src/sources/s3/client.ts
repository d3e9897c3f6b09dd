import type { S3Client } from '@aws-sdk/client-s3';
import type { Secret } from '../../config/secret.js';
import { AppError } from '../../errors.js';

/** The S3 SDK module (types only here: the module itself is loaded by loadS3). */
export type S3Sdk = typeof import('@aws-sdk/client-s3');

let s3Module: Promise<S3Sdk> | undefined;

/**
 * The SDK is imported only by what uses S3, not by every process at start: it costs several MiB
 * and start-up time, and a deployment with no S3 source and no S3 staging never needs it.
 */
export function loadS3(): Promise<S3Sdk> {
  return (s3Module ??= import('@aws-sdk/client-s3'));
}

/**
 * Starts loading in the background, for an adapter built because the config uses S3: the first
 * request then does not wait for the load (~0.1–0.2 s). A failure is met again at first use.
 */
export function preloadS3(): void {
  loadS3().catch(() => {});
}

/** A client with the SDK module it came from (commands must be built from the same module). */
export interface S3Handle {
  sdk: S3Sdk;
  client: S3Client;
}

/** The connection fields an S3 source and the S3 staging store share (config.ts `s3Connection`). */
export interface S3ConnectionConfig {
  region: string;
  endpoint?: string | undefined;
  force_path_style: boolean;
  access_key_id?: Secret | undefined;
  secret_access_key?: Secret | undefined;
  session_token?: Secret | undefined;
  /**
   * A source's choice (config.ts): `false` means this client never falls back on the SDK's default
   * chain (the deployment's own AWS identity). Absent (staging: the deployment's own store), it may.
   */
  use_default_credentials?: boolean | 'any_endpoint' | undefined;
}

export interface S3ClientOptions {
  maxSockets?: number;
  /** Bound on establishing the TCP/TLS connection. */
  connectionTimeoutMs?: number;
  /**
   * Request-to-response-headers time. The installed @smithy/node-http-handler only logs a warning
   * when it is exceeded (unless `throwOnRequestTimeout` is set), so it does not end a stalled call.
   */
  requestTimeoutMs?: number;
  /**
   * Socket idle time: a request whose connection carries no byte for this long fails with a
   * TimeoutError (retried by the SDK like any timeout). This is what ends a call to an endpoint
   * that accepts the connection and never answers, or stops sending a body.
   */
  socketTimeoutMs?: number;
}

/**
 * One way to build an S3 client from config, for the S3 connector, S3 staging and the legacy-sync
 * lister. Each caller builds its own from its own config (credentials never cross sources) and
 * destroys it when done (`destroyLazy`), which closes its keep-alive sockets.
 */
export async function s3Client(cfg: S3ConnectionConfig, opts: S3ClientOptions = {}): Promise<S3Handle> {
  const s3 = await loadS3();
  const { access_key_id: id, secret_access_key: secret, session_token: token } = cfg;
  if (!(id && secret) && cfg.use_default_credentials === false) {
    throw new AppError('source.auth_failed', 'this source has no credentials of its own and is not allowed the default chain (use_default_credentials)');
  }
  const agent = { keepAlive: true, maxSockets: opts.maxSockets ?? 50 };
  const client = new s3.S3Client({
    region: cfg.region,
    ...(cfg.endpoint ? { endpoint: cfg.endpoint } : {}),
    forcePathStyle: cfg.force_path_style,
    // A provider rather than plain strings keeps the secret out of the client's config object.
    ...(id && secret
      ? { credentials: async () => ({ accessKeyId: id.reveal(), secretAccessKey: secret.reveal(), ...(token ? { sessionToken: token.reveal() } : {}) }) }
      : {}),
    // Without these the SDK's checksum framing ends up inside objects on some S3-compatible stores (s3rver).
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    requestHandler: {
      httpAgent: agent,
      httpsAgent: agent,
      ...(opts.connectionTimeoutMs ? { connectionTimeout: opts.connectionTimeoutMs } : {}),
      ...(opts.requestTimeoutMs ? { requestTimeout: opts.requestTimeoutMs } : {}),
      ...(opts.socketTimeoutMs ? { socketTimeout: opts.socketTimeoutMs } : {}),
    },
  });
  return { sdk: s3, client };
}

/** Destroys a client made lazily, if it was made; nothing to do when the first use never came. */
export async function destroyLazy(handle: Promise<S3Handle> | undefined): Promise<void> {
  const h = await handle?.catch(() => undefined);
  h?.client.destroy();
}
