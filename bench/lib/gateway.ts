/**
 * Booting the real gateway for a benchmark, either in this process (bootGateway) or alone in a
 * child process (spawnGateway → bench/gateway-process.ts) so that its RSS and CPU can be read
 * from /proc without the load generator's.
 *
 * Unlike test/support/gateway.ts, the logger honours `logging.level` (warn) and does not keep
 * every line in memory: it only tallies messages, which the benchmarks report as observations.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { cpSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pino, { type Logger } from 'pino';
import type { CatalogRecord } from '../../src/catalog/record.js';
import type { RecordingRepository } from '../../src/catalog/recording-repository.js';
import { parseConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import { REDACT_PATHS } from '../../src/logger.js';
import { type Gateway, startGateway } from '../../src/main.js';
import { DEMO_AUDIO, sleep } from './common.js';

export const BENCH_KEY = 'cst_bench-reader_' + 'b'.repeat(32);
export const bearer = { authorization: `Bearer ${BENCH_KEY}` };

export interface GatewaySpec {
  /** Scratch directory (data_dir); the acme archive root defaults to <dir>/archive (demo audio copied in). */
  dir: string;
  /** Root of the acme filesystem source "archive" (source_systems avaya_aura, verint, filesystem). */
  archiveRoot?: string;
  /** More sources for acme. */
  sources?: Record<string, unknown>[];
  catalog?: Record<string, unknown>;
  /** Overrides applied to the document last (plain JSON so a child process gets the same). */
  patch?: Record<string, unknown>;
  logLevel?: string;
}

/** The configuration document: tenant acme, one reader key, rate limit off, logging warn. */
export function gatewayDoc(spec: GatewaySpec): Record<string, any> {
  let root = spec.archiveRoot;
  if (!root) {
    root = join(spec.dir, 'archive');
    mkdirSync(root, { recursive: true });
    cpSync(DEMO_AUDIO, root, { recursive: true });
  }
  const doc: Record<string, any> = {
    data_dir: spec.dir,
    allow_inline_secrets: true,
    server: { host: '127.0.0.1', port: 0, shutdown_grace_ms: 500 },
    catalog: spec.catalog ?? { driver: 'sqlite', path: join(spec.dir, 'catalog.sqlite') },
    logging: { level: spec.logLevel ?? 'warn' },
    auth: {
      rate_limit: { max: 0, window_ms: 60_000 },
      api_keys: [{ id: 'bench-reader', tenant: 'acme', principal: 'alice', scopes: ['recordings:read'], key: BENCH_KEY }],
    },
    tenants: [
      {
        id: 'acme',
        sources: [{ name: 'archive', type: 'filesystem', root, source_systems: ['avaya_aura', 'verint', 'filesystem'] }, ...(spec.sources ?? [])],
      },
    ],
  };
  for (const [k, v] of Object.entries(spec.patch ?? {})) doc[k] = typeof v === 'object' && v && !Array.isArray(v) ? { ...(doc[k] ?? {}), ...v } : v;
  return doc;
}

/** Log lines by level and message (the benchmarks report them: errors under load are findings). */
export class LogTally {
  readonly counts = new Map<string, number>();
  readonly samples: string[] = [];

  write(line: string): void {
    let key = line.slice(0, 120);
    try {
      const o = JSON.parse(line) as { level?: number; msg?: string; code?: string; err?: { message?: string } };
      const level = o.level === undefined ? '?' : o.level >= 50 ? 'error' : o.level >= 40 ? 'warn' : 'info';
      key = `${level}: ${o.msg ?? ''}${o.code ? ` [${o.code}]` : ''}${o.err?.message ? ` (${o.err.message.slice(0, 100)})` : ''}`;
    } catch {
      /* not JSON: keep the raw start */
    }
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
    if (this.samples.length < 20) this.samples.push(line.slice(0, 2000));
  }

  snapshot(): Record<string, number> {
    return Object.fromEntries([...this.counts.entries()].sort((a, b) => b[1] - a[1]));
  }

  reset(): void {
    this.counts.clear();
    this.samples.length = 0;
  }
}

export function tallyLogger(level: string, tally: LogTally): Logger {
  return pino({ level, redact: { paths: REDACT_PATHS, censor: '[redacted]' } }, { write: (s: string) => tally.write(s) });
}

/** Audit events by action/outcome: every access must leave an "allowed" and an ".end" event. */
export async function auditCounts(gw: Gateway): Promise<Record<string, number>> {
  const rows = await gw.deps.catalog.db
    .selectFrom('audit_events')
    .select(['action', 'outcome', 'error_code'])
    .select((eb) => eb.fn.countAll<number | string>().as('n'))
    .groupBy(['action', 'outcome', 'error_code'])
    .execute();
  return Object.fromEntries(rows.map((r) => [`${r.action}/${r.outcome}${r.error_code ? `/${r.error_code}` : ''}`, Number(r.n)]));
}

export interface BenchGateway extends Gateway {
  config: Config;
  logs: LogTally;
  seed(records: Partial<CatalogRecord>[]): Promise<void>;
}

/** The gateway in this process. */
export async function bootGateway(spec: GatewaySpec): Promise<BenchGateway> {
  const config = parseConfig(gatewayDoc(spec), {});
  const logs = new LogTally();
  const gw = await startGateway(config, { logger: tallyLogger(config.logging.level, logs) });
  return {
    ...gw,
    config,
    logs,
    seed: (records) => seedInto(gw, records),
  };
}

export async function seedInto(gw: Gateway, records: Partial<CatalogRecord>[]): Promise<void> {
  await seedRecordings(gw.deps.recordings, records);
}

/** Seeds through a repository (a cluster primary seeds before any gateway runs). */
export async function seedRecordings(recordings: Pick<RecordingRepository, 'upsertAll'>, records: Partial<CatalogRecord>[]): Promise<void> {
  const full = records.map((r) => ({ state: 'AVAILABLE', legal_hold: false, source_system: 'avaya_aura', tenant_id: 'acme', ...r }) as CatalogRecord);
  for (let i = 0; i < full.length; i += 5000) await recordings.upsertAll(full.slice(i, i + 5000));
}

/** Whether this checkout's gateway accepts `type: legacy-http` sources (the connector is being wired in). */
export function legacyHttpWired(): boolean {
  try {
    parseConfig(
      gatewayDoc({
        dir: '/nonexistent',
        archiveRoot: '/nonexistent',
        sources: [{ name: 'probe', type: 'legacy-http', provider: 'generic_http', api_endpoint: 'http://127.0.0.1:9/archive', auth_type: 'none' }],
      }),
      {},
    );
    return true;
  } catch {
    return false;
  }
}

// ------------------------------------------------------------------------------------------
// The gateway in a child process

export interface ChildStats {
  rss: number;
  heapTotal: number;
  heapUsed: number;
  external: number;
  arrayBuffers: number;
  fds: number;
  activeHandles: number;
  logs: Record<string, number>;
  audit: Record<string, number>;
  transcoder: { active: number; queued: number };
  /** With workers: the figures above are sums over these (the primary and each worker). */
  processes?: { pid: number; role: 'primary' | 'worker'; rss: number; heapUsed: number }[];
}

export interface ChildGateway {
  url: string;
  /** The child process: the gateway, or with `workers` the cluster primary. */
  pid: number;
  /**
   * Every process of the gateway now: [pid] alone, or the primary and its workers (primary first;
   * a replaced worker's new pid appears here). Sum procCpuSeconds / procStatus over these.
   */
  pids(): number[];
  child: ChildProcess;
  stats(): Promise<ChildStats>;
  resetLogs(): Promise<void>;
  stop(): Promise<void>;
}

export interface ChildSpec {
  doc: Record<string, unknown>;
  seed: Partial<CatalogRecord>[];
  /** Extra node flags for the child (e.g. --max-old-space-size); cluster workers inherit them. */
  execArgv?: string[];
  /** Run the gateway as `custodian serve` with server.workers = N (a node:cluster primary and N workers); default 1: one process. */
  workers?: number;
}

const CHILD_ENTRY = fileURLToPath(new URL('../gateway-process.ts', import.meta.url));
// Two directories deep, like src/<dir>/: the gateway's paths relative to its own files (web/dist, demo/audio) still resolve.
const CHILD_BUNDLE = fileURLToPath(new URL('../.build/gateway-process.mjs', import.meta.url));
let built: Promise<unknown> | undefined;

/**
 * The child runs compiled JavaScript, as production does (`npm run build`, `node dist/cli/main.js
 * serve`): bench/gateway-process.ts and the gateway bundled once per run with esbuild, npm packages
 * left external. Under tsx the same gateway holds ~45 MiB more (the loader), which is not the
 * gateway's memory.
 */
function buildChild(): Promise<unknown> {
  built ??= import('esbuild').then((esbuild) =>
    esbuild.build({ entryPoints: [CHILD_ENTRY], outfile: CHILD_BUNDLE, bundle: true, platform: 'node', format: 'esm', target: 'node20', packages: 'external', logLevel: 'warning' }),
  );
  return built;
}

/** Starts bench/gateway-process.ts, compiled, alone in a child process. */
export async function spawnGateway(spec: ChildSpec, specPath: string): Promise<ChildGateway> {
  const doc = spec.workers === undefined ? spec.doc : { ...spec.doc, server: { ...(spec.doc.server as object | undefined), workers: spec.workers } };
  writeFileSync(specPath, JSON.stringify({ ...spec, doc }));
  await buildChild();
  const child = fork(CHILD_BUNDLE, [specPath], { execArgv: [...(spec.execArgv ?? [])], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  let seq = 0;
  const waiting = new Map<number, (v: any) => void>();
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  let pids = [child.pid!];
  const ready = new Promise<{ url: string }>((resolve, reject) => {
    child.on('message', (m: any) => {
      if (m?.type === 'pids' || m?.type === 'ready') pids = m.pids ?? pids;
      if (m?.type === 'ready') resolve(m);
      else if (m?.type === 'failed') reject(new Error(`gateway child failed: ${m.error}`));
      else if (m?.id !== undefined) {
        waiting.get(m.id)?.(m.value);
        waiting.delete(m.id);
      }
    });
    void exited.then((code) => reject(new Error(`gateway child exited (${code}) before it was ready`)));
  });
  const { url } = await ready;
  const ask = <T>(cmd: string): Promise<T> =>
    new Promise((resolve, reject) => {
      const id = ++seq;
      waiting.set(id, resolve);
      child.send({ id, cmd }, (err) => err && reject(err));
    });
  return {
    url,
    pid: child.pid!,
    pids: () => [...pids],
    child,
    stats: () => ask<ChildStats>('stats'),
    resetLogs: () => ask<void>('reset-logs'),
    async stop() {
      if (child.exitCode !== null) return;
      child.send({ id: ++seq, cmd: 'stop' });
      const t = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(t);
    },
  };
}

// ------------------------------------------------------------------------------------------
// /proc readings

export function procStatus(pid: number): { rss: number; hwm: number } {
  const s = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(s)?.[1] ?? NaN) * 1024;
  return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
}

/** Resets VmHWM (peak RSS) to the current RSS (Linux: write 5 to clear_refs). */
export function resetPeakRss(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

/** utime + stime of a process (all its threads), or of one of its threads, in seconds. */
export function procCpuSeconds(pid: number, tid?: number): number {
  const stat = readFileSync(tid === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${tid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[11] = utime, fields[12] = stime (1-based 14 and 15 in proc(5))
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

export function fdCount(pid: number): number {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return -1;
  }
}

/** Samples VmRSS every `everyMs` until stopped; returns the peak and the samples. */
export function rssSampler(pid: number, everyMs = 100): { stop(): { peak: number; samples: number[] } } {
  const samples: number[] = [];
  const t = setInterval(() => {
    try {
      samples.push(procStatus(pid).rss);
    } catch {
      /* gone */
    }
  }, everyMs);
  return {
    stop() {
      clearInterval(t);
      return { peak: Math.max(...samples, 0), samples };
    },
  };
}

/**
 * Samples the summed VmRSS of a gateway's processes (pids() is asked at every tick: a replaced
 * worker counts) every `everyMs`. With several processes this is the peak of the total: summing
 * each process's VmHWM would add peaks reached at different times (an upper bound, not the peak).
 */
export function summedRssSampler(pids: () => number[], everyMs = 100): { stop(): { peak: number; samples: number } } {
  let peak = 0;
  let samples = 0;
  const tick = () => {
    let sum = 0;
    for (const pid of pids()) {
      try {
        sum += procStatus(pid).rss;
      } catch {
        /* gone */
      }
    }
    samples++;
    if (sum > peak) peak = sum;
  };
  tick();
  const t = setInterval(tick, everyMs);
  return {
    stop() {
      clearInterval(t);
      tick();
      return { peak, samples };
    },
  };
}

export async function waitUntil(cond: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (cond()) return true;
    await sleep(20);
  }
  return cond();
}
