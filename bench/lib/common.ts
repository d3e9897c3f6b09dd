/**
 * Shared plumbing of the benchmarks: argument parsing, statistics, tables, machine description
 * and the JSON result files in bench/results/. Nothing here measures anything by itself.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism, totalmem } from 'node:os';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const RESULTS_DIR = fileURLToPath(new URL('../results/', import.meta.url));
export const DEMO_AUDIO = fileURLToPath(new URL('../../demo/audio/', import.meta.url));

export const MiB = 1024 * 1024;
export const GiB = 1024 * MiB;

// ------------------------------------------------------------------------------------------
// Arguments: bare words are benchmark names, `--flag` is true, `--key=value` is a parameter.

export interface BenchArgs {
  names: string[];
  quick: boolean;
  full: boolean;
  params: Map<string, string>;
}

export function parseArgs(argv: string[]): BenchArgs {
  const names: string[] = [];
  const params = new Map<string, string>();
  for (const a of argv) {
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      if (eq < 0) params.set(a.slice(2), 'true');
      else params.set(a.slice(2, eq), a.slice(eq + 1));
    } else names.push(a);
  }
  return { names, quick: params.get('quick') === 'true', full: params.get('full') === 'true', params };
}

/** A numeric parameter: `--key=value`, else the quick or normal default. */
export function numParam(args: BenchArgs, key: string, normal: number, quick: number = normal): number {
  const v = args.params.get(key);
  if (v !== undefined) {
    const n = Number(v);
    if (!Number.isFinite(n)) throw new Error(`--${key}=${v} is not a number`);
    return n;
  }
  return args.quick ? quick : normal;
}

export function listParam(args: BenchArgs, key: string, normal: number[], quick: number[] = normal): number[] {
  const v = args.params.get(key);
  if (v !== undefined) return v.split(',').map((s) => Number(s.trim()));
  return args.quick ? quick : normal;
}

export function strParam(args: BenchArgs, key: string, normal: string, quick: string = normal): string {
  return args.params.get(key) ?? (args.quick ? quick : normal);
}

// ------------------------------------------------------------------------------------------
// Statistics

export interface Summary {
  n: number;
  mean: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  min: number;
}

/** Nearest-rank percentile of an ascending array. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank]!;
}

export function summarize(values: readonly number[]): Summary {
  const s = [...values].sort((a, b) => a - b);
  const mean = s.reduce((a, b) => a + b, 0) / (s.length || 1);
  return { n: s.length, mean, p50: percentile(s, 50), p90: percentile(s, 90), p99: percentile(s, 99), max: s[s.length - 1] ?? Number.NaN, min: s[0] ?? Number.NaN };
}

export function median(values: readonly number[]): number {
  return percentile([...values].sort((a, b) => a - b), 50);
}

/** Milliseconds since `t0` (a process.hrtime.bigint() value). */
export function msSince(t0: bigint): number {
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** A small deterministic PRNG (mulberry32) so runs pick the same samples. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Runs `worker(i)` for i in [0, n) with at most `concurrency` at once. */
export async function pool(n: number, concurrency: number, worker: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const lanes = Array.from({ length: Math.min(n, concurrency) }, async () => {
    while (next < n) await worker(next++);
  });
  await Promise.all(lanes);
}

// ------------------------------------------------------------------------------------------
// Output

export const fmt = {
  ms: (v: number) => (Number.isFinite(v) ? (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2)) : '-'),
  n: (v: number, digits = 1) => (Number.isFinite(v) ? v.toFixed(digits) : '-'),
  int: (v: number) => (Number.isFinite(v) ? Math.round(v).toLocaleString('en-US') : '-'),
  ratio: (v: number) => (Number.isFinite(v) ? v.toFixed(2) : '-'),
  mib: (bytes: number) => (bytes / MiB).toFixed(1),
};

export function printTable(title: string, headers: string[], rows: (string | number)[][]): void {
  const cells = rows.map((r) => r.map((c) => String(c)));
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((r) => r[i]?.length ?? 0)));
  const line = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  console.log(`\n${title}`);
  console.log(line(headers));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const r of cells) console.log(line(r));
}

export interface Goal {
  goal: string;
  target: string;
  value: string;
  /** Never true for a goal that was not measured. */
  met: boolean;
  /** The goal was not measured in this run (e.g. the 10 M catalog without --full): printed as "not measured", never as met. */
  notMeasured?: boolean;
}

/** The verdict column of a goal. */
export function verdict(g: Goal): string {
  return g.notMeasured ? 'not measured' : g.met ? 'met' : 'MISSED';
}

export function printGoals(goals: Goal[]): void {
  if (!goals.length) return;
  printTable(
    'Goals',
    ['goal', 'target', 'measured', ''],
    goals.map((g) => [g.goal, g.target, g.value, verdict(g)]),
  );
}

let machineCache: Record<string, unknown> | undefined;

/** The machine a result was measured on (docs/BENCHMARKS.md quotes it). */
export function machineInfo(): Record<string, unknown> {
  if (machineCache) return machineCache;
  const cpuinfo = safe(() => readFileSync('/proc/cpuinfo', 'utf8'), '');
  const model = /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1]?.trim() ?? 'unknown';
  const version = (cmd: string, args: string[], re: RegExp) =>
    safe(() => {
      const out = execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
      return re.exec(out)?.[1] ?? out.split('\n')[0];
    }, null);
  machineCache = {
    nproc: availableParallelism(),
    cpu_model: model,
    node: process.version,
    memory_gib: +(totalmem() / GiB).toFixed(1),
    kernel: safe(() => readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim(), 'unknown'),
    ffmpeg: version('ffmpeg', ['-hide_banner', '-version'], /ffmpeg version (\S+)/),
    nginx: safe(() => {
      // nginx -v prints to stderr
      const r = execFileSync('sh', ['-c', 'nginx -v 2>&1'], { encoding: 'utf8' });
      return r.trim().replace(/^nginx version: /, '');
    }, null),
  };
  return machineCache;
}

function safe<T>(f: () => T, fallback: T): T {
  try {
    return f();
  } catch {
    return fallback;
  }
}

export interface BenchResult {
  name: string;
  started_at: string;
  duration_s: number;
  quick: boolean;
  machine: Record<string, unknown>;
  params: Record<string, unknown>;
  results: unknown;
  goals: Goal[];
  notes: string[];
  /** Errors and odd gateway behaviour seen while measuring. */
  observations: string[];
  /** Set when the benchmark found a correctness failure: the run exits 1 (after writing the JSON). */
  failed?: string;
}

export function writeResult(r: BenchResult): string {
  mkdirSync(RESULTS_DIR, { recursive: true });
  const path = `${RESULTS_DIR}${r.name}.json`;
  writeFileSync(path, JSON.stringify(r, null, 2) + '\n');
  return path;
}

/** What every benchmark module exports; bench/run.ts runs them in order. */
export interface Benchmark {
  name: string;
  description: string;
  run(args: BenchArgs): Promise<BenchResult>;
}

/**
 * Unhandled rejections and uncaught exceptions raised by the in-process gateway are findings,
 * not reasons to lose the whole run: they are kept and reported by the benchmark during which
 * they surfaced (possibly one started after the one that caused them).
 */
const stray: string[] = [];
let strayInstalled = false;
function installStrayHandlers(): void {
  if (strayInstalled) return;
  strayInstalled = true;
  const keep = (kind: string) => (e: unknown) => {
    const msg = `${kind}: ${(e as Error)?.stack?.split('\n').slice(0, 6).join(' | ') ?? String(e)}`;
    console.error(`!!! ${msg}`);
    stray.push(msg);
  };
  process.on('unhandledRejection', keep('unhandled rejection'));
  process.on('uncaughtException', keep('uncaught exception'));
}

/** Runs one benchmark: prints its tables (the benchmark does), goals and writes its JSON. */
export async function runBenchmark(b: Benchmark, args: BenchArgs): Promise<BenchResult> {
  installStrayHandlers();
  console.log(`\n=== ${b.name}: ${b.description}${args.quick ? ' (--quick)' : ''}`);
  const before = stray.length;
  const r = await b.run(args);
  for (const m of stray.slice(before)) r.observations.push(`in this process while ${b.name} ran (possibly left over from an earlier benchmark): ${m}`);
  printGoals(r.goals);
  for (const n of r.notes) console.log(`note: ${n}`);
  for (const o of r.observations) console.log(`observed: ${o}`);
  console.log(`→ ${writeResult(r)} (${r.duration_s.toFixed(1)} s)`);
  if (r.failed) throw new Error(`${b.name} FAILED: ${r.failed}`);
  return r;
}

/** Lets `tsx bench/<name>.ts [--quick] [--k=v]` run one benchmark alone. */
export function isMain(metaUrl: string): boolean {
  return process.argv[1] !== undefined && fileURLToPath(metaUrl) === process.argv[1];
}

export async function standalone(b: Benchmark): Promise<void> {
  try {
    await runBenchmark(b, parseArgs(process.argv.slice(2)));
    process.exit(0);
  } catch (e) {
    console.error(e);
    process.exit(1);
  }
}

export function loadavg(): string {
  return safe(() => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' '), 'unknown');
}

/** Share of the machine's CPU time that was busy over `ms` (all processes, ours included). */
export async function cpuBusy(ms = 2000): Promise<number> {
  const read = () => {
    const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
    const idle = (f[3] ?? 0) + (f[4] ?? 0);
    return { idle, total: f.reduce((a, b) => a + b, 0) };
  };
  const a = read();
  await sleep(ms);
  const b = read();
  return 1 - (b.idle - a.idle) / Math.max(1, b.total - a.total);
}

export function newResult(name: string, args: BenchArgs, params: Record<string, unknown>): BenchResult & { t0: number } {
  return {
    name,
    started_at: new Date().toISOString(),
    duration_s: 0,
    quick: args.quick,
    machine: { ...machineInfo(), loadavg_at_start: loadavg() },
    params,
    results: {},
    goals: [],
    notes: [],
    observations: [],
    t0: Date.now(),
  };
}

export function finish(r: BenchResult & { t0: number }): BenchResult {
  const { t0, ...rest } = r;
  return { ...rest, machine: { ...rest.machine, loadavg_at_end: loadavg() }, duration_s: (Date.now() - t0) / 1000 };
}
