import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuditRepository } from '../src/audit/audit-repository.js';
import { RecordingRepository } from '../src/catalog/recording-repository.js';
import { type CatalogCommandDeps, type CommandOutput, exportCommand, importCommand } from '../src/cli/catalog-commands.js';
import { isAppError } from '../src/errors.js';
import { openTestCatalog, type TestCatalog, usableCatalogs } from './support/catalogs.js';

const TENANTS = new Set(['acme', 'globex']);
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const jsonl = (rows: object[]) => rows.map((r) => JSON.stringify(r)).join('\n') + '\n';

function quiet(): CommandOutput & { lines: string[] } {
  const lines: string[] = [];
  return { lines, out: (l) => lines.push(l), err: (l) => lines.push(l) };
}

/**
 * `custodian import` and `custodian export` in process (the CLI spawns cost seconds; test/cli.test.ts
 * checks the wiring once): each is an admin action with its audit event (PCI DSS 10.2.1.x), and an
 * event that cannot be written fails the command.
 */
describe.each(await usableCatalogs())('catalog import and export are audited on %s', (kind) => {
  let cat: TestCatalog;
  let deps: CatalogCommandDeps;
  let dir: string;

  const events = async (prefix: string) =>
    (await cat.db.selectFrom('audit_events').selectAll().where('action', 'like', `${prefix}%`).orderBy('seq').execute()).map((r) => ({
      id: r.id,
      action: r.action,
      tenantId: r.tenant_id,
      principalId: r.principal_id,
      outcome: r.outcome,
      sha256: r.sha256,
      bytesSent: r.bytes_sent === null ? null : Number(r.bytes_sent),
      relatedEventId: r.related_event_id,
      detail: r.detail ? (JSON.parse(r.detail) as Record<string, unknown>) : null,
    }));
  const lastSeq = () => cat.db.selectFrom('audit_events').select((eb) => eb.fn.max('seq').as('seq')).executeTakeFirst().then((r) => Number(r?.seq ?? 0));

  beforeAll(async () => {
    cat = await openTestCatalog(kind);
    deps = { recordings: new RecordingRepository(cat.db), auditRepo: new AuditRepository(cat.db, cat.dialect) };
    dir = mkdtempSync(join(tmpdir(), 'custodian-catcmd-'));
  });
  afterAll(async () => {
    await cat?.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  it('audits an import per tenant it wrote: file, its SHA-256, counts, completed; a re-import that changes a retention date too', async () => {
    const file = join(dir, 'first.jsonl');
    writeFileSync(
      file,
      jsonl([
        { tenant_id: 'acme', call_id: 'c-1', source_system: 'avaya_aura', legacy_archive_id: 'av-1', retention_expiry: '2030-01-01T00:00:00Z' },
        { tenant_id: 'acme', call_id: 'c-2', source_system: 'avaya_aura', legacy_archive_id: 'av-2' },
        { tenant_id: 'globex', call_id: 'g-1', source_system: 'verint', legacy_archive_id: 'v-1' },
      ]),
    );
    expect(await importCommand(deps, file, TENANTS, quiet())).toBe(0);
    const first = await events('admin.catalog.import');
    expect(first.map((e) => e.tenantId)).toEqual(['acme', 'globex']);
    for (const e of first) {
      expect(e).toMatchObject({ principalId: 'cli', outcome: 'completed', sha256: sha256(readFileSync(file)) });
      expect(e.detail).toEqual({ file, tenants: ['acme', 'globex'], rows: 3, inserted: 3, updated: 0, unchanged: 0, holds_placed: 0, bad_rows: 0 });
    }

    // The change that decides a 410: a new retention date for an existing recording.
    const again = join(dir, 'retention.jsonl');
    writeFileSync(again, jsonl([{ tenant_id: 'acme', call_id: 'c-1', source_system: 'avaya_aura', legacy_archive_id: 'av-1', retention_expiry: '2020-01-01T00:00:00Z' }]));
    expect(await importCommand(deps, again, TENANTS, quiet())).toBe(0);
    const second = (await events('admin.catalog.import')).slice(first.length);
    expect(second).toHaveLength(1);
    expect(second[0]).toMatchObject({ tenantId: 'acme', outcome: 'completed', sha256: sha256(readFileSync(again)), detail: { tenants: ['acme'], rows: 1, updated: 1 } });
  });

  it('audits a refused import as failed: bad rows counted, an unreadable file without a hash or tenant', async () => {
    const before = (await events('admin.catalog.import')).length;
    const bad = join(dir, 'bad.jsonl');
    writeFileSync(bad, jsonl([{ tenant_id: 'acme', call_id: 'c-9', source_system: 'avaya_aura', legacy_archive_id: 'av-9' }, { tenant_id: 'nobody', call_id: 'x' }]) + 'not json\n');
    const io = quiet();
    expect(await importCommand(deps, bad, TENANTS, io)).toBe(1);
    expect(io.lines.at(-1)).toBe('2 bad row(s); nothing was written');
    expect(await deps.recordings.findByRef('acme', 'c-9')).toBeNull();
    expect(await importCommand(deps, join(dir, 'no-such.jsonl'), TENANTS, quiet())).toBe(1);
    const [refused, missing] = (await events('admin.catalog.import')).slice(before);
    // The rows before the first bad one name their tenant; nothing of them was written.
    expect(refused).toMatchObject({ tenantId: 'acme', outcome: 'failed', sha256: sha256(readFileSync(bad)), detail: { reason: 'bad_rows', rows: 3, bad_rows: 2, inserted: 0, updated: 0 } });
    expect(missing).toMatchObject({ tenantId: null, outcome: 'failed', sha256: null, detail: { reason: 'unreadable', bad_rows: 0 } });
  });

  it('audits an export before the first line (allowed) and after it (count, bytes, SHA-256 of what was written)', async () => {
    const out = join(dir, 'acme.jsonl');
    expect(await exportCommand(deps, { tenant: 'acme', out }, quiet())).toBe(0);
    const written = readFileSync(out);
    expect(written.toString().trim().split('\n')).toHaveLength(2);
    const [allowed, end] = await events('admin.catalog.export');
    expect(allowed).toMatchObject({ action: 'admin.catalog.export', tenantId: 'acme', principalId: 'cli', outcome: 'allowed', detail: { scope: 'tenant', out } });
    expect(end).toMatchObject({ action: 'admin.catalog.export.end', tenantId: 'acme', outcome: 'completed', relatedEventId: allowed!.id, bytesSent: written.length, sha256: sha256(written), detail: { count: 2 } });
  });

  it('fails the command when the trail cannot be written: an import says it was written unaudited, an export writes nothing', async () => {
    const down: CatalogCommandDeps = { recordings: deps.recordings, auditRepo: Object.assign(Object.create(deps.auditRepo) as AuditRepository, { append: () => Promise.reject(new Error('audit down')) }) };
    const file = join(dir, 'down.jsonl');
    writeFileSync(file, jsonl([{ tenant_id: 'acme', call_id: 'c-down', source_system: 'avaya_aura', legacy_archive_id: 'av-down' }]));
    const err = await importCommand(down, file, TENANTS, quiet()).catch((e: unknown) => e);
    expect(isAppError(err) && err.code).toBe('audit.unavailable');
    expect((err as Error).message).toMatch(/^the catalog was written \(1 row\(s\): 1 new, 0 updated, 0 unchanged\) but is not audited: the audit event could not be written \(audit down\)$/);

    const seq = await lastSeq();
    const out = join(dir, 'never.jsonl');
    const refused = await exportCommand(down, { tenant: 'acme', out }, quiet()).catch((e: unknown) => e);
    expect(isAppError(refused) && refused.code).toBe('audit.unavailable');
    expect((refused as Error).message).toBe('nothing was exported: the audit event could not be written (audit down)');
    expect(existsSync(out)).toBe(false);
    expect(await lastSeq()).toBe(seq);
  });
});
