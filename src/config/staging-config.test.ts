import { describe, expect, it } from 'vitest';
import { ConfigError, type ConfigEnv, parseConfig } from './load.js';
import { Secret } from './secret.js';

/** The issues a `jobs.staging` block gives, or a failure when it loads. */
function issues(staging: unknown, env: ConfigEnv = {}): string[] {
  try {
    parseConfig({ jobs: { staging } }, env);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as ConfigError).issues;
  }
  throw new Error('the configuration was accepted');
}

const S3 = { type: 's3', bucket: 'acme-staging' };

describe('jobs.staging', () => {
  it('defaults to local staging (<data_dir>/staging)', () => {
    expect(parseConfig({}, {}).jobs.staging).toEqual({ type: 'local' });
    expect(parseConfig({ jobs: { staging: { type: 'local' } } }, {}).jobs.staging).toEqual({ type: 'local' });
  });

  it('s3: a full block', () => {
    const s = parseConfig(
      {
        jobs: {
          staging: {
            ...S3,
            region: 'eu-west-1',
            prefix: 'custodian/prod/staging/',
            part_size_mib: 16,
            access_key_id: 'env:STAGE_KEY',
            secret_access_key: 'env:STAGE_SECRET',
            sse: { mode: 'aws:kms', kms_key_id: 'alias/custodian-staging' },
          },
        },
      },
      { STAGE_KEY: 'AKIA', STAGE_SECRET: 'shh' },
    ).jobs.staging;
    expect(s).toMatchObject({ type: 's3', bucket: 'acme-staging', region: 'eu-west-1', prefix: 'custodian/prod/staging/', part_size_mib: 16, force_path_style: false, sse: { mode: 'aws:kms', kms_key_id: 'alias/custodian-staging' } });
    if (s.type !== 's3') throw new Error('not s3');
    expect(s.access_key_id).toBeInstanceOf(Secret);
    expect(s.secret_access_key?.reveal()).toBe('shh');
    expect(JSON.stringify(s)).not.toContain('shh');
  });

  it('s3: minimal block gets the defaults', () => {
    expect(parseConfig({ jobs: { staging: S3 } }, {}).jobs.staging).toEqual({ ...S3, region: 'us-east-1', force_path_style: false, prefix: 'custodian-staging/', part_size_mib: 8 });
  });

  it('plain http endpoints only on loopback', () => {
    for (const endpoint of ['http://127.0.0.1:9000', 'http://localhost:9000', 'http://[::1]:9000', 'https://minio.internal:9000']) {
      expect(parseConfig({ jobs: { staging: { ...S3, endpoint, force_path_style: true } } }, {}).jobs.staging).toMatchObject({ endpoint });
    }
    expect(issues({ ...S3, endpoint: 'http://minio.internal:9000' })).toEqual(['jobs.staging.endpoint: must be https (plain http only on loopback)']);
    expect(issues({ ...S3, endpoint: 'not a url' })).toEqual(['jobs.staging.endpoint: Invalid URL']);
  });

  it('names the field of every bad input', () => {
    const cases: [unknown, string][] = [
      [{ type: 'nfs' }, 'jobs.staging.type: type must be "local" or "s3"'],
      ['s3', 'jobs.staging: Invalid input: expected object, received string'],
      [{ type: 'local', bucket: 'x' }, 'jobs.staging: Unrecognized key: "bucket"'],
      [{ type: 's3' }, 'jobs.staging.bucket: '],
      [{ ...S3, bucket: 'ab' }, 'jobs.staging.bucket: '],
      [{ ...S3, bucket: 'Acme_Staging' }, 'jobs.staging.bucket: an S3 bucket name'],
      [{ ...S3, region: '' }, 'jobs.staging.region: '],
      [{ ...S3, force_path_style: 'yes' }, 'jobs.staging.force_path_style: '],
      [{ ...S3, prefix: '/abs/' }, 'jobs.staging.prefix: empty, or path segments'],
      [{ ...S3, prefix: 'staging' }, 'jobs.staging.prefix: empty, or path segments'],
      [{ ...S3, prefix: 'a//' }, 'jobs.staging.prefix: empty, or path segments'],
      [{ ...S3, prefix: 'a/../' }, 'jobs.staging.prefix: no "." or ".." segments'],
      [{ ...S3, part_size_mib: 4 }, 'jobs.staging.part_size_mib: at least 5 (the S3 minimum part size)'],
      [{ ...S3, part_size_mib: 8.5 }, 'jobs.staging.part_size_mib: '],
      [{ ...S3, part_size_mib: 1024 }, 'jobs.staging.part_size_mib: '],
      [{ ...S3, access_key_id: 'env:K' }, 'jobs.staging.secret_access_key: access_key_id and secret_access_key go together'],
      [{ ...S3, access_key_id: 'env:NOPE', secret_access_key: 'env:S' }, 'jobs.staging.access_key_id: environment variable NOPE is not set'],
      [{ ...S3, access_key_id: 'AKIAINLINE', secret_access_key: 'env:S' }, 'jobs.staging.access_key_id: inline secrets are not allowed'],
      [{ ...S3, session_token: 'env:S' }, 'jobs.staging.session_token: session_token needs access_key_id and secret_access_key'],
      [{ ...S3, sse: { mode: 'sse-c' } }, 'jobs.staging.sse.mode: '],
      [{ ...S3, sse: {} }, 'jobs.staging.sse.mode: '],
      [{ ...S3, sse: { mode: 'AES256', kms_key_id: 'k' } }, 'jobs.staging.sse.kms_key_id: kms_key_id goes with mode aws:kms'],
      [{ ...S3, sse: { mode: 'AES256', extra: 1 } }, 'jobs.staging.sse: Unrecognized key: "extra"'],
      [{ ...S3, extra: 1 }, 'jobs.staging: Unrecognized key: "extra"'],
    ];
    for (const [block, want] of cases) {
      const got = issues(block, { K: 'k', S: 's' });
      expect(got, JSON.stringify(block)).toHaveLength(1);
      expect(got[0], JSON.stringify(block)).toContain(want);
    }
  });
});
