/**
 * stream: bytes through custodian vs the same bytes through nginx proxy_pass vs straight from the
 * origin, all measured in this run on this machine.
 *
 *  - one big recording (1 GiB) downloaded alone, and N (200) concurrent 50 MiB recordings: MB/s,
 *    and custodian's ratio to nginx proxying the same origin (goal ≥ 0.8);
 *  - time to first byte of a small recording at 1, 50 and 200 concurrent clients: custodian minus
 *    the origin, p50/p99 (goal p99 overhead < 5 ms);
 *  - peak RSS of the gateway (alone in a child process) while 200 slow clients stream (goal < 256 MiB).
 *
 * The origin is nginx serving files (sendfile). custodian reads the same files through its
 * filesystem connector ("custodian-fs") and, when this checkout's gateway accepts `legacy-http`
 * sources, also through the generic_http legacy connector from the nginx origin ("custodian-http",
 * the like-for-like comparison with nginx proxy_pass). The client is undici in this process; every
 * target is measured with the same client on the same 2 cores, so the client's CPU is in every row.
 *
 *   npx tsx bench/stream.ts [--quick] [--big-mib=1024] [--small-mib=50] [--clients=200]
 *        [--big-reps=3] [--many-reps=1] [--nginx-buffering=on|off] [--ttfb-levels=1,50,200] [--ttfb-requests=2000] [--slow-clients=200] [--slow-kib-s=64] [--slow-seconds=20]
 *        [--fd-recheck-s=12] [--client=curl|undici]
 *        [--phases=bulk,ttfb,rss] [--targets=origin,nginx,custodian-http,custodian-fs] [--gateway-flags=--cpu-prof]
 *        [--gateway-workers=1,2] [--gateway-scheduling=round_robin|os] [--ttfb-paced-rps=200] [--ttfb-paced-seconds=10]
 * (TTFB is measured twice: closed-loop clients, each sending its next request as soon as the last
 * one answered — at 50 and 200 clients that saturates every target and measures its queue — and
 * paced: the same connections sending --ttfb-paced-rps requests per second in all, on a fixed
 * schedule, each latency counted from its scheduled time (no coordinated omission), which is the
 * time a request spends in the target rather than in the line in front of it.)
 * (--gateway-workers: the throughput and TTFB phases run once per value, the gateway as
 * `custodian serve` with server.workers = N — nginx runs one worker per core; the RSS phase uses
 * the first value.)
 * (--big-reps / --many-reps: the targets take turns — origin, nginx, custodian…, then again — and
 * each reports the median of its reps. Before the timed phases one tiny and one small transfer per
 * target are hashed (SHA-256) against the origin file: a mismatch fails the benchmark. A goal is
 * met only when its target and its reference were whole: every transfer a 200 with every byte,
 * every TTFB request timed, no errors; in the RSS phase every slow client a 200 that received
 * ≥ 80 % of what its pacing allows. With several gateway processes the peak RSS is the peak of
 * their summed VmRSS, sampled every 100 ms.)
 * (--phases / --targets narrow a run for experiments; origin and nginx are always measured, as the
 * references the ratios need. --gateway-flags are node flags for the gateway child, space-separated.)
 */
import { closeSync, copyFileSync, mkdirSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, writeSync } from 'node:fs';
import { execFileSync, fork } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { once, setMaxListeners } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Agent } from 'undici';
import { wavHeader } from '../src/media/wav-header.js';
import {
  type BenchArgs,
  type Benchmark,
  DEMO_AUDIO,
  MiB,
  finish,
  fmt,
  isMain,
  listParam,
  newResult,
  numParam,
  printTable,
  sleep,
  standalone,
  strParam,
  summarize,
  type Summary,
  msSince,
} from './lib/common.js';
import { type ChildGateway, bearer, fdCount, gatewayDoc, legacyHttpWired, procCpuSeconds, procStatus, resetPeakRss, spawnGateway, summedRssSampler } from './lib/gateway.js';
import { complete, curlBatch, curlFailures, download, failures, laneClient, loadAgent, type Download } from './lib/load.js';
import { DEFAULT_PROXY_BUFFERING, type NginxPair, type ProxyBuffering, startNginx } from './lib/nginx.js';

type FileRef = { kind: 'big' } | { kind: 'small'; i: number } | { kind: 'tiny' };

interface Target {
  key: string;
  label: string;
  url(f: FileRef): string;
  headers?: Record<string, string>;
  custodian: boolean;
  agent: Agent;
  /** The gateway child serving a custodian target. */
  gw?: ChildGateway;
  /** Its kind without the worker suffix (custodian-http, custodian-fs), or node-bare. */
  base?: string;
  /** A non-custodian server process whose CPU is counted with the target's (the bare pass-through). */
  proc?: ServerProcess;
}

interface ServerProcess {
  url: string;
  pids(): number[];
  stop(): Promise<void>;
}

/** bench/lib/bare-proxy.ts in a child process, proxying to `originUrl`. */
async function startBareProxy(originUrl: string): Promise<ServerProcess> {
  const child = fork(join(import.meta.dirname, 'lib', 'bare-proxy.ts'), [originUrl], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const [msg] = (await once(child, 'message')) as [{ port: number }];
  return {
    url: `http://127.0.0.1:${msg.port}`,
    pids: () => [child.pid!],
    async stop() {
      if (child.exitCode !== null) return;
      child.kill('SIGTERM');
      await once(child, 'exit');
    },
  };
}

/** A file of `size` bytes: a PCM WAV header, then a repeated random MiB (real data, not a sparse file). */
function writeWav(path: string, size: number, block: Buffer): void {
  const fd = openSync(path, 'w');
  try {
    writeSync(fd, wavHeader({ sampleRate: 8000, channels: 1, bitsPerSample: 16, dataLength: size - 44 }));
    let left = size - 44;
    while (left > 0) {
      const n = Math.min(left, block.length);
      writeSync(fd, block, 0, n);
      left -= n;
    }
  } finally {
    closeSync(fd);
  }
}

/** CPU seconds of nginx's workers (children of the master). */
function nginxCpu(ng: NginxPair): number {
  try {
    const kids = readFileSync(`/proc/${ng.pid}/task/${ng.pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
    return kids.reduce((s, p) => s + procCpuSeconds(p), procCpuSeconds(ng.pid));
  } catch {
    return Number.NaN;
  }
}

const mbps = (bytes: number, ms: number) => bytes / 1e6 / (ms / 1000);

/** Median of the reps: the middle one, the mean of the middle two when their number is even. */
function mid(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  if (!s.length) return Number.NaN;
  const h = s.length >> 1;
  return s.length % 2 ? s[h]! : (s[h - 1]! + s[h]!) / 2;
}

function sha256File(path: string): string {
  const h = createHash('sha256');
  const fd = openSync(path, 'r');
  const buf = Buffer.allocUnsafe(4 * MiB);
  try {
    for (let n; (n = readSync(fd, buf, 0, buf.length, null)) > 0; ) h.update(buf.subarray(0, n));
  } finally {
    closeSync(fd);
  }
  return h.digest('hex');
}

function hasCurl(): boolean {
  try {
    execFileSync('curl', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

async function run(args: BenchArgs) {
  const p = {
    big_bytes: numParam(args, 'big-mib', 1024, 128) * MiB,
    small_bytes: numParam(args, 'small-mib', 50, 8) * MiB,
    clients: numParam(args, 'clients', 200, 20),
    // Reps, interleaved across targets (A B C A B C …); each target reports the median of its reps.
    big_reps: numParam(args, 'big-reps', 3, 2),
    many_reps: numParam(args, 'many-reps', 1, 1),
    ttfb_levels: listParam(args, 'ttfb-levels', [1, 50, 200], [1, 20]),
    ttfb_requests: numParam(args, 'ttfb-requests', 2000, 150),
    ttfb_paced_rps: numParam(args, 'ttfb-paced-rps', 200, 100),
    ttfb_paced_seconds: numParam(args, 'ttfb-paced-seconds', 10, 3),
    slow_clients: numParam(args, 'slow-clients', 200, 20),
    slow_bytes_per_s: numParam(args, 'slow-kib-s', 64, 64) * 1024,
    slow_seconds: numParam(args, 'slow-seconds', 20, 4),
    fd_recheck_s: numParam(args, 'fd-recheck-s', 12, 0),
    client: strParam(args, 'client', hasCurl() ? 'curl' : 'undici'),
    phases: strParam(args, 'phases', 'bulk,ttfb,rss').split(','),
    targets: strParam(args, 'targets', 'origin,nginx,custodian-http,custodian-fs,node-bare').split(','),
    gateway_flags: strParam(args, 'gateway-flags', '').split(' ').filter(Boolean),
    gateway_workers: listParam(args, 'gateway-workers', [1, 2], [1]),
    gateway_scheduling: strParam(args, 'gateway-scheduling', 'round_robin'),
    nginx_buffering: strParam(args, 'nginx-buffering', DEFAULT_PROXY_BUFFERING) as ProxyBuffering,
  };
  if (p.nginx_buffering !== 'on' && p.nginx_buffering !== 'off') throw new Error(`--nginx-buffering=${p.nginx_buffering}: on or off`);
  const r = newResult('stream', args, p);
  const wired = legacyHttpWired();
  r.notes.push(
    wired
      ? 'custodian-http: legacy-http connector (generic_http profile, auth none) reading from the nginx origin — the like-for-like comparison with nginx proxy_pass; custodian-fs: filesystem connector on the same files.'
      : 'The legacy-http connector is not accepted by this checkout\'s config schema yet: custodian reads the files through its filesystem connector ("custodian-fs"), nginx proxies the nginx static origin. The ratio compares a disk-reading gateway with an HTTP proxy.',
    `Origin = nginx static (sendfile). nginx proxy = proxy_pass to that origin with an upstream keep-alive pool, configured for large media: proxy_buffering ${p.nginx_buffering} (--nginx-buffering), proxy_buffer_size 64k, proxy_buffers 8 64k, proxy_busy_buffers_size 128k, proxy_max_temp_file_size 0 (no spooling to disk). One nginx master, workers = nproc.`,
    'Content: one tiny and one small transfer per target (and one per RSS-phase gateway) hashed with SHA-256 against the origin file; a mismatch fails the benchmark. Every goal needs its target and its reference whole: every transfer a 200 with every byte, every TTFB request timed, no errors.',
    'Clients: bulk transfers (big, N concurrent) with one curl --parallel process writing to /dev/null (unless --client=undici); time to first byte with closed-loop undici clients, one connection each (the first request of each is not counted); slow clients with undici. All in the benchmark process, sharing the 2 cores with the servers. MB = 10^6 bytes.',
    'Gateway = bench/gateway-process.ts (the real gateway, compiled: an esbuild bundle, as production runs `npm run build` output), SQLite catalog, audit on, logging warn, rate limit off.',
  );

  const dir = mkdtempSync(join(tmpdir(), 'custodian-bench-stream-'));
  const originRoot = join(dir, 'origin');
  const children: ChildGateway[] = [];
  let ng: NginxPair | undefined;
  let bare: ServerProcess | undefined;
  const agents: Agent[] = [];
  let failed: string | undefined;
  try {
    // ---------------------------------------------------------------- files, nginx, gateway
    mkdirSync(originRoot, { recursive: true });
    const block = randomBytes(MiB);
    console.log(`writing ${fmt.mib(p.big_bytes)} MiB + ${fmt.mib(p.small_bytes)} MiB test files in ${originRoot}`);
    writeWav(join(originRoot, 'big.wav'), p.big_bytes, block);
    writeWav(join(originRoot, 'small.wav'), p.small_bytes, block);
    copyFileSync(join(DEMO_AUDIO, 'call_mono_pcm16_8k.wav'), join(originRoot, 'tiny.wav'));
    const tinyBytes = readFileSync(join(originRoot, 'tiny.wav')).length;

    ng = await startNginx({ dir, root: originRoot, proxyBuffering: p.nginx_buffering });
    r.notes.push(`nginx config:\n${ng.config}`);
    if (p.targets.includes('node-bare')) {
      bare = await startBareProxy(ng.originUrl);
      r.notes.push(
        'node bare = bench/lib/bare-proxy.ts: one Node process passing the origin\'s bytes through (node:http server, undici request with the legacy-http connector\'s agent settings, no catalog, audit, auth or sniffing); "+ SHA-256" also hashes every byte sent, as custodian\'s audit must. Not a goal reference: it shows what the design (one event loop, SHA-256 of every byte) allows on this machine, and custodian ÷ it what custodian\'s own work costs.',
      );
    }

    const smallIds = Math.max(p.clients, p.slow_clients);
    const seed: Record<string, unknown>[] = [
      { legacy_archive_id: 'fs-big', locator: 'big.wav' },
      { legacy_archive_id: 'fs-tiny', locator: 'tiny.wav' },
    ];
    for (let i = 0; i < smallIds; i++) seed.push({ legacy_archive_id: `fs-small-${i}`, locator: 'small.wav' });
    const sources: Record<string, unknown>[] = [];
    if (wired) {
      sources.push({ name: 'web', type: 'legacy-http', provider: 'generic_http', api_endpoint: `${ng.originUrl}/archive`, auth_type: 'none', source_systems: ['legacy_web'], timeout_ms: 30_000 });
      seed.push({ legacy_archive_id: 'big', source_system: 'legacy_web', connector: 'web' }, { legacy_archive_id: 'tiny', source_system: 'legacy_web', connector: 'web' });
      for (let i = 0; i < smallIds; i++) seed.push({ legacy_archive_id: `small-${i}`, source_system: 'legacy_web', connector: 'web' });
    }
    const childSpec = (name: string, workers = 1) => {
      const d = join(dir, name);
      mkdirSync(d, { recursive: true });
      const doc = gatewayDoc({ dir: d, archiveRoot: originRoot, sources });
      if (workers > 1) doc.server = { ...(doc.server as object), worker_scheduling: p.gateway_scheduling };
      return { doc, seed: seed as never[], execArgv: p.gateway_flags, ...(workers > 1 ? { workers } : {}) };
    };
    // One gateway per worker count (server.workers); the first is "the" gateway of the RSS phase.
    const gws = new Map<number, ChildGateway>();
    for (const n of p.gateway_workers) {
      const g = await spawnGateway(childSpec(`gw-main-w${n}`, n), join(dir, `gw-main-w${n}.json`));
      children.push(g);
      gws.set(n, g);
    }
    const gw = gws.get(p.gateway_workers[0]!)!;

    const agent = () => {
      const a = loadAgent();
      agents.push(a);
      return a;
    };
    const nginxUrl = (base: string) => (f: FileRef) => `${base}/archive/recordings/${f.kind === 'small' ? `small-${f.i}` : f.kind}.wav`;
    const custodianUrl = (base: string, prefix: string) => (f: FileRef) =>
      `${base}/api/v1/recordings/${prefix}${f.kind === 'small' ? `small-${f.i}` : f.kind}/media?format=original`;
    const custodianTargets = (n: number, g: ChildGateway): Target[] => {
      const suffix = n > 1 ? `-w${n}` : '';
      const more = n > 1 ? `, ${n} workers` : '';
      return [
        ...(wired ? [{ key: `custodian-http${suffix}`, base: 'custodian-http', label: `custodian (legacy-http${more})`, url: custodianUrl(g.url, ''), headers: bearer, custodian: true, agent: agent(), gw: g }] : []),
        { key: `custodian-fs${suffix}`, base: 'custodian-fs', label: `custodian (filesystem${more})`, url: custodianUrl(g.url, 'fs-'), headers: bearer, custodian: true, agent: agent(), gw: g },
      ];
    };
    const targets: Target[] = [
      { key: 'origin', label: 'origin (nginx static)', url: nginxUrl(ng.originUrl), custodian: false, agent: agent() },
      { key: 'nginx', label: 'nginx proxy_pass', url: nginxUrl(ng.proxyUrl), custodian: false, agent: agent() },
      // Reported beside the reference, not instead of it: the issue calibrated its goal on Debian's
      // nginx as installed, whose 4 KiB proxy buffers made it 2–4× slower than the reference above.
      { key: 'nginx-defaults', label: 'nginx proxy_pass (default buffers)', url: nginxUrl(ng.proxyDefaultsUrl), custodian: false, agent: agent() },
      ...(bare
        ? [
            { key: 'node-bare', base: 'node-bare', label: 'node bare pass-through', url: nginxUrl(`${bare.url}/plain`), custodian: false, agent: agent(), proc: bare },
            { key: 'node-bare-sha', base: 'node-bare', label: 'node bare + SHA-256', url: nginxUrl(`${bare.url}/sha`), custodian: false, agent: agent(), proc: bare },
          ]
        : []),
      ...[...gws].flatMap(([n, g]) => custodianTargets(n, g)),
    ].filter((t) => !t.base || p.targets.includes(t.base));
    const dl = (t: Target, f: FileRef, extra: { bytesPerSecond?: number; signal?: AbortSignal; hash?: boolean } = {}) =>
      download(t.url(f), t.agent, { ...(t.headers ? { headers: t.headers } : {}), ...extra });

    // warm-up: page cache, connections, JIT — and the content check: one tiny and one small
    // transfer per target hashed (SHA-256) against the origin file's bytes, so a target that
    // answers fast with the wrong bytes cannot pass.
    const originSha = { tiny: sha256File(join(originRoot, 'tiny.wav')), small: sha256File(join(originRoot, 'small.wav')) };
    const content: Record<string, { tiny: boolean; small: boolean }> = {};
    const badContent = new Set<string>();
    const checkContent = (key: string, label: string, d: Download, kind: 'tiny' | 'small', want: number) => {
      const ok = complete(d, want) && d.sha256 === originSha[kind];
      if (!ok) {
        badContent.add(key);
        r.observations.push(`${label}: the ${kind} recording's content check failed (status ${d.status}, ${d.bytes} of ${want} bytes${d.error ? `, ${d.error}` : ''}, SHA-256 ${d.sha256 === originSha[kind] ? 'matches' : `${d.sha256?.slice(0, 16) ?? '-'}… ≠ origin ${originSha[kind].slice(0, 16)}…`})`);
      }
      return ok;
    };
    for (const t of targets) {
      const w = await dl(t, { kind: 'tiny' }, { hash: true });
      if (w.status !== 200 || w.error) throw new Error(`${t.label}: warm-up request failed: ${JSON.stringify(w)}`);
      const s = await dl(t, { kind: 'small', i: 0 }, { hash: true });
      content[t.key] = { tiny: checkContent(t.key, t.label, w, 'tiny', tinyBytes), small: checkContent(t.key, t.label, s, 'small', p.small_bytes) };
    }
    await dl(targets[0]!, { kind: 'big' });

    // The gateway's event-loop thread alone (its tid is its pid): what bounds one stream.
    // With several workers: their event loops summed, and every process of the gateway.
    const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
    const loopCpu = (t: Target) => {
      const proc = t.gw ?? t.proc;
      return proc ? sum(proc.pids().map((pid) => procCpuSeconds(pid, pid))) : Number.NaN;
    };
    const serverCpu = (t: Target) => {
      const proc = t.gw ?? t.proc;
      return (t.base === 'custodian-fs' ? 0 : nginxCpu(ng!)) + (proc ? sum(proc.pids().map((pid) => procCpuSeconds(pid))) : 0);
    };
    /**
     * Peak RSS of a gateway while `f` runs. One process: its VmHWM (reset first; the 100 ms
     * samples beside it). Several (a cluster primary and its workers): the peak of their summed
     * VmRSS sampled every 100 ms — their VmHWMs summed would add peaks reached at different
     * times; that sum is kept beside it (`hwm_sum`).
     */
    const withPeak = async <T>(g: ChildGateway, f: () => Promise<T>): Promise<{ value: T; peak: number; hwmSum: number; processes: number }> => {
      g.pids().forEach((pid) => resetPeakRss(pid));
      const sampler = summedRssSampler(() => g.pids(), 100);
      const value = await f();
      const sampled = sampler.stop().peak;
      const pids = g.pids();
      const hwms = pids.map((pid) => procStatus(pid).hwm);
      return { value, peak: pids.length === 1 ? Math.max(hwms[0]!, sampled) : sampled, hwmSum: sum(hwms), processes: pids.length };
    };
    const phasePeaks: Record<string, { peak: number; hwm_sum: number; processes: number }> = {};
    const notePeak = (k: string, m: { peak: number; hwmSum: number; processes: number }) => {
      const was = phasePeaks[k];
      if (!was || m.peak > was.peak) phasePeaks[k] = { peak: m.peak, hwm_sum: Math.max(m.hwmSum, was?.hwm_sum ?? 0), processes: m.processes };
    };

    // ---------------------------------------------------------------- bulk transfers
    // curl (when present) as the bulk client: a Node client tops out near 0.7 GB/s here and
    // would be the bottleneck of the nginx rows; --client=undici uses undici for these phases too.
    const useCurl = p.client === 'curl';
    const bulk = async (t: Target, files: FileRef[], want: number) => {
      if (useCurl) {
        const b = await curlBatch(files.map((f) => t.url(f)), { ...(t.headers ? { headers: t.headers } : {}), parallel: files.length, configPath: join(dir, 'curl.cfg') });
        if (b.stderr) r.observations.push(`curl stderr (${t.label}): ${b.stderr.slice(0, 300)}`);
        return { wallMs: b.wallMs, bytes: b.transfers.map((x) => x.bytes), totals: b.transfers.map((x) => x.totalMs), errors: curlFailures(b.transfers, files.length, want) };
      }
      const t0 = process.hrtime.bigint();
      const ds = await Promise.all(files.map((f) => dl(t, f)));
      return { wallMs: msSince(t0), bytes: ds.map((d) => d.bytes), totals: ds.map((d) => d.totalMs), errors: failures(ds, want) };
    };

    // ---------------------------------------------------------------- one big recording
    // Targets take turns (origin, nginx, custodian…, then again), so drift on a shared machine
    // hits every target alike; each reports the median of its reps (mean of the middle two when even).
    const bulkTargets = p.phases.includes('bulk') ? targets : [];
    interface BulkRow {
      mbps: number;
      runs: number[];
      server_cpu_s_per_gib: number;
      loop_cpu_s_per_gib: number;
      cpu_runs: number[];
      loop_runs: number[];
      wall_runs_s: number[];
      bytes: number;
      want_bytes: number;
      transfers: number;
      want_transfers: number;
      errors: Record<string, number>;
    }
    const newRow = (): BulkRow => ({ mbps: Number.NaN, runs: [], server_cpu_s_per_gib: Number.NaN, loop_cpu_s_per_gib: Number.NaN, cpu_runs: [], loop_runs: [], wall_runs_s: [], bytes: 0, want_bytes: 0, transfers: 0, want_transfers: 0, errors: {} });
    /** One rep of `files` through `t`, added to `row`; returns the transfer's per-stream MB/s. */
    const bulkRep = async (t: Target, row: BulkRow, files: FileRef[], want: number, peakKey: string, aggregate: boolean) => {
      const c0 = serverCpu(t);
      const l0 = loopCpu(t);
      const go = () => bulk(t, files, want);
      let b: Awaited<ReturnType<typeof bulk>>;
      if (t.gw) {
        const m = await withPeak(t.gw, go);
        notePeak(peakKey, m);
        b = m.value;
      } else b = await go();
      const bytes = sum(b.bytes);
      row.cpu_runs.push((serverCpu(t) - c0) / (bytes / (1024 * MiB)));
      row.loop_runs.push((loopCpu(t) - l0) / (bytes / (1024 * MiB)));
      row.runs.push(mbps(bytes, aggregate ? b.wallMs : (b.totals[0] ?? b.wallMs)));
      row.wall_runs_s.push(b.wallMs / 1000);
      row.bytes += bytes;
      row.want_bytes += files.length * want;
      row.transfers += b.bytes.length;
      row.want_transfers += files.length;
      for (const [k, v] of Object.entries(b.errors)) row.errors[k] = (row.errors[k] ?? 0) + v;
      return b.bytes.map((x, i) => mbps(x, b.totals[i]!));
    };
    const settle = (row: BulkRow) => {
      row.mbps = mid(row.runs);
      row.server_cpu_s_per_gib = mid(row.cpu_runs);
      row.loop_cpu_s_per_gib = mid(row.loop_runs);
    };
    const big: Record<string, BulkRow> = {};
    for (let rep = 0; rep < (bulkTargets.length ? p.big_reps : 0); rep++) {
      for (const t of bulkTargets) await bulkRep(t, (big[t.key] ??= newRow()), [{ kind: 'big' }], p.big_bytes, `big ${t.key}`, false);
    }
    Object.values(big).forEach(settle);

    // ---------------------------------------------------------------- N concurrent recordings
    const many: Record<string, BulkRow & { wall_s: number; per_stream_mbps: Summary }> = {};
    const streamMbps: Record<string, number[]> = {};
    for (let rep = 0; rep < (bulkTargets.length ? p.many_reps : 0); rep++) {
      for (const t of bulkTargets) {
        const row = (many[t.key] ??= { ...newRow(), wall_s: Number.NaN, per_stream_mbps: summarize([]) });
        const files = Array.from({ length: p.clients }, (_, i) => ({ kind: 'small', i }) as FileRef);
        (streamMbps[t.key] ??= []).push(...(await bulkRep(t, row, files, p.small_bytes, `${p.clients} concurrent ${t.key}`, true)));
      }
    }
    for (const [k, row] of Object.entries(many)) {
      settle(row);
      row.wall_s = mid(row.wall_runs_s);
      row.per_stream_mbps = summarize(streamMbps[k] ?? []);
    }
    /** A bulk row counts only when every transfer completed with every byte and no error. */
    const bulkWhole = (row: BulkRow | undefined) => !!row && Object.keys(row.errors).length === 0 && row.bytes === row.want_bytes && row.transfers === row.want_transfers;
    const bulkShort = (row: BulkRow | undefined) =>
      !row ? 'not measured' : `${row.transfers}/${row.want_transfers} transfers, ${fmt.mib(row.bytes)} of ${fmt.mib(row.want_bytes)} MiB${Object.keys(row.errors).length ? `, errors ${JSON.stringify(row.errors)}` : ''}`;

    const ref = (k: 'big' | 'many', t: string) => (k === 'big' ? big[t]!.mbps / big.nginx!.mbps : many[t]!.mbps / many.nginx!.mbps);
    if (bulkTargets.length) printTable(
      `Throughput (MB/s; ${fmt.mib(p.big_bytes)} MiB alone, median of ${p.big_reps}; ${p.clients} × ${fmt.mib(p.small_bytes)} MiB at once, aggregate, median of ${p.many_reps}; targets interleaved)`,
      ['target', 'big MB/s', 'big ÷ nginx', `${p.clients}× MB/s`, `${p.clients}× ÷ nginx`, 'stream p50 MB/s', 'server CPU s/GiB (big, many)', 'of it event loop', 'errors'],
      targets.map((t) => [
        t.label,
        fmt.n(big[t.key]!.mbps, 0),
        fmt.ratio(ref('big', t.key)),
        fmt.n(many[t.key]!.mbps, 0),
        fmt.ratio(ref('many', t.key)),
        fmt.n(many[t.key]!.per_stream_mbps.p50, 1),
        `${fmt.n(big[t.key]!.server_cpu_s_per_gib, 2)}, ${fmt.n(many[t.key]!.server_cpu_s_per_gib, 2)}`,
        t.custodian || t.proc ? `${fmt.n(big[t.key]!.loop_cpu_s_per_gib, 2)}, ${fmt.n(many[t.key]!.loop_cpu_s_per_gib, 2)}` : '',
        [bulkWhole(big[t.key]) ? '' : `big: ${bulkShort(big[t.key])}`, bulkWhole(many[t.key]) ? '' : `many: ${bulkShort(many[t.key])}`].filter(Boolean).join('; ') || '0',
      ]),
    );

    // ---------------------------------------------------------------- time to first byte
    // Every request is checked (a 200 with the whole 132 KiB): failures are counted, never dropped
    // silently; a level whose target or origin had any, or fewer samples than requests, meets no goal.
    type Checked = { errors: Record<string, number>; requests: number; samples: number; want: number };
    const ttfb: Record<string, Record<string, Summary & Checked & { rps: number }>> = {};
    const ttfbLevels = p.phases.includes('ttfb') ? p.ttfb_levels : [];
    for (const c of ttfbLevels) {
      const total = Math.max(p.ttfb_requests, c * 10);
      ttfb[c] = {};
      for (const t of targets) {
        const samples: number[] = [];
        const ds: Download[] = [];
        const warm: Download[] = [];
        // one connection per closed-loop client; the first request of each warms its connection up
        const lanes = Array.from({ length: c }, () => laneClient(new URL(t.url({ kind: 'tiny' })).origin));
        let t0 = process.hrtime.bigint();
        let next = 0;
        await Promise.all(
          lanes.map(async (lane) => {
            let first = true;
            while (next < total + c) {
              const i = next++;
              if (i === c) t0 = process.hrtime.bigint();
              const d = await download(t.url({ kind: 'tiny' }), lane, t.headers ? { headers: t.headers } : {});
              if (!first) {
                if (complete(d, tinyBytes) && Number.isFinite(d.ttfbMs)) samples.push(d.ttfbMs);
                ds.push(d);
              } else warm.push(d);
              first = false;
            }
          }),
        );
        const wall = msSince(t0);
        await Promise.all(lanes.map((l) => l.close().catch(() => {})));
        // the warm-up requests are not timed, but they must not fail either
        ttfb[c]![t.key] = { ...summarize(samples), rps: total / (wall / 1000), errors: failures([...warm, ...ds], tinyBytes), requests: ds.length, samples: samples.length, want: total };
      }
    }
    // Paced: R requests per second over the c connections, request i due at t0 + i/R on connection
    // i mod c; its time counts from when it was due, so a late start (the connection still busy)
    // is part of its latency.
    const paced: Record<string, Record<string, Summary & Checked & { late_starts: number; late_ms: Summary; first_byte_ms: Summary }>> = {};
    for (const c of p.ttfb_paced_rps > 0 ? ttfbLevels : []) {
      paced[c] = {};
      const total = Math.round(p.ttfb_paced_rps * p.ttfb_paced_seconds);
      for (const t of targets) {
        const lanes = Array.from({ length: c }, () => laneClient(new URL(t.url({ kind: 'tiny' })).origin));
        const opts = t.headers ? { headers: t.headers } : {};
        const warm = await Promise.all(lanes.map((lane) => download(t.url({ kind: 'tiny' }), lane, opts))); // connect + warm
        const samples: number[] = [];
        const ds: Download[] = [];
        let late = 0;
        // The latency's two parts: how late the request could start (its connection still busy
        // with the one before) and its own time to first byte. On one connection a single slow
        // answer makes the next few late, so the p99 there counts one stall several times.
        const lateMs: number[] = [];
        const t0 = performance.now() + 20;
        await Promise.all(
          lanes.map(async (lane, l) => {
            for (let i = l; i < total; i += c) {
              const due = t0 + (i * 1000) / p.ttfb_paced_rps;
              const wait = due - performance.now();
              if (wait > 0) await sleep(wait);
              else if (wait < -1) late++;
              const start = performance.now();
              const d = await download(t.url({ kind: 'tiny' }), lane, opts);
              // a timer may wake a fraction of a ms early; a failed request has no time to first byte
              if (complete(d, tinyBytes) && Number.isFinite(d.ttfbMs)) samples.push(Math.max(0, start - due) + d.ttfbMs);
              lateMs.push(Math.max(0, start - due));
              ds.push(d);
            }
          }),
        );
        await Promise.all(lanes.map((l) => l.close().catch(() => {})));
        paced[c]![t.key] = {
          ...summarize(samples),
          late_starts: late,
          late_ms: summarize(lateMs),
          first_byte_ms: summarize(ds.filter((d) => complete(d, tinyBytes)).map((d) => d.ttfbMs).filter(Number.isFinite)),
          errors: failures([...warm, ...ds], tinyBytes),
          requests: ds.length,
          samples: samples.length,
          want: total,
        };
      }
    }
    // Per level and target: the summary row and the overhead over the origin measured alongside.
    const tabulate = <S extends Summary & Checked>(byLevel: Record<string, Record<string, S>>, noun: string, extra: (s: S) => string) => {
      const rows: (string | number)[][] = [];
      const over: Record<string, Record<string, { p50: number; p99: number }>> = {};
      for (const [c, byTarget] of Object.entries(byLevel)) {
        over[c] = {};
        const o = byTarget.origin!;
        for (const t of targets) {
          const s = byTarget[t.key]!;
          over[c]![t.key] = { p50: s.p50 - o.p50, p99: s.p99 - o.p99 };
          rows.push([
            `${c} ${noun}${Number(c) > 1 ? 's' : ''}: ${t.label}`,
            fmt.ms(s.p50),
            fmt.ms(s.p99),
            fmt.ms(s.max),
            extra(s),
            t.key === 'origin' ? '' : `${fmt.ms(s.p50 - o.p50)} / ${fmt.ms(s.p99 - o.p99)}`,
            [s.samples !== s.want ? `${s.samples}/${s.want} timed` : '', ...Object.entries(s.errors).map(([k, v]) => `${v}× ${k}`)].filter(Boolean).join('; ') || '0',
          ]);
        }
      }
      return { rows, over };
    };
    const { rows: pacedRows, over: pacedOverhead } = tabulate(paced, 'connection', (s) => `${fmt.int(s.late_starts)} / ${fmt.ms(s.late_ms.p99)} / ${fmt.ms(s.first_byte_ms.p99)}`);
    if (pacedRows.length) printTable(
      `Time to first byte, paced: ${p.ttfb_paced_rps} requests/s in all for ${p.ttfb_paced_seconds} s, spread over the connections; from each request's scheduled time (ms)`,
      ['connections: target', 'p50', 'p99', 'max', 'late starts / late p99 / own TTFB p99', 'minus origin p50 / p99', 'errors'],
      pacedRows,
    );
    const { rows: ttfbRows, over: overhead } = tabulate(ttfb, 'client', (s) => fmt.int(s.rps));
    if (ttfbRows.length) printTable(
      `Time to first byte of a ${(tinyBytes / 1024).toFixed(0)} KiB recording, closed-loop clients (ms)`,
      ['clients: target', 'p50', 'p99', 'max', 'req/s', 'minus origin p50 / p99', 'errors'],
      ttfbRows,
    );

    // Every gateway's log (each worker count's), not only the first's.
    const mainStats: Record<string, Awaited<ReturnType<ChildGateway['stats']>>> = {};
    for (const [n, g] of gws) mainStats[`w${n}`] = await g.stats();
    for (const g of gws.values()) await g.stop();

    // ---------------------------------------------------------------- RSS with slow clients
    const rss: Record<string, any> = {};
    for (const t of targets.filter((x) => x.gw === gw && p.phases.includes('rss'))) {
      // the same worker count as the gateway these targets belong to (the first of --gateway-workers)
      const child = await spawnGateway(childSpec(`gw-rss-${t.key}`, p.gateway_workers[0]!), join(dir, `gw-rss-${t.key}.json`));
      children.push(child);
      const a = loadAgent();
      agents.push(a);
      const target: Target = { ...t, agent: a, url: t.base === 'custodian-fs' ? custodianUrl(child.url, 'fs-') : custodianUrl(child.url, ''), gw: child };
      for (let i = 0; i < 3; i++) {
        const w = await dl(target, { kind: 'tiny' }, { hash: i === 0 });
        if (i === 0) checkContent(t.key, `${t.label} (RSS phase gateway)`, w, 'tiny', tinyBytes);
      }
      await sleep(1000);
      const rssNow = () => sum(child.pids().map((pid) => procStatus(pid).rss));
      const fdsNow = () => sum(child.pids().map((pid) => fdCount(pid)));
      const baseline = rssNow();
      const fds0 = fdsNow();
      const ac = new AbortController();
      setMaxListeners(0, ac.signal);
      const stopAt = setTimeout(() => ac.abort(), p.slow_seconds * 1000);
      // What the memory is, halfway through (V8 heap, buffers outside it), beside the RSS.
      const midway = sleep((p.slow_seconds * 1000) / 2).then(() => child.stats());
      const m = await withPeak(child, () => Promise.all(Array.from({ length: p.slow_clients }, (_, i) => dl(target, { kind: 'small', i }, { bytesPerSecond: p.slow_bytes_per_s, signal: ac.signal }))));
      clearTimeout(stopAt);
      const ds = m.value;
      await sleep(2000);
      const after = await child.stats();
      const received = ds.reduce((s, d) => s + d.bytes, 0);
      // What the pacing lets through: each client reads slow_kib_s from its first byte until the
      // hang-up (or its whole file); a client with no first byte was owed the whole time.
      const owed = sum(ds.map((d) => Math.min(p.small_bytes, p.slow_bytes_per_s * Math.max(0, p.slow_seconds - (Number.isFinite(d.ttfbMs) ? d.ttfbMs / 1000 : 0)))));
      const notOk = ds.filter((d) => d.status !== 200);
      const nonAbort = ds.filter((d) => d.error !== undefined && d.error !== 'AbortError' && d.error !== 'UND_ERR_ABORTED');
      // sockets to the origin may sit in the connector's keep-alive pool (10 s): look again later
      let fdsLater = Number.NaN;
      if (after.fds > fds0 + 5 && p.fd_recheck_s > 0) {
        await sleep(p.fd_recheck_s * 1000);
        fdsLater = fdsNow();
      }
      rss[t.key] = {
        processes: m.processes,
        peak_method: m.processes === 1 ? 'VmHWM (reset before the phase) and 100 ms VmRSS samples, the larger' : 'peak of the summed VmRSS of every process, sampled every 100 ms',
        baseline_mib: baseline / MiB,
        peak_mib: m.peak / MiB,
        hwm_sum_mib: m.hwmSum / MiB,
        growth_mib: (m.peak - baseline) / MiB,
        rss_after_mib: rssNow() / MiB,
        midway_mib: await midway.then((x) => ({ rss: x.rss / MiB, heap_total: x.heapTotal / MiB, heap_used: x.heapUsed / MiB, external: x.external / MiB, array_buffers: x.arrayBuffers / MiB })),
        fds_before: fds0,
        fds_after: after.fds,
        fds_later: fdsLater,
        received_mib: received / MiB,
        owed_mib: owed / MiB,
        received_share: received / owed,
        clients: ds.length,
        not_200: notOk.length,
        first_byte_ms: summarize(ds.map((d) => d.ttfbMs).filter(Number.isFinite)),
        non_abort_errors: failures(nonAbort),
        audit: after.audit,
        logs: after.logs,
      };
      await child.stop();
    }
    if (Object.keys(rss).length) printTable(
      `Gateway RSS while ${p.slow_clients} slow clients (${p.slow_bytes_per_s / 1024} KiB/s each) stream ${fmt.mib(p.small_bytes)} MiB recordings for ${p.slow_seconds} s (fresh gateway process)`,
      ['target', 'processes', 'baseline MiB', 'peak MiB', 'growth MiB', 'after MiB', 'fds before → 2 s → later', 'received MiB (of owed)', 'not 200 / errors'],
      Object.entries(rss).map(([k, v]) => [
        k,
        v.processes,
        fmt.n(v.baseline_mib),
        v.processes > 1 ? `${fmt.n(v.peak_mib)} (ΣHWM ${fmt.n(v.hwm_sum_mib)})` : fmt.n(v.peak_mib),
        fmt.n(v.growth_mib),
        fmt.n(v.rss_after_mib),
        `${v.fds_before} → ${v.fds_after} → ${Number.isNaN(v.fds_later) ? '-' : v.fds_later}`,
        `${fmt.n(v.received_mib)} (${fmt.n(v.owed_mib)}, ${(v.received_share * 100).toFixed(0)} %)`,
        `${v.not_200} / ${Object.values(v.non_abort_errors as Record<string, number>).reduce((a, b) => a + b, 0)}`,
      ]),
    );
    if (Object.keys(phasePeaks).length) printTable(
      'Gateway peak RSS in the throughput phases (one process: VmHWM reset before each rep; several: peak of the summed VmRSS, 100 ms samples)',
      ['phase', 'processes', 'peak MiB', 'Σ VmHWM MiB'],
      Object.entries(phasePeaks).map(([k, v]) => [k, v.processes, fmt.n(v.peak / MiB), v.processes > 1 ? fmt.n(v.hwm_sum / MiB) : '']),
    );

    // ---------------------------------------------------------------- goals and observations
    // A goal counts only when what it compares was whole: every transfer of the target and of its
    // reference a 200 with every byte and no error, every request timed, the content verified.
    // Otherwise it is not met, and its value says why.
    const contentOk = (k: string) => !badContent.has(k);
    const ttfbWhole = (s: (Summary & Checked) | undefined) => !!s && Object.keys(s.errors).length === 0 && s.samples === s.want && s.requests === s.want;
    const ttfbShort = (who: string, s: (Summary & Checked) | undefined) =>
      !s ? `${who} not measured` : `${who}: ${s.samples}/${s.want} timed${Object.keys(s.errors).length ? `, errors ${JSON.stringify(s.errors)}` : ''}`;
    // The like-for-like target, once per worker count (nginx serves with one worker per core).
    const headlines = targets.filter((t) => t.base === (wired ? 'custodian-http' : 'custodian-fs')).map((t) => t.key);
    for (const headline of headlines.filter((h) => big[h])) {
      for (const [kind, rows, label] of [
        ['big', big, 'big recording'],
        ['many', many, `${p.clients} concurrent`],
      ] as const) {
        const whole = bulkWhole(rows[headline]) && bulkWhole(rows.nginx) && contentOk(headline) && contentOk('nginx');
        const why = whole
          ? ''
          : ` — not comparable: ${[
              bulkWhole(rows[headline]) ? '' : `${headline} ${bulkShort(rows[headline])}`,
              bulkWhole(rows.nginx) ? '' : `nginx ${bulkShort(rows.nginx)}`,
              contentOk(headline) ? '' : `${headline} content check failed`,
              contentOk('nginx') ? '' : 'nginx content check failed',
            ]
              .filter(Boolean)
              .join('; ')}`;
        const v = ref(kind, headline);
        const d = rows['nginx-defaults'];
        const vsDefaults = d && bulkWhole(d) ? `; ÷ nginx with default buffers ${fmt.ratio(rows[headline]!.mbps / d.mbps)}` : '';
        r.goals.push({ goal: `${label} through ${headline} ÷ nginx proxy`, target: '≥ 0.8', value: `${fmt.ratio(v)}${vsDefaults}${why}`, met: whole && v >= 0.8 });
        if (!whole) r.observations.push(`${label} through ${headline}${why}`);
      }
    }
    const ttfbGoal = (goal: string, byTarget: Record<string, Summary & Checked>, o: { p50: number; p99: number }, headline: string) => {
      const np = byTarget.nginx ? { p50: byTarget.nginx.p50 - byTarget.origin!.p50, p99: byTarget.nginx.p99 - byTarget.origin!.p99 } : undefined;
      const whole = ttfbWhole(byTarget[headline]) && ttfbWhole(byTarget.origin) && contentOk(headline);
      const why = whole
        ? ''
        : ` — ${[ttfbWhole(byTarget[headline]) ? '' : ttfbShort(headline, byTarget[headline]), ttfbWhole(byTarget.origin) ? '' : ttfbShort('origin', byTarget.origin), contentOk(headline) ? '' : `${headline} content check failed`].filter(Boolean).join('; ')}`;
      r.goals.push({
        goal,
        target: '< 5 ms',
        value: `${fmt.ms(o.p99)} ms (p50 ${fmt.ms(o.p50)}${np ? `; nginx proxy: p99 ${fmt.ms(np.p99)}, p50 ${fmt.ms(np.p50)}` : ''})${why}`,
        met: whole && Number.isFinite(o.p99) && o.p99 < 5,
      });
      if (!whole) r.observations.push(`${goal}${why}`);
    };
    for (const [c, headline] of ttfbLevels.flatMap((c) => headlines.map((h) => [c, h] as const))) {
      if (!overhead[c]![headline]) continue;
      ttfbGoal(`TTFB overhead p99 at ${c} client${c > 1 ? 's' : ''} (${headline} − origin)`, ttfb[c]!, overhead[c]![headline]!, headline);
    }
    for (const [k, v] of Object.entries(rss)) {
      const nonAbort = Object.values(v.non_abort_errors as Record<string, number>).reduce((a, b) => a + b, 0);
      const plausible = v.received_share >= 0.8;
      const whole = v.not_200 === 0 && nonAbort === 0 && plausible && contentOk(k);
      const why = whole
        ? ''
        : ` — ${[
            v.not_200 ? `${v.not_200} of ${v.clients} slow clients got no 200` : '',
            nonAbort ? `errors ${JSON.stringify(v.non_abort_errors)}` : '',
            plausible ? '' : `received ${fmt.n(v.received_mib)} MiB, ${(v.received_share * 100).toFixed(0)} % of the ${fmt.n(v.owed_mib)} MiB the pacing allows (≥ 80 % needed)`,
            contentOk(k) ? '' : 'content check failed',
          ]
            .filter(Boolean)
            .join('; ')}`;
      r.goals.push({ goal: `gateway peak RSS, ${p.slow_clients} slow clients (${k}${v.processes > 1 ? `, ${v.processes} processes summed` : ''})`, target: '< 256 MiB', value: `${fmt.n(v.peak_mib)} MiB${why}`, met: whole && v.peak_mib < 256 });
      if (!whole) r.observations.push(`RSS phase ${k}${why}`);
      if (v.fds_after > v.fds_before + 5) {
        r.observations.push(
          Number.isNaN(v.fds_later)
            ? `${k}: 2 s after the slow clients left the gateway held ${v.fds_after} fds (${v.fds_before} before); not re-checked (--fd-recheck-s=0)`
            : `${k}: 2 s after the slow clients left the gateway held ${v.fds_after} fds (${v.fds_before} before), ${v.fds_later} after ${p.fd_recheck_s + 2} s${v.fds_later > v.fds_before + 5 ? ': descriptors not released' : ' (they were released later: sockets to the origin lingering in the keep-alive pool)'}`,
        );
      }
      const lines = Object.entries(v.logs as Record<string, number>);
      if (lines.length) r.observations.push(`gateway log lines, RSS phase ${k} (warn lines for the slow clients' hang-ups are expected): ${JSON.stringify(v.logs)}`);
    }
    for (const t of targets) {
      for (const [kind, rows] of [
        ['big', big],
        ['many', many],
      ] as const) {
        if (rows[t.key] && !bulkWhole(rows[t.key])) r.observations.push(`${t.label}, ${kind}: ${bulkShort(rows[t.key])}`);
      }
      for (const c of ttfbLevels) {
        if (!ttfbWhole(ttfb[c]![t.key])) r.observations.push(`${t.label} at ${c} closed-loop clients: ${ttfbShort(t.key, ttfb[c]![t.key])}`);
        if (paced[c]?.[t.key] && !ttfbWhole(paced[c]![t.key])) r.observations.push(`${t.label}, paced over ${c} connections: ${ttfbShort(t.key, paced[c]![t.key])}`);
      }
    }
    for (const [n, st] of Object.entries(mainStats)) {
      if (Object.keys(st.logs).length) r.observations.push(`gateway log lines during throughput/TTFB phases (gateway ${n}): ${JSON.stringify(st.logs)}`);
    }
    for (const [c, byTarget] of Object.entries(pacedOverhead)) {
      for (const headline of headlines) {
        const o = byTarget[headline];
        if (!o) continue;
        ttfbGoal(`TTFB overhead p99, paced ${p.ttfb_paced_rps} req/s over ${c} connection${Number(c) > 1 ? 's' : ''} (${headline} − origin)`, paced[c]!, o, headline);
      }
    }
    if (badContent.size) failed = `content check failed (SHA-256 of the bytes received ≠ the origin file's) for ${[...badContent].join(', ')}`;
    r.results = {
      legacy_http_wired: wired,
      content_sha256: { origin: originSha, checked: content, failed: [...badContent] },
      big,
      many,
      ttfb,
      ttfb_overhead_vs_origin: overhead,
      ttfb_paced: paced,
      ttfb_paced_overhead_vs_origin: pacedOverhead,
      rss,
      phase_peak_rss_mib: Object.fromEntries(Object.entries(phasePeaks).map(([k, v]) => [k, { peak: v.peak / MiB, hwm_sum: v.hwm_sum / MiB, processes: v.processes }])),
      gateway_after_main: mainStats,
    };
  } finally {
    for (const c of children) await c.stop().catch(() => {});
    await bare?.stop().catch(() => {});
    for (const a of agents) await a.close().catch(() => {});
    await ng?.stop().catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  }
  const out = finish(r);
  // fail loudly, after the result is written (runBenchmark throws on `failed`), as token.ts does
  if (failed) out.failed = failed;
  return out;
}

export const stream: Benchmark = { name: 'stream', description: 'custodian vs nginx proxy_pass vs the origin: MB/s, TTFB overhead, gateway RSS', run };

if (isMain(import.meta.url)) await standalone(stream);
