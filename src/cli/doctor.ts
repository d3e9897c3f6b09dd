import { parseCommandArgs } from './args.js';
import { ConfigError, loadConfig, type ConfigEnv } from '../config/load.js';
import { isAppError } from '../errors.js';
import { createConnector } from '../sources/factory.js';
import { overallStatus, type PreflightCheck, type PreflightReport } from '../sources/genesys/preflight.js';
import type { SourceConnector } from '../sources/port.js';

/**
 * Preflight of every configured source (`custodian doctor`, and /readyz through ReadinessCache):
 * reachable, credentials accepted, and — for sources that can tell more (Genesys: identity,
 * rights per call, media link lifetime, clock skew) — their detailed checks.
 *
 * Connectors with a `preflight(signal)` method give their own report; the others are judged by
 * `check(signal)` (reachable with the configured credentials). The preflight types live in
 * sources/genesys/preflight.ts for now; they belong in sources/port.ts once another connector has one.
 */

export interface SourcePreflight {
  tenant: string;
  source: string;
  kind: string;
  status: 'ok' | 'warn' | 'fail';
  reachable: boolean | null;
  credentials: boolean | null;
  checks: PreflightCheck[];
  ms: number;
}

interface Preflightable {
  preflight(signal: AbortSignal): Promise<PreflightReport>;
}

function hasPreflight(c: SourceConnector): c is SourceConnector & Preflightable {
  return typeof (c as Partial<Preflightable>).preflight === 'function';
}

/** Kinds without credentials of their own (a local path). */
const NO_CREDENTIALS = new Set(['filesystem']);

function withTimeout<T>(p: (signal: AbortSignal) => Promise<T>, ms: number): Promise<T> {
  const ac = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      ac.abort();
      reject(Object.assign(new Error(`no answer within ${ms} ms`), { code: 'source.timeout' }));
    }, ms);
  });
  return Promise.race([p(ac.signal), late]).finally(() => clearTimeout(timer));
}

/** One source's preflight, bounded by `timeoutMs`; never throws. */
export async function preflightSource(c: SourceConnector, timeoutMs: number): Promise<SourcePreflight> {
  const t0 = performance.now();
  const base = { tenant: c.tenantId, source: c.name, kind: c.kind };
  const ms = () => Math.round(performance.now() - t0);
  if (hasPreflight(c)) {
    try {
      const r = await withTimeout((s) => c.preflight(s), timeoutMs);
      return { ...base, status: overallStatus(r.checks), reachable: r.reachable, credentials: r.credentials, checks: r.checks, ms: ms() };
    } catch (e) {
      const code = (e as { code?: string }).code ?? 'source.unavailable';
      return { ...base, status: 'fail', reachable: null, credentials: null, checks: [{ id: 'preflight', label: 'preflight', status: 'fail', code, detail: `the preflight did not finish: ${code}` }], ms: ms() };
    }
  }
  const noCreds = NO_CREDENTIALS.has(c.kind);
  try {
    await withTimeout((s) => c.check(s), timeoutMs);
    return {
      ...base,
      status: 'ok',
      reachable: true,
      credentials: noCreds ? null : true,
      checks: [{ id: 'reachable', label: noCreds ? 'reachable' : 'reachable with the configured credentials', status: 'ok', detail: 'the source answered' }],
      ms: ms(),
    };
  } catch (e) {
    const code = isAppError(e) ? e.code : ((e as { code?: string }).code ?? 'source.unavailable');
    const refused = code === 'source.auth_failed';
    const down = code === 'source.unavailable' || code === 'source.timeout';
    return {
      ...base,
      status: 'fail',
      reachable: refused ? true : down ? false : null,
      credentials: refused ? false : null,
      checks: [{ id: 'reachable', label: noCreds ? 'reachable' : 'reachable with the configured credentials', status: 'fail', code, detail: refused ? 'the source refused the configured credentials' : `the source failed: ${code}` }],
      ms: ms(),
    };
  }
}

/**
 * /readyz's view of the sources: each source's preflight is reused for its `readinessCacheMs`
 * (Genesys: readiness_cache_ms, default 10 s) or `defaultTtlMs`, and concurrent probes share one run.
 */
export class ReadinessCache {
  readonly #entries = new Map<SourceConnector, { at: number; report: SourcePreflight | undefined; inflight: Promise<SourcePreflight> | undefined }>();

  constructor(
    private readonly defaultTtlMs = 10_000,
    private readonly timeoutMs = 5_000,
    private readonly now: () => number = Date.now,
  ) {}

  ttlOf(c: SourceConnector): number {
    const v = (c as { readinessCacheMs?: unknown }).readinessCacheMs;
    return typeof v === 'number' && v >= 0 ? v : this.defaultTtlMs;
  }

  async get(c: SourceConnector): Promise<SourcePreflight & { cached: boolean }> {
    let e = this.#entries.get(c);
    if (!e) {
      e = { at: 0, report: undefined, inflight: undefined };
      this.#entries.set(c, e);
    }
    if (e.report && this.now() - e.at < this.ttlOf(c)) return { ...e.report, cached: true };
    if (!e.inflight) {
      const entry = e;
      const p = preflightSource(c, this.timeoutMs).then((r) => {
        entry.report = r;
        entry.at = this.now();
        entry.inflight = undefined;
        return r;
      });
      entry.inflight = p;
    }
    return { ...(await e.inflight!), cached: false };
  }
}

// ---- the command ------------------------------------------------------------------------------

const MARK: Record<PreflightCheck['status'], string> = { ok: '✓', warn: '!', fail: '✗', skip: '-' };
const yesNo = (v: boolean | null) => (v === null ? 'n/a' : v ? 'yes' : 'NO');

/** A plain-text table (aligned columns) with each source's detailed checks below it. */
export function formatReport(reports: readonly SourcePreflight[]): string {
  const head = ['TENANT', 'SOURCE', 'KIND', 'STATUS', 'REACHABLE', 'CREDENTIALS', 'TIME'];
  const rows = reports.map((r) => [r.tenant, r.source, r.kind, r.status === 'ok' ? 'ok' : r.status === 'warn' ? 'warn' : 'FAIL', yesNo(r.reachable), yesNo(r.credentials), `${r.ms} ms`]);
  const width = head.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] as string).length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(width[i] as number)).join('  ').trimEnd();
  const out = [line(head)];
  reports.forEach((r, i) => {
    out.push(line(rows[i] as string[]));
    // Sources with one plain check only show it when it failed; detailed ones show all.
    const detailed = r.checks.length > 1;
    for (const c of r.checks) {
      if (!detailed && c.status === 'ok') continue;
      out.push(`    ${MARK[c.status]} ${c.label}: ${c.detail}`);
    }
  });
  const count = (s: SourcePreflight['status']) => reports.filter((r) => r.status === s).length;
  out.push('', `${reports.length} source(s): ${count('ok')} ok, ${count('warn')} with warnings, ${count('fail')} failing`);
  return out.join('\n');
}

const DOCTOR_USAGE = `custodian doctor [--config file] [--tenant t] [--json] [--timeout-ms N]

  Checks every configured source of every tenant (or of --tenant): reachable, credentials
  accepted; for Genesys Cloud also the OAuth client's identity (GET /api/v2/tokens/me), its
  rights for each call the gateway makes, the media link lifetime and clock skew.
  Exit status 0 when no source fails (warnings allowed), 1 when one does.`;

/* The CLI talks to a human: console output is its interface. */
/* eslint-disable no-console */
export async function runDoctor(argv: string[], env: ConfigEnv): Promise<number> {
  const { values } = parseCommandArgs('doctor', {
    args: argv,
    allowPositionals: false,
    options: {
      config: { type: 'string' },
      tenant: { type: 'string' },
      json: { type: 'boolean', default: false },
      'timeout-ms': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(DOCTOR_USAGE);
    return 0;
  }
  const timeoutMs = values['timeout-ms'] === undefined ? 20_000 : Number(values['timeout-ms']);
  // At most 10 minutes: far past any source's answer, and well inside what a timer can wait (2^31 - 1 ms).
  if (!Number.isInteger(timeoutMs) || timeoutMs < 100 || timeoutMs > 600_000) throw new ConfigError('--timeout-ms: an integer from 100 to 600000 (ms)');
  const config = loadConfig(values.config ?? env.CUSTODIAN_CONFIG, env);
  const tenants = values.tenant ? config.tenants.filter((t) => t.id === values.tenant) : config.tenants;
  if (values.tenant && tenants.length === 0) throw new ConfigError(`--tenant: unknown tenant "${values.tenant}"`);
  const connectors = tenants.flatMap((t) => t.sources.map((s) => createConnector(t.id, s)));
  let reports: SourcePreflight[];
  try {
    reports = await Promise.all(connectors.map((c) => preflightSource(c, timeoutMs)));
  } finally {
    await Promise.allSettled(connectors.map((c) => c.close()));
  }
  const failing = reports.some((r) => r.status === 'fail');
  if (values.json) console.log(JSON.stringify({ ok: !failing, sources: reports }, null, 2));
  else if (reports.length === 0) console.log('no sources are configured');
  else console.log(formatReport(reports));
  return failing ? 1 : 0;
}
