import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { format, inspect } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, type ConfigEnv, loadConfig, parseConfig } from './load.js';
import { Secret, resolveSecret } from './secret.js';

const dir = mkdtempSync(join(tmpdir(), 'custodian-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const write = (name: string, text: string) => {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
};

/** The ConfigError a document gives, or a failure when it loads. */
function configError(doc: unknown, env: ConfigEnv = {}): ConfigError {
  try {
    parseConfig(doc, env);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return e as ConfigError;
  }
  throw new Error('the configuration was accepted');
}

const TENANTS = [
  {
    id: 'acme',
    sources: [
      { name: 'archive', type: 'filesystem', root: '/srv/archive/acme', source_systems: ['avaya_aura'] },
      { name: 'legacy-s3', type: 's3', bucket: 'acme-recordings', access_key_id: 'env:ACME_S3_KEY', secret_access_key: 'env:ACME_S3_SECRET' },
    ],
  },
  { id: 'globex', sources: [{ name: 'archive', type: 'filesystem', root: 'archives/globex' }] },
];
const ENV = { ACME_S3_KEY: 'AKIAEXAMPLE', ACME_S3_SECRET: 'very-secret-s3-value' };

describe('parseConfig', () => {
  it('accepts an empty document: every block has embedded defaults', () => {
    for (const c of [parseConfig({}, {}), parseConfig(null, {}), parseConfig(undefined, {}), loadConfig(undefined, {})]) {
      expect(c.server).toMatchObject({ host: '127.0.0.1', port: 8080, allow_insecure_http: false, body_limit_bytes: 65536, trust_proxy: false, shutdown_grace_ms: 10_000 });
      expect(c.catalog).toEqual({ driver: 'sqlite' });
      expect(c.auth.api_keys).toEqual([]);
      expect(c.auth.rate_limit).toEqual({ max: 600, window_ms: 60_000 });
      expect(c.auth.jwt).toBeUndefined();
      expect(c.policy).toEqual({ prefer: 'cloud' });
      expect(c.media).toEqual({ ffmpeg_path: 'ffmpeg', max_concurrent_transcodes: 4, max_queued_transcodes: 16, transcode_timeout_ms: 600_000 });
      expect(c.logging).toEqual({ level: 'info' });
      expect(c.tenants).toEqual([]);
      expect(c.allow_inline_secrets).toBe(false);
      expect(c.data_dir).toBe(resolve('./data'));
    }
  });

  it('fills defaults inside partly given blocks', () => {
    const c = parseConfig({ server: { port: 9000 }, auth: { rate_limit: { max: 5 } }, tenants: [{ id: 'acme' }] }, {});
    expect(c.server.host).toBe('127.0.0.1');
    expect(c.server.port).toBe(9000);
    expect(c.auth.rate_limit).toEqual({ max: 5, window_ms: 60_000 });
    expect(c.tenants[0]!.sources).toEqual([]);
  });

  it('resolves relative filesystem roots under data_dir and keeps absolute ones', () => {
    const c = parseConfig({ data_dir: join(dir, 'data'), tenants: TENANTS }, ENV);
    expect(c.data_dir).toBe(join(dir, 'data'));
    const root = (t: number, s: number) => (c.tenants[t]!.sources[s] as { root: string }).root;
    expect(root(0, 0)).toBe('/srv/archive/acme');
    expect(root(1, 0)).toBe(join(dir, 'data', 'archives/globex'));
    // A relative data_dir is taken from the working directory.
    expect(parseConfig({ data_dir: 'rel-data' }, {}).data_dir).toBe(resolve('rel-data'));
  });

  it('names the field of every error', () => {
    const s3 = configError({ tenants: [{ id: 'acme', sources: [{ name: 'a', type: 'filesystem', root: '/x' }, { name: 'b', type: 's3', bucket: 'x' }] }] });
    expect(s3.issues).toHaveLength(1);
    expect(s3.issues[0]).toMatch(/^tenants\[0\]\.sources\[1\]\.bucket: /);
    expect(s3.message).toContain('tenants[0].sources[1].bucket: ');

    const unknownRoot = configError({ colour: 'blue' });
    expect(unknownRoot.issues[0]).toMatch(/^\(root\): .*colour/);
    // There is no `demo` block (the demo command builds its own config): it is an unknown key like any other.
    expect(configError({ demo: { enabled: true } }, { CUSTODIAN_DEMO_API_KEY: 'cst_demo_' + 'z'.repeat(24) }).issues).toEqual(['(root): Unrecognized key: "demo"']);
    const unknownNested = configError({ server: { prot: 80 } });
    expect(unknownNested.issues[0]).toMatch(/^server: .*prot/);

    expect(configError({ tenants: [{ id: 'acme' }, { id: 'globex' }, { id: 'acme' }] }).issues).toEqual(['tenants[2].id: duplicate tenant "acme"']);
    expect(configError({ tenants: [{ id: 'acme', sources: [{ name: 'a', type: 'filesystem', root: '/x' }, { name: 'a', type: 'filesystem', root: '/y' }] }] }).issues).toEqual([
      'tenants[0].sources[1].name: duplicate source name "a"',
    ]);
    const badKey = configError({
      allow_inline_secrets: true,
      tenants: [{ id: 'acme' }],
      auth: { api_keys: [{ id: 'key1', tenant: 'acme', principal: 'p', scopes: ['recordings:read'], key: 'cst_key1_' + 'x'.repeat(20) }, { id: 'key2', tenant: 'initech', principal: 'p', scopes: ['admin'], key: 'cst_key2_' + 'y'.repeat(20) }] },
    });
    expect(badKey.issues).toEqual(['auth.api_keys[1].tenant: unknown tenant "initech"']);
    expect(configError({ auth: { api_keys: [{ id: 'key1', tenant: 'acme', principal: 'p', scopes: ['root'], key: 'env:K' }] }, tenants: [{ id: 'acme' }] }, { K: 'v' }).issues[0]).toMatch(/^auth\.api_keys\[0\]\.scopes\[0\]: /);
    expect(configError({ tenants: [{ id: 'Acme Corp' }] }).issues[0]).toMatch(/^tenants\[0\]\.id: /);
    expect(configError({ tenants: [{ id: 'acme', sources: [{ name: 'x', type: 'ftp' }] }] }).issues[0]).toMatch(/^tenants\[0\]\.sources\[0\]\.type: /);
    expect(configError({ catalog: { driver: 'mysql' } }).issues[0]).toMatch(/^catalog\.driver: /);
    expect(configError({ auth: { jwt: { issuer: 'https://idp', audience: 'custodian' } } }).issues[0]).toMatch(/^auth\.jwt\.jwks_url: give exactly one/);
    expect(configError({ server: { port: 70000 } }).issues[0]).toMatch(/^server\.port: /);
    expect(configError('port: 80').message).toMatch(/^config: /);
    expect(configError([1, 2]).message).toMatch(/^config: /);

    // Several problems are all reported at once.
    expect(configError({ server: { port: -1 }, logging: { level: 'loud' } }).issues.map((i) => i.split(':')[0])).toEqual(['server.port', 'logging.level']);
  });

  it('refuses an API key id given twice, even across tenants, naming the later one (the later key would replace the earlier)', () => {
    const key = (id: string, tenant: string, secret: string) => ({ id, tenant, principal: 'p', scopes: ['admin'], key: `cst_${id}_${secret.repeat(20)}` });
    const e = configError({
      allow_inline_secrets: true,
      tenants: [{ id: 'a' }, { id: 'b' }],
      auth: { api_keys: [key('key1', 'a', 'a'), key('key2', 'a', 'c'), key('key1', 'b', 'b')] },
    });
    expect(e.issues).toEqual(['auth.api_keys[2].id: duplicate api key id "key1" (also auth.api_keys[0]); each key id must be unique']);
    expect(e.message).not.toContain('b'.repeat(20));
    expect(parseConfig({ allow_inline_secrets: true, tenants: [{ id: 'a' }], auth: { api_keys: [key('key1', 'a', 'a'), key('key2', 'a', 'b')] } }).auth.api_keys).toHaveLength(2);
  });

  it('refuses a job heartbeat that is not well under the lease (the lease would lapse between beats)', () => {
    expect(configError({ jobs: { lease_ms: 1000, heartbeat_ms: 5000 } }).issues).toEqual([
      'jobs.heartbeat_ms: must be at most half of jobs.lease_ms (1000), so a beat can be late once without losing the lease; got 5000',
    ]);
    expect(configError({ jobs: { lease_ms: 10_000, heartbeat_ms: 10_000 } }).issues[0]).toMatch(/^jobs\.heartbeat_ms: must be at most half of jobs\.lease_ms \(10000\)/);
    expect(configError({ jobs: { lease_ms: 10_000, heartbeat_ms: 5001 } }).issues[0]).toMatch(/^jobs\.heartbeat_ms: /);
    // the defaults (30 s lease, 5 s beat), a given lease over the default beat, and exactly half pass
    const d = parseConfig({});
    expect([d.jobs.lease_ms, d.jobs.heartbeat_ms]).toEqual([30_000, 5_000]);
    expect(parseConfig({ jobs: { lease_ms: 10_000 } }).jobs.heartbeat_ms).toBe(5_000);
    expect(parseConfig({ jobs: { lease_ms: 2000, heartbeat_ms: 1000 } }).jobs.heartbeat_ms).toBe(1000);
    // a lease shorter than twice the default beat needs its own beat
    expect(configError({ jobs: { lease_ms: 8000 } }).issues[0]).toMatch(/^jobs\.heartbeat_ms: must be at most half of jobs\.lease_ms \(8000\).*got 5000/);
  });

  it('checks server.trust_proxy as fastify will read it, naming the field', () => {
    for (const ok of [true, false, '127.0.0.1', '10.0.0.0/8', '10.0.0.1, 192.168.1.0/24', 'loopback', ['::1', 'fd00::/8', 'uniquelocal', '10.0.0.0/255.0.0.0'], []]) {
      expect(parseConfig({ server: { trust_proxy: ok } }).server.trust_proxy, JSON.stringify(ok)).toEqual(ok);
    }
    for (const [bad, why] of [
      ['not-an-ip', /invalid IP address: not-an-ip/],
      [['10.0.0.0/33'], /invalid range on address: 10\.0\.0\.0\/33/],
      ['10.0.0.1,', /invalid IP address/],
      ['', /invalid IP address/],
      [2, /a hop count.*not trusted by fastify/],
    ] as const) {
      const e = configError({ server: { trust_proxy: bad } });
      expect(e.issues, JSON.stringify(bad)).toHaveLength(1);
      expect(e.issues[0], JSON.stringify(bad)).toMatch(/^server\.trust_proxy(\[\d+\])?: /);
      expect(e.issues[0], JSON.stringify(bad)).toMatch(why);
    }
  });

  it('checks a static API key against its id when the file is read, without echoing the key', () => {
    const keyDoc = (id: string, key: string) => ({ allow_inline_secrets: true, tenants: [{ id: 'acme' }], auth: { api_keys: [{ id, tenant: 'acme', principal: 'p', scopes: ['admin'], key }] } });
    const good = parseConfig(keyDoc('ops-bot', 'cst_ops-bot_' + 'a'.repeat(16)), {});
    expect(good.auth.api_keys[0]!.key.reveal()).toBe('cst_ops-bot_' + 'a'.repeat(16));
    // The key of another id, a short secret or no prefix: the field is named, the value is not shown.
    for (const key of ['cst_other_' + 'a'.repeat(20), 'cst_ops-bot_short', 'ops-bot-' + 'a'.repeat(20)]) {
      const e = configError(keyDoc('ops-bot', key));
      expect(e.issues, key).toEqual(['auth.api_keys[0].key: must have the form cst_ops-bot_<secret of 16 to 128 characters A-Z a-z 0-9 _ ->']);
      expect(e.message).not.toContain(key);
    }
    // An id with "_" could never be told apart from its secret in cst_<id>_<secret>: refused here, not at start-up.
    expect(configError(keyDoc('ops_bot', 'cst_ops_bot_' + 'a'.repeat(20))).issues[0]).toMatch(/^auth\.api_keys\[0\]\.id: /);
  });

  it('applies environment overrides, validated like the file', () => {
    const c = parseConfig({ server: { port: 1, host: '0.0.0.0' }, data_dir: '/nowhere' }, { PORT: '9090', HOST: '::1', CUSTODIAN_DATA_DIR: join(dir, 'env-data'), CUSTODIAN_LOG_LEVEL: 'debug' });
    expect(c.server.port).toBe(9090);
    expect(c.server.host).toBe('::1');
    expect(c.data_dir).toBe(join(dir, 'env-data'));
    expect(c.logging.level).toBe('debug');
    expect(parseConfig({}, { PORT: '0' }).server.port).toBe(0);

    for (const bad of ['http', '-1', '65536', '80.5', '', ' 80', '1e3']) {
      const e = configError({}, { PORT: bad });
      expect(e.message, `PORT=${JSON.stringify(bad)}`).toMatch(/^PORT: /);
    }
    expect(configError({}, { CUSTODIAN_LOG_LEVEL: 'loud' }).issues[0]).toMatch(/^logging\.level: /);

    // CUSTODIAN_DEMO_API_KEY is the demo command's (src/cli/demo-config.ts): it puts nothing into a parsed config.
    expect(parseConfig({}, { CUSTODIAN_DEMO_API_KEY: 'cst_demo_' + 'z'.repeat(24) })).toEqual(parseConfig({}, {}));
  });

  it('reports a block of the wrong type by its name even when an override targets it', () => {
    expect(configError({ server: 'fast' }, { PORT: '8081' }).issues[0]).toMatch(/^server: /);
    expect(configError({ server: 'fast' }, { HOST: '0.0.0.0' }).issues[0]).toMatch(/^server: /);
    expect(configError({ logging: 'loud' }, { CUSTODIAN_LOG_LEVEL: 'info' }).issues[0]).toMatch(/^logging: /);
    // and the caller's document is never modified
    const doc = { server: { port: 1 } };
    parseConfig(doc, { PORT: '2' });
    expect(doc).toEqual({ server: { port: 1 } });
  });
});

describe('secrets', () => {
  it('resolves env: references from the given environment', () => {
    const c = parseConfig({ catalog: { driver: 'postgres', url: 'env:CUSTODIAN_PG' } }, { CUSTODIAN_PG: 'postgres://u:p4ss@db/custodian' });
    expect(c.catalog.driver).toBe('postgres');
    if (c.catalog.driver !== 'postgres') return;
    expect(c.catalog.url.reveal()).toBe('postgres://u:p4ss@db/custodian');
    expect(c.catalog.url.source).toBe('env:CUSTODIAN_PG');
  });

  it('names the field when an env: variable is missing or empty', () => {
    for (const env of [{}, { ACME_S3_KEY: 'AKIA' }, { ACME_S3_KEY: 'AKIA', ACME_S3_SECRET: '' }]) {
      const e = configError({ tenants: TENANTS }, env);
      expect(e.issues.some((i) => /^tenants\[0\]\.sources\[1\]\.secret_access_key: environment variable ACME_S3_SECRET is not set$/.test(i))).toBe(true);
    }
  });

  it('reads file: references, trimming one trailing newline', () => {
    const lf = write('pg-url', 'postgres://from-file\n');
    const crlf = write('pg-url-crlf', 'secret-with-crlf\r\n');
    const inner = write('pg-url-inner', 'keeps\ninner\nlines\n\n');
    // A secret that is free text (catalog.url must be a postgres:// URL).
    const url = (ref: string) => parseConfig({ keys: { provider: 'aws_kms', aws_kms: { region: 'eu-west-1', data_key_id: 'k', signing_key_id: 's', session_token: ref } } }, {}).keys.aws_kms!.session_token!.reveal();
    expect(url(`file:${lf}`)).toBe('postgres://from-file');
    expect(url(`file:${crlf}`)).toBe('secret-with-crlf');
    expect(url(`file:${inner}`)).toBe('keeps\ninner\nlines\n');
  });

  it('names the field when a file: reference cannot be read or is empty', () => {
    const missing = configError({ catalog: { driver: 'postgres', url: `file:${join(dir, 'absent')}` } });
    expect(missing.issues[0]).toMatch(/^catalog\.url: secret file .*absent cannot be read \(ENOENT\)$/);
    expect(configError({ catalog: { driver: 'postgres', url: `file:${dir}` } }).issues[0]).toMatch(/^catalog\.url: secret file .* cannot be read \(EISDIR\)$/);
    const empty = write('empty-secret', '\n');
    expect(configError({ catalog: { driver: 'postgres', url: `file:${empty}` } }).issues[0]).toMatch(/^catalog\.url: secret file .* is empty$/);
    if (process.getuid?.() !== 0) {
      const locked = write('locked-secret', 'x');
      chmodSync(locked, 0o000);
      expect(configError({ catalog: { driver: 'postgres', url: `file:${locked}` } }).issues[0]).toMatch(/cannot be read \(EACCES\)/);
    }
  });

  it('takes the PostgreSQL pool size, floor and idle timeout, and names each bad one', () => {
    const pg = (more: object) => ({ catalog: { driver: 'postgres', url: 'env:PG', ...more } });
    const env = { PG: 'postgres://db/x' };
    const c = parseConfig(pg({}), env).catalog;
    expect(c.driver === 'postgres' && [c.pool_size, c.pool_min, c.pool_idle_timeout_ms]).toEqual([10, 2, 300_000]);
    const d = parseConfig(pg({ pool_size: 4, pool_min: 4, pool_idle_timeout_ms: 0 }), env).catalog;
    expect(d.driver === 'postgres' && [d.pool_size, d.pool_min, d.pool_idle_timeout_ms]).toEqual([4, 4, 0]);
    expect(configError(pg({ pool_size: 4, pool_min: 5 }), env).issues).toEqual(['catalog.pool_min: pool_min must not exceed pool_size']);
    expect(configError(pg({ pool_min: -1 }), env).issues[0]).toMatch(/^catalog\.pool_min: /);
    expect(configError(pg({ pool_min: 1.5 }), env).issues[0]).toMatch(/^catalog\.pool_min: /);
    expect(configError(pg({ pool_idle_timeout_ms: '5m' }), env).issues[0]).toMatch(/^catalog\.pool_idle_timeout_ms: /);
    expect(configError(pg({ pool_idle_timeout_ms: -1 }), env).issues[0]).toMatch(/^catalog\.pool_idle_timeout_ms: /);
    expect(configError({ catalog: { driver: 'sqlite', pool_min: 1 } }).issues[0]).toMatch(/^catalog: .*pool_min/);
  });

  it('refuses inline secrets unless allow_inline_secrets is set', () => {
    const doc = { catalog: { driver: 'postgres', url: 'postgres://inline:pw@db/x' } };
    const e = configError(doc);
    expect(e.issues[0]).toMatch(/^catalog\.url: inline secrets are not allowed/);
    // The refused value is not echoed back.
    expect(e.message).not.toContain('inline:pw');
    const c = parseConfig({ ...doc, allow_inline_secrets: true }, {});
    expect(c.catalog.driver === 'postgres' && c.catalog.url.reveal()).toBe('postgres://inline:pw@db/x');
    expect(configError({ ...doc, allow_inline_secrets: 'yes' }).issues.some((i) => i.startsWith('allow_inline_secrets: '))).toBe(true);
  });

  it('never prints, serialises or inspects the value of a resolved secret', () => {
    const value = 'very-secret-s3-value';
    const c = parseConfig({ tenants: TENANTS }, ENV);
    const s3 = c.tenants[0]!.sources[1] as { secret_access_key: Secret };
    const secret = s3.secret_access_key;
    expect(secret).toBeInstanceOf(Secret);
    expect(secret.reveal()).toBe(value);
    const renderings = [
      String(secret),
      `${secret}`,
      'x' + secret,
      JSON.stringify(secret),
      JSON.stringify(c),
      inspect(secret),
      inspect(c, { depth: null }),
      inspect(c, { depth: null, showHidden: true }),
      format('%s %o %O %j', secret, c, c, c),
      JSON.stringify(structuredClone(secret)),
      JSON.stringify({ ...secret }),
      Object.values(secret).join(','),
    ];
    for (const r of renderings) expect(r).not.toContain(value);
    expect(JSON.stringify(secret)).toBe('"[secret]"');
    expect(String(secret)).toBe('[secret]');
    expect(inspect(secret)).toBe('Secret(env:ACME_S3_SECRET)');
    expect(JSON.stringify(c)).toContain('"secret_access_key":"[secret]"');
  });

  it('resolveSecret on its own', () => {
    expect(resolveSecret('env:A', { env: { A: 'a' }, allowInline: false })).toMatchObject({ ok: true });
    expect(resolveSecret('env:', { env: {}, allowInline: false })).toMatchObject({ ok: false });
    expect(resolveSecret('literal', { env: {}, allowInline: true })).toMatchObject({ ok: true, secret: { source: 'inline' } });
    expect(resolveSecret('literal', { env: {}, allowInline: false })).toMatchObject({ ok: false });
  });
});

describe('loadConfig', () => {
  const doc = {
    server: { port: 8181 },
    data_dir: join(dir, 'd'),
    tenants: [{ id: 'acme', sources: [{ name: 'archive', type: 'filesystem', root: 'archive', path_template: '{legacy_archive_id}.wav' }] }],
    auth: { api_keys: [{ id: 'acme-reader', tenant: 'acme', principal: 'alice', scopes: ['recordings:read'], key: 'env:ACME_KEY' }] },
  };
  const env = { ACME_KEY: 'cst_acme-reader_' + 'k'.repeat(32) };

  it('reads YAML and JSON files to the same configuration', () => {
    const yaml = write(
      'custodian.yaml',
      [
        '# comments are fine',
        'server:',
        '  port: 8181',
        `data_dir: ${join(dir, 'd')}`,
        'tenants:',
        '  - id: acme',
        '    sources:',
        '      - name: archive',
        '        type: filesystem',
        '        root: archive',
        "        path_template: '{legacy_archive_id}.wav'",
        'auth:',
        '  api_keys:',
        '    - id: acme-reader',
        '      tenant: acme',
        '      principal: alice',
        '      scopes: [recordings:read]',
        '      key: env:ACME_KEY',
      ].join('\n'),
    );
    const json = write('custodian.json', JSON.stringify(doc));
    const fromYaml = loadConfig(yaml, env);
    const fromJson = loadConfig(json, env);
    expect(JSON.stringify(fromYaml)).toBe(JSON.stringify(fromJson));
    expect(fromYaml.server.port).toBe(8181);
    expect((fromYaml.tenants[0]!.sources[0] as { root: string }).root).toBe(join(dir, 'd', 'archive'));
    expect(fromYaml.auth.api_keys[0]!.key.reveal()).toBe(env.ACME_KEY);
    // .yml loads too
    expect(loadConfig(write('c.yml', 'server:\n  port: 1234\n'), {}).server.port).toBe(1234);
    // The brief's legacy connector block is plain data in YAML.
    expect(loadConfig(write('env.yaml', 'server: {port: 1}\n'), { PORT: '2' }).server.port).toBe(2);
  });

  // A truncated or blanked production file must not start the gateway on SQLite with demo defaults.
  it('an empty file is a ConfigError naming the path, not the embedded defaults', () => {
    const cases: [string, string][] = [
      ['zero.yaml', ''],
      ['blank.yml', '  \n\n\t\n'],
      ['comments.yaml', '# server:\n#   port: 8443\n\n'],
      ['null.yaml', 'null\n'],
      ['tilde.yaml', '~'],
      ['end.yaml', '---\n...\n'],
      ['zero.json', ''],
      ['blank.json', ' \n'],
      ['null.json', 'null'],
    ];
    for (const [name, text] of cases) {
      const path = write(name, text);
      expect(() => loadConfig(path, {}), name).toThrow(ConfigError);
      expect(() => loadConfig(path, {}), name).toThrow(new RegExp(`^config file ${path.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} is empty$`));
    }
    // An empty mapping is a deliberate choice of every default, not a truncated file.
    expect(loadConfig(write('braces.yaml', '{}\n'), {}).server.port).toBe(8080);
    expect(loadConfig(write('braces.json', '{}'), {}).server.port).toBe(8080);
  });

  it('a file whose top level is not a mapping is a ConfigError naming the path and what it holds', () => {
    for (const [name, text, found] of [
      ['list.yaml', '- server\n- tenants\n', 'a list'],
      ['list.json', '[]', 'a list'],
      ['scalar.yaml', 'server\n', 'a string'],
      ['number.json', '8080', 'a number'],
      ['bool.yaml', 'true\n', 'a boolean'],
    ] as const) {
      const path = write(name, text);
      expect(() => loadConfig(path, {}), name).toThrow(ConfigError);
      expect(() => loadConfig(path, {}), name).toThrow(`config file ${path} must be a mapping of fields (server:, tenants:, …) at the top level, not ${found}`);
    }
  });

  it('a missing or unreadable file is a ConfigError naming the path', () => {
    const missing = join(dir, 'nope.yaml');
    expect(() => loadConfig(missing, {})).toThrow(ConfigError);
    expect(() => loadConfig(missing, {})).toThrow(`config file ${missing} cannot be read (ENOENT)`);
    expect(() => loadConfig(dir, {})).toThrow(/cannot be read \(EISDIR\)/);
  });

  it('invalid YAML or JSON is a ConfigError naming the path', () => {
    const yaml = write('bad.yaml', 'server:\n  port: 80\n   host: x\n  - nope: [\n');
    expect(() => loadConfig(yaml, {})).toThrow(ConfigError);
    expect(() => loadConfig(yaml, {})).toThrow(new RegExp(`^config file ${yaml.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} is not valid YAML`));
    const json = write('bad.json', '{"server": {"port": 80,}}');
    expect(() => loadConfig(json, {})).toThrow(/^config file .*bad\.json is not valid JSON/);
    // A valid file with an invalid field names the field.
    const invalid = write('invalid.yaml', 'server:\n  port: eighty\n');
    expect(() => loadConfig(invalid, {})).toThrow(/server\.port: /);
  });
});
