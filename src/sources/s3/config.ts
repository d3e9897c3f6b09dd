import { z } from 'zod';
import { secretRef } from '../../config/secret.js';
import { sourceCommon } from '../common-config.js';

/**
 * The fields that say how to reach a bucket, shared by every S3 block (the s3 source, S3 staging
 * in `jobs.staging`), with the checks that go with them.
 */
export const s3Connection = {
  bucket: z.string().min(3).max(63),
  region: z.string().min(1).default('us-east-1'),
  /** S3-compatible endpoint (MinIO, Ceph, s3rver); omit for AWS. */
  endpoint: z.url().optional(),
  force_path_style: z.boolean().default(false),
  access_key_id: secretRef().optional(),
  secret_access_key: secretRef().optional(),
  session_token: secretRef().optional(),
};

type S3Credentials = { access_key_id?: unknown; secret_access_key?: unknown; session_token?: unknown };

/** Static credentials are all or nothing (else the SDK's default chain applies). */
export function refineS3Credentials<T extends z.ZodType<S3Credentials>>(schema: T) {
  return schema
    .refine((c) => (c.access_key_id === undefined) === (c.secret_access_key === undefined), {
      message: 'access_key_id and secret_access_key go together',
      path: ['secret_access_key'],
    })
    .refine((c) => c.session_token === undefined || c.access_key_id !== undefined, {
      message: 'session_token needs access_key_id and secret_access_key',
      path: ['session_token'],
    });
}

const s3SourceFields = sourceCommon.extend({
  type: z.literal('s3'),
  bucket: s3Connection.bucket,
  region: s3Connection.region,
  endpoint: s3Connection.endpoint,
  force_path_style: s3Connection.force_path_style,
  /**
   * Key prefix inside the bucket, prepended to every locator: empty or ending with "/", so a
   * locator cannot reach a sibling prefix ('acme' + '-eu/x.wav' was the key 'acme-eu/x.wav').
   */
  prefix: z
    .string()
    .refine((p) => p === '' || p.endsWith('/'), 'empty, or ending with "/" (e.g. acme/): the object key is prefix + locator')
    .default(''),
  path_template: z.string().min(1).default('{legacy_archive_id}'),
  access_key_id: s3Connection.access_key_id,
  secret_access_key: s3Connection.secret_access_key,
  session_token: s3Connection.session_token,
  /**
   * Without keys of its own, a source would read with the SDK's default chain: the deployment's own
   * AWS identity (environment, instance or task role — the one staging and KMS may run on). That is
   * an explicit choice: `true` for AWS S3; `any_endpoint` also sends that identity's signatures to
   * a non-AWS `endpoint` (whoever runs it sees them).
   */
  use_default_credentials: z.union([z.boolean(), z.literal('any_endpoint')]).default(false),
  /**
   * Retrieval tier of a restore from an archive storage class (S3 Glacier Flexible Retrieval or
   * Deep Archive; docs/CONFIG.md): Standard (hours), Bulk (cheaper, up to a day or two),
   * Expedited (minutes; Flexible Retrieval only, and may be refused when capacity is short).
   */
  /**
   * Longest silence inside a body: a read whose connection carries no byte for this long fails
   * (timeout_ms bounds only the time to the first byte). Without it a store that stops mid-body
   * held the client's response — or a 202 job's staging — open for ever.
   */
  idle_timeout_ms: z.number().int().min(100).max(3_600_000).default(60_000),
  restore_tier: z.enum(['Standard', 'Bulk', 'Expedited']).default('Standard'),
  /**
   * Server-side encryption of the archive. SSE-S3 and SSE-KMS need nothing on read;
   * SSE-C needs the customer key on every GET, so it is given here (by reference).
   */
  sse: z
    .object({
      mode: z.enum(['none', 'AES256', 'aws:kms', 'sse-c']).default('none'),
      kms_key_id: z.string().optional(),
      /** Base64 of the 256-bit customer key. */
      customer_key: secretRef().optional(),
    })
    .strict()
    .refine((s) => s.mode !== 'sse-c' || s.customer_key !== undefined, {
      message: 'sse.customer_key is required when sse.mode is sse-c',
      path: ['customer_key'],
    })
    // The SDK silently treats anything but base64 of 32 bytes as raw UTF-8 key material; refuse the ambiguity.
    .refine((s) => s.customer_key === undefined || isBase64Key256(s.customer_key.reveal()), {
      message: 'sse.customer_key must be the base64 encoding of a 256-bit key',
      path: ['customer_key'],
    })
    .default({ mode: 'none' }),
});

export const s3SourceConfig = refineS3Credentials(s3SourceFields)
  // The deployment's own AWS identity is never a tenant source's by default (credentials of one
  // source, or of the deployment, are not sent to another).
  .refine((c) => c.access_key_id !== undefined || c.use_default_credentials !== false, {
    message: "needs access_key_id and secret_access_key, or use_default_credentials: true to read with the deployment's own AWS identity",
    path: ['access_key_id'],
    // Said once the block is otherwise valid: a block with a bad field is reported for that field alone.
    when: (payload) => payload.issues.length === 0,
  })
  .refine((c) => c.access_key_id === undefined || c.use_default_credentials === false, {
    message: 'use_default_credentials and access_key_id exclude each other',
    path: ['use_default_credentials'],
  })
  .refine((c) => c.use_default_credentials !== true || c.endpoint === undefined || isAwsEndpoint(c.endpoint), {
    message: "sends the deployment's own AWS identity to a non-AWS endpoint: give this source its own keys, or use_default_credentials: any_endpoint",
    path: ['use_default_credentials'],
  });

/** An endpoint of AWS S3 itself (a regional, FIPS, dual-stack or China host). */
export function isAwsEndpoint(endpoint: string): boolean {
  if (!URL.canParse(endpoint)) return false;
  const host = new URL(endpoint).hostname.toLowerCase();
  return host.endsWith('.amazonaws.com') || host.endsWith('.amazonaws.com.cn');
}

function isBase64Key256(v: string): boolean {
  return /^[A-Za-z0-9+/]{43}=$/.test(v) && Buffer.from(v, 'base64').length === 32;
}

export type S3SourceConfig = z.infer<typeof s3SourceConfig>;
