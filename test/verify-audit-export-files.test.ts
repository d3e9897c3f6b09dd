import { spawnSync } from 'node:child_process';
import { createHash, generateKeyPairSync, sign } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const SCRIPT = fileURLToPath(new URL('../scripts/verify-audit-export.mjs', import.meta.url));

/** The offline verifier as a user runs it: exit code, stdout, stderr. */
function run(...args: string[]) {
  const r = spawnSync(process.execPath, [SCRIPT, ...args], { encoding: 'utf8', cwd: '/' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/**
 * A file the verifier cannot read (missing, a directory) is neither a verdict on an export (exit 1,
 * `{"ok":false}`) nor a crash: one line on stderr naming the file, exit 2 — as a usage error is.
 * It was an uncaught ENOENT with Node's stack trace, exit 1: a script could not tell "this export
 * is forged" from "this path is wrong".
 */
describe('verify-audit-export.mjs: a file it cannot read, a line it cannot use', () => {
  let dir: string;
  let exportFile: string;
  let pubkey: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'verify-files-'));
    // A real, verifiable export with no events: an empty run and its signed manifest (docs/AUDIT.md).
    const { publicKey, privateKey } = generateKeyPairSync('ed25519');
    const pem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
    const der = publicKey.export({ type: 'spki', format: 'der' });
    const manifest = JSON.stringify({
      format: 'custodian.audit-export.v1',
      scope: { tenant: null, from: '2024-01-01T00:00:00.000Z', to: '2024-01-02T00:00:00.000Z' },
      contiguous: true,
      count: 0,
      first_seq: null,
      last_seq: null,
      first_hash: null,
      last_hash: null,
      first_prev_hash: null,
      lines_sha256: createHash('sha256').digest('hex'),
      chain_head: null,
      created_at: '2024-01-02T00:00:00.000Z',
      key_id: 'sha256:' + createHash('sha256').update(der).digest('hex'),
      algorithm: 'Ed25519',
      public_key: pem,
    });
    const signature = sign(null, Buffer.from(manifest), privateKey).toString('base64');
    exportFile = join(dir, 'export.jsonl');
    writeFileSync(exportFile, JSON.stringify({ type: 'manifest', manifest, signature }) + '\n');
    pubkey = join(dir, 'pinned.pem');
    writeFileSync(pubkey, pem);
    mkdirSync(join(dir, 'a-directory'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** One line on stderr naming `file`, no stack trace, no verdict on stdout, exit 2. */
  function expectOneLineError(r: ReturnType<typeof run>, file: string) {
    expect(r.code, r.stderr).toBe(2);
    expect(r.stdout).toBe('');
    const lines = r.stderr.split('\n').filter(Boolean);
    expect(lines, r.stderr).toHaveLength(1);
    expect(lines[0]).toMatch(/^verify-audit-export: /);
    expect(lines[0]).toContain(JSON.stringify(file));
    expect(r.stderr).not.toMatch(/\n\s+at |node:internal|triggerUncaughtException|errno/);
  }

  it('verifies the well-formed export (the fixture is sound)', () => {
    const r = run(exportFile, '--pubkey', pubkey);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ ok: true, count: 0, pinned: true });
  });

  it('an export that does not exist', () => {
    const missing = join(dir, 'no-such-export.jsonl');
    const r = run(missing, '--pubkey', pubkey);
    expectOneLineError(r, missing);
    expect(r.stderr).toMatch(/does not exist/);
  });

  it('an export that cannot be read (a directory)', () => {
    const d = join(dir, 'a-directory');
    const r = run(d, '--pubkey', pubkey);
    expectOneLineError(r, d);
    expect(r.stderr).toMatch(/cannot be read: it is a directory/);
  });

  it('a --pubkey file that does not exist, or cannot be read', () => {
    const missing = join(dir, 'no-such-key.pem');
    const r = run(exportFile, '--pubkey', missing);
    expectOneLineError(r, missing);
    expect(r.stderr).toMatch(/does not exist/);
    const d = join(dir, 'a-directory');
    const r2 = run(exportFile, `--pubkey=${d}`);
    expectOneLineError(r2, d);
    expect(r2.stderr).toMatch(/cannot be read: it is a directory/);
  });

  it('a --pubkey file that is readable but not a public key stays a usage error', () => {
    const r = run(exportFile, '--pubkey', exportFile);
    expectOneLineError(r, exportFile);
    expect(r.stderr).toMatch(/PEM public key/);
  });

  it('a line that is JSON but not an object is a verdict (exit 1), never a crash', () => {
    const nullEvent = join(dir, 'null-event.jsonl');
    writeFileSync(nullEvent, 'null\n' + JSON.stringify({ type: 'manifest', manifest: '{}', signature: '' }) + '\n');
    const r = run(nullEvent, '--pubkey', pubkey);
    expect(r.code, r.stderr).toBe(1);
    expect(JSON.parse(r.stdout)).toMatchObject({ ok: false, reason: 'unexpected_line', line: 1 });
    const nullManifest = join(dir, 'null-manifest.jsonl');
    writeFileSync(nullManifest, JSON.stringify({ type: 'manifest', manifest: 'null', signature: '' }) + '\n');
    const r2 = run(nullManifest, '--pubkey', pubkey);
    expect(r2.code, r2.stderr).toBe(1);
    expect(JSON.parse(r2.stdout)).toMatchObject({ ok: false, reason: 'no_manifest' });
  });
});
