import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { Secret, withSecretContext } from '../../config/secret.js';
import { filesystemSourceConfig } from '../filesystem/config.js';
import {
  AVAYA_DEFAULTS,
  GENERIC_DEFAULTS,
  MEDIASENSE_DEFAULTS,
  avayaProfile,
  genericProfile,
  legacyConnectorBlock,
  legacyHttpSourceConfig,
  mediaSenseProfile,
  normaliseLegacyBlock,
} from './config.js';

const env = { LEGACY_PW: 's3cr3t-pw', LEGACY_TOKEN: 't0ken' };
const parse = (v: unknown) => withSecretContext({ env, allowInline: false }, () => legacyHttpSourceConfig.safeParse(v));
const issues = (v: unknown) => {
  const r = parse(v);
  expect(r.success).toBe(false);
  return (r.error?.issues ?? []).map((i) => ({ path: i.path.join('.'), message: i.message }));
};

const avaya = {
  name: 'avaya',
  type: 'legacy-http',
  provider: 'avaya_aura',
  api_endpoint: 'https://legacy-pbx.internal/api/v1/recording',
  auth_type: 'basic',
  username: 'svc_rec_retrieval',
  password: 'env:LEGACY_PW',
};
const mediasense = { ...avaya, name: 'ms', provider: 'cisco_mediasense', api_endpoint: 'https://mediasense.internal:8440', auth_type: 'session' };

/** The original brief's block, verbatim. */
const BRIEF_BLOCK = JSON.parse(`{
  "legacy_connector": {
    "provider": "avaya_aura",
    "api_endpoint": "https://legacy-pbx.internal/api/v1/recording",
    "auth_type": "basic",
    "username": "svc_rec_retrieval",
    "timeout_ms": 30000,
    "max_retries": 3
  }
}`) as Record<string, unknown>;

describe('legacy-http source config', () => {
  it('fills defaults; the profile resolves to the provider defaults', () => {
    const r = parse(avaya);
    expect(r.success).toBe(true);
    if (!r.success) return;
    expect(r.data).toMatchObject({
      timeout_ms: 30_000,
      max_retries: 3,
      backoff: { initial_ms: 200, max_ms: 5_000 },
      circuit_breaker: { failures: 5, half_open_after_ms: 30_000 },
      allow_insecure_http: false,
      profile: {},
      source_systems: [],
      mode: 'auto',
    });
    expect(r.data.password).toBeInstanceOf(Secret);
    expect(JSON.stringify(r.data)).not.toContain('s3cr3t-pw');
    expect(avayaProfile(r.data)).toEqual(AVAYA_DEFAULTS);
    expect(genericProfile({ ...r.data, provider: 'generic_http' })).toEqual(GENERIC_DEFAULTS);
    const ms = parse({ ...mediasense, profile: { allow_download_origins: ['https://mediasense.internal:8446'], track: 1 } });
    expect(ms.success).toBe(true);
    if (ms.success) {
      expect(mediaSenseProfile(ms.data)).toEqual({ ...MEDIASENSE_DEFAULTS, allow_download_origins: ['https://mediasense.internal:8446'], track: 1 });
      expect(MEDIASENSE_DEFAULTS.sign_in_path).toBe('/ora/authenticationService/authentication/signIn');
    }
  });

  it("profile.track takes 'all', 'first' or a track number, nothing else, and names the field", () => {
    for (const track of ['all', 'first', 0, 3]) expect(parse({ ...mediasense, profile: { track } }).success, String(track)).toBe(true);
    for (const track of ['both', '', -1, 1.5, null]) {
      const r = parse({ ...mediasense, profile: { track } });
      expect(r.success, String(track)).toBe(false);
      if (!r.success) expect(r.error.issues.map((i) => i.path.join('.'))).toContain('profile.track');
    }
  });

  it('each auth_type names the field it misses', () => {
    expect(issues({ ...avaya, password: undefined })).toEqual([{ path: 'password', message: 'password is required when auth_type is basic' }]);
    expect(issues({ ...avaya, username: undefined })).toEqual([{ path: 'username', message: 'username is required when auth_type is basic' }]);
    expect(issues({ ...avaya, auth_type: 'bearer', password: undefined })).toEqual([{ path: 'token', message: 'token is required when auth_type is bearer' }]);
    expect(issues({ ...avaya, auth_type: 'header', token: 'env:LEGACY_TOKEN' }).map((i) => i.path)).toEqual(['header_name']);
    expect(issues({ ...avaya, auth_type: 'header', header_name: 'X-Api-Key' }).map((i) => i.path)).toEqual(['token']);
    expect(issues({ ...avaya, auth_type: 'session' }).map((i) => i.path)).toEqual(['auth_type']);
    expect(issues({ ...mediasense, auth_type: 'basic' }).map((i) => i.path)).toEqual(['auth_type']);
    expect(issues({ ...mediasense, password: undefined }).map((i) => i.path)).toEqual(['password']);
    expect(issues({ ...avaya, header_name: 'X-Api-Key' }).map((i) => i.path)).toEqual(['header_name']);
    expect(issues({ ...avaya, auth_type: 'header', header_name: 'Cookie', token: 'env:LEGACY_TOKEN' }).map((i) => i.path)).toEqual(['header_name']);
    expect(parse({ ...avaya, auth_type: 'none', username: undefined, password: undefined }).success).toBe(true);
    expect(parse({ ...avaya, auth_type: 'bearer', token: 'env:LEGACY_TOKEN' }).success).toBe(true);
  });

  it('secrets are references: inline values and unset variables are refused, naming the field', () => {
    expect(issues({ ...avaya, password: 'inline-password' }).map((i) => i.path)).toEqual(['password']);
    expect(issues({ ...avaya, password: 'env:NOPE' })).toEqual([{ path: 'password', message: 'environment variable NOPE is not set' }]);
  });

  it('the endpoint: https (http only on loopback or with allow_insecure_http), no userinfo, no query', () => {
    expect(issues({ ...avaya, api_endpoint: 'http://legacy-pbx.internal/api' }).map((i) => i.path)).toEqual(['api_endpoint']);
    expect(parse({ ...avaya, api_endpoint: 'http://legacy-pbx.internal/api', allow_insecure_http: true }).success).toBe(true);
    expect(parse({ ...avaya, api_endpoint: 'http://127.0.0.1:8080/api' }).success).toBe(true);
    expect(issues({ ...avaya, api_endpoint: 'https://u:p@legacy-pbx.internal/api' }).map((i) => i.path)).toEqual(['api_endpoint']);
    expect(issues({ ...avaya, api_endpoint: 'https://legacy-pbx.internal/api?x=1' }).map((i) => i.path)).toEqual(['api_endpoint']);
    expect(issues({ ...avaya, api_endpoint: 'ftp://legacy-pbx.internal/' }).map((i) => i.path)).toEqual(['api_endpoint']);
  });

  it('profile: only the provider’s fields, templates that stay on api_endpoint, known placeholders', () => {
    expect(issues({ ...avaya, profile: { media_url_template: '{api_endpoint}/x/{legacy_archive_id}' } }).map((i) => i.path)).toEqual(['profile.media_url_template']);
    expect(issues({ ...avaya, profile: { replay_path: 'https://elsewhere.example/replay?inum={inum}' } }).map((i) => i.path)).toEqual(['profile.replay_path']);
    expect(issues({ ...avaya, profile: { replay_path: '{api_endpoint}.evil.example/replay' } }).map((i) => i.path)).toEqual(['profile.replay_path']);
    expect(issues({ ...avaya, profile: { replay_path: '/replay?inum={ucid}' } })[0]?.message).toMatch(/unknown placeholder \{ucid\}/);
    expect(issues({ ...avaya, profile: { segment_element: 'a b' } }).map((i) => i.path)).toEqual(['profile.segment_element']);
    expect(issues({ ...avaya, profile: { bogus: 1 } }).map((i) => i.path)).toEqual(['profile']);
    expect(issues({ ...mediasense, profile: { allow_download_origins: ['https://ms.internal:8446/recordedMedia'] } }).map((i) => i.path)).toEqual([
      'profile.allow_download_origins.0',
    ]);
    expect(issues({ ...mediasense, profile: { allow_download_origins: ['http://ms.internal:8081'] } }).map((i) => i.path)).toEqual(['profile.allow_download_origins.0']);
    const ok = parse({ ...avaya, profile: { search_path: '/searchapi?command=search&layout=x&ucid={ucid}', replay_path: '{api_endpoint}/replay?id={inum}', order_field: null } });
    expect(ok.success).toBe(true);
    if (ok.success) expect(avayaProfile(ok.data)).toMatchObject({ order_field: null, replay_path: '{api_endpoint}/replay?id={inum}' });
  });

  it('is strict and bounds max_retries and the breaker', () => {
    expect(issues({ ...avaya, retries: 3 }).map((i) => i.path)).toEqual(['']);
    expect(issues({ ...avaya, max_retries: 11 }).map((i) => i.path)).toEqual(['max_retries']);
    expect(issues({ ...avaya, provider: 'nice' }).map((i) => i.path)).toEqual(['provider']);
    expect(issues({ ...avaya, circuit_breaker: { failures: 0 } }).map((i) => i.path)).toEqual(['circuit_breaker.failures']);
    expect(issues({ ...avaya, backoff: { initial_ms: 500, max_ms: 100 } }).map((i) => i.path)).toEqual(['backoff.initial_ms']);
  });
});

describe("the original brief's legacy_connector block", () => {
  it('normalises to the flat entry, with name and source_systems from the provider when absent', () => {
    expect(normaliseLegacyBlock({ ...BRIEF_BLOCK, password: 'env:LEGACY_PW' })).toEqual({
      type: 'legacy-http',
      name: 'avaya_aura',
      source_systems: ['avaya_aura'],
      provider: 'avaya_aura',
      api_endpoint: 'https://legacy-pbx.internal/api/v1/recording',
      auth_type: 'basic',
      username: 'svc_rec_retrieval',
      timeout_ms: 30_000,
      max_retries: 3,
      password: 'env:LEGACY_PW',
    });
    const r = parse(normaliseLegacyBlock({ ...BRIEF_BLOCK, name: 'avaya-site-1', password: 'env:LEGACY_PW' }));
    expect(r.success).toBe(true);
    if (r.success) expect(r.data).toMatchObject({ name: 'avaya-site-1', type: 'legacy-http', provider: 'avaya_aura', timeout_ms: 30_000, max_retries: 3, username: 'svc_rec_retrieval' });
  });

  it('verbatim (no password) fails naming password; fields may also sit inside the block', () => {
    expect(issues(normaliseLegacyBlock(BRIEF_BLOCK))).toEqual([{ path: 'password', message: 'password is required when auth_type is basic' }]);
    const inner = { legacy_connector: { ...(BRIEF_BLOCK.legacy_connector as object), name: 'in', password: 'env:LEGACY_PW' } };
    expect(parse(normaliseLegacyBlock(inner)).success).toBe(true);
  });

  it('a field given both inside and beside the block with different values is reported, not silently chosen', () => {
    const clash = { ...BRIEF_BLOCK, password: 'env:LEGACY_PW', timeout_ms: 5_000 };
    expect(issues(normaliseLegacyBlock(clash))).toEqual([{ path: 'legacy_connector', message: 'these fields are given both inside legacy_connector and beside it; keep one' }]);
    expect(normaliseLegacyBlock(clash)).toMatchObject({ legacy_connector: { timeout_ms: 30_000 }, timeout_ms: 5_000 });
    // The same value in both places is fine.
    expect(parse(normaliseLegacyBlock({ ...BRIEF_BLOCK, password: 'env:LEGACY_PW', timeout_ms: 30_000 })).success).toBe(true);
  });

  it('leaves every other entry untouched (same reference)', () => {
    const fs = { name: 'share', type: 'filesystem', root: '/archive' };
    expect(normaliseLegacyBlock(fs)).toBe(fs);
    const other = { type: 's3', legacy_connector: {} };
    expect(normaliseLegacyBlock(other)).toBe(other);
    expect(normaliseLegacyBlock(null)).toBe(null);
    expect(normaliseLegacyBlock('x')).toBe('x');
    expect(normaliseLegacyBlock({ legacy_connector: 'x' })).toEqual({ legacy_connector: 'x' });
  });

  it('fits a discriminated union by type, with the block normalised first (function or z.preprocess)', () => {
    const union = z.discriminatedUnion('type', [filesystemSourceConfig, legacyHttpSourceConfig]);
    const entries = z.array(z.preprocess(normaliseLegacyBlock, union));
    const r = withSecretContext({ env, allowInline: false }, () =>
      entries.safeParse([{ ...BRIEF_BLOCK, name: 'avaya', password: 'env:LEGACY_PW' }, { name: 'share', type: 'filesystem', root: '/archive' }]),
    );
    expect(r.success).toBe(true);
    if (r.success) expect(r.data.map((s) => s.type)).toEqual(['legacy-http', 'filesystem']);
    const block = withSecretContext({ env, allowInline: false }, () => legacyConnectorBlock.safeParse({ ...BRIEF_BLOCK, password: 'env:LEGACY_PW' }));
    expect(block.success).toBe(true);
    if (block.success) expect(block.data.name).toBe('avaya_aura');
  });
});
