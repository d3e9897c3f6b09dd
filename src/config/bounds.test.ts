import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from './load.js';

/** The ConfigError a document gives, or a failure when it loads. */
function configError(doc: unknown): ConfigError {
  try {
    parseConfig(doc, {});
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return e as ConfigError;
  }
  throw new Error('the configuration was accepted');
}

// Node's timers take at most 2^31 - 1 ms: a longer delay fires at once (a transcode timeout that
// cuts every transcode, a rate-limit window that never lets a request through twice… or forever).
const TIMER_MAX = 2_147_483_647;
const KMS = { region: 'eu-west-1', data_key_id: 'alias/data', signing_key_id: 'alias/sign' };
const JWT = { issuer: 'https://idp.example.com/', audience: 'custodian' };

describe('config bounds: timers, URLs, blocks that would be ignored', () => {
  it.each([
    ['media.transcode_timeout_ms', { media: { transcode_timeout_ms: 2 ** 31 } }],
    ['media.transcode_timeout_ms', { media: { transcode_timeout_ms: 3_600_001 } }],
    ['auth.rate_limit.window_ms', { auth: { rate_limit: { window_ms: 30 * 86_400_000 } } }],
    ['auth.rate_limit.window_ms', { auth: { rate_limit: { window_ms: 86_400_001 } } }],
  ])('refuses %s beyond its ceiling', (field, doc) => {
    const e = configError(doc);
    expect(e.issues).toHaveLength(1);
    expect(e.issues[0]).toMatch(new RegExp(`^${field.replaceAll('.', '\\.')}: `));
  });

  it('accepts the ceilings themselves (1 h transcode, 24 h window)', () => {
    const c = parseConfig({ media: { transcode_timeout_ms: 3_600_000 }, auth: { rate_limit: { window_ms: 86_400_000 } } }, {});
    expect(c.media.transcode_timeout_ms).toBe(3_600_000);
    expect(c.auth.rate_limit.window_ms).toBe(86_400_000);
  });

  it('every *_ms field of the schema (defaults filled in) is below the timer limit at its maximum', () => {
    // A value one past the timer limit in every *_ms field given: each is refused naming it.
    const doc = {
      server: { shutdown_grace_ms: TIMER_MAX + 1 },
      catalog: { driver: 'sqlite' },
      auth: { rate_limit: { window_ms: TIMER_MAX + 1 } },
      media: { transcode_timeout_ms: TIMER_MAX + 1 },
      jobs: { poll_interval_ms: TIMER_MAX + 1, lease_ms: TIMER_MAX + 1, heartbeat_ms: TIMER_MAX + 1, retry_base_ms: TIMER_MAX + 1, restore_poll_ms: TIMER_MAX + 1 },
      audit: { checkpoint_interval_ms: TIMER_MAX + 1 },
      keys: { provider: 'aws_kms', aws_kms: { ...KMS, check_cache_ms: TIMER_MAX + 1 } },
      console: { idle_logoff_ms: TIMER_MAX + 1 },
    };
    // (jobs.staging_ttl_ms may be 30 days: it only dates staged files, and its sweeps run every min(ttl, 1 min).)
    const fields = configError(doc).issues.map((i) => i.split(':')[0]);
    for (const f of ['server.shutdown_grace_ms', 'auth.rate_limit.window_ms', 'media.transcode_timeout_ms', 'jobs.poll_interval_ms', 'jobs.lease_ms', 'jobs.heartbeat_ms', 'jobs.retry_base_ms', 'jobs.restore_poll_ms', 'audit.checkpoint_interval_ms', 'keys.aws_kms.check_cache_ms', 'console.idle_logoff_ms']) {
      expect(fields).toContain(f);
    }
  });

  it('refuses keys.aws_kms with provider local (it would be ignored)', () => {
    const e = configError({ keys: { aws_kms: KMS } });
    expect(e.issues).toEqual([expect.stringMatching(/^keys\.aws_kms: .*provider/)]);
    const explicit = configError({ keys: { provider: 'local', aws_kms: KMS } });
    expect(explicit.issues).toEqual([expect.stringMatching(/^keys\.aws_kms: /)]);
  });

  it.each(['http://kms.example.com', 'ftp://kms.example.com', 'file:///etc/passwd'])('refuses keys.aws_kms.endpoint %s (https, plain http only on loopback)', (endpoint) => {
    const e = configError({ keys: { provider: 'aws_kms', aws_kms: { ...KMS, endpoint } } });
    expect(e.issues).toEqual([expect.stringMatching(/^keys\.aws_kms\.endpoint: /)]);
  });

  it.each(['http://idp.example.com/jwks', 'ftp://idp.example.com/jwks', 'file:///etc/jwks.json'])('refuses auth.jwt.jwks_url %s (https, plain http only on loopback)', (jwks_url) => {
    const e = configError({ auth: { jwt: { ...JWT, jwks_url } } });
    expect(e.issues).toEqual([expect.stringMatching(/^auth\.jwt\.jwks_url: /)]);
  });

  it('accepts https anywhere and http on loopback for both URLs', () => {
    for (const u of ['https://kms.eu-west-1.amazonaws.com', 'http://127.0.0.1:4566', 'http://localhost:4566', 'http://[::1]:4566']) {
      expect(parseConfig({ keys: { provider: 'aws_kms', aws_kms: { ...KMS, endpoint: u } } }, {}).keys.aws_kms!.endpoint).toBe(u);
      expect(parseConfig({ auth: { jwt: { ...JWT, jwks_url: u } } }, {}).auth.jwt!.jwks_url).toBe(u);
    }
  });

  it.each(['mysql://db.example.com/custodian', 'http://db.example.com/custodian', 'postgres://u:p@[bad/db', 'not a url'])('refuses catalog.url %s without printing it', (url) => {
    const e = (() => {
      try {
        parseConfig({ allow_inline_secrets: true, catalog: { driver: 'postgres', url } }, {});
      } catch (err) {
        return err as ConfigError;
      }
      throw new Error('accepted');
    })();
    expect(e).toBeInstanceOf(ConfigError);
    expect(e.issues).toEqual([expect.stringMatching(/^catalog\.url: /)]);
    expect(e.message).not.toContain(url);
  });

  it('accepts postgres: and postgresql: catalog URLs', () => {
    for (const url of ['postgres://u:p@db.example.com:5432/custodian?sslmode=require', 'postgresql://db.example.com/custodian', 'postgres://%2Fvar%2Frun%2Fpostgresql/custodian']) {
      const c = parseConfig({ allow_inline_secrets: true, catalog: { driver: 'postgres', url } }, {});
      expect(c.catalog.driver === 'postgres' && c.catalog.url.reveal()).toBe(url);
    }
  });
});
