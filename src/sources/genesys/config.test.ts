import { describe, expect, it } from 'vitest';
import { Secret, withSecretContext } from '../../config/secret.js';
import { GENESYS_ENVIRONMENTS, genesysBaseUrls, genesysSourceConfig } from './config.js';

const base = { name: 'gc', type: 'genesys', environment: 'mypurecloud.ie', client_id: 'abc', client_secret: 'env:GC_SECRET' };
const parse = (v: Record<string, unknown>) => withSecretContext({ env: { GC_SECRET: 's3cr3t' }, allowInline: false }, () => genesysSourceConfig.safeParse(v));

describe('genesys source config', () => {
  it('fills defaults and derives the regional hosts', () => {
    const r = parse(base);
    expect(r.success).toBe(true);
    if (!r.success) return;
    expect(r.data).toMatchObject({ default_format: 'WAV', max_resumes: 5, timeout_ms: 30_000, transcode_poll: { initial_ms: 500, max_ms: 5_000, budget_ms: 30_000 } });
    expect(r.data.client_secret).toBeInstanceOf(Secret);
    expect(String(r.data.client_secret)).toBe('[secret]');
    expect(JSON.stringify(r.data)).not.toContain('s3cr3t');
    expect(genesysBaseUrls(r.data)).toEqual({ login: 'https://login.mypurecloud.ie', api: 'https://api.mypurecloud.ie' });
    expect(GENESYS_ENVIRONMENTS).toContain('use2.us-gov-pure.cloud');
  });

  it('refuses an unknown environment unless both base URLs are given', () => {
    const bad = parse({ ...base, environment: 'api.example.com' });
    expect(bad.success).toBe(false);
    expect(bad.error?.issues[0]?.path).toEqual(['environment']);
    expect(parse({ ...base, environment: 'proxy', login_base_url: 'https://login.proxy.example' }).success).toBe(false);
    const ok = parse({ ...base, environment: 'proxy', login_base_url: 'https://gw.example/login/', api_base_url: 'https://gw.example/api' });
    expect(ok.success).toBe(true);
    if (ok.success) expect(genesysBaseUrls(ok.data)).toEqual({ login: 'https://gw.example/login', api: 'https://gw.example/api' });
  });

  it('request_budget: off by default, bounded, strict, errors name the field', () => {
    const r = parse(base);
    expect(r.success && r.data.request_budget).toEqual({ max: 0, window_ms: 60_000 });
    expect(parse({ ...base, request_budget: { max: 280 } }).success).toBe(true);
    for (const [budget, field] of [
      [{ max: -1 }, 'max'],
      [{ max: 1.5 }, 'max'],
      [{ window_ms: 10 }, 'window_ms'],
      [{ per_minute: 300 }, undefined],
    ] as const) {
      const bad = parse({ ...base, request_budget: budget });
      expect(bad.success).toBe(false);
      expect(bad.error?.issues[0]?.path).toEqual(field ? ['request_budget', field] : ['request_budget']);
    }
  });

  it('allows plain http only to loopback', () => {
    expect(parse({ ...base, login_base_url: 'http://127.0.0.1:9000', api_base_url: 'http://localhost:9001' }).success).toBe(true);
    expect(parse({ ...base, login_base_url: 'http://login.example', api_base_url: 'https://api.example' }).success).toBe(false);
  });

  it('is strict and checks formats, polling and the secret reference', () => {
    expect(parse({ ...base, region: 'eu' }).success).toBe(false);
    expect(parse({ ...base, default_format: 'FLAC' }).success).toBe(false);
    expect(parse({ ...base, default_format: 'OGG_OPUS' }).success).toBe(true);
    expect(parse({ ...base, transcode_poll: { initial_ms: 5_000, max_ms: 100 } }).success).toBe(false);
    expect(parse({ ...base, client_secret: 'inline-secret' }).success).toBe(false);
    expect(parse({ ...base, max_resumes: -1 }).success).toBe(false);
  });
});
