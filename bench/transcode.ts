/**
 * transcode: prepareMedia(…, 'wav') on ~10-minute G.729, GSM 6.10 and µ-law recordings, one
 * stream at a time, beside ffmpeg run alone on the same file (the reference, measured in the same
 * run) with custodian's own output flags: `ffmpeg -i <file> -map 0:a:0 -map_metadata -1 -c:a
 * pcm_s16le -ar <rate> -ac <ch> -f s16le -flush_packets 0 pipe:1` — the argument vector
 * Transcoder.argv builds from ffmpegInvocation's output arguments, only the input differs (the
 * reference reads the file itself). Without -flush_packets 0 ffmpeg writes one pipe write per
 * packet and the reference's Node consumer handled ~100× more chunks than custodian's.
 * Reports audio seconds per wall second (× real time), per CPU second (ffmpeg + this process), time to the first decoded byte, and the throughput
 * ratio custodian ÷ ffmpeg alone (goal ≥ 0.9). µ-law is decoded in TypeScript (G711Decoder); it
 * is still compared with ffmpeg decoding the same file.
 *
 * Inputs are made at run time from demo/audio by repeating the data chunk (header corrected:
 * RIFF size, fact sample count, data size). Both sides run ffmpeg through the same tiny bash
 * wrapper that records the child's CPU time (`times`), so the wrapper's cost is on both sides.
 * Both wall times end once the output is consumed and the ffmpeg process has exited.
 *
 *   npx tsx bench/transcode.ts [--quick] [--seconds=600] [--reps=5]
 */
import { spawn } from 'node:child_process';
import { chmodSync, createReadStream, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { ffmpegInvocation } from '../src/media/describe-output.js';
import { prepareMedia } from '../src/media/prepare.js';
import { sniff } from '../src/media/sniff.js';
import { Transcoder } from '../src/media/transcoder.js';
import { type BenchArgs, type Benchmark, DEMO_AUDIO, finish, fmt, isMain, median, msSince, newResult, numParam, printTable, standalone } from './lib/common.js';

const FFMPEG = '/usr/bin/ffmpeg';

interface Chunk {
  id: string;
  body: Buffer;
}

function chunksOf(buf: Buffer): Chunk[] {
  const out: Chunk[] = [];
  let off = 12;
  while (off + 8 <= buf.length) {
    const id = buf.toString('latin1', off, off + 4);
    const size = buf.readUInt32LE(off + 4);
    out.push({ id, body: buf.subarray(off + 8, Math.min(buf.length, off + 8 + size)) });
    off += 8 + size + (size & 1);
  }
  return out;
}

/** Samples per data byte of the codec (for the fact chunk). */
const SAMPLES_PER_BYTE: Record<string, number> = { g729: 8, gsm610: 320 / 65, mulaw: 1 };

/**
 * A long recording from a fixture: the data chunk repeated `reps` times (whole frames: every
 * fixture's data is a whole number of codec blocks), fact and sizes rewritten, other chunks kept.
 */
export function longRecording(fixture: Buffer, codec: string, reps: number): Buffer {
  const parts: Buffer[] = [];
  for (const c of chunksOf(fixture)) {
    let body = c.body;
    if (c.id === 'data') body = Buffer.concat(Array.from({ length: reps }, () => c.body));
    else if (c.id === 'fact') {
      body = Buffer.alloc(4);
      const data = chunksOf(fixture).find((x) => x.id === 'data')!.body.length * reps;
      body.writeUInt32LE(Math.round(data * SAMPLES_PER_BYTE[codec]!), 0);
    }
    const h = Buffer.alloc(8);
    h.write(c.id, 0, 'latin1');
    h.writeUInt32LE(body.length, 4);
    parts.push(h, body);
    if (body.length & 1) parts.push(Buffer.alloc(1));
  }
  const payload = Buffer.concat(parts);
  const head = Buffer.alloc(12);
  head.write('RIFF', 0, 'latin1');
  head.writeUInt32LE(payload.length + 4, 4);
  head.write('WAVE', 8, 'latin1');
  return Buffer.concat([head, payload]);
}

interface Run {
  wallMs: number;
  ttfbMs: number;
  /** First byte of decoded audio (after our 44-byte header on the custodian side). */
  firstAudioMs: number;
  bytes: number;
  /** Chunks the Node consumer handled. */
  chunks: number;
  ffmpegCpuS: number;
  nodeCpuS: number;
}

/** `times` of a bash wrapper: the second line is children's user and system time. */
function readTimes(path: string): number {
  try {
    const lines = readFileSync(path, 'utf8').trim().split('\n');
    const m = /(\d+)m([\d.]+)s\s+(\d+)m([\d.]+)s/.exec(lines[1] ?? '');
    if (!m) return Number.NaN;
    return Number(m[1]) * 60 + Number(m[2]) + Number(m[3]) * 60 + Number(m[4]);
  } catch {
    return Number.NaN;
  } finally {
    rmSync(path, { force: true });
  }
}

async function consume(body: Readable, t0: bigint, headerBytes: number): Promise<{ bytes: number; chunks: number; ttfbMs: number; firstAudioMs: number }> {
  let bytes = 0;
  let chunks = 0;
  let ttfbMs = Number.NaN;
  let firstAudioMs = Number.NaN;
  for await (const c of body) {
    const len = (c as Buffer).length;
    if (bytes === 0) ttfbMs = msSince(t0);
    if (Number.isNaN(firstAudioMs) && bytes + len > headerBytes) firstAudioMs = msSince(t0);
    bytes += len;
    chunks++;
  }
  return { bytes, chunks, ttfbMs, firstAudioMs };
}

/**
 * The reference's argument vector: custodian's (Transcoder.argv with ffmpegInvocation's output
 * arguments for a WAV answer), except that ffmpeg reads the file itself instead of our pipe.
 */
export function referenceArgv(file: string): string[] {
  const head = readFileSync(file).subarray(0, 64 * 1024);
  const s = sniff(head, { totalSize: statSync(file).size });
  const { outputArgs } = ffmpegInvocation(s, { kind: 'container', format: 'wav' }, 'wav');
  const argv = Transcoder.argv({ inputArgs: [], outputArgs });
  const i = argv.indexOf('pipe:0');
  if (i < 0 || !argv.includes('-flush_packets')) throw new Error(`unexpected transcoder argv: ${argv.join(' ')}`);
  argv[i] = file;
  return argv;
}

async function ffmpegAlone(wrapper: string, timesDir: string, argv: string[]): Promise<Run> {
  const file = argv[argv.indexOf('-i') + 1];
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  // Exited and its pipes closed ('close'), as TranscodeOutput.exited on the custodian side.
  const child = spawn(wrapper, argv, { stdio: ['ignore', 'pipe', 'inherit'] });
  const exit = new Promise<number | null>((r) => child.once('close', (code) => r(code)));
  const got = await consume(child.stdout, t0, 0);
  const code = await exit;
  const wallMs = msSince(t0);
  if (code !== 0) throw new Error(`ffmpeg exited ${code} on ${file}`);
  const cpu = process.cpuUsage(cpu0);
  return { wallMs, ...got, ffmpegCpuS: readTimes(join(timesDir, `${child.pid}.times`)), nodeCpuS: (cpu.user + cpu.system) / 1e6 };
}

async function custodian(transcoder: Transcoder, timesDir: string, file: string): Promise<Run & { transcoded: boolean; plan: string }> {
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  const prepared = await prepareMedia(createReadStream(file), 'wav', { transcoder, signal: new AbortController().signal, sourceSize: statSync(file).size });
  const got = await consume(prepared.body, t0, 44);
  const pid = (prepared.body as { pid?: number }).pid;
  // Like the reference: the wall time ends once the output is consumed and ffmpeg has exited.
  if (pid !== undefined) await (prepared.body as unknown as { exited: Promise<unknown> }).exited;
  const wallMs = msSince(t0);
  const cpu = process.cpuUsage(cpu0);
  return {
    wallMs,
    ...got,
    ffmpegCpuS: pid === undefined ? 0 : readTimes(join(timesDir, `${pid}.times`)),
    nodeCpuS: (cpu.user + cpu.system) / 1e6,
    transcoded: prepared.transcoded,
    plan: prepared.plan.action === 'ffmpeg' ? `ffmpeg ${prepared.plan.demux.kind} ${prepared.plan.demux.format}` : prepared.plan.action,
  };
}

async function run(args: BenchArgs) {
  const p = { seconds: numParam(args, 'seconds', 600, 60), reps: numParam(args, 'reps', 5, 2) };
  const r = newResult('transcode', args, p);
  r.notes.push(
    'One stream at a time, input read from a file (createReadStream, as the filesystem connector does), output consumed in this process.',
    '× real time = audio seconds ÷ wall seconds; per CPU s = audio seconds ÷ (ffmpeg child CPU + this process CPU). Medians of the runs after one warm-up.',
    'custodian feeds G.729 to ffmpeg as raw frames (`-f g729`, data chunk sliced in Node) and GSM 6.10 as the whole WAV (`-f wav`); the reference lets ffmpeg read the file itself, with custodian\'s output flags (Transcoder.argv with ffmpegInvocation\'s output arguments: -map 0:a:0 -map_metadata -1 -c:a pcm_s16le -ar -ac -f s16le -flush_packets 0).',
    'Both wall times end once the output is consumed and the ffmpeg process has exited (µ-law on the custodian side runs no ffmpeg).',
  );
  const dir = mkdtempSync(join(tmpdir(), 'custodian-bench-transcode-'));
  const timesDir = join(dir, 'times');
  const wrapper = join(dir, 'ffmpeg-timed');
  writeFileSync(wrapper, `#!/bin/bash\n${FFMPEG} "$@"\nrc=$?\ntimes > "${timesDir}/$$.times"\nexit $rc\n`);
  chmodSync(wrapper, 0o755);
  mkdirSync(timesDir);
  const transcoder = new Transcoder({ ffmpegPath: wrapper, maxConcurrent: 4, maxQueued: 16, timeoutMs: 600_000 });
  const rows: Record<string, unknown> = {};
  try {
    for (const codec of ['g729', 'gsm610', 'mulaw']) {
      const fixture = readFileSync(join(DEMO_AUDIO, `call_mono_${codec}_8k.wav`));
      const data = chunksOf(fixture).find((c) => c.id === 'data')!.body.length;
      const bytesPerSecond = chunksOf(fixture).find((c) => c.id === 'fmt ')!.body.readUInt32LE(8); // avgBytesPerSec
      const fixtureSeconds = data / bytesPerSecond;
      const reps = Math.max(1, Math.ceil(p.seconds / fixtureSeconds));
      const file = join(dir, `${codec}-${p.seconds}s.wav`);
      writeFileSync(file, longRecording(fixture, codec, reps));
      const audioSeconds = fixtureSeconds * reps;
      const refArgv = referenceArgv(file);

      const refRuns: Run[] = [];
      const cusRuns: (Run & { transcoded: boolean; plan: string })[] = [];
      // warm-up, then alternate so drift on a shared machine hits both sides alike
      await ffmpegAlone(wrapper, timesDir, refArgv);
      await custodian(transcoder, timesDir, file);
      for (let i = 0; i < p.reps; i++) {
        refRuns.push(await ffmpegAlone(wrapper, timesDir, refArgv));
        cusRuns.push(await custodian(transcoder, timesDir, file));
      }
      const summary = (runs: Run[]) => ({
        wall_ms: median(runs.map((x) => x.wallMs)),
        x_realtime: audioSeconds / (median(runs.map((x) => x.wallMs)) / 1000),
        x_realtime_per_cpu_s: audioSeconds / median(runs.map((x) => x.ffmpegCpuS + x.nodeCpuS)),
        ffmpeg_cpu_s: median(runs.map((x) => x.ffmpegCpuS)),
        node_cpu_s: median(runs.map((x) => x.nodeCpuS)),
        ttfb_ms: median(runs.map((x) => x.ttfbMs)),
        first_audio_ms: median(runs.map((x) => x.firstAudioMs)),
        chunks: median(runs.map((x) => x.chunks)),
        bytes: runs[0]!.bytes,
        wall_runs_ms: runs.map((x) => +x.wallMs.toFixed(1)),
      });
      const ref = summary(refRuns);
      const cus = summary(cusRuns);
      rows[codec] = {
        audio_seconds: audioSeconds,
        input_bytes: statSync(file).size,
        plan: cusRuns[0]!.plan,
        reference_argv: ['ffmpeg', ...refArgv].join(' '),
        ffmpeg_alone: ref,
        custodian: cus,
        ratio: cus.x_realtime / ref.x_realtime,
        pcm_bytes_custodian: cus.bytes - 44,
        pcm_bytes_ffmpeg: ref.bytes,
      };
      if (Math.abs(cus.bytes - 44 - ref.bytes) > 640) r.observations.push(`${codec}: custodian produced ${cus.bytes - 44} PCM bytes, ffmpeg alone ${ref.bytes}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }

  const table: (string | number)[][] = [];
  for (const [codec, v] of Object.entries(rows) as [string, any][]) {
    for (const [label, s] of [
      ['ffmpeg alone', v.ffmpeg_alone],
      [`custodian (${v.plan})`, v.custodian],
    ] as const) {
      table.push([
        `${codec}: ${label}`,
        fmt.n(s.x_realtime, 0),
        fmt.n(s.x_realtime_per_cpu_s, 0),
        fmt.ms(s.wall_ms),
        `${fmt.n(s.ffmpeg_cpu_s, 3)} + ${fmt.n(s.node_cpu_s, 3)}`,
        fmt.ms(s.ttfb_ms),
        fmt.ms(s.first_audio_ms),
        fmt.int(s.chunks),
        label === 'ffmpeg alone' ? '' : fmt.ratio(v.ratio),
      ]);
    }
  }
  printTable(
    `prepareMedia(…, 'wav') vs ffmpeg -i <file> <custodian's output flags> (${p.seconds} s of audio, one stream, median of ${p.reps})`,
    ['codec: path', '× real time', '× RT per CPU s', 'wall ms', 'CPU s ffmpeg + node', 'TTFB ms', 'first audio ms', 'chunks', '÷ ffmpeg'],
    table,
  );
  for (const [codec, v] of Object.entries(rows) as [string, any][]) {
    r.goals.push({ goal: `${codec} throughput ÷ ffmpeg alone`, target: '≥ 0.9', value: fmt.ratio(v.ratio), met: v.ratio >= 0.9 });
  }
  r.results = rows;
  return finish(r);
}

export const transcode: Benchmark = { name: 'transcode', description: "prepareMedia(…, 'wav') throughput and TTFB vs ffmpeg alone", run };

if (isMain(import.meta.url)) await standalone(transcode);
