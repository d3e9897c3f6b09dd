import { execFile, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPostgres, openSqlite } from '../src/catalog/database.js';
import { createTestDatabase } from './support/postgres.js';
import { usableCatalogs } from './support/catalogs.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

function cli(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { cwd: ROOT, env: { ...process.env, ...env }, encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const BRIEF = {
  call_id: '2023-10-27T14:30:00Z-8923',
  source_system: 'genesys_cloud',
  recording_id: 'rec_5f3a2b1c9d8e7f6g5h4i3j2k1l',
  legacy_archive_id: null,
  storage_location: 'GENESYS_CLOUD_ARCHIVE',
  retention_expiry: '2025-10-27T14:30:00Z',
  encryption_status: 'AES_256',
};

/** The command line as an operator uses it: a config file, exit codes, messages naming lines and fields. */
// Each CLI call is a process start (~2 s, far more on a loaded 2-core machine): generous timeouts.
describe.each(await usableCatalogs())('custodian CLI on %s', { timeout: 120_000 }, (kind) => {
  let dir: string;
  let config: string;
  let drop: (() => Promise<void>) | undefined;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'custodian-cli-'));
    let catalog: Record<string, unknown> = { driver: 'sqlite', path: join(dir, 'catalog.sqlite') };
    if (kind === 'postgres') {
      const db = await createTestDatabase();
      drop = db.drop;
      catalog = { driver: 'postgres', url: 'env:CLI_TEST_PG_URL' };
      process.env.CLI_TEST_PG_URL = db.url;
    }
    config = join(dir, 'custodian.json');
    writeFileSync(config, JSON.stringify({ data_dir: dir, catalog, tenants: [{ id: 'acme' }, { id: 'globex' }] }));
  });
  afterAll(async () => {
    await drop?.();
    rmSync(dir, { recursive: true, force: true });
  });

  it('migrates, imports the brief record shape idempotently, exports the same shape, and audits both', async () => {
    expect(cli(['migrate', '--config', config]).code).toBe(0);
    const file = join(dir, 'records.jsonl');
    writeFileSync(
      file,
      [
        JSON.stringify({ ...BRIEF, tenant_id: 'acme', conversation_id: 'conv-8923' }),
        JSON.stringify({ tenant_id: 'acme', call_id: BRIEF.call_id, source_system: 'avaya_aura', legacy_archive_id: 'avaya_8923', storage_location: 'LEGACY_ARCHIVE' }),
        '',
        JSON.stringify({ tenant_id: 'globex', call_id: 'g-1', source_system: 'verint', legacy_archive_id: 'v-1' }),
      ].join('\n'),
    );
    const first = cli(['import', file, '--config', config]);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toContain('3 row(s): 2 new, 1 updated, 0 unchanged');
    const again = cli(['import', file, '--config', config]);
    expect(again.stdout).toContain('3 row(s): 0 new, 0 updated, 3 unchanged');
    const out = cli(['export', '--tenant', 'acme', '--config', config]);
    const rows = out.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(rows).toHaveLength(2);
    expect(rows.find((r) => r.source_system === 'genesys_cloud')).toMatchObject({ ...BRIEF, tenant_id: 'acme', retention_expiry: '2025-10-27T14:30:00.000Z' });

    // Both are admin actions in the trail (PCI DSS 10.2.1.x); what each event holds: test/catalog-commands.test.ts.
    const cat = kind === 'postgres' ? openPostgres(process.env.CLI_TEST_PG_URL!, 1) : openSqlite(join(dir, 'catalog.sqlite'));
    try {
      const events = await cat.db.selectFrom('audit_events').select(['action', 'tenant_id', 'outcome', 'sha256']).where('action', 'like', 'admin.catalog.%').orderBy('seq').execute();
      const sha = createHash('sha256').update(readFileSync(file)).digest('hex');
      expect(events).toEqual([
        ...['acme', 'globex', 'acme', 'globex'].map((t) => ({ action: 'admin.catalog.import', tenant_id: t, outcome: 'completed', sha256: sha })),
        { action: 'admin.catalog.export', tenant_id: 'acme', outcome: 'allowed', sha256: null },
        { action: 'admin.catalog.export.end', tenant_id: 'acme', outcome: 'completed', sha256: createHash('sha256').update(out.stdout).digest('hex') },
      ]);
    } finally {
      await cat.close();
    }
  });

  // The remaining paths do not depend on the dialect; spawning the CLI costs seconds, so SQLite only.
  it.runIf(kind === 'sqlite')('reports every bad row with its line number and writes nothing', () => {
    const file = join(dir, 'bad.csv');
    writeFileSync(
      file,
      [
        'tenant_id,call_id,source_system,legacy_archive_id,retention_expiry,size_bytes',
        'acme,c-ok,avaya_aura,ok_1,2030-01-01,100',
        'acme,c-bad-date,avaya_aura,bad_1,next tuesday,100',
        'nobody,c-bad-tenant,avaya_aura,bad_2,,',
        'acme,c-bad-size,avaya_aura,bad_3,,-5',
      ].join('\n'),
    );
    const r = cli(['import', file, '--config', config]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/bad\.csv:3: retention_expiry/);
    expect(r.stderr).toMatch(/bad\.csv:4: tenant_id: unknown tenant "nobody"/);
    expect(r.stderr).toMatch(/bad\.csv:5: size_bytes/);
    expect(r.stderr).toContain('3 bad row(s); nothing was written');
    expect(cli(['export', '--config', config]).stdout).not.toContain('ok_1');
  });

  it.runIf(kind === 'sqlite')('a file it cannot read is one line about the file, not "bad rows"', () => {
    const r = cli(['import', join(dir, 'no-such.jsonl'), '--config', config]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/no-such\.jsonl: cannot read the file \(ENOENT/);
    expect(r.stderr).toContain('nothing was written');
    expect(r.stderr).not.toContain('bad row');
  });

  it.runIf(kind === 'sqlite')('issues an API key shown once, and verifies the audit chain', () => {
    const k = cli(['keys', 'create', '--tenant', 'acme', '--principal', 'auditor-7', '--scopes', 'recordings:read,audit:read', '--config', config]);
    expect(k.code, k.stderr).toBe(0);
    expect(k.stdout.trim()).toMatch(/^cst_[A-Za-z0-9-]+_[A-Za-z0-9_-]{40,}$/);
    expect(cli(['keys', 'create', '--tenant', 'nope', '--principal', 'x', '--config', config]).code).toBe(78);
    expect(cli(['keys', 'create', '--tenant', 'acme', '--principal', 'x', '--scopes', 'root', '--config', config]).stderr).toContain('unknown scope');
    const v = cli(['audit', 'verify', '--config', config]);
    expect(v.code).toBe(0);
    expect(JSON.parse(v.stdout)).toMatchObject({ ok: true });
  });

  // These were a raw ENOENT dump, an unhandled 'error' event, an AppError stack, and an export of nothing for a tenant that does not exist.
  it.runIf(kind === 'sqlite')('refuses flags it cannot act on with one line, and writes no file', () => {
    const oneLine = (r: ReturnType<typeof cli>, code: number, re: RegExp) => {
      expect(r.code, r.stderr).toBe(code);
      expect(r.stderr.trim()).toMatch(re);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
    };
    oneLine(cli(['export', '--tenant', 'nope', '--config', config]), 78, /^--tenant: unknown tenant "nope"$/);
    oneLine(cli(['export', '--out', join(dir, 'absent', 'x.jsonl'), '--config', config]), 1, /^ENOENT: no such file or directory/);
    oneLine(cli(['audit', 'export', '--from', '2026-01-01', '--to', '2026-01-02', '--out', join(dir, 'absent', 'a.jsonl'), '--config', config]), 1, /^ENOENT: /);
    oneLine(cli(['sync', '--source', 'nope', '--config', config]), 78, /^--source: unknown source "nope" for tenant "acme" \(known: none\)$/);
    const out = join(dir, 'export-again.jsonl');
    writeFileSync(out, 'PREVIOUS-CONTENT\n');
    expect(cli(['export', '--out', out, '--config', config]).code).toBe(0);
    expect(readFileSync(out, 'utf8')).not.toContain('PREVIOUS-CONTENT');
    expect(readFileSync(out, 'utf8')).toMatch(/^{"tenant_id"/);
  });

  it.runIf(kind === 'sqlite')('stops on a bad config file with a message naming the field', () => {
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'server:\n  port: "eighty"\ntenants:\n  - id: Acme Corp\n');
    const r = cli(['migrate', '--config', bad]);
    expect(r.code).toBe(78);
    expect(r.stderr).toContain('server.port');
    expect(r.stderr).toContain('tenants[0].id');
  });
});

/** An unreadable command line is a usage error: exit 2 and one line naming the option — it used to be a TypeError's stack and exit 1. */
describe('custodian CLI refusing its command line', { timeout: 120_000 }, () => {
  const run = (args: string[]) =>
    new Promise<{ code: number | null; stderr: string }>((resolve) => {
      execFile(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { cwd: ROOT, timeout: 60_000 }, (e, _out, stderr) =>
        resolve({ code: e ? (typeof e.code === 'number' ? e.code : null) : 0, stderr }),
      );
    });

  it.each([
    [['serve', '--bogus'], /^custodian serve: Unknown option '--bogus' \(custodian serve --help\)$/],
    [['doctor', 'stray'], /^custodian doctor: Unexpected argument 'stray'/],
    [['sim', 'genesys', '--port'], /^custodian sim: Option '--port <value>' argument missing/],
    [['verify', 'integrity', '--recordings', 'x'], /^custodian verify: Unknown option '--recordings'/],
  ])('%j exits 2 with one line', async (args, message) => {
    const r = await run(args);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr.trim()).toMatch(message);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });
});
