import { parseCommandArgs, UsageError } from '../../cli/args.js';
import { ConfigError, type ConfigEnv, loadConfig } from '../../config/load.js';
import { isAppError } from '../../errors.js';
import { buildDeps } from '../../main.js';
import { judgeRecording, keepVerdict, verdictView } from './check.js';
import type { IntegrityCheck } from './integrity-repository.js';
import type { IntegrityThresholds } from './judge.js';
import { sampleIntegrity } from './sampler.js';

/* The CLI talks to a human: console output is its interface. */
/* eslint-disable no-console */

export const VERIFY_USAGE = `custodian verify integrity [--tenant t] (--recording ref | --sample N|P%) [--concurrency n] [--min-similarity 0.9] [--config file]

  Decodes the legacy and the cloud copy of linked recordings to 8 kHz mono PCM and compares them
  (PCM SHA-256, then a log-energy fingerprint); stores and audits each verdict (docs/SYNC.md).
  Exit 0: every verdict identical or match; 1: a mismatch; 4: no mismatch but a copy unreadable;
  2: usage; 78: bad configuration or flag.`;

/** `--sample 25` or `--sample 10%`. */
export function parseSample(v: string): { count: number } | { fraction: number } {
  const pct = /^(\d+(?:\.\d+)?)%$/.exec(v);
  if (pct) {
    const f = Number(pct[1]) / 100;
    if (f > 0 && f <= 1) return { fraction: f };
  } else if (/^\d+$/.test(v) && Number(v) > 0) return { count: Number(v) };
  throw new ConfigError('--sample: a number of pairs (e.g. 25) or a percentage of them (e.g. 10%)');
}

function exitCode(checks: IntegrityCheck[]): number {
  if (checks.some((c) => c.verdict === 'mismatch')) return 1;
  if (checks.some((c) => c.verdict === 'unreadable')) return 4;
  return 0;
}

const line = (c: IntegrityCheck) =>
  `${c.tenantId}/${c.recordingPk}: ${c.verdict}${c.similarity !== null ? ` similarity ${c.similarity}` : ''}${c.offsetMs ? ` offset ${c.offsetMs} ms` : ''}${c.errorCode ? ` (${c.errorCode})` : ''}`;

/** `custodian verify integrity …`: parses its own flags (main.ts hands over argv after `verify`). */
export async function runVerify(argv: string[], env: ConfigEnv): Promise<number> {
  const { values, positionals } = parseCommandArgs('verify', {
    args: argv,
    allowPositionals: true,
    options: {
      config: { type: 'string' },
      tenant: { type: 'string' },
      recording: { type: 'string' },
      sample: { type: 'string' },
      concurrency: { type: 'string' },
      'min-similarity': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  // A stray argument is refused as the usage promises (exit 2), never ignored.
  if (positionals[0] === 'integrity' && positionals.length > 1 && !values.help) {
    throw new UsageError(`custodian verify integrity: Unexpected argument '${positionals[1]}' (custodian verify integrity --help)`);
  }
  if (positionals[0] !== 'integrity' || values.help || (!values.recording === !values.sample)) {
    console.error(VERIFY_USAGE);
    return values.help ? 0 : 2;
  }
  const thresholds: Partial<IntegrityThresholds> = {};
  if (values['min-similarity'] !== undefined) {
    const v = Number(values['min-similarity']);
    if (!(v > 0 && v <= 1)) throw new ConfigError('--min-similarity: a number in (0, 1], e.g. 0.9');
    thresholds.minSimilarity = v;
  }
  const concurrency = values.concurrency === undefined ? undefined : Number(values.concurrency);
  if (concurrency !== undefined && !(Number.isInteger(concurrency) && concurrency >= 1)) throw new ConfigError('--concurrency: a whole number ≥ 1');
  const sample = values.sample === undefined ? undefined : parseSample(values.sample);

  const config = loadConfig(values.config ?? env.CUSTODIAN_CONFIG, env);
  if (values.tenant !== undefined && !config.tenants.some((t) => t.id === values.tenant)) throw new ConfigError(`--tenant: unknown tenant "${values.tenant}"`);
  const deps = await buildDeps(config);
  try {
    const who = { principalId: 'cli', principalKind: 'system' as const };
    if (values.recording) {
      const tenantId = values.tenant ?? (config.tenants.length === 1 ? config.tenants[0]!.id : undefined);
      if (!tenantId) throw new ConfigError('--recording needs --tenant when the configuration has several tenants');
      try {
        const rec = await deps.recordings.findByRef(tenantId, values.recording);
        if (!rec) {
          console.error(`recording.not_found: no recording "${values.recording}" in tenant ${tenantId}`);
          return 1;
        }
        const check = await judgeRecording(deps, rec, { principalId: 'cli', trigger: 'on_demand', signal: AbortSignal.timeout(config.media.transcode_timeout_ms), thresholds });
        await keepVerdict(deps, check, who);
        process.stdout.write(JSON.stringify(verdictView(check), null, 2) + '\n');
        console.error(line(check));
        return exitCode([check]);
      } catch (e) {
        if (!isAppError(e)) throw e;
        console.error(`${e.code}: ${e.message}`);
        return 1;
      }
    }
    const tenants = values.tenant ? [values.tenant] : config.tenants.map((t) => t.id);
    const reports = [];
    const all: IntegrityCheck[] = [];
    for (const tenantId of tenants) {
      const r = await sampleIntegrity(deps, { tenantId, ...sample!, ...(concurrency ? { concurrency } : {}), principalId: 'cli', thresholds, onVerdict: (c) => console.error(line(c)) });
      all.push(...r.checks);
      reports.push({ tenant: r.tenant, pairs: r.pairs, sampled: r.sampled, verdicts: r.verdicts, checks: r.checks.map(verdictView) });
      console.error(`${tenantId}: ${r.sampled} of ${r.pairs} pair(s) checked — ${Object.entries(r.verdicts).map(([k, n]) => `${k} ${n}`).join(', ')}`);
    }
    process.stdout.write(JSON.stringify(values.tenant ? reports[0] : reports, null, 2) + '\n');
    return exitCode(all);
  } finally {
    await deps.sources.close();
    await deps.catalog.close();
  }
}
