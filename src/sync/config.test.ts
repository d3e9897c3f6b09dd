import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../config/load.js';

const legacyHttp = (name: string, provider = 'avaya_aura', profile: Record<string, unknown> = {}) => ({
  name,
  type: 'legacy-http',
  provider,
  api_endpoint: 'https://recorder.example',
  auth_type: provider === 'cisco_mediasense' ? 'session' : 'basic',
  username: 'u',
  password: 'p',
  profile,
});

function parse(tenant: Record<string, unknown>) {
  return parseConfig({ allow_inline_secrets: true, catalog: { driver: 'sqlite', path: ':memory:' }, tenants: [{ id: 'acme', ...tenant }] }, {});
}

/** The message of the config error, which must name the field path. */
function errorOf(tenant: Record<string, unknown>): string {
  try {
    parse(tenant);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as Error).message;
  }
  throw new Error('the config was accepted');
}

describe('sync config: search-API sources, windows, schedule', () => {
  it('accepts legacy_search of avaya and mediasense sources, with defaults', () => {
    const c = parse({ sources: [legacyHttp('acr'), legacyHttp('ms', 'cisco_mediasense')], sync: { legacy_search: [{ source: 'acr' }, { source: 'ms', page_size: 50 }], schedule_interval_ms: 900_000 } });
    expect(c.tenants[0]!.sync).toMatchObject({ legacy_search: [{ source: 'acr', page_size: 100, max_window_results: 1000 }, { source: 'ms', page_size: 50 }], schedule_interval_ms: 900_000, max_window_results: 10_000, min_window_ms: 60_000 });
  });

  it.each([
    [{ sources: [], sync: { legacy_search: [{ source: 'acr' }] } }, /tenants\[0\]\.sync\.legacy_search\[0\]\.source.*not a legacy-http source/],
    [{ sources: [{ name: 'fs', type: 'filesystem', root: '/tmp' }], sync: { legacy_search: [{ source: 'fs' }] } }, /tenants\[0\]\.sync\.legacy_search\[0\]\.source.*not a legacy-http source/],
    [{ sources: [legacyHttp('gen', 'generic_http')], sync: { legacy_search: [{ source: 'gen' }] } }, /tenants\[0\]\.sync\.legacy_search\[0\]\.source.*no search API/],
    [{ sources: [legacyHttp('acr')], sync: { legacy_search: [{ source: 'acr' }, { source: 'acr' }] } }, /tenants\[0\]\.sync\.legacy_search\[1\]\.source.*listed twice/],
    [{ sources: [legacyHttp('acr')], sync: { legacy_search: [{ source: 'acr', page_size: 0 }] } }, /tenants\[0\]\.sync\.legacy_search\[0\]\.page_size/],
    [{ sources: [legacyHttp('acr')], sync: { legacy_search: [{ source: 'acr', page_size: 100, max_window_results: 50 }] } }, /tenants\[0\]\.sync\.legacy_search\[0\]\.max_window_results.*at least page_size/],
    [{ sources: [legacyHttp('acr')], sync: { legacy_search: [{ source: 'acr', extra: 1 }] } }, /tenants\[0\]\.sync\.legacy_search\[0\].*extra/],
    [{ sources: [legacyHttp('acr')], sync: { legacy_search: [{ source: 'acr', source_system: 'Bad System' }] } }, /tenants\[0\]\.sync\.legacy_search\[0\]\.source_system/],
    [{ sources: [], sync: { schedule_interval_ms: 10 } }, /tenants\[0\]\.sync\.schedule_interval_ms/],
    [{ sources: [], sync: { schedule_interval_ms: 'every 15 minutes' } }, /tenants\[0\]\.sync\.schedule_interval_ms/],
    [{ sources: [], sync: { max_window_results: 10 } }, /tenants\[0\]\.sync\.max_window_results/],
    [{ sources: [], sync: { page_size: 100, max_window_results: 150, min_window_ms: 1000 } }, null],
    [{ sources: [], sync: { min_window_ms: 500 } }, /tenants\[0\]\.sync\.min_window_ms/],
    [{ sources: [], sync: { window_ms: 3_600_000, min_window_ms: 7_200_000 } }, /tenants\[0\]\.sync\.min_window_ms.*must not exceed window_ms/],
  ])('refuses bad input with the field path: %j', (tenant, re) => {
    if (re === null) expect(() => parse(tenant)).not.toThrow();
    else expect(errorOf(tenant)).toMatch(re);
  });

  it.each([
    [legacyHttp('acr', 'avaya_aura', { time_search_path: 'https://elsewhere.example/search' }), /profile\.time_search_path/],
    [legacyHttp('acr', 'avaya_aura', { time_search_path: '/search?from={from}&until={until}' }), /profile\.time_search_path.*unknown placeholder \{until\}/],
    [legacyHttp('acr', 'avaya_aura', { time_search_time_format: 'unix' }), /profile\.time_search_time_format/],
    [legacyHttp('acr', 'avaya_aura', { start_field: '1bad' }), /profile\.start_field/],
    [legacyHttp('acr', 'avaya_aura', { duration_unit: 'min' }), /profile\.duration_unit/],
    [legacyHttp('acr', 'avaya_aura', { time_query_path: '/ora/q' }), /profile\.time_query_path.*not a avaya_aura profile field/],
    [legacyHttp('ms', 'cisco_mediasense', { time_query_field: 'a.b' }), /profile\.time_query_field/],
    [legacyHttp('ms', 'cisco_mediasense', { ucid_field: 'ucid' }), /profile\.ucid_field.*not a cisco_mediasense profile field/],
    [legacyHttp('ms', 'cisco_mediasense', { session_duration_field: 7 }), /profile\.session_duration_field/],
  ])('refuses a bad search profile field with its path: %j', (source, re) => {
    expect(errorOf({ sources: [source] })).toMatch(re);
  });
});

describe('sync config: integrity thresholds', () => {
  it('defaults to the measured thresholds and takes a tenant override', async () => {
    const { thresholdsFor } = await import('./integrity/check.js');
    const dflt = parse({ sources: [] });
    expect(thresholdsFor(dflt, 'acme')).toEqual({ minSimilarity: 0.9, maxOffsetMs: 1000, durationToleranceMs: 2000 });
    const tuned = parse({ sources: [], sync: { crosswalk: { integrity: { min_similarity: 0.95, max_offset_ms: 3000 } } } });
    expect(thresholdsFor(tuned, 'acme')).toEqual({ minSimilarity: 0.95, maxOffsetMs: 3000, durationToleranceMs: 2000 });
    expect(thresholdsFor(tuned, 'acme', { minSimilarity: 0.8 }).minSimilarity).toBe(0.8);
  });

  it.each([
    [{ min_similarity: 1.2 }, 'tenants[0].sync.crosswalk.integrity.min_similarity'],
    [{ min_similarity: 0.1 }, 'tenants[0].sync.crosswalk.integrity.min_similarity'],
    [{ max_offset_ms: -1 }, 'tenants[0].sync.crosswalk.integrity.max_offset_ms'],
    [{ nope: 1 }, 'tenants[0].sync.crosswalk.integrity'],
  ])('refuses %j naming %s', (integrity, path) => {
    expect(errorOf({ sources: [], sync: { crosswalk: { integrity } } })).toContain(path);
  });
});
