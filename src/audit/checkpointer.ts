import type { KeyService } from '../keys/keyring.js';
import type { AuditRepository } from './audit-repository.js';
import { type Checkpoint, type CheckpointFields, canonicalCheckpoint } from './checkpoint.js';

export interface CheckpointerOptions {
  /** After this many appends by this process… */
  everyEvents: number;
  /** …or on this timer when events were appended since (by anyone). */
  intervalMs: number;
  log?: (level: 'warn' | 'error', msg: string, o: object) => void;
  now?: () => Date;
}

/**
 * Writes signed checkpoints of the chain head: every N events, every T ms, and once more on
 * graceful shutdown. It signs only what it has checked: the events since the last checkpoint it
 * trusts are re-verified first, so a row altered between two checkpoints is reported rather than
 * signed over. Several instances may checkpoint the same head; the table keeps one per seq.
 */
export class Checkpointer {
  private pending = 0;
  private timer: NodeJS.Timeout | undefined;
  private unsubscribe: (() => void) | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  /** The last checkpoint known good (written here, or verified once): counts continue from it. */
  private trusted: Pick<Checkpoint, 'lastSeq' | 'lastHash' | 'eventCount'> | undefined;
  private readonly now: () => Date;

  constructor(
    private readonly repo: AuditRepository,
    private readonly keys: KeyService,
    private readonly opts: CheckpointerOptions,
  ) {
    this.now = opts.now ?? (() => new Date());
  }

  start(): void {
    this.unsubscribe = this.repo.onAppend(() => {
      if (++this.pending >= this.opts.everyEvents) {
        this.pending = 0;
        this.checkpoint().catch((e: unknown) => this.opts.log?.('error', 'audit checkpoint failed', { err: e }));
      }
    });
    this.timer = setInterval(() => {
      this.checkpoint().catch((e: unknown) => this.opts.log?.('error', 'audit checkpoint failed', { err: e }));
    }, this.opts.intervalMs);
    this.timer.unref();
  }

  /** Writes a checkpoint of the current head unless one covers it already. One at a time. */
  checkpoint(): Promise<Checkpoint | null> {
    const run = this.queue.then(() => this.write());
    this.queue = run.catch(() => {});
    return run;
  }

  /** Stops the triggers and writes the last checkpoint (graceful shutdown). */
  async stop(): Promise<Checkpoint | null> {
    clearInterval(this.timer);
    this.unsubscribe?.();
    return this.checkpoint();
  }

  private async write(): Promise<Checkpoint | null> {
    this.pending = 0;
    // The base first, the head second. A checkpoint is written only over events already committed
    // and events are never removed, so a head read after the checkpoint is at or past it — whatever
    // other instances append and checkpoint meanwhile. Read the other way round, a peer's checkpoint
    // written between the two reads would pass the head and look like a truncated chain.
    let base = this.trusted;
    if (!base) {
      const latest = await this.repo.latestCheckpoint();
      if (latest && (await this.keys.verify(Buffer.from(canonicalCheckpoint(latest)), latest.signature, latest.keyId))) base = latest;
      else if (latest) this.opts.log?.('error', 'the latest audit checkpoint does not verify; counting from the start', { checkpoint: latest.id });
    }
    const head = await this.repo.head();
    if (base && (!head || base.lastSeq > head.seq)) {
      // The chain ends before a checkpoint read before it: its tail (or all of it) was cut.
      this.opts.log?.('error', 'the audit chain ends before its last checkpoint (truncated); not signing', { head: head?.seq ?? null, checkpoint: base.lastSeq });
      return null;
    }
    if (!head) return null;
    if (base && base.lastSeq === head.seq) return null;
    const seg = await this.repo.verifySegment(base ? { seq: base.lastSeq, hash: base.lastHash } : null, head.seq);
    if (!seg.ok) {
      this.opts.log?.('error', 'the audit chain is broken; not signing a checkpoint over it', { seq: seg.seq, reason: seg.reason });
      return null;
    }
    const fields: CheckpointFields = {
      lastSeq: head.seq,
      lastHash: seg.lastHash,
      eventCount: (base?.eventCount ?? 0) + seg.count,
      createdAt: this.now().toISOString(),
      keyId: await this.keys.signingKeyId(),
      algorithm: 'Ed25519',
    };
    const sig = await this.keys.sign(Buffer.from(canonicalCheckpoint(fields)));
    if (sig.keyId !== fields.keyId) throw new Error(`the key service signed with ${sig.keyId}, not ${fields.keyId}`);
    const saved = await this.repo.insertCheckpoint({ ...fields, signature: sig.signature });
    this.trusted = { lastSeq: fields.lastSeq, lastHash: fields.lastHash, eventCount: fields.eventCount };
    return saved;
  }
}
