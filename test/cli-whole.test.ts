import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import SQLite from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuditRepository } from '../src/audit/audit-repository.js';
import { openSqlite } from '../src/catalog/database.js';
import type { KeyService } from '../src/keys/keyring.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const MAIN = ['--import', 'tsx', 'src/cli/main.ts'];

function cli(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [...MAIN, ...args], { cwd: ROOT, env: { ...process.env, ...env }, encoding: 'utf8', timeout: 90_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A refusal an operator can act on: the exit status, and one line on stderr. */
function oneLine(r: ReturnType<typeof cli>, code: number, re: RegExp) {
  expect(r.code, r.stderr).toBe(code);
  expect(r.stderr.trim().split('\n'), r.stderr).toHaveLength(1);
  expect(r.stderr.trim()).toMatch(re);
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** Admin commands and their audit events, exports written whole, one-line refusals: on SQLite (the CLI paths do not depend on the dialect). */
describe('custodian CLI: whole or nothing, audited or refused', { timeout: 300_000 }, () => {
  let dir: string;
  let config: string;
  let dbPath: string;

  const withDb = <T>(fn: (db: SQLite.Database) => T): T => {
    const db = new SQLite(dbPath);
    try {
      return fn(db);
    } finally {
      db.close();
    }
  };
  // The trail cannot be written: every INSERT into audit_events fails (as a full disk or a lost catalog would).
  const blockAudit = () => withDb((db) => db.exec("create trigger block_audit before insert on audit_events begin select raise(abort, 'audit down'); end"));
  const unblockAudit = () => withDb((db) => db.exec('drop trigger if exists block_audit'));
  const events = (action: string) =>
    withDb((db) => db.prepare('select action, outcome, bytes_sent, sha256, detail, related_event_id from audit_events where action = ? order by seq').all(action) as { outcome: string; bytes_sent: number | null; sha256: string | null; detail: string; related_event_id: string | null }[]);
  const eventCount = () => withDb((db) => (db.prepare('select count(*) as n from audit_events').get() as { n: number }).n);

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'custodian-cli-whole-'));
    dbPath = join(dir, 'catalog.sqlite');
    config = join(dir, 'custodian.json');
    writeFileSync(config, JSON.stringify({ data_dir: dir, catalog: { driver: 'sqlite', path: dbPath }, tenants: [{ id: 'acme' }] }));
    expect(cli(['migrate', '--config', config]).code).toBe(0);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('keys create: when its audit event cannot be written no key is issued, and one line says so', () => {
    blockAudit();
    try {
      const r = cli(['keys', 'create', '--tenant', 'acme', '--principal', 'p', '--config', config]);
      oneLine(r, 1, /audit/);
      expect(r.stdout).toBe('');
      expect(withDb((db) => db.prepare('select count(*) as n from api_keys').get())).toEqual({ n: 0 });
    } finally {
      unblockAudit();
    }
  });

  it('keys revoke: when its audit event cannot be written the key stays active, and one line says so', () => {
    const k = cli(['keys', 'create', '--tenant', 'acme', '--principal', 'p', '--config', config]);
    expect(k.code, k.stderr).toBe(0);
    const id = /^key (\S+) for/.exec(k.stderr)![1]!;
    blockAudit();
    try {
      oneLine(cli(['keys', 'revoke', id, '--config', config]), 1, /audit/);
      expect(withDb((db) => db.prepare('select revoked_at from api_keys where id = ?').get(id))).toEqual({ revoked_at: null });
    } finally {
      unblockAudit();
    }
    expect(cli(['keys', 'revoke', id, '--config', config]).code).toBe(0);
    expect(events('admin.api_key.revoke').map((e) => e.outcome)).toEqual(['completed']);
    expect(events('admin.api_key.create').map((e) => e.outcome)).toEqual(['completed']);
  });

  it('audit verify and audit export: one line when the trail cannot be written, and no file', () => {
    const out = join(dir, 'blocked.jsonl');
    blockAudit();
    try {
      oneLine(cli(['audit', 'verify', '--config', config]), 1, /audit/);
      oneLine(cli(['audit', 'export', '--from', '2020-01-01', '--to', '2100-01-01', '--out', out, '--config', config]), 1, /audit/);
      expect(existsSync(out)).toBe(false);
    } finally {
      unblockAudit();
    }
  });

  it('audit export: the .end event records the bytes and the SHA-256 of the whole file written', () => {
    const out = join(dir, 'whole.jsonl');
    const r = cli(['audit', 'export', '--from', '2020-01-01', '--to', '2100-01-01', '--out', out, '--config', config]);
    expect(r.code, r.stderr).toBe(0);
    const file = readFileSync(out);
    const end = events('audit.export.end').at(-1)!;
    expect(end).toMatchObject({ outcome: 'completed', bytes_sent: file.length, sha256: sha256(file) });
    expect(end.related_event_id).toBeTruthy();
  });

  it('audit export: a file that exists is refused before anything is audited; a write that fails ends "failed"', () => {
    const existing = join(dir, 'existing.jsonl');
    writeFileSync(existing, 'EARLIER EXPORT\n');
    const before = eventCount();
    oneLine(cli(['audit', 'export', '--from', '2020-01-01', '--to', '2100-01-01', '--out', existing, '--config', config]), 78, /--out: .*exists/);
    expect(eventCount()).toBe(before);
    expect(readFileSync(existing, 'utf8')).toBe('EARLIER EXPORT\n');

    oneLine(cli(['audit', 'export', '--from', '2020-01-01', '--to', '2100-01-01', '--out', join(dir, 'absent', 'x.jsonl'), '--config', config]), 1, /ENOENT/);
    const [allowed, end] = withDb((db) => db.prepare('select id, action, outcome, related_event_id from audit_events order by seq desc limit 2').all().reverse()) as { id: string; action: string; outcome: string; related_event_id: string | null }[];
    expect(allowed).toMatchObject({ action: 'audit.export', outcome: 'allowed' });
    expect(end).toMatchObject({ action: 'audit.export.end', outcome: 'failed', related_event_id: allowed!.id });
  });

  it.each([
    [['1', '12']],
    [['2024-02-30', '2024-03-05']],
    [['2024-01-01', '2024-13-01']],
    [['2024-01-01T25:00:00Z', '2024-02-01']],
    [['2024-01-01', 'March 2024']],
  ])('audit export refuses %j: strict ISO-8601 dates or date-times only', ([from, to]) => {
    oneLine(cli(['audit', 'export', '--from', from!, '--to', to!, '--out', join(dir, 'never.jsonl'), '--config', config]), 78, /^--(from|to): /);
    expect(existsSync(join(dir, 'never.jsonl'))).toBe(false);
  });

  it('sync --since refuses a date that does not exist', () => {
    oneLine(cli(['sync', '--since', '2024-02-30', '--config', config]), 78, /^--since: /);
  });

  it('audit export interrupted (SIGINT) leaves nothing at its name, and the rerun writes it', async () => {
    // A trail long enough that the export is still writing when the signal comes.
    const cat = openSqlite(dbPath);
    const repo = new AuditRepository(cat.db, 'sqlite', {} as KeyService);
    for (let batch = 0; batch < 6; batch++) {
      await Promise.all(Array.from({ length: 5000 }, (_, i) => repo.append({ tenantId: 'acme', principalId: 'seed', principalKind: 'system', action: 'seed', outcome: 'completed', detail: { i, batch, pad: 'x'.repeat(200) } })));
    }
    await cat.close();
    const sub = join(dir, 'interrupted');
    rmSync(sub, { recursive: true, force: true });
    const { mkdirSync } = await import('node:fs');
    mkdirSync(sub);
    const out = join(sub, 'q1.jsonl');
    const child = spawn(process.execPath, [...MAIN, 'audit', 'export', '--from', '2020-01-01', '--to', '2100-01-01', '--out', out, '--config', config], { cwd: ROOT, stdio: 'ignore' });
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    // As soon as anything of the export is on disk (the file, or the file it is written into first).
    await new Promise<void>((resolve) => {
      const poll = setInterval(() => {
        if (readdirSync(sub).length) {
          clearInterval(poll);
          child.kill('SIGINT');
          resolve();
        }
      }, 1);
      void exited.then(() => {
        clearInterval(poll);
        resolve();
      });
    });
    await exited;
    if (existsSync(out)) {
      // The signal came too late: then the file must be whole (its last line is the signed manifest).
      const last = readFileSync(out, 'utf8').trim().split('\n').at(-1)!;
      expect(JSON.parse(last)).toHaveProperty('manifest');
    } else {
      const r = cli(['audit', 'export', '--from', '2020-01-01', '--to', '2100-01-01', '--out', out, '--config', config]);
      expect(r.code, r.stderr).toBe(0);
      expect(JSON.parse(readFileSync(out, 'utf8').trim().split('\n').at(-1)!)).toHaveProperty('manifest');
    }
  });

  it('report migration --out: a file it cannot write is exit 1 with one line, audited "failed", never "completed"', () => {
    for (const out of [join(dir, 'absent', 'r.json'), '/dev/full']) {
      const before = events('report.migration').length;
      oneLine(cli(['report', 'migration', '--out', out, '--config', config]), 1, out === '/dev/full' ? /ENOSPC/ : /ENOENT/);
      const after = events('report.migration').slice(before);
      expect(after.map((e) => e.outcome)).toEqual(['failed']);
    }
    expect(statSync('/dev/full').isCharacterDevice()).toBe(true);
    const ok = join(dir, 'report.json');
    expect(cli(['report', 'migration', '--out', ok, '--config', config]).code).toBe(0);
    expect(JSON.parse(readFileSync(ok, 'utf8'))).toBeInstanceOf(Array);
    expect(events('report.migration').at(-1)!.outcome).toBe('completed');
  });

  it('--out /dev/stdout streams to the standard output and leaves /dev/stdout as it is', () => {
    // As an operator runs it: the standard output a shell pipe (`… --out /dev/stdout | gzip`).
    const piped = (args: string[]) => {
      const r = spawnSync('sh', ['-c', `"$0" ${MAIN.join(' ')} "$@" | cat`, process.execPath, ...args], { cwd: ROOT, encoding: 'utf8', timeout: 90_000, maxBuffer: 256 * 1024 * 1024 });
      return { code: r.status, stdout: r.stdout, stderr: r.stderr };
    };
    const r = piped(['audit', 'export', '--from', '2020-01-01', '--to', '2100-01-01', '--out', '/dev/stdout', '--config', config]);
    expect(r.stderr).toMatch(/event\(s\) exported to \/dev\/stdout/);
    expect(JSON.parse(r.stdout.trim().split('\n').at(-1)!)).toHaveProperty('manifest');
    const rep = piped(['report', 'migration', '--out', '/dev/stdout', '--config', config]);
    expect(rep.stderr).toMatch(/^acme: recordings/m);
    expect(JSON.parse(rep.stdout)).toBeInstanceOf(Array);
    expect(statSync('/dev/stdout').isFile()).toBe(false);
  });

  it('doctor --timeout-ms beyond what a timer can wait is refused (exit 78)', () => {
    oneLine(cli(['doctor', '--timeout-ms', String(2 ** 31), '--config', config]), 78, /^--timeout-ms: /);
  });

  it('verify integrity refuses a stray argument (exit 2), as its usage says', () => {
    const r = cli(['verify', 'integrity', 'extra', '--sample', '1', '--config', config]);
    expect(r.code, r.stderr).toBe(2);
  });
});

/** Start-up mistakes in the config file: one line naming the field and the reason, exit 78, no password printed. */
describe('custodian CLI: start-up mistakes are one line naming the field', { timeout: 300_000 }, () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'custodian-cli-startup-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const migrate = (doc: Record<string, unknown>, env: Record<string, string> = {}) => {
    const file = join(dir, `c-${Math.random().toString(36).slice(2)}.json`);
    writeFileSync(file, JSON.stringify({ data_dir: dir, ...doc }));
    return cli(['migrate', '--config', file], env);
  };
  const pg = (url: string) => migrate({ catalog: { driver: 'postgres', url: 'env:T_PG_URL' } }, { T_PG_URL: url });

  it('auth.jwt.public_keys that are not PEM keys', () => {
    oneLine(migrate({ auth: { jwt: { issuer: 'https://idp.example.com/', audience: 'custodian', public_keys: ['not a pem'] } } }), 78, /^auth\.jwt\.public_keys\[0\]: /);
  });

  it("a legacy-http source's tls_ca_file that does not exist", () => {
    const r = migrate({
      tenants: [{ id: 'acme', sources: [{ name: 'avaya', type: 'legacy-http', provider: 'generic_http', api_endpoint: 'https://acr.example.internal', auth_type: 'none', tls_ca_file: join(dir, 'no-ca.pem') }] }],
    });
    oneLine(r, 78, /source avaya: tls_ca_file cannot be read \(ENOENT\)/);
  });

  it('a SQLite catalog.path that is not a database', () => {
    const path = join(dir, 'not-a-db.sqlite');
    writeFileSync(path, 'this is not a database, it is a text file that is long enough to be looked at\n'.repeat(20));
    oneLine(migrate({ catalog: { driver: 'sqlite', path } }), 78, /^catalog\.path: /);
  });

  it.each([
    ['a role that does not exist', 'postgres://no_such_role_x:s3cr3t-pw@127.0.0.1:5432/test'],
    ['a database that does not exist', 'postgres://postgres:s3cr3t-pw@127.0.0.1:5432/no_such_database_x'],
    ['sslmode=require on a server without SSL', 'postgres://postgres:s3cr3t-pw@127.0.0.1:5432/test?sslmode=require'],
  ])('a PostgreSQL catalog.url with %s', (what, url) => {
    const r = pg(url);
    // pg itself warns (process.emitWarning, several lines) about what sslmode=require will mean in its next major version: that is its word, not ours.
    const ours = what.startsWith('sslmode') ? { ...r, stderr: r.stderr.trim().split('\n').at(-1)! } : r;
    oneLine(ours, 78, /^catalog\.url: cannot connect to PostgreSQL \(.+\)$/);
    expect(r.stderr).not.toContain('s3cr3t-pw');
    expect(r.stderr).not.toMatch(/^\s+at /m);
  });

  it('a PostgreSQL server not listening is an outage, not a bad file: one line, exit 1 (a supervisor restarts it)', () => {
    const r = pg('postgres://postgres:s3cr3t-pw@127.0.0.1:1/test');
    oneLine(r, 1, /^catalog\.url: PostgreSQL cannot be reached \(.+\)$/);
    expect(r.stderr).not.toContain('s3cr3t-pw');
  });

  it.each([
    ['a malformed URL', 'postgres://postgres:s3cr3t-pw@127.0.0.1:5432:99/test'],
    ['another scheme', 'mysql://postgres:s3cr3t-pw@127.0.0.1:5432/test'],
  ])('a PostgreSQL catalog.url with %s is refused when the file is read, like any bad field', (_what, url) => {
    const r = pg(url);
    expect(r.code, r.stderr).toBe(78);
    expect(r.stderr).toMatch(/^\s*catalog\.url: must be a postgres:\/\/ or postgresql:\/\/ URL$/m);
    expect(r.stderr).not.toContain('s3cr3t-pw');
    expect(r.stderr).not.toMatch(/^\s+at /m);
  });
});
