import { createHash } from 'node:crypto';
import { Worker } from 'node:worker_threads';

/** SHA-256 of a stream's bytes, fed in order; the digest is final once asked for. */
export interface StreamDigest {
  update(chunk: Buffer): void;
  /** The hex digest of every byte given so far. Ends the digest: no update() after it. */
  digest(): Promise<string>;
  /** Stop without a digest (the stream's outcome no longer needs one). */
  discard(): void;
}

/** Where a stream's digests are computed. */
export interface DigestService {
  create(): StreamDigest;
  /** True while so many bytes wait to be hashed that streams should pause (backpressure). */
  readonly congested: boolean;
  /** Resolves once `congested` is false. */
  whenUncongested(): Promise<void>;
  /** Starts what it needs now rather than on the first stream. */
  start?(): void;
  close(): Promise<void>;
}

/** Hashing on the event loop: for tests and the paths that are not hot. */
export function mainThreadDigests(): DigestService {
  return {
    create() {
      const h = createHash('sha256');
      return { update: (c) => void h.update(c), digest: async () => h.digest('hex'), discard: () => {} };
    },
    congested: false,
    whenUncongested: async () => {},
    close: async () => {},
  };
}

/*
 * The worker: one hash per stream id. Batches are [id u32][length u32][bytes]… records in shared
 * memory (slab i of the pool, or a one-off buffer when the pool is empty), so one message carries
 * the chunks of many streams; messages keep their order, so a 'final' always follows every batch
 * that held bytes of its stream.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const slabs = workerData.slabs.map((s) => Buffer.from(s));
const hashes = new Map();
const of = (id) => { let h = hashes.get(id); if (!h) { h = createHash('sha256'); hashes.set(id, h); } return h; };
parentPort.on('message', (m) => {
  if (m.t === 'batch') {
    const buf = m.i >= 0 ? slabs[m.i] : Buffer.from(m.sab);
    for (let at = 0; at < m.len; ) {
      const id = buf.readUInt32LE(at), n = buf.readUInt32LE(at + 4);
      of(id).update(buf.subarray(at + 8, at + 8 + n));
      at += 8 + n;
    }
    parentPort.postMessage({ t: 'ack', i: m.i, len: m.len });
  } else if (m.t === 'final') {
    const hex = of(m.id).digest('hex');
    hashes.delete(m.id);
    parentPort.postMessage({ t: 'digest', id: m.id, hex });
  } else if (m.t === 'drop') {
    hashes.delete(m.id);
  }
});
`;

const BATCH_BYTES = 256 * 1024;
/** Slabs shared with the worker once; the in-flight bound (4 MiB) keeps fewer than these in use. */
const SLABS = 24;
const HEADER = 8;

/**
 * SHA-256 of streamed bytes on a worker thread. The audit records the digest of every byte a
 * stream sends; hashing them on the event loop cost about a quarter of the gateway's CPU per
 * GiB (SHA-NI speed, ~0.6 s/GiB) — CPU that then was not moving bytes (docs/BENCHMARKS.md). Here
 * the event loop only copies each chunk into a shared batch (memcpy, ~0.1 s/GiB), and one message
 * per batch carries the chunks of every stream to the worker. Bytes waiting in the worker are
 * bounded (`congested` → the sink pauses); if the worker dies, pending digests reject (those
 * streams fail closed: no digest, no clean end) and new streams hash on the event loop.
 */
export class DigestThread implements DigestService {
  private started: Worker | undefined;
  private readonly slabs = Array.from({ length: SLABS }, () => new SharedArrayBuffer(BATCH_BYTES));
  private readonly free = Array.from({ length: SLABS - 1 }, (_, i) => i + 1);
  /** The slab being filled (-1: a one-off buffer, when every slab was in flight). */
  private slab = 0;
  private batch: Buffer = Buffer.from(this.slabs[0]!);
  private used = 0;
  private inFlight = 0;
  private nextId = 1;
  /** Streams hashed here now. */
  private active = 0;
  private readonly waiting = new Map<number, { resolve(hex: string): void; reject(e: Error): void }>();
  private uncongested: (() => void)[] = [];
  private broken: Error | undefined;
  private closing = false;
  private readonly fallback = mainThreadDigests();

  constructor(
    private readonly opts: {
      maxInFlightBytes?: number;
      /**
       * Streams hashed here at once; more hash on the event loop. The thread pays off while a few
       * fast streams are bound by the event loop and a core is free; with many streams every core
       * is busy, and hashing inline costs the least CPU in all (measured: 2.4 vs 4–5 CPU-s per
       * GiB at 100 streams, the thread's messages and the GC work they cause included).
       */
      maxStreams?: number;
      onError?: (e: Error) => void;
    } = {},
  ) {}

  /** Started on the first stream: CLI commands and tests that build the gateway's parts never pay for it. */
  private worker(): Worker {
    if (this.started) return this.started;
    // Shared memory, not transferred buffers: a transfer per batch cost ~0.1 ms of postMessage
    // and external-memory churn that kept V8's GC threads busy (measured, docs/BENCHMARKS.md).
    const worker = (this.started = new Worker(WORKER_SOURCE, { eval: true, workerData: { slabs: this.slabs } }));
    // Never what keeps a process alive.
    worker.unref();
    worker.on('message', (m: { t: 'ack'; i: number; len: number } | { t: 'digest'; id: number; hex: string }) => {
      if (m.t === 'ack') {
        this.inFlight -= m.len;
        if (m.i >= 0) this.free.push(m.i);
        if (!this.congested) this.release();
      } else {
        const w = this.waiting.get(m.id);
        this.waiting.delete(m.id);
        if (this.waiting.size === 0) worker.unref();
        w?.resolve(m.hex);
      }
    });
    worker.on('error', (e) => this.fail(e));
    worker.once('exit', (code) => this.fail(new Error(`the digest thread exited (${code})`)));
    return worker;
  }

  get congested(): boolean {
    return !this.broken && this.inFlight > (this.opts.maxInFlightBytes ?? 4 * 1024 * 1024);
  }

  whenUncongested(): Promise<void> {
    if (!this.congested) return Promise.resolve();
    return new Promise((r) => this.uncongested.push(r));
  }

  create(): StreamDigest {
    if (this.broken || this.active >= (this.opts.maxStreams ?? 4)) return this.fallback.create();
    const id = this.nextId++;
    if (this.nextId > 0xffff_fff0) this.nextId = 1;
    let done = false;
    this.active++;
    const end = () => {
      done = true;
      this.active--;
    };
    return {
      update: (chunk) => {
        if (done) throw new Error('digest already final');
        // After a worker failure the digest can only reject; the bytes are not kept.
        if (!this.broken) this.append(id, chunk);
      },
      digest: () => {
        if (done) return Promise.reject(new Error('digest already final'));
        end();
        if (this.broken) return Promise.reject(this.broken);
        this.flush();
        return new Promise<string>((resolve, reject) => {
          this.waiting.set(id, { resolve, reject });
          // An awaited digest keeps the process alive until it arrives.
          this.worker().ref();
          this.worker().postMessage({ t: 'final', id });
        });
      },
      discard: () => {
        if (done) return;
        end();
        if (this.broken) return;
        this.flush();
        this.worker().postMessage({ t: 'drop', id });
      },
    };
  }

  /** Starts the thread now, so its memory is part of the gateway's baseline rather than of its first stream. */
  start(): void {
    this.worker();
  }

  async close(): Promise<void> {
    this.closing = true;
    this.fail(new Error('the digest thread was closed'));
    await this.started?.terminate();
  }

  private append(id: number, chunk: Buffer): void {
    let at = 0;
    // A chunk larger than a batch spans several records; the worker appends them in order.
    while (at < chunk.length) {
      if (this.used + HEADER >= BATCH_BYTES) this.flush();
      const n = Math.min(chunk.length - at, BATCH_BYTES - this.used - HEADER);
      this.batch.writeUInt32LE(id, this.used);
      this.batch.writeUInt32LE(n, this.used + 4);
      chunk.copy(this.batch, this.used + HEADER, at, at + n);
      this.used += HEADER + n;
      at += n;
    }
    // Sent when full (or when a digest is asked for), not per turn of the event loop: with
    // hundreds of streams a turn holds a few small socket reads, and a message per turn cost the
    // worker more than the hashing (measured: 2.6 CPU-s per GiB at 100 streams).
    if (this.used + HEADER >= BATCH_BYTES) this.flush();
  }

  private flush(): void {
    if (this.used === 0 || this.broken) return;
    const len = this.used;
    this.inFlight += len;
    this.worker().postMessage(this.slab >= 0 ? { t: 'batch', i: this.slab, len } : { t: 'batch', i: -1, sab: this.batch.buffer, len });
    // The worker reads this memory until its ack; fill another meanwhile.
    this.slab = this.free.pop() ?? -1;
    this.batch = this.slab >= 0 ? Buffer.from(this.slabs[this.slab]!) : Buffer.from(new SharedArrayBuffer(BATCH_BYTES));
    this.used = 0;
  }

  private release(): void {
    const rs = this.uncongested;
    this.uncongested = [];
    for (const r of rs) r();
  }

  private fail(e: Error): void {
    if (this.broken) return;
    this.broken = e;
    if (!this.closing) this.opts.onError?.(e);
    for (const w of this.waiting.values()) w.reject(e);
    this.waiting.clear();
    this.release();
  }
}
