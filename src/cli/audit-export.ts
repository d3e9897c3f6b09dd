import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import type { AuditEventInput } from '../audit/event.js';
import { type ExportManifest, type ManifestLine, auditExportLines } from '../audit/export.js';
import { ConfigError } from '../config/load.js';
import type { AppDeps } from '../deps.js';
import { appendOrFail } from './append-or-fail.js';
import { ISO_HINT, parseIsoInstant } from './iso-instant.js';
import { existingFile, writeWhole } from './write-whole.js';

export interface AuditExportArgs {
  from?: string | undefined;
  to?: string | undefined;
  tenant?: string | undefined;
  out?: string | undefined;
}

function instant(name: string, v: string | undefined): string {
  if (!v) throw new ConfigError(`--${name} is required (${ISO_HINT})`);
  const t = parseIsoInstant(v);
  if (!t) throw new ConfigError(`--${name}: "${v}" is not ${ISO_HINT}`);
  return t.toISOString();
}

/* The CLI talks to a human: console output is its interface. */
/* eslint-disable no-console */

/**
 * `custodian audit export --from --to [--tenant] --out file.jsonl`: the events of the window as
 * JSONL plus a signed manifest (docs/AUDIT.md). The export is itself audited — `audit.export`
 * (allowed) before the first line, `audit.export.end` after with the bytes and SHA-256 of the
 * whole file written (or `failed`) — and never overwrites a file: evidence is written once, and
 * appears whole or not at all (write-whole.ts).
 */
export async function auditExport(deps: Pick<AppDeps, 'auditRepo' | 'keys' | 'config'>, args: AuditExportArgs): Promise<ExportManifest> {
  const from = instant('from', args.from);
  const to = instant('to', args.to);
  if (from >= to) throw new ConfigError('--from must be before --to');
  if (!args.out) throw new ConfigError('--out is required: the file to write (it must not exist)');
  if (args.tenant && !deps.config.tenants.some((t) => t.id === args.tenant)) throw new ConfigError(`--tenant: unknown tenant "${args.tenant}"`);
  const out = args.out;
  const refuseExisting = () => new ConfigError(`--out: ${out} exists; an export never overwrites a file`);
  // Before anything is audited: a refusal is not an export.
  if (await existingFile(out)) throw refuseExisting();
  const tenantId = args.tenant ?? null;
  const cli = { tenantId, principalId: 'cli', principalKind: 'system' } as const;

  const [allowed] = await appendOrFail(deps, [{ ...cli, action: 'audit.export', outcome: 'allowed', detail: { from, to, scope: tenantId ? 'tenant' : 'all' } }], 'nothing was exported');
  let last = '';
  let bytes = 0;
  const hash = createHash('sha256');
  async function* remembered() {
    for await (const line of auditExportLines(deps.auditRepo, deps.keys, { from, to, tenantId })) {
      last = line;
      bytes += Buffer.byteLength(line);
      hash.update(line);
      yield line;
    }
  }
  const end = (outcome: 'completed' | 'failed', detail: Record<string, unknown>): AuditEventInput => ({
    ...cli,
    action: 'audit.export.end',
    outcome,
    relatedEventId: allowed!.id,
    bytesSent: bytes,
    ...(outcome === 'completed' ? { sha256: hash.digest('hex') } : {}),
    detail: { from, to, ...detail },
  });
  try {
    await writeWhole(out, Readable.from(remembered()), { exclusive: true });
  } catch (e) {
    // Nothing was kept at --out (write-whole.ts); the trail says the export failed, then the export's own error is shown.
    await appendOrFail(deps, [end('failed', { error: String((e as Error)?.message ?? e) })], 'the export failed').catch((err: unknown) => console.error((err as Error).message));
    // Someone else wrote the file meanwhile.
    if ((e as NodeJS.ErrnoException)?.code === 'EEXIST') throw refuseExisting();
    throw e;
  }
  const manifest = JSON.parse((JSON.parse(last) as ManifestLine).manifest) as ExportManifest;
  await appendOrFail(
    deps,
    [end('completed', { count: manifest.count, first_seq: manifest.first_seq, last_seq: manifest.last_seq, lines_sha256: manifest.lines_sha256 })],
    `${manifest.count} event(s) were exported to ${out} but the export is not audited`,
  );
  return manifest;
}
