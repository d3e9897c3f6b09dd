import { configSchema } from '../../src/config/schema.js';
import { withSecretContext } from '../../src/config/secret.js';
import type { S3StagingConfig } from '../../src/jobs/s3-staging.js';
import type { S3Simulator } from '../../src/sources/s3/simulator.js';

/**
 * The `jobs.staging` block of S3 staging in `bucket`, as an operator writes it, through the real
 * config schema: what `S3Staging` is built from, defaults and secret handling included (a block
 * typed by hand would skip both). `store` is the simulator, a proxy in front of it, or a fake
 * endpoint with any credentials; `fields` override the block (another prefix, part size…).
 */
export function s3StagingConfig(store: Pick<S3Simulator, 'endpoint' | 'accessKeyId' | 'secretAccessKey'>, bucket: string, fields: Record<string, unknown> = {}): S3StagingConfig {
  const staging = {
    type: 's3',
    bucket,
    prefix: 'custodian/staging/',
    endpoint: store.endpoint,
    force_path_style: true,
    access_key_id: store.accessKeyId,
    secret_access_key: store.secretAccessKey,
    part_size_mib: 5,
    ...fields,
  };
  const doc = { allow_inline_secrets: true, jobs: { staging } };
  return withSecretContext({ env: {}, allowInline: true }, () => configSchema.parse(doc)).jobs.staging as S3StagingConfig;
}
