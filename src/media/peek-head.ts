import { Readable } from 'node:stream';

export interface PeekedStream {
  /** The first `bytes` bytes (fewer when the stream is shorter). */
  head: Buffer;
  /** Yields every byte of the original stream, head included, with backpressure. */
  stream: Readable;
  /** True when the source ended within the peek: `head` is then the whole content. */
  ended: boolean;
}

function prematureClose(): Error {
  return Object.assign(new Error('Premature close'), { code: 'ERR_STREAM_PREMATURE_CLOSE' });
}

/**
 * Reads the first bytes of `source` so they can be sniffed, and hands back a stream that replays
 * them followed by the rest. Only the peeked chunks are held in memory (about `bytes`); the rest
 * is pulled from `source` as the consumer reads, so a slow client still slows the source down.
 *
 * On failure (source error, premature close, abort) the promise rejects and the caller still owns
 * `source` (and should destroy it). Destroying the returned stream destroys `source`.
 */
export function peekHead(source: Readable, bytes = 65536, signal?: AbortSignal): Promise<PeekedStream> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let n = 0;
    let settled = false;

    const cleanup = (): void => {
      source.off('readable', onReadable);
      source.off('end', onEnd);
      source.off('error', onError);
      source.off('close', onClose);
      signal?.removeEventListener('abort', onAbort);
    };
    const finish = (ended: boolean): void => {
      if (settled) return;
      settled = true;
      cleanup();
      const all = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
      resolve({ head: all.length > bytes ? all.subarray(0, bytes) : all, stream: new Replay(chunks, source, ended), ended });
    };
    const fail = (err: unknown): void => {
      if (settled) return;
      settled = true;
      cleanup();
      reject(err);
    };
    function onReadable(): void {
      let c: unknown;
      while (n < bytes && (c = source.read()) !== null) {
        const buf = typeof c === 'string' ? Buffer.from(c) : (c as Buffer);
        chunks.push(buf);
        n += buf.length;
      }
      if (n >= bytes) finish(false);
    }
    function onEnd(): void {
      finish(true);
    }
    function onError(err: Error): void {
      fail(err);
    }
    function onClose(): void {
      // 'end' precedes 'close' on a clean finish, so reaching here means the source died.
      fail(prematureClose());
    }
    function onAbort(): void {
      fail(signal?.reason ?? new Error('aborted'));
    }

    if (signal?.aborted) return onAbort();
    if (source.readableEnded) return finish(true);
    if (source.destroyed) return fail(source.errored ?? prematureClose());
    signal?.addEventListener('abort', onAbort, { once: true });
    source.on('error', onError);
    source.on('end', onEnd);
    source.on('close', onClose);
    source.on('readable', onReadable);
  });
}

/** Replays already-read chunks, then pulls the remainder from the source on demand. */
class Replay extends Readable {
  readonly #pending: Buffer[];
  readonly #source: Readable;
  #sourceEnded: boolean;
  #wanted = false;
  #done = false;
  #error: Error | undefined;

  constructor(pending: Buffer[], source: Readable, ended: boolean) {
    super();
    this.#pending = pending;
    this.#source = source;
    this.#sourceEnded = ended;
    if (!ended) {
      source.on('readable', () => this.#pump());
      source.on('end', () => {
        this.#sourceEnded = true;
        this.#pump();
      });
      source.on('error', (err) => this.#fail(err));
      source.on('close', () => {
        if (!this.#sourceEnded) this.#fail(prematureClose());
      });
    }
  }

  /**
   * A source failure is delivered when someone is listening or reading. Between peekHead()
   * resolving and the caller wiring the stream up (e.g. while waiting for a transcoder slot)
   * nobody is, and an 'error' emitted then would be an uncaught exception.
   */
  #fail(err: Error): void {
    this.#error ??= err;
    if (!this.destroyed && (this.#wanted || this.listenerCount('error') > 0)) this.destroy(this.#error);
  }

  override _read(): void {
    this.#wanted = true;
    if (this.#error) return void this.destroy(this.#error);
    this.#pump();
  }

  #pump(): void {
    while (this.#wanted && !this.#done && !this.destroyed) {
      let chunk: Buffer | null = this.#pending.shift() ?? null;
      if (chunk === null) {
        if (this.#sourceEnded) {
          this.#done = true;
          this.push(null);
          return;
        }
        const c: unknown = this.#source.read();
        if (c === null) return; // wait for 'readable' or 'end'
        chunk = typeof c === 'string' ? Buffer.from(c) : (c as Buffer);
      }
      this.#wanted = this.push(chunk);
    }
  }

  override _destroy(err: Error | null, cb: (error?: Error | null) => void): void {
    this.#pending.length = 0;
    if (!this.#source.destroyed) this.#source.destroy();
    cb(err);
  }
}
