import { createWriteStream, rmSync } from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { type ExportManifest, type ManifestLine, auditExportLines } from '../audit/export.js';
import { ConfigError } from '../config/load.js';
import type { AppDeps } from '../deps.js';

export interface AuditExportArgs {
  from?: string | undefined;
  to?: string | undefined;
  tenant?: string | undefined;
  out?: string | undefined;
}

function instant(name: string, v: string | undefined): string {
  if (!v) throw new ConfigError(`--${name} is required (an ISO date or date-time)`);
  const t = Date.parse(v);
  if (Number.isNaN(t)) throw new ConfigError(`--${name}: "${v}" is not an ISO date or date-time`);
  return new Date(t).toISOString();
}

/**
 * `custodian audit export --from --to [--tenant] --out file.jsonl`: the events of the window as
 * JSONL plus a signed manifest (docs/AUDIT.md). The export is itself audited, and never
 * overwrites a file: evidence is written once.
 */
export async function auditExport(deps: Pick<AppDeps, 'auditRepo' | 'keys' | 'config'>, args: AuditExportArgs): Promise<ExportManifest> {
  const from = instant('from', args.from);
  const to = instant('to', args.to);
  if (from >= to) throw new ConfigError('--from must be before --to');
  if (!args.out) throw new ConfigError('--out is required: the file to write (it must not exist)');
  if (args.tenant && !deps.config.tenants.some((t) => t.id === args.tenant)) throw new ConfigError(`--tenant: unknown tenant "${args.tenant}"`);
  const tenantId = args.tenant ?? null;

  await deps.auditRepo.append({
    tenantId,
    principalId: 'cli',
    principalKind: 'system',
    action: 'audit.export',
    outcome: 'allowed',
    detail: { from, to, scope: tenantId ? 'tenant' : 'all' },
  });
  let last = '';
  async function* remembered() {
    for await (const line of auditExportLines(deps.auditRepo, deps.keys, { from, to, tenantId })) {
      last = line;
      yield line;
    }
  }
  try {
    await pipeline(Readable.from(remembered()), createWriteStream(args.out, { flags: 'wx' }));
  } catch (e) {
    // A half-written export is not evidence; one that exists already is someone else's.
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') rmSync(args.out, { force: true });
    else throw new ConfigError(`--out: ${args.out} exists; an export never overwrites a file`);
    throw e;
  }
  const manifest = JSON.parse((JSON.parse(last) as ManifestLine).manifest) as ExportManifest;
  await deps.auditRepo.append({
    tenantId,
    principalId: 'cli',
    principalKind: 'system',
    action: 'audit.export.end',
    outcome: 'completed',
    sha256: manifest.lines_sha256,
    detail: { from, to, count: manifest.count, first_seq: manifest.first_seq, last_seq: manifest.last_seq },
  });
  return manifest;
}
