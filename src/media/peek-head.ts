import { Readable } from 'node:stream';

export interface PeekedStream {
  /** The first `bytes` bytes (fewer when the stream is shorter). */
  head: Buffer;
  /** Yields every byte of the original stream, head included, with backpressure. */
  stream: Readable;
  /** True when the source ended within the peek: `head` is then the whole content. */
  ended: boolean;
}

const ignore = (): void => {};

function prematureClose(): Error {
  return Object.assign(new Error('Premature close'), { code: 'ERR_STREAM_PREMATURE_CLOSE' });
}

/**
 * Reads the first bytes of `source` so they can be sniffed, and hands back a stream of every byte,
 * the head included: `source` itself with the head put back in front (unshift), or, when it
 * ended within the peek, the whole of it. Only the peeked chunks are held in memory (about
 * `bytes`); the rest is read from `source` as the consumer reads, so a slow client still slows
 * the source down.
 *
 * `enough` lets the caller stop earlier: it is asked after each read with what has arrived so far
 * (a source that trickles need not deliver the whole window before the first byte goes out).
 *
 * On failure (source error, premature close, abort) the promise rejects and the caller still owns
 * `source` (and should destroy it). Destroying the returned stream destroys `source`.
 */
export function peekHead(source: Readable, bytes = 65536, signal?: AbortSignal, enough?: (head: Buffer) => boolean): Promise<PeekedStream> {
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
      const head = all.length > bytes ? all.subarray(0, bytes) : all;
      if (ended) return resolve({ head, stream: whole(chunks, source), ended });
      // The head goes back to the front of the source's own buffer, and the source is the stream
      // handed back: no extra stage that copies every later chunk through (and holds one while a
      // slow client waits). Until the caller wires it up nobody listens, and an 'error' with no
      // listener would take the process down; consumers still see it through pipeline() or
      // for-await, which read the stream's errored state.
      source.unshift(all);
      source.on('error', ignore);
      resolve({ head, stream: source, ended });
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
      else if (enough && n > 0 && enough(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks))) finish(false);
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

/** A source that ended within the peek: its whole content, already read. */
function whole(chunks: Buffer[], source: Readable): Readable {
  return new Readable({
    read() {
      for (const c of chunks.splice(0)) this.push(c);
      this.push(null);
    },
    destroy(err, cb) {
      chunks.length = 0;
      if (!source.destroyed) source.destroy();
      cb(err);
    },
  });
}
