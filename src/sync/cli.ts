import { Readable } from 'node:stream';
import { appendOrFail } from '../cli/append-or-fail.js';
import { ISO_HINT, parseIsoInstant } from '../cli/iso-instant.js';
import { writeWhole } from '../cli/write-whole.js';
import { ConfigError } from '../config/load.js';
import type { Config } from '../config/schema.js';
import type { AppDeps } from '../deps.js';
import { terminalProgress } from './progress.js';
import { type MigrationReport, migrationReport, reportCsv } from './report.js';
import { runSync, syncedSources } from './runner.js';

/* The CLI talks to a human: console output is its interface. */
/* eslint-disable no-console */

interface SyncArgs {
  tenant?: string | undefined;
  source?: string | undefined;
  since?: string | undefined;
}

/**
 * Refuses (ConfigError, exit 78) a command line the sync cannot honour, before any run starts: a
 * --source that a tenant in scope does not sync would otherwise fail after the tenants before it
 * had run — or, with no tenant configured, do nothing and report success.
 */
export function checkSyncArgs(config: Config, opts: SyncArgs): { since?: Date } {
  let since: Date | undefined;
  if (opts.since !== undefined) {
    // Strict and round-trip checked: Date.parse would take 2024-02-30 for March 1.
    const t = parseIsoInstant(opts.since);
    if (!t) throw new ConfigError(`--since: "${opts.since}" is not ${ISO_HINT}`);
    since = t;
  }
  if (opts.tenant !== undefined && !config.tenants.some((t) => t.id === opts.tenant)) throw new ConfigError(`--tenant: unknown tenant "${opts.tenant}"`);
  if (opts.source !== undefined) {
    const source = opts.source;
    if (!config.tenants.length) throw new ConfigError(`--source: unknown source "${source}" (the config has no tenants)`);
    const inScope = opts.tenant !== undefined ? config.tenants.filter((t) => t.id === opts.tenant) : config.tenants;
    const lacking = inScope.find((t) => !syncedSources(t).includes(source));
    if (lacking) {
      const known = syncedSources(lacking);
      const elsewhere = config.tenants.filter((t) => t !== lacking && syncedSources(t).includes(source)).map((t) => t.id);
      const hint = elsewhere.length ? `; it is a source of ${elsewhere.join(', ')}: use --tenant ${elsewhere.length === 1 ? elsewhere[0] : '<tenant>'}` : '';
      throw new ConfigError(`--source: unknown source "${source}" for tenant "${lacking.id}" (known: ${known.length ? known.join(', ') : 'none'})${hint}`);
    }
  }
  return since ? { since } : {};
}

/** `custodian sync [--tenant t] [--source name] [--since ISO]`: exit 0 when every run succeeded, 1 when one failed, 3 when one was busy, 78 for an unknown tenant or source. */
export async function syncCommand(deps: AppDeps, opts: SyncArgs): Promise<number> {
  const { since } = checkSyncArgs(deps.config, opts);
  const report = await runSync(deps, {
    ...(opts.tenant ? { tenantId: opts.tenant } : {}),
    ...(opts.source ? { source: opts.source } : {}),
    ...(since ? { since } : {}),
    principalId: 'cli',
    progress: terminalProgress(),
  });
  // The report is this command's output (stdout); progress and verdicts go to stderr.
  process.stdout.write(JSON.stringify(report, null, 2) + '\n');
  for (const r of report.runs) console.error(`${r.tenant}/${r.source} (${r.kind}): ${r.status}${r.error ? ` — ${r.error.code}: ${r.error.message}` : ''}`);
  for (const c of report.crosswalk) console.error(`${c.tenant} crosswalk: ${c.status}${c.stats ? ` — ${c.stats.linked} linked, ${c.stats.ambiguous} ambiguous, ${c.stats.conflicts} conflicts, ${c.stats.integrityMismatches} duration mismatches` : ''}`);
  const all = [...report.runs, ...report.crosswalk];
  if (all.some((r) => r.status === 'failed')) return 1;
  if (all.some((r) => r.status === 'busy')) return 3;
  return 0;
}

/** `custodian report migration [--tenant t] [--format json|csv] [--out file]`: audited like the API. */
export async function reportCommand(deps: AppDeps, opts: { tenant?: string | undefined; format?: string | undefined; out?: string | undefined }): Promise<number> {
  const format = opts.format ?? 'json';
  if (format !== 'json' && format !== 'csv') throw new ConfigError('--format: json or csv');
  const tenants = opts.tenant ? [opts.tenant] : deps.config.tenants.map((t) => t.id);
  if (opts.tenant && !deps.config.tenants.some((t) => t.id === opts.tenant)) throw new ConfigError(`--tenant: unknown tenant "${opts.tenant}"`);
  const progress = terminalProgress();
  const reports: MigrationReport[] = [];
  for (const t of tenants) reports.push(await migrationReport(deps.catalog.db, t, { progress }));
  const text = format === 'csv' ? reportCsv(reports) : JSON.stringify(opts.tenant ? reports[0] : reports, null, 2) + '\n';
  const event = (r: (typeof reports)[number], outcome: 'completed' | 'failed', extra: Record<string, unknown> = {}) => ({
    tenantId: r.tenant,
    principalId: 'cli',
    principalKind: 'system' as const,
    action: 'report.migration',
    outcome,
    detail: { format, counts: r.counts, ...(opts.out ? { out: opts.out } : {}), ...extra },
  });
  try {
    // Whole or not at all (a temp file renamed), or streamed into a pipe or device (write-whole.ts).
    if (opts.out) await writeWhole(opts.out, Readable.from([text]));
    else await new Promise<void>((resolve) => (process.stdout.write(text) ? resolve() : process.stdout.once('drain', () => resolve())));
  } catch (e) {
    // Audited as failed, then the write's own error (one line, exit 1).
    await appendOrFail(deps, reports.map((r) => event(r, 'failed', { error: String((e as Error)?.message ?? e) })), 'the report was not written').catch((err: unknown) => console.error((err as Error).message));
    throw e;
  }
  await appendOrFail(deps, reports.map((r) => event(r, 'completed')), `the report was written${opts.out ? ` to ${opts.out}` : ''} but is not audited`);
  for (const r of reports) console.error(`${r.tenant}: ${Object.entries(r.counts).map(([k, n]) => `${k} ${n}`).join(', ')}`);
  return 0;
}
