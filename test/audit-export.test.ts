import { execFileSync, spawnSync } from 'node:child_process';
import { createHash, generateKeyPairSync, sign } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ExportManifest } from '../src/audit/export.js';
import { auditExport } from '../src/cli/audit-export.js';
import { usableCatalogs } from './support/catalogs.js';
import { KEYS, bearer, startTestGateway, type TestGateway } from './support/gateway.js';
import { raw } from './support/http.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const SCRIPT = join(ROOT, 'scripts', 'verify-audit-export.mjs');

/** The documented offline check: plain node, no dependencies, nothing from this repository imported. */
function verifyOffline(file: string, pubkey?: string): { code: number | null; out: Record<string, unknown> } {
  const r = spawnSync(process.execPath, [SCRIPT, file, ...(pubkey ? ['--pubkey', pubkey] : [])], { encoding: 'utf8', cwd: '/' });
  return { code: r.status, out: JSON.parse(r.stdout.trim().split('\n').pop() || '{}') };
}

/** The script with any arguments: exit code, its one JSON line (if any) and stderr. */
function runVerifier(...args: string[]): { code: number | null; out: Record<string, unknown> | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [SCRIPT, ...args], { encoding: 'utf8', cwd: '/' });
  const last = r.stdout.trim().split('\n').pop();
  return { code: r.status, out: last ? JSON.parse(last) : null, stdout: r.stdout, stderr: r.stderr };
}

const lines = (file: string) => readFileSync(file, 'utf8').split('\n').filter(Boolean);
const manifestOf = (file: string) => JSON.parse(JSON.parse(lines(file).at(-1)!).manifest) as ExportManifest;

describe.each(await usableCatalogs())('audit export and offline verification on %s', (kind) => {
  let gw: TestGateway;
  let from: string;
  let pinned: string;
  beforeAll(async () => {
    gw = await startTestGateway({ catalog: kind, config: (doc) => (doc.auth.rate_limit = { max: 10_000, window_ms: 60_000 }) });
    from = new Date(Date.now() - 60_000).toISOString();
    await gw.seed([{ call_id: 'c-exp', legacy_archive_id: 'exp_1', locator: 'call_mono_pcm16_8k.wav' }]);
    for (let i = 0; i < 5; i++) {
      await raw(`${gw.url}/api/v1/recordings/exp_1`, { headers: bearer(KEYS.acme) });
      await raw(`${gw.url}/api/v1/recordings`, { headers: bearer(KEYS.globex) });
    }
    await raw(`${gw.url}/api/v1/recordings/exp_1/media?format=original`, { headers: bearer(KEYS.acme) });
    const key = await raw(`${gw.url}/api/v1/audit/signing-key`, { headers: bearer(KEYS.acmeAuditor) });
    const k = JSON.parse(key.body.toString());
    expect(k).toMatchObject({ algorithm: 'Ed25519', key_id: expect.stringMatching(/^sha256:[0-9a-f]{64}$/) });
    pinned = join(gw.dir, 'pinned.pem');
    writeFileSync(pinned, k.public_key);
  });
  afterAll(async () => gw?.stop());

  const to = () => new Date(Date.now() + 60_000).toISOString();

  it("streams the tenant's events as JSONL with a signed manifest; the export is audited with the bytes and digest sent", async () => {
    const res = await raw(`${gw.url}/api/v1/audit/export?from=${encodeURIComponent(from)}&to=${encodeURIComponent(to())}`, { headers: bearer(KEYS.acmeAuditor) });
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('application/x-ndjson');
    expect(res.headers['content-disposition']).toMatch(/^attachment; filename="audit-acme-/);
    const body = res.body.toString('utf8').split('\n').filter(Boolean);
    const events = body.slice(0, -1).map((l) => JSON.parse(l));
    const manifest = JSON.parse(JSON.parse(body.at(-1)!).manifest) as ExportManifest;
    expect(events.length).toBeGreaterThan(5);
    expect(events.every((e) => e.type === 'event' && e.tenantId === 'acme')).toBe(true);
    expect(events.map((e) => e.action)).toEqual(expect.arrayContaining(['recording.metadata', 'recording.media', 'recording.media.end', 'audit.export']));
    // The export's own "allowed" event is in it: the read of the trail is logged before the data leaves.
    expect(events.at(-1)).toMatchObject({ action: 'audit.export', outcome: 'allowed', id: res.headers['x-audit-event-id'] });
    expect(manifest).toMatchObject({ format: 'custodian.audit-export.v1', scope: { tenant: 'acme' }, contiguous: false, count: events.length, first_seq: events[0].seq, last_seq: events.at(-1).seq, algorithm: 'Ed25519' });
    const before = res.body.subarray(0, res.body.length - Buffer.byteLength(body.at(-1)!) - 1);
    expect(manifest.lines_sha256).toBe(createHash('sha256').update(before).digest('hex'));

    let end;
    for (let i = 0; i < 50 && !end; i++) {
      end = (await gw.deps.auditRepo.query({ tenantId: 'acme', action: 'audit.export.end', limit: 100 })).items.find((e) => e.relatedEventId === res.headers['x-audit-event-id']);
      if (!end) await new Promise((r) => setTimeout(r, 20));
    }
    expect(end).toMatchObject({ outcome: 'completed', bytesSent: res.body.length, sha256: createHash('sha256').update(res.body).digest('hex'), principalId: 'audrey' });

    const file = join(gw.dir, 'http-export.jsonl');
    writeFileSync(file, res.body);
    expect(verifyOffline(file, pinned)).toMatchObject({ code: 0, out: { ok: true, count: events.length, contiguous: false, pinned: true } });
  });

  it('HEAD: the export\'s head, no body, nothing read or signed, audited as 0 bytes with detail.head', async () => {
    const repo = gw.deps.auditRepo;
    const original = repo.exportEvents.bind(repo);
    let reads = 0;
    repo.exportEvents = (...a: Parameters<typeof repo.exportEvents>) => (reads++, original(...a));
    try {
      const res = await raw(`${gw.url}/api/v1/audit/export?from=${encodeURIComponent(from)}&to=${encodeURIComponent(to())}`, { method: 'HEAD', headers: bearer(KEYS.acmeAuditor) });
      expect(res.status).toBe(200);
      expect(res.headers['content-type']).toBe('application/x-ndjson');
      expect(res.headers['content-disposition']).toMatch(/^attachment; filename="audit-acme-/);
      expect(res.body.length).toBe(0);
      expect(reads).toBe(0);
      let end;
      for (let i = 0; i < 50 && !end; i++) {
        end = (await repo.query({ tenantId: 'acme', action: 'audit.export.end', limit: 100 })).items.find((e) => e.relatedEventId === res.headers['x-audit-event-id']);
        if (!end) await new Promise((r) => setTimeout(r, 20));
      }
      expect(end).toMatchObject({ outcome: 'completed', bytesSent: 0, sha256: null, detail: expect.objectContaining({ head: true }) });
    } finally {
      repo.exportEvents = original;
    }
  });

  it('a trail that fails midway: an incomplete transfer, never a clean end without the manifest, and audit.export.end failed', async () => {
    const repo = gw.deps.auditRepo;
    const original = repo.exportEvents.bind(repo);
    repo.exportEvents = async function* (...a: Parameters<typeof repo.exportEvents>) {
      let n = 0;
      for await (const e of original(...a)) {
        if (++n > 3) throw new Error('catalog connection lost');
        yield e;
      }
    };
    try {
      const res = await raw(`${gw.url}/api/v1/audit/export?from=${encodeURIComponent(from)}&to=${encodeURIComponent(to())}`, { headers: bearer(KEYS.acmeAuditor) });
      expect(res.status).toBe(200);
      expect(res.complete).toBe(false);
      expect(res.body.toString()).not.toContain('"manifest"');
      let end;
      for (let i = 0; i < 50 && !end; i++) {
        end = (await repo.query({ tenantId: 'acme', action: 'audit.export.end', limit: 100 })).items.find((e) => e.relatedEventId === res.headers['x-audit-event-id']);
        if (!end) await new Promise((r) => setTimeout(r, 20));
      }
      expect(end).toMatchObject({ outcome: 'failed', errorCode: 'internal' });
    } finally {
      repo.exportEvents = original;
    }
  });

  it('refuses bad periods, missing bounds and principals without audit:read', async () => {
    const q = (s: string, key = KEYS.acmeAuditor) => raw(`${gw.url}/api/v1/audit/export${s}`, { headers: bearer(key) });
    for (const [s, status] of [
      ['', 422],
      [`?from=${encodeURIComponent(from)}`, 422],
      [`?from=${encodeURIComponent(to())}&to=${encodeURIComponent(from)}`, 422],
      [`?from=yesterday&to=${encodeURIComponent(to())}`, 422],
    ] as const) {
      expect((await q(s)).status).toBe(status);
    }
    const reader = await q(`?from=${encodeURIComponent(from)}&to=${encodeURIComponent(to())}`, KEYS.acme);
    expect(reader.status).toBe(403);
  });

  it('exports the whole chain from the CLI (contiguous); the offline script accepts it and rejects every tampered copy', async () => {
    const file = join(gw.dir, 'all.jsonl');
    const m = await auditExport(gw.deps, { from, to: to(), out: file });
    expect(m).toMatchObject({ contiguous: true, scope: { tenant: null } });
    const evs = lines(file).slice(0, -1).map((l) => JSON.parse(l));
    expect(new Set(evs.map((e) => e.tenantId))).toEqual(new Set(['acme', 'globex', null]));
    for (let i = 1; i < evs.length; i++) expect(evs[i].prevHash).toBe(evs[i - 1].hash);
    expect(verifyOffline(file, pinned)).toMatchObject({ code: 0, out: { ok: true, contiguous: true, count: m.count } });
    await expect(auditExport(gw.deps, { from, to: to(), tenant: 'initech', out: join(gw.dir, 'none.jsonl') })).rejects.toThrow(/unknown tenant/);
    await expect(auditExport(gw.deps, { from: to(), to: from, out: join(gw.dir, 'none.jsonl') })).rejects.toThrow(/before/);
    // It never overwrites evidence.
    await expect(auditExport(gw.deps, { from, to: to(), out: file })).rejects.toThrow(/exists/);
    // And it was audited.
    expect((await gw.deps.auditRepo.query({ tenantId: 'acme', action: 'audit.export', limit: 10 })).items.length).toBeGreaterThan(0);

    const tampered = (name: string, edit: (ls: string[]) => string[]) => {
      const f = join(gw.dir, `tampered-${name}.jsonl`);
      writeFileSync(f, edit(lines(file)).join('\n') + '\n');
      return verifyOffline(f, pinned);
    };
    const editEvent = (i: number, fn: (e: Record<string, unknown>) => void) => (ls: string[]) => ls.map((l, j) => (j === i ? JSON.stringify(Object.assign(JSON.parse(l), ((e) => (fn(e), e))(JSON.parse(l)))) : l));
    expect(tampered('field', editEvent(2, (e) => (e.outcome = 'denied')))).toMatchObject({ code: 1, out: { ok: false, reason: 'hash_mismatch' } });
    // Recomputing the edited event's hash does not help: the digest of the lines is signed.
    const rehash = (e: Record<string, unknown>) => {
      e.outcome = 'denied';
      const f = ['v1', 'id', 'occurredAt', 'tenantId', 'principalId', 'principalKind', 'callerId', 'requestId', 'auditLogId', 'httpRequestId', 'action', 'ref', 'recordingPk', 'copyId', 'origin', 'outcome', 'status', 'errorCode', 'bytesSent', 'sha256', 'clientIp', 'userAgent', 'relatedEventId', 'detail', 'prevHash'];
      e.hash = createHash('sha256').update(JSON.stringify(f.map((k) => (k === 'v1' ? 'v1' : e[k])))).digest('hex');
    };
    expect(tampered('rehashed', editEvent(2, rehash))).toMatchObject({ code: 1, out: { reason: 'lines_sha256_mismatch' } });
    expect(tampered('deleted', (ls) => ls.filter((_l, j) => j !== 3))).toMatchObject({ code: 1, out: { reason: 'lines_sha256_mismatch' } });
    expect(tampered('manifest', (ls) => ls.map((l, j) => (j === ls.length - 1 ? l.replace(/\\"count\\":\d+/, '\\"count\\":1') : l)))).toMatchObject({ code: 1, out: { reason: 'bad_signature' } });
    expect(tampered('no-manifest', (ls) => ls.slice(0, -1))).toMatchObject({ code: 1, out: { reason: 'no_manifest' } });
    // Checked against a key other than the one that signed it: refused.
    const other = join(gw.dir, 'other.pem');
    execFileSync('sh', ['-c', `openssl genpkey -algorithm ed25519 | openssl pkey -pubout > ${other}`]);
    expect(verifyOffline(file, other)).toMatchObject({ code: 1, out: { reason: 'key_not_pinned' } });
  });

  it('a forged export (an event edited, re-hashed, re-signed with another key) never gets ok:true: the trusted key is required, however the flag is spelt', () => {
    const file = join(gw.dir, 'all.jsonl');
    const ls = lines(file);
    const fields = ['v1', 'id', 'occurredAt', 'tenantId', 'principalId', 'principalKind', 'callerId', 'requestId', 'auditLogId', 'httpRequestId', 'action', 'ref', 'recordingPk', 'copyId', 'origin', 'outcome', 'status', 'errorCode', 'bytesSent', 'sha256', 'clientIp', 'userAgent', 'relatedEventId', 'detail', 'prevHash'];
    const events = ls.slice(0, -1).map((l) => JSON.parse(l) as Record<string, unknown>);
    const hashOf = (e: Record<string, unknown>) => createHash('sha256').update(JSON.stringify(fields.map((k) => (k === 'v1' ? 'v1' : e[k])))).digest('hex');
    // Event 0 is now someone else's action; every hash and link after it is recomputed, as a forger holding the file would.
    events[0]!.principalId = 'someone-else';
    events.forEach((e, i) => {
      if (i > 0) e.prevHash = events[i - 1]!.hash;
      e.hash = hashOf(e);
    });
    const body = events.map((e) => JSON.stringify(e) + '\n').join('');
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const forgerPem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
    const text = JSON.stringify({
      ...manifestOf(file),
      first_hash: events[0]!.hash,
      last_hash: events.at(-1)!.hash,
      lines_sha256: createHash('sha256').update(body).digest('hex'),
      key_id: 'sha256:' + createHash('sha256').update(publicKey.export({ type: 'spki', format: 'der' })).digest('hex'),
      public_key: forgerPem,
    });
    const forged = join(gw.dir, 'forged.jsonl');
    writeFileSync(forged, body + JSON.stringify({ type: 'manifest', manifest: text, signature: sign(null, Buffer.from(text), privateKey).toString('base64') }) + '\n');
    const forgerKey = join(gw.dir, 'forger.pem');
    writeFileSync(forgerKey, forgerPem);
    // The forgery is perfect against its own key: only the trusted key can tell.
    expect(runVerifier(forged, '--pubkey', forgerKey)).toMatchObject({ code: 0, out: { ok: true } });

    // Against the trusted key, both spellings refuse it.
    expect(runVerifier(forged, '--pubkey', pinned)).toMatchObject({ code: 1, out: { ok: false, reason: 'key_not_pinned' } });
    expect(runVerifier(forged, `--pubkey=${pinned}`)).toMatchObject({ code: 1, out: { ok: false, reason: 'key_not_pinned' } });
    expect(runVerifier(`--pubkey=${pinned}`, forged)).toMatchObject({ code: 1, out: { ok: false, reason: 'key_not_pinned' } });
    // The genuine export passes with either spelling.
    expect(runVerifier(file, `--pubkey=${pinned}`)).toMatchObject({ code: 0, out: { ok: true, pinned: true } });
    expect(runVerifier(file, '--pubkey', pinned)).toMatchObject({ code: 0, out: { ok: true, pinned: true } });

    // No key, a misspelt flag, a flag without its value, an unknown flag, two exports, an unreadable or
    // non-Ed25519 key: usage errors (exit 2), never ok:true, one line saying what to pass and where the key comes from.
    const notKey = join(gw.dir, 'not-a-key.pem');
    writeFileSync(notKey, 'hello\n');
    for (const args of [
      [forged],
      [file],
      [forged, '--pubkey-file', pinned],
      [forged, '--pubkey'],
      [forged, '--pubkey='],
      [forged, '--pubkey', pinned, '--no-pin'],
      [forged, '-k', pinned],
      [forged, forged, '--pubkey', pinned],
      [forged, '--pubkey', pinned, '--pubkey', forgerKey],
      [forged, '--pubkey', join(gw.dir, 'no-such.pem')],
      [forged, '--pubkey', notKey],
      ['--pubkey', pinned],
    ]) {
      const r = runVerifier(...args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stdout, args.join(' ')).not.toContain('"ok":true');
      expect(r.stderr.trim().split('\n'), args.join(' ')).toHaveLength(1);
      expect(r.stderr, args.join(' ')).toMatch(/--pubkey/);
      expect(r.stderr, args.join(' ')).toMatch(/GET \/api\/v1\/audit\/signing-key/);
      expect(r.stderr, args.join(' ')).toMatch(/fingerprint/);
    }
  });

  it('the equivalent openssl and coreutils commands of docs/AUDIT.md verify the signature and the digest', () => {
    const file = join(gw.dir, 'all.jsonl');
    const dir = gw.dir;
    // As documented: manifest bytes and signature out of the last line (node here; jq -j .manifest does the same).
    execFileSync('sh', [
      '-c',
      `tail -n 1 ${file} | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const m=JSON.parse(s);require("fs").writeFileSync("${dir}/manifest.json",m.manifest);require("fs").writeFileSync("${dir}/manifest.sig",Buffer.from(m.signature,"base64"));require("fs").writeFileSync("${dir}/export-pub.pem",JSON.parse(m.manifest).public_key)})'`,
    ]);
    const ok = execFileSync('openssl', ['pkeyutl', '-verify', '-pubin', '-inkey', join(dir, 'export-pub.pem'), '-rawin', '-in', join(dir, 'manifest.json'), '-sigfile', join(dir, 'manifest.sig')], { encoding: 'utf8' });
    expect(ok).toMatch(/Signature Verified Successfully/);
    const digest = execFileSync('sh', ['-c', `head -n -1 ${file} | sha256sum`], { encoding: 'utf8' }).split(' ')[0];
    expect(digest).toBe(manifestOf(file).lines_sha256);
    const fp = execFileSync('sh', ['-c', `openssl pkey -pubin -in ${join(dir, 'export-pub.pem')} -outform DER | sha256sum`], { encoding: 'utf8' }).split(' ')[0];
    expect(`sha256:${fp}`).toBe(manifestOf(file).key_id);
    expect(Number(execFileSync('sh', ['-c', `head -n -1 ${file} | wc -l`], { encoding: 'utf8' }).trim())).toBe(manifestOf(file).count);
    // The per-event jq recipe, where jq is installed (it is not a dependency of the tests).
    if (spawnSync('jq', ['--version']).status === 0) {
      const jq = `'["v1",.id,.occurredAt,.tenantId,.principalId,.principalKind,.callerId,.requestId,.auditLogId,.httpRequestId,.action,.ref,.recordingPk,.copyId,.origin,.outcome,.status,.errorCode,.bytesSent,.sha256,.clientIp,.userAgent,.relatedEventId,.detail,.prevHash]'`;
      for (const n of [1, 2, 5]) {
        const h = execFileSync('sh', ['-c', `sed -n ${n}p ${file} | jq -cj ${jq} | sha256sum`], { encoding: 'utf8' }).split(' ')[0];
        expect(h).toBe(JSON.parse(lines(file)[n - 1]!).hash);
      }
      expect(execFileSync('sh', ['-c', `tail -n 1 ${file} | jq -j .manifest`], { encoding: 'utf8' })).toBe(readFileSync(join(dir, 'manifest.json'), 'utf8'));
    }
    writeFileSync(join(dir, 'manifest.json'), readFileSync(join(dir, 'manifest.json'), 'utf8').replace('"count":', '"count":9'));
    const bad = spawnSync('openssl', ['pkeyutl', '-verify', '-pubin', '-inkey', join(dir, 'export-pub.pem'), '-rawin', '-in', join(dir, 'manifest.json'), '-sigfile', join(dir, 'manifest.sig')], { encoding: 'utf8' });
    expect(bad.status).not.toBe(0);
  });

  it('the command line: custodian audit export signs with the same key as the server', { timeout: 120_000 }, () => {
    const out = join(gw.dir, 'cli.jsonl');
    const config = join(gw.dir, 'cli-config.json');
    const catalog = kind === 'postgres' ? { driver: 'postgres', url: 'env:EXPORT_TEST_PG_URL' } : gw.catalogDb.catalogConfig;
    writeFileSync(config, JSON.stringify({ data_dir: gw.dir, catalog, tenants: [{ id: 'acme' }, { id: 'globex' }] }));
    const env = { ...process.env, ...(kind === 'postgres' ? { EXPORT_TEST_PG_URL: String(gw.catalogDb.catalogConfig.url) } : {}) };
    const run = (...args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'audit', 'export', '--config', config, ...args], { cwd: ROOT, env, encoding: 'utf8', timeout: 60_000 });
    const r = run('--from', from.slice(0, 10), '--to', to(), '--tenant', 'globex', '--out', out);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/event\(s\) exported/);
    expect(manifestOf(out)).toMatchObject({ scope: { tenant: 'globex' }, contiguous: false });
    expect(verifyOffline(out, pinned)).toMatchObject({ code: 0, out: { ok: true } });
    const bad = run('--from', 'nope', '--to', to(), '--out', join(gw.dir, 'x.jsonl'));
    expect(bad.status).toBe(78);
    expect(bad.stderr).toMatch(/--from: "nope" is not an ISO date/);
  });

  it('an export of a chain someone tampered with in the database shows the break offline', async () => {
    // Guards dropped, one row deleted: the next export's contiguous run has a gap where the chain must link.
    if (kind === 'postgres') await sql`drop trigger audit_events_no_change on audit_events`.execute(gw.catalogDb.db);
    else await sql`drop trigger audit_events_no_delete`.execute(gw.catalogDb.db);
    // One in the middle of the window (deleting the first event of a run is invisible to that run: docs/AUDIT.md).
    const victim = (await gw.deps.auditRepo.query({ tenantId: 'acme', action: 'recording.metadata', limit: 10 })).items[2]!;
    await gw.catalogDb.db.deleteFrom('audit_events').where('id', '=', victim.id).execute();
    const file = join(gw.dir, 'after-tamper.jsonl');
    await auditExport(gw.deps, { from, to: to(), out: file });
    expect(verifyOffline(file, pinned)).toMatchObject({ code: 1, out: { reason: 'chain_break' } });
    expect((await gw.deps.auditRepo.verify()).broken).toMatchObject({ reason: 'chain_break' });
  });
});
