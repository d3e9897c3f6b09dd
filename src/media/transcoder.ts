import { type ChildProcessWithoutNullStreams, type StdioPipe, execFile, spawn } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import { AppError } from '../errors.js';
import { FramedOutput, type FramedOutputOptions } from './framed-output.js';

export interface TranscoderOptions {
  ffmpegPath: string;
  /** ffmpeg processes running at once (each is one CPU-bound decode/encode). */
  maxConcurrent: number;
  /** Requests allowed to wait for a slot; beyond that callers get 'media.transcoder_busy'. */
  maxQueued: number;
  /**
   * Upper bound for one job's run time, and separately for its wait in the queue. Transcoding
   * is paced by the client (backpressure), so without a bound a stalled client would hold a
   * slot forever; a deliberately slow reader must not be able to exhaust the transcoders.
   */
  timeoutMs: number;
  /** Time between SIGTERM and SIGKILL when we stop ffmpeg. Default 2000 ms. */
  killGraceMs?: number;
  /** Sent as Retry-After with 'media.transcoder_busy'. Default 5 s. */
  retryAfterSeconds?: number;
}

export interface TranscodeJob {
  /** Bytes for ffmpeg's stdin; consumed with backpressure, destroyed when the job stops. */
  input: Readable;
  /** Demuxer options placed before `-i pipe:0` (e.g. `-f g729`). */
  inputArgs: readonly string[];
  /** Encoder and muxer options placed before `pipe:1` (e.g. `-f s16le -ar 8000 -ac 1`). */
  outputArgs: readonly string[];
  signal?: AbortSignal | undefined;
  /** See FramedOutput: our WAV header, and the payload length it promises. */
  framing?: FramedOutputOptions;
}

/** One input of a multi-input job: its bytes and the demuxer options placed before its `-i`. */
export interface TranscodeInput {
  /** Consumed with backpressure (its own pipe), destroyed when the job stops. */
  input: Readable;
  inputArgs: readonly string[];
}

/**
 * A job reading several inputs at once (e.g. the tracks of one call merged into channels): input
 * 0 on ffmpeg's stdin (`pipe:0`), input n ≥ 1 on an extra pipe, fd n + 2 (`pipe:3`, `pipe:4`, …),
 * each fed from its own stream with its own backpressure. `filterComplex` combines them and
 * labels its result `[out]`; that is what is encoded. Same pool, limits, kill and failure rules
 * as a one-input job: any input failing or ending short fails the whole output.
 */
export interface MultiTranscodeJob {
  inputs: readonly TranscodeInput[];
  filterComplex: string;
  outputArgs: readonly string[];
  signal?: AbortSignal | undefined;
  framing?: FramedOutputOptions;
}

/** The pipe ffmpeg reads input n of a multi-input job from. */
export const inputPipe = (n: number): string => `pipe:${n === 0 ? 0 : n + 2}`;

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** The output of one ffmpeg run: ends cleanly only if ffmpeg exited 0 and the input was whole. */
export class TranscodeOutput extends FramedOutput {
  /** The ffmpeg child's pid (for logs and tests). */
  readonly pid: number | undefined;
  /** Settles when the child has exited and its pipes are closed; never rejects. */
  readonly exited: Promise<ExitInfo>;

  constructor(framing: FramedOutputOptions, pid: number | undefined, exited: Promise<ExitInfo>) {
    super(framing);
    this.pid = pid;
    this.exited = exited;
  }
}

function prematureClose(): Error {
  return Object.assign(new Error('The source stream closed before its end'), { code: 'ERR_STREAM_PREMATURE_CLOSE' });
}

/**
 * ffmpeg's output buffer (libavformat's IO_BUFFER_SIZE). With -flush_packets 0 (see argv) the
 * muxer writes it only when full; less than that comes out before ffmpeg's end only as the Ogg
 * muxer's page flushes (its header pages, ~140 bytes for Opus, among them).
 */
export const FFMPEG_OUTPUT_BUFFER_BYTES = 32 * 1024;

/** Fixed flags: no interaction on the terminal, no banner, only real errors on stderr. */
const FFMPEG_PREAMBLE = ['-nostdin', '-hide_banner', '-loglevel', 'error'] as const;

/**
 * Runs ffmpeg as a child process, stdin ← source, stdout → TranscodeOutput, with a concurrency
 * limit and a bounded queue. Nothing is buffered beyond the stream high-water marks and the
 * kernel pipe buffers: a slow client slows ffmpeg, which slows the source.
 */
export class Transcoder {
  readonly #opts: Required<TranscoderOptions>;
  #active = 0;
  readonly #waiters: Array<() => void> = [];

  constructor(opts: TranscoderOptions) {
    if (opts.maxConcurrent < 1) throw new RangeError('maxConcurrent must be at least 1');
    this.#opts = { killGraceMs: 2000, retryAfterSeconds: 5, ...opts };
  }

  /** Jobs holding a slot. */
  get active(): number {
    return this.#active;
  }

  /** Jobs waiting for a slot. */
  get queued(): number {
    return this.#waiters.length;
  }

  /** The full ffmpeg argument vector for a job (exposed for logs and tests). */
  static argv(job: Pick<TranscodeJob, 'inputArgs' | 'outputArgs'>): string[] {
    // -flush_packets 0: the muxer writes its 32 KiB buffer when full instead of one pipe write per
    // packet (320 bytes for G.729's 10 ms frames): ~100× fewer chunks for Node to move and for the
    // socket to send (docs/BENCHMARKS.md, transcode); the first byte waits for ~10 ms of decoding.
    return [...FFMPEG_PREAMBLE, ...job.inputArgs, '-i', 'pipe:0', '-map', '0:a:0', '-map_metadata', '-1', ...job.outputArgs, '-flush_packets', '0', 'pipe:1'];
  }

  /** The argument vector of a multi-input job: each input on its own pipe, the graph's `[out]` encoded. */
  static argvMany(job: Pick<MultiTranscodeJob, 'inputs' | 'filterComplex' | 'outputArgs'>): string[] {
    const inputs = job.inputs.flatMap((x, n) => [...x.inputArgs, '-i', inputPipe(n)]);
    return [...FFMPEG_PREAMBLE, ...inputs, '-filter_complex', job.filterComplex, '-map', '[out]', '-map_metadata', '-1', ...job.outputArgs, '-flush_packets', '0', 'pipe:1'];
  }

  /**
   * Waits for a slot, starts ffmpeg and returns its output stream. Rejects — before any byte is
   * produced, so the HTTP layer can still answer with a status — with 'media.transcoder_busy'
   * (queue full or waited longer than timeoutMs), 'media.transcoder_unavailable' (ffmpeg cannot
   * be started) or the signal's reason. Later failures arrive as an 'error' on the output.
   */
  async transcode(job: TranscodeJob): Promise<TranscodeOutput> {
    job.signal?.throwIfAborted();
    const release = await this.#acquire(job.signal);
    let child: ChildProcessWithoutNullStreams;
    try {
      job.signal?.throwIfAborted();
      child = await this.#spawn(Transcoder.argv(job), 0);
    } catch (err) {
      release();
      throw err;
    }
    return this.#run(child, [job.input], job, release);
  }

  /**
   * transcode() for a job of several inputs (MultiTranscodeJob): the same slot, errors and rules.
   * As with transcode(), the inputs stay the caller's until this resolves.
   */
  async transcodeMany(job: MultiTranscodeJob): Promise<TranscodeOutput> {
    if (job.inputs.length < 1) throw new RangeError('a job needs at least one input');
    job.signal?.throwIfAborted();
    const release = await this.#acquire(job.signal);
    let child: ChildProcessWithoutNullStreams;
    try {
      job.signal?.throwIfAborted();
      child = await this.#spawn(Transcoder.argvMany(job), job.inputs.length - 1);
    } catch (err) {
      release();
      throw err;
    }
    return this.#run(
      child,
      job.inputs.map((x) => x.input),
      job,
      release,
    );
  }

  /** Checks that ffmpeg starts and has the encoders custodian uses (for a readiness probe). */
  probe(): Promise<{ ok: boolean; encoders: { libmp3lame: boolean; libopus: boolean }; error?: string }> {
    return new Promise((resolve) => {
      execFile(this.#opts.ffmpegPath, ['-hide_banner', '-encoders'], { timeout: 10_000 }, (err, stdout) => {
        if (err) return resolve({ ok: false, encoders: { libmp3lame: false, libopus: false }, error: err.message });
        const encoders = { libmp3lame: /\blibmp3lame\b/.test(stdout), libopus: /\blibopus\b/.test(stdout) };
        resolve({ ok: encoders.libmp3lame && encoders.libopus, encoders });
      });
    });
  }

  #busy(why: string): AppError {
    return new AppError('media.transcoder_busy', `All transcoders are busy (${why}); retry later`, {
      headers: { 'Retry-After': String(this.#opts.retryAfterSeconds) },
    });
  }

  #acquire(signal: AbortSignal | undefined): Promise<() => void> {
    if (this.#active < this.#opts.maxConcurrent) {
      this.#active++;
      return Promise.resolve(this.#releaser());
    }
    if (this.#waiters.length >= this.#opts.maxQueued) return Promise.reject(this.#busy('queue full'));
    return new Promise((resolve, reject) => {
      const grant = (): void => {
        cleanup();
        resolve(this.#releaser());
      };
      const leave = (err: unknown): void => {
        const i = this.#waiters.indexOf(grant);
        if (i >= 0) this.#waiters.splice(i, 1);
        cleanup();
        reject(err);
      };
      const timer = setTimeout(() => leave(this.#busy(`waited ${this.#opts.timeoutMs} ms`)), this.#opts.timeoutMs);
      const onAbort = (): void => leave(signal?.reason);
      const cleanup = (): void => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#waiters.push(grant);
    });
  }

  /** A slot hand-over: the next waiter inherits the slot, else the count drops. Idempotent. */
  #releaser(): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.#waiters.shift();
      if (next) next();
      else this.#active--;
    };
  }

  /** `extraPipes`: writable pipes beyond stdin, on fds 3, 4, … (inputs 1.. of a multi-input job). */
  #spawn(args: string[], extraPipes: number): Promise<ChildProcessWithoutNullStreams> {
    return new Promise((resolve, reject) => {
      const unavailable = (err: unknown): AppError =>
        new AppError('media.transcoder_unavailable', `ffmpeg could not be started (${(err as NodeJS.ErrnoException)?.code ?? 'error'})`, { cause: err });
      let child: ChildProcessWithoutNullStreams;
      try {
        const stdio: StdioPipe[] = Array.from({ length: 3 + extraPipes }, () => 'pipe');
        child = spawn(this.#opts.ffmpegPath, args, { stdio }) as ChildProcessWithoutNullStreams;
      } catch (err) {
        reject(unavailable(err));
        return;
      }
      const onError = (err: Error): void => {
        child.off('spawn', onSpawn);
        reject(unavailable(err));
      };
      const onSpawn = (): void => {
        child.off('error', onError);
        resolve(child);
      };
      child.once('error', onError);
      child.once('spawn', onSpawn);
    });
  }

  /** Runs a started child: inputs[0] → stdin, inputs[n] → fd n + 2; stdout → the output. */
  #run(child: ChildProcessWithoutNullStreams, inputs: readonly Readable[], job: Pick<TranscodeJob, 'signal' | 'framing'>, release: () => void): TranscodeOutput {
    const { signal } = job;
    const { stdin, stdout, stderr } = child;
    const sinks = inputs.map((_, n) => (n === 0 ? stdin : (child.stdio[n + 2] as Writable)));
    let resolveExit!: (e: ExitInfo) => void;
    const exited = new Promise<ExitInfo>((r) => (resolveExit = r));
    const out = new TranscodeOutput(job.framing ?? {}, child.pid, exited);

    let done = false; // child closed
    let failure: unknown;
    let killing = false;
    let graceTimer: NodeJS.Timeout | undefined;
    let stderrTail = '';

    // Late errors on our ends of the pipes (EPIPE after ffmpeg quit, destroys) are expected;
    // the exit status decides. Without listeners they would crash the process.
    stdout.on('error', () => {});
    stderr.on('error', () => {});
    child.on('error', () => {});
    stderr.on('data', (d: Buffer) => {
      stderrTail = (stderrTail + d.toString('utf8')).slice(-2000);
    });

    const kill = (): void => {
      if (done || killing) return;
      killing = true;
      for (const input of inputs) if (!input.destroyed) input.destroy();
      for (const sink of sinks) sink.destroy();
      stdout.destroy(); // a blocked write in ffmpeg now fails with EPIPE
      child.kill('SIGTERM');
      graceTimer = setTimeout(() => {
        if (!done) child.kill('SIGKILL');
      }, this.#opts.killGraceMs);
    };
    const fail = (err: unknown): void => {
      if (failure === undefined) failure = err ?? new Error('transcode failed');
      if (!out.destroyed) out.destroy(failure as Error);
      kill();
    };

    const timer = setTimeout(
      () => fail(new AppError('media.transcoder_unavailable', `Transcoding did not finish within ${this.#opts.timeoutMs} ms`)),
      this.#opts.timeoutMs,
    );
    const onAbort = (): void => fail(signal?.reason);
    signal?.addEventListener('abort', onAbort, { once: true });

    // The consumer went away (client disconnected): nobody wants the rest.
    out.once('close', () => {
      if (!done && failure === undefined) fail(new Error('transcode output closed by its consumer'));
    });

    stdout.pipe(out, { end: false });

    // stdin ← input (and each extra pipe ← its input). Not stream.pipeline: it destroys every
    // stream with the first error, so an EPIPE from ffmpeg and a failure of the source would look
    // alike. Here they are told apart: ffmpeg closing a pipe early (finished, or failed) is judged
    // by its exit status; a source failing means the output must not end as if it were complete.
    const drops = inputs.map((input, n) => {
      const sink = sinks[n] as Writable;
      let sinkGone = false;
      const dropInput = (): void => {
        sinkGone = true;
        input.unpipe(sink);
        if (!input.destroyed) input.destroy();
      };
      sink.on('error', dropInput);
      sink.on('close', () => {
        if (!input.readableEnded) dropInput();
      });
      input.on('error', (err) => {
        if (!sinkGone && !done) fail(err);
      });
      input.on('close', () => {
        if (!input.readableEnded && !sinkGone && !done && failure === undefined) fail(prematureClose());
      });
      // The input may have failed while we waited for a slot or for the spawn, its 'error' long gone.
      if (input.destroyed && !input.readableEnded) fail(input.errored ?? prematureClose());
      else input.pipe(sink);
      return () => {
        sinkGone = true;
        // ffmpeg may stop before the end of its input (e.g. trailing chunks after WAV data).
        if (!input.readableEnded) dropInput();
      };
    });

    child.once('close', (code, sig) => {
      done = true;
      clearTimeout(timer);
      clearTimeout(graceTimer);
      signal?.removeEventListener('abort', onAbort);
      release();
      for (const drop of drops) drop();
      resolveExit({ code, signal: sig });
      if (failure !== undefined) {
        if (!out.destroyed) out.destroy(failure as Error);
      } else if (code === 0) {
        out.end();
      } else {
        const why = stderrTail.trim().split('\n').slice(-3).join(' | ').slice(0, 400);
        failure = new AppError('media.undecodable', `ffmpeg could not decode the recording (${sig ?? `exit ${code}`}${why ? `: ${why}` : ''})`);
        if (!out.destroyed) out.destroy(failure as Error);
      }
    });

    return out;
  }
}
