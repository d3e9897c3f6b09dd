import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { resolve } from 'node:path';
import { Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { AuditEventInput } from '../audit/event.js';
import { importFile } from '../catalog/import.js';
import { toCatalogRecords } from '../catalog/record.js';
import type { AppDeps } from '../deps.js';
import { appendOrFail } from './append-or-fail.js';
import { writeWhole } from './write-whole.js';

/** What the catalog commands need of the composition root. */
export type CatalogCommandDeps = Pick<AppDeps, 'recordings' | 'auditRepo'>;

/** Where a command's lines go: the CLI's console, or a test's arrays. */
export interface CommandOutput {
  out(line: string): void;
  err(line: string): void;
}

/* The CLI talks to a human: console output is its interface. */
/* eslint-disable no-console */
const CONSOLE: CommandOutput = { out: (l) => console.log(l), err: (l) => console.error(l) };

const CLI = { principalId: 'cli', principalKind: 'system' } as const;

/** The SHA-256 of the file as it is on disk, or null when it cannot be read (the import reports why). */
async function fileSha256(path: string): Promise<string | null> {
  const hash = createHash('sha256');
  try {
    for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  } catch {
    return null;
  }
  return hash.digest('hex');
}

/**
 * `custodian import <file>`: load catalog records (all or nothing, catalog/import.ts), then audit
 * it as `admin.catalog.import` (PCI DSS 10.2.1.x: every admin action) — an import can change a
 * recording's retention_expiry, which decides a 410. One event per tenant the file wrote (so each
 * tenant's trail shows what changed its catalog; the counts are the whole file's), or one without
 * a tenant when no row got that far. Like the other admin commands the event follows the action:
 * if it cannot be written the command fails (exit 1) saying the catalog was written unaudited.
 */
export async function importCommand(deps: CatalogCommandDeps, file: string, tenants: ReadonlySet<string>, io: CommandOutput = CONSOLE): Promise<number> {
  const sha256 = await fileSha256(file);
  const touched = new Set<string>();
  const event = (outcome: 'completed' | 'failed', detail: Record<string, unknown>): AuditEventInput[] => {
    const base = { ...CLI, action: 'admin.catalog.import', outcome, sha256, detail: { file: resolve(file), tenants: [...touched].sort(), ...detail } };
    return touched.size ? [...touched].sort().map((tenantId) => ({ ...base, tenantId })) : [{ ...base, tenantId: null }];
  };
  let report;
  try {
    report = await importFile(deps.recordings, file, { tenants, touched });
  } catch (e) {
    // Nothing was written (one transaction); the attempt is still an admin action. The import's own error is the one to show.
    await appendOrFail(deps, event('failed', { reason: 'error', error: (e as Error)?.message ?? String(e) }), 'the import failed and wrote nothing').catch((err: unknown) => io.err((err as Error).message));
    throw e;
  }
  if (report.errors.length) {
    for (const e of report.errors) io.err(`${file}${e.line ? `:${e.line}` : ''}: ${e.message}`);
    // Line 0 is the file itself (it could not be read), not a row.
    const bad = report.errors.filter((e) => e.line > 0).length;
    await appendOrFail(deps, event('failed', { reason: bad ? 'bad_rows' : 'unreadable', rows: report.rows, bad_rows: bad, inserted: 0, updated: 0 }), 'nothing was written');
    io.err(bad ? `${bad} bad row(s); nothing was written` : 'nothing was written');
    return 1;
  }
  const w = report.written!;
  const counts = `${report.rows} row(s): ${w.inserted} new, ${w.updated} updated, ${w.unchanged} unchanged${w.holdsPlaced ? `, ${w.holdsPlaced} legal hold(s) placed` : ''}`;
  // holds_placed: the "imported" holds the rows' `legal_hold: true` placed (one per recording never so held before).
  await appendOrFail(deps, event('completed', { rows: report.rows, inserted: w.inserted, updated: w.updated, unchanged: w.unchanged, holds_placed: w.holdsPlaced, bad_rows: 0 }), `the catalog was written (${counts}) but is not audited`);
  io.out(counts);
  return 0;
}

/**
 * `custodian export [--tenant t] [--out file]`: catalog records as JSONL, audited like `audit
 * export` and a media stream — `admin.catalog.export` (allowed) before the first line, so nothing
 * leaves when the trail cannot be written; `admin.catalog.export.end` after, with the record
 * count, the bytes and their SHA-256 (or `failed`). Without --tenant the event has no tenant
 * (the whole catalog), as a whole-chain audit export.
 */
export async function exportCommand(
  deps: CatalogCommandDeps,
  opts: { tenant: string | null; out?: string | undefined },
  io: CommandOutput = CONSOLE,
  stdout: Writable = process.stdout,
): Promise<number> {
  const tenantId = opts.tenant;
  const scope = { scope: tenantId ? 'tenant' : 'all', out: opts.out ? resolve(opts.out) : 'stdout' };
  const [allowed] = await appendOrFail(deps, [{ ...CLI, tenantId, action: 'admin.catalog.export', outcome: 'allowed', detail: scope }], 'nothing was exported');
  let count = 0;
  let bytes = 0;
  const hash = createHash('sha256');
  async function* lines() {
    for await (const rec of deps.recordings.iterate(tenantId)) {
      for (const r of toCatalogRecords(rec)) {
        const line = JSON.stringify(r) + '\n';
        count++;
        bytes += Buffer.byteLength(line);
        hash.update(line);
        yield line;
      }
    }
  }
  const end = (outcome: 'completed' | 'failed', extra: Record<string, unknown> = {}): AuditEventInput => ({
    ...CLI,
    tenantId,
    action: 'admin.catalog.export.end',
    outcome,
    relatedEventId: allowed!.id,
    bytesSent: bytes,
    ...(outcome === 'completed' ? { sha256: hash.digest('hex') } : {}),
    detail: { ...scope, count, ...extra },
  });
  try {
    if (opts.out) await writeWhole(opts.out, Readable.from(lines()));
    else await pipeline(Readable.from(lines()), stdout, { end: false });
  } catch (e) {
    await appendOrFail(deps, [end('failed', { error: (e as Error)?.message ?? String(e) })], `the export failed after ${count} record(s)`).catch((err: unknown) => io.err((err as Error).message));
    throw e;
  }
  await appendOrFail(deps, [end('completed')], `${count} record(s) were exported but are not audited`);
  io.err(`${count} record(s) exported`);
  return 0;
}
