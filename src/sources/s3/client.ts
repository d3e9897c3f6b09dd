import { S3Client } from '@aws-sdk/client-s3';
import type { Secret } from '../../config/secret.js';

/** The connection fields an S3 source and the S3 staging store share (config.ts `s3Connection`). */
export interface S3ConnectionConfig {
  region: string;
  endpoint?: string | undefined;
  force_path_style: boolean;
  access_key_id?: Secret | undefined;
  secret_access_key?: Secret | undefined;
  session_token?: Secret | undefined;
}

export interface S3ClientOptions {
  maxSockets?: number;
  connectionTimeoutMs?: number;
  requestTimeoutMs?: number;
}

/** One way to build an S3 client from config, for the S3 connector and S3 staging. */
export function s3Client(cfg: S3ConnectionConfig, opts: S3ClientOptions = {}): S3Client {
  const { access_key_id: id, secret_access_key: secret, session_token: token } = cfg;
  const agent = { keepAlive: true, maxSockets: opts.maxSockets ?? 50 };
  return new S3Client({
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
    },
  });
}
