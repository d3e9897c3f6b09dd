import { createHash } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { Writable } from 'node:stream';
import { AppError } from '../errors.js';

export interface ResponseSinkOptions {
  /** A whole stored object whose digest the catalog knows: a mismatch aborts instead of ending cleanly. */
  expectSha256?: string | null;
  /** Send the digest as the X-Content-SHA256 trailer (chunked responses). */
  trailer?: boolean;
}

const clientGoneError = () => Object.assign(new Error('the client closed the connection'), { code: 'ERR_CLIENT_GONE' });

/**
 * The last stage of a streamed response, and its meter: writes to the socket and counts (and
 * hashes) a chunk only once the socket has taken it — its write callback — so when the client
 * goes away the audit event names the bytes that left the process, not those still queued in it.
 * It also tells "the client went away first" from "the source failed first": whichever came
 * first decides the outcome (pipeline then destroys everything else).
 */
export class ResponseSink extends Writable {
  bytes = 0;
  /** The response closed before it finished, while the stream was still going. */
  clientGone = false;
  private readonly hash = createHash('sha256');
  /** A HEAD response: node discards its body yet calls back as if the socket took it, so nothing counts. */
  private readonly bodiless: boolean;
  private inFlight = 0;
  private allWritten: (() => void) | undefined;

  constructor(
    private readonly res: ServerResponse,
    private readonly opts: ResponseSinkOptions = {},
  ) {
    // No buffering of its own: the socket's buffer and the stages before provide the depth.
    super({ highWaterMark: 0 });
    this.bodiless = res.req?.method === 'HEAD';
    res.once('close', () => {
      if (res.writableFinished || this.destroyed) return;
      this.clientGone = true;
      this.destroy(clientGoneError());
    });
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    const socket = this.res.socket;
    this.inFlight++;
    const flowing = this.res.write(chunk, (err) => {
      this.inFlight--;
      // Callbacks come in write order. Node also calls back, without an error, for a write a
      // destroyed socket discarded: a chunk counts only if the socket was still there.
      if (!err && !socket?.destroyed && !this.bodiless) {
        this.bytes += chunk.length;
        this.hash.update(chunk);
      }
      if (this.inFlight === 0) this.allWritten?.();
    });
    // Several writes may be in flight (throughput); the socket's drain is the backpressure.
    if (flowing) cb();
    else this.res.once('drain', () => cb());
  }

  override _final(cb: (err?: Error | null) => void): void {
    // The digest is final once the socket has taken every byte.
    const finish = () => {
      this.allWritten = undefined;
      const sha = this.sha256();
      if (this.opts.expectSha256 && this.opts.expectSha256 !== sha) {
        cb(new AppError('source.integrity_mismatch', 'the stored bytes do not match the SHA-256 recorded in the catalog', { extra: { expected: this.opts.expectSha256 } }));
        return;
      }
      if (this.opts.trailer) this.res.addTrailers({ 'X-Content-SHA256': sha });
      this.res.end(() => cb());
    };
    if (this.inFlight === 0) finish();
    else this.allWritten = finish;
  }

  /** SHA-256 of the bytes counted so far. */
  sha256(): string {
    return this.hash.copy().digest('hex');
  }
}
