import { createWriteStream } from 'node:fs';
import { ConfigError } from '../config/load.js';
import type { Config } from '../config/schema.js';
import type { AppDeps } from '../deps.js';
import { terminalProgress } from './progress.js';
import { migrationReport, reportCsv } from './report.js';
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
    const t = Date.parse(opts.since);
    if (Number.isNaN(t) || !/^\d{4}-\d{2}-\d{2}/.test(opts.since)) throw new ConfigError('--since: an ISO-8601 date or date-time, e.g. 2024-03-01 or 2024-03-01T00:00:00Z');
    since = new Date(t);
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
  const reports = [];
  for (const t of tenants) {
    const r = await migrationReport(deps.catalog.db, t, { progress });
    await deps.auditRepo.append({ tenantId: t, principalId: 'cli', principalKind: 'system', action: 'report.migration', outcome: 'completed', detail: { format, counts: r.counts } });
    reports.push(r);
  }
  const text = format === 'csv' ? reportCsv(reports) : JSON.stringify(opts.tenant ? reports[0] : reports, null, 2) + '\n';
  if (opts.out) {
    const out = createWriteStream(opts.out);
    await new Promise<void>((resolve, reject) => {
      out.on('error', reject);
      out.end(text, () => resolve());
    });
  } else {
    await new Promise<void>((resolve) => (process.stdout.write(text) ? resolve() : process.stdout.once('drain', () => resolve())));
  }
  for (const r of reports) console.error(`${r.tenant}: ${Object.entries(r.counts).map(([k, n]) => `${k} ${n}`).join(', ')}`);
  return 0;
}
