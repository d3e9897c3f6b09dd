/**
 * Load generation with undici (already a dependency): downloads that count bytes and time the
 * first body byte, optionally paced like a slow client (backpressure, not buffering).
 */
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { Agent, Client, type Dispatcher, request } from 'undici';
import { msSince, sleep } from './common.js';

/** One agent per benchmark target: unlimited connections per origin, keep-alive, no timeouts (we time things ourselves). */
export function loadAgent(): Agent {
  return new Agent({ connections: null, pipelining: 1, keepAliveTimeout: 30_000, headersTimeout: 0, bodyTimeout: 0, connect: { timeout: 30_000 } });
}

/**
 * A closed-loop virtual client: its own connection (undici Client, pipelining 1). Sharing one
 * Agent between hundreds of closed-loop lanes let undici's pool hold a few requests back for
 * ~18 s under load (they reached the server only then), which is not the server's latency.
 */
export function laneClient(origin: string): Client {
  return new Client(origin, { pipelining: 1, keepAliveTimeout: 30_000, headersTimeout: 0, bodyTimeout: 0, connect: { timeout: 30_000 } });
}

export interface Download {
  status: number;
  bytes: number;
  /** Content-Length announced, when any. */
  expected: number | undefined;
  /** Time to response headers, ms. */
  headersMs: number;
  /** Time to the first body byte, ms (NaN for an empty body). */
  ttfbMs: number;
  totalMs: number;
  error?: string;
  /** SHA-256 (hex) of the body received, when asked for (DownloadOptions.hash). */
  sha256?: string;
}

export interface DownloadOptions {
  method?: 'GET' | 'POST';
  headers?: Record<string, string>;
  body?: string;
  /** Pace the reading to this many bytes per second (a slow client). */
  bytesPerSecond?: number;
  signal?: AbortSignal;
  /** Hash the body (SHA-256) to check it against the origin's bytes. */
  hash?: boolean;
}

export async function download(url: string, dispatcher: Dispatcher, o: DownloadOptions = {}): Promise<Download> {
  const t0 = process.hrtime.bigint();
  let status = 0;
  let bytes = 0;
  let headersMs = Number.NaN;
  let ttfbMs = Number.NaN;
  let expected: number | undefined;
  const hash = o.hash ? createHash('sha256') : undefined;
  try {
    const res = await request(url, {
      dispatcher,
      method: o.method ?? 'GET',
      ...(o.headers ? { headers: o.headers } : {}),
      ...(o.body !== undefined ? { body: o.body } : {}),
      ...(o.signal ? { signal: o.signal } : {}),
    });
    headersMs = msSince(t0);
    status = res.statusCode;
    const cl = res.headers['content-length'];
    if (typeof cl === 'string') expected = Number(cl);
    const rate = o.bytesPerSecond;
    const started = Date.now();
    for await (const chunk of res.body) {
      if (bytes === 0) ttfbMs = msSince(t0);
      bytes += (chunk as Buffer).length;
      hash?.update(chunk as Buffer);
      if (rate) {
        const due = started + (bytes / rate) * 1000;
        const ahead = due - Date.now();
        if (ahead > 1) await sleep(ahead);
      }
    }
    return { status, bytes, expected, headersMs, ttfbMs, totalMs: msSince(t0), ...(hash ? { sha256: hash.digest('hex') } : {}) };
  } catch (e) {
    const err = e as Error & { code?: string | number };
    // an abort is a DOMException (code 20) or undici's RequestAbortedError: report it by name
    const aborted = err.name === 'AbortError' || err.code === 'UND_ERR_ABORTED';
    return { status, bytes, expected, headersMs, ttfbMs, totalMs: msSince(t0), error: aborted ? 'AbortError' : String(err.code ?? err.name ?? err.message) };
  }
}

export interface CurlTransfer {
  status: number;
  bytes: number;
  ttfbMs: number;
  totalMs: number;
  exitCode: number;
}

/**
 * Bulk transfers with curl (C, ~2 GB/s on loopback here, where a Node client tops out near
 * 0.7 GB/s): one curl process, `--parallel` transfers to /dev/null, per-transfer -w stats.
 */
export async function curlBatch(urls: string[], o: { headers?: Record<string, string>; parallel: number; configPath: string }): Promise<{ wallMs: number; transfers: CurlTransfer[]; stderr: string }> {
  const lines = urls.map((u) => `url = "${u}"\noutput = "/dev/null"\n`);
  writeFileSync(o.configPath, lines.join(''));
  const args = ['-q', '-s', '-S', '--no-progress-meter'];
  if (urls.length > 1) args.push('--parallel', '--parallel-immediate', '--parallel-max', String(Math.max(1, Math.min(o.parallel, 300))));
  for (const [k, v] of Object.entries(o.headers ?? {})) args.push('-H', `${k}: ${v}`);
  args.push('-w', '%{http_code} %{size_download} %{time_starttransfer} %{time_total} %{exitcode}\\n', '-K', o.configPath);
  const t0 = process.hrtime.bigint();
  const child = spawn('curl', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
  child.stderr.setEncoding('utf8').on('data', (s: string) => (err += s));
  await new Promise<void>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', () => resolve());
  });
  const wallMs = msSince(t0);
  const transfers = out
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      const [code, size, start, total, exit] = l.split(' ');
      return { status: Number(code), bytes: Number(size), ttfbMs: Number(start) * 1000, totalMs: Number(total) * 1000, exitCode: Number(exit) };
    });
  return { wallMs, transfers, stderr: err.trim() };
}

/** Failure kinds of curl transfers (anything but a 200 of `wantBytes`). */
export function curlFailures(ts: CurlTransfer[], wantCount: number, wantBytes: number): Record<string, number> {
  const out: Record<string, number> = {};
  const add = (k: string) => (out[k] = (out[k] ?? 0) + 1);
  for (const t of ts) {
    if (t.exitCode !== 0) add(`curl exit ${t.exitCode} (status ${t.status})`);
    else if (t.status !== 200) add(`status ${t.status}`);
    else if (t.bytes !== wantBytes) add(`short body`);
  }
  if (ts.length < wantCount) out['transfers missing'] = wantCount - ts.length;
  return out;
}

/** Whether a download is a complete 200 (or 206) with the announced length. */
export function complete(d: Download, wantBytes?: number): boolean {
  if (d.error || (d.status !== 200 && d.status !== 206)) return false;
  if (d.expected !== undefined && d.bytes !== d.expected) return false;
  return wantBytes === undefined || d.bytes === wantBytes;
}

/** Counts of failure kinds, for the observations. */
export function failures(ds: Download[], wantBytes?: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const d of ds) {
    if (complete(d, wantBytes)) continue;
    const k = d.error ? `error ${d.error} (status ${d.status})` : d.status !== 200 && d.status !== 206 ? `status ${d.status}` : `short body ${d.bytes}/${d.expected ?? wantBytes}`;
    out[k] = (out[k] ?? 0) + 1;
  }
  return out;
}
