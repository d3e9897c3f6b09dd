import { Readable } from 'node:stream';
import { AppError } from '../errors.js';
import { abortedError, netCodeOf } from './net.js';

/**
 * A source's body cut to [skip, skip + take) — what every connector whose source can end early
 * delivers through: an archive file (truncated or rewritten after its size was taken), the legacy
 * HTTP answers, an S3-compatible store that ignored Range. It ends cleanly only after exactly
 * `take` bytes (when known); a body that breaks or ends short errors with a source error that
 * carries counts only, never a path or request details. The streaming path turns that error into
 * a cut connection and a "failed" audit event, never a short body under a longer Content-Length
 * with the audit saying "completed" (the rule Genesys' ResumableMedia follows too).
 *
 * It closes only once its source has closed: whoever sees this body close (the streaming path's
 * pipeline, an abort listener, a test counting descriptors) knows the file descriptor or the socket
 * is let go, not about to be. A client's abort must not leave an archive file open for a moment
 * after the stream says it is done; for an HTTP or S3 body the wait is the socket's destroy.
 *
 * It buffers nothing of its own (highWaterMark 0): chunks go straight through to a consumer that
 * is reading, and the source is paused the moment the consumer stops, so while a slow client
 * holds the stream up the waiting chunk stays in the source (undici's body, the file stream's
 * 128 KiB read), not in a copy here as well (with 200 slow clients, stages that each held a 64 KiB
 * chunk were most of the gateway's memory, docs/BENCHMARKS.md). 'data' with pause/resume rather
 * than read(): read() in paused mode joins every buffered chunk into a new buffer, a copy of each
 * byte. No async iterator either: at hundreds of concurrent streams its per-chunk promises were a
 * visible part of the CPU per GiB.
 */
export class ExactBody extends Readable {
  private delivered = 0;
  /** Bytes taken from the source, the skipped ones included. */
  private received = 0;
  private done = false;

  constructor(
    private readonly source: Readable,
    private skip: number,
    private readonly want: number | undefined,
    /** The source holds bytes past the wanted ones (a 200 to a range): stop reading once they are in. */
    private readonly cut: boolean,
    private readonly signal: AbortSignal,
    /** What ends or breaks, as the errors name it: "the archive file", "media: the transfer". */
    private readonly subject: string,
  ) {
    super({ highWaterMark: 0 });
    source.pause(); // before the 'data' listener, which would otherwise start the flow
    source.on('data', (c: Buffer) => this.onChunk(c));
    source.once('end', () => this.onEnd());
    source.once('error', (e) => this.fail(e));
    source.once('close', () => {
      if (!this.done) this.fail(Object.assign(new Error('Premature close'), { code: 'ERR_STREAM_PREMATURE_CLOSE' }));
    });
    if (want === 0 && cut) this.finish();
  }

  /**
   * Bytes read from the source so far: its own count when it keeps one (fs.ReadStream's bytesRead,
   * ahead of what was delivered by its buffer), else the bytes taken from it, skipped ones included.
   */
  get bytesRead(): number {
    return (this.source as Readable & { bytesRead?: number }).bytesRead ?? this.received;
  }

  override _read(): void {
    if (!this.done) this.source.resume();
  }

  /** Closes when the source is closed (see above). */
  override _destroy(err: Error | null, cb: (error?: Error | null) => void): void {
    this.done = true;
    if (this.source.closed) return cb(err);
    this.source.once('close', () => cb(err));
    this.source.destroy();
  }

  private onChunk(chunk: Buffer): void {
    if (this.done) return;
    this.received += chunk.length;
    let buf = chunk;
    if (this.skip > 0) {
      if (buf.length <= this.skip) {
        this.skip -= buf.length;
        return;
      }
      buf = buf.subarray(this.skip);
      this.skip = 0;
    }
    if (this.want !== undefined && buf.length > this.want - this.delivered) buf = buf.subarray(0, this.want - this.delivered);
    if (buf.length === 0) return;
    this.delivered += buf.length;
    this.push(buf);
    if (this.cut && this.delivered >= this.want!) this.finish();
    // The source stops as soon as a chunk had to be kept (nobody reading) or the consumer paused
    // while taking it; push()'s answer says neither (it is true whenever the buffer was empty).
    else if (this.readableLength > 0 || this.readableFlowing !== true) this.source.pause();
  }

  private onEnd(): void {
    if (this.done) return;
    if (this.want !== undefined && this.delivered < this.want) {
      this.done = true;
      this.destroy(new AppError('source.unavailable', `${this.subject} ended after ${this.delivered} of ${this.want} bytes`, { extra: { delivered_bytes: this.delivered } }));
      return;
    }
    this.finish();
  }

  /**
   * Every byte wanted arrived. A body read to its end ends here (an HTTP body leaves its connection
   * to the pool for the next request); a 200 cut to a range is let go of (its connection with it).
   */
  private finish(): void {
    this.done = true;
    this.push(null);
    if (this.cut) this.source.destroy();
  }

  private fail(e: unknown): void {
    if (this.done) return;
    this.done = true;
    this.destroy(this.mapped(e));
  }

  private mapped(e: unknown): Error {
    if (this.signal.aborted) return abortedError();
    // A composed body (an Avaya call) fails with its own error, naming the segment that broke.
    if (e instanceof AppError) return e;
    // Only the code travels on: undici errors can carry request details, fs errors the path. A
    // file's errno (EIO from an NFS mount, ESTALE) is a code too, and says what an operator needs.
    const own = (e as { code?: unknown } | null)?.code;
    const code = netCodeOf(e) ?? (typeof own === 'string' && /^E[A-Z0-9]{1,20}$/.test(own) ? own : 'error');
    return new AppError('source.unavailable', `${this.subject} broke after ${this.delivered} bytes (${code})`, { extra: { delivered_bytes: this.delivered } });
  }
}
