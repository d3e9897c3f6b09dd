import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config/load.js';
import { checkSyncArgs } from '../src/sync/cli.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** As test/cli.test.ts runs it; asynchronous so the few spawns below run side by side. */
const cli = (args: string[]) =>
  new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { cwd: ROOT, timeout: 60_000, env: { ...process.env, CUSTODIAN_CONFIG: '' } }, (e, stdout, stderr) =>
      resolve({ code: e ? (typeof e.code === 'number' ? e.code : null) : 0, stdout, stderr }),
    );
  });

const oneLine = (r: Awaited<ReturnType<typeof cli>>, code: number, line: string | RegExp) => {
  expect(r.code, r.stderr).toBe(code);
  const lines = r.stderr.trim().split('\n');
  expect(lines, r.stderr).toHaveLength(1);
  if (typeof line === 'string') expect(lines[0]).toBe(line);
  else expect(lines[0]).toMatch(line);
};

const fsSource = (name: string, root: string) => ({ name, type: 'filesystem', root });

/**
 * A compliance operator's script must not be told "ok" when it asked for something that was not
 * done: `audit verify --tenant t1` used to verify the whole chain and exit 0, `migrate --out x extra`
 * ignored both, `sync --source nosuch` was an AppError (exit 1), and an empty config file started
 * the gateway on the embedded defaults.
 */
describe('custodian CLI refusing what it would not do', { timeout: 120_000 }, () => {
  let dir: string;
  let config: string;
  let untouched: string;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'custodian-cli-options-'));
    // Refused command lines must not get as far as opening the catalog: it lives in its own data dir.
    untouched = join(dir, 'untouched');
    writeFileSync(join(dir, 'untouched.json'), JSON.stringify({ data_dir: untouched, tenants: [{ id: 't1' }] }));
    config = join(dir, 'custodian.json');
    writeFileSync(
      config,
      JSON.stringify({
        data_dir: join(dir, 'data'),
        tenants: [{ id: 'acme', sources: [fsSource('nas', join(dir, 'nas')), fsSource('spare', join(dir, 'spare'))], sync: { legacy: [{ source: 'nas' }] } }],
      }),
    );
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('exits 2 (options a command does not take, stray arguments) and 78 (unknown source, empty or non-mapping config) with one line', async () => {
    const empty = join(dir, 'empty.yaml');
    writeFileSync(empty, '# nothing but a comment\n');
    const list = join(dir, 'list.yaml');
    writeFileSync(list, '- server\n');
    const untouchedConfig = join(dir, 'untouched.json');
    const [verify, migrate, sync, emptyFile, listFile] = await Promise.all([
      cli(['audit', 'verify', '--tenant', 't1', '--config', untouchedConfig]),
      cli(['migrate', '--out', 'x', 'extra', '--config', untouchedConfig]),
      cli(['sync', '--source', 'nosuch', '--config', config]),
      cli(['migrate', '--config', empty]),
      cli(['migrate', '--config', list]),
    ]);
    oneLine(verify, 2, 'custodian audit verify: --tenant does not apply (it walks the whole chain)');
    expect(verify.stdout).toBe('');
    oneLine(migrate, 2, 'custodian migrate: --out does not apply (it takes no options)');
    expect(existsSync(untouched)).toBe(false);
    oneLine(sync, 78, '--source: unknown source "nosuch" for tenant "acme" (known: nas)');
    expect(sync.stdout).toBe('');
    oneLine(emptyFile, 78, `config file ${empty} is empty`);
    oneLine(listFile, 78, `config file ${list} must be a mapping of fields (server:, tenants:, …) at the top level, not a list`);
  });
});

/** The --source check on its own (no process, no catalog): what the operator is told for each shape of config. */
describe('checkSyncArgs', () => {
  const config = parseConfig({
    tenants: [
      {
        id: 'acme',
        sources: [fsSource('nas', '/srv/nas'), fsSource('spare', '/srv/spare'), { name: 'cloud', type: 'genesys', environment: 'mypurecloud.ie', client_id: 'c', client_secret: 'env:GC' }],
        sync: { legacy: [{ source: 'nas' }] },
      },
      { id: 'globex', sources: [fsSource('vault', '/srv/vault')], sync: { legacy: [{ source: 'vault' }] } },
      { id: 'initech' },
    ],
  }, { GC: 'secret' });

  const refusal = (opts: Parameters<typeof checkSyncArgs>[1], cfg = config) => {
    try {
      checkSyncArgs(cfg, opts);
    } catch (e) {
      expect((e as Error).name).toBe('ConfigError');
      return (e as Error).message;
    }
    return null;
  };

  it('accepts a source the tenant syncs, and no --source at all', () => {
    expect(refusal({ tenant: 'acme', source: 'nas' })).toBeNull();
    expect(refusal({ tenant: 'acme', source: 'cloud' })).toBeNull();
    expect(refusal({ tenant: 'globex', source: 'vault' })).toBeNull();
    expect(refusal({})).toBeNull();
    expect(refusal({ tenant: 'initech' })).toBeNull();
  });

  it('names the sources the tenant syncs (a configured source the sync does not walk is not one)', () => {
    expect(refusal({ tenant: 'acme', source: 'nosuch' })).toBe('--source: unknown source "nosuch" for tenant "acme" (known: cloud, nas)');
    expect(refusal({ tenant: 'acme', source: 'spare' })).toBe('--source: unknown source "spare" for tenant "acme" (known: cloud, nas)');
    expect(refusal({ tenant: 'initech', source: 'nas' })).toBe('--source: unknown source "nas" for tenant "initech" (known: none); it is a source of acme: use --tenant acme');
  });

  it('without --tenant, refuses before any tenant runs when one of them lacks the source', () => {
    expect(refusal({ source: 'vault' })).toBe('--source: unknown source "vault" for tenant "acme" (known: cloud, nas); it is a source of globex: use --tenant globex');
    expect(refusal({ source: 'nosuch' })).toBe('--source: unknown source "nosuch" for tenant "acme" (known: cloud, nas)');
    // With no tenant configured, a sync of one named source would do nothing and report success.
    expect(refusal({ source: 'nas' }, parseConfig({}, {}))).toBe('--source: unknown source "nas" (the config has no tenants)');
  });

  it('keeps the --tenant and --since refusals', () => {
    expect(refusal({ tenant: 'nope' })).toBe('--tenant: unknown tenant "nope"');
    expect(refusal({ since: 'yesterday' })).toMatch(/^--since: /);
  });
});
