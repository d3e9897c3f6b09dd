import { randomUUID } from 'node:crypto';

/**
 * The lease owner of one attempt of a job: the instance, and a nonce of this claim. Two attempts
 * never share it — not even two claim loops of one instance, or a worker re-claiming a job the same
 * instance's 202 hand-off still streams — so every write guarded by the owner tells them apart.
 */
export function attemptOwner(instanceId: string): string {
  return `${instanceId}:${randomUUID()}`;
}

export interface LeaseOptions {
  leaseMs: number;
  heartbeatMs: number;
  /** When the lease held at the start runs out (the row's lease_until), ms since the epoch. */
  heldUntil: number | null;
  /** Renews the lease for `leaseMs`: true, renewed; false, another attempt holds the job. */
  renew: () => Promise<boolean>;
  /** Aborted when the lease is lost, or can no longer be renewed before it lapses. */
  ac: AbortController;
  /** A renewal that failed (the database could not be reached, ...). */
  onError?: (err: unknown) => void;
}

/**
 * Heart-beats an attempt's lease every `heartbeatMs` until the returned stop function is called,
 * and aborts the attempt when it must not go on: a renewal says another attempt holds the job; a
 * renewal fails (error) when the lease would lapse before the next one could succeed; or the lease
 * runs out with no renewal landed at all (a renewal that hangs, an event loop stalled past it).
 * Then another instance may claim the job, and this attempt stops rather than streaming on: it
 * could not finish the job anyway (markReady is guarded by the owner), and it holds a fetch.
 */
export function keepLease(o: LeaseOptions): () => void {
  let until = o.heldUntil ?? Date.now() + o.leaseMs;
  let stopped = false;
  let renewing = false;
  let deadline: NodeJS.Timeout | undefined;
  const stop = () => {
    stopped = true;
    clearInterval(tick);
    clearTimeout(deadline);
  };
  const lose = (why: string) => {
    if (stopped) return;
    stop();
    o.ac.abort(new Error(why));
  };
  const arm = () => {
    clearTimeout(deadline);
    deadline = setTimeout(() => lose('the job lease lapsed before a heartbeat could renew it'), Math.max(0, until - Date.now()));
    deadline.unref();
  };
  const tick = setInterval(() => {
    // One renewal at a time: one that hangs is bounded by the deadline, not stacked up.
    if (renewing || stopped) return;
    renewing = true;
    // The row's new lease_until is counted from a moment after this one: `until` errs early.
    const sent = Date.now();
    o.renew().then(
      (ok) => {
        renewing = false;
        if (stopped) return;
        if (!ok) return lose('the job lease was lost: another attempt holds the job');
        until = sent + o.leaseMs;
        arm();
      },
      (err: unknown) => {
        renewing = false;
        if (stopped) return;
        o.onError?.(err);
        if (until - Date.now() <= o.heartbeatMs) lose('the job lease could not be renewed before it lapses');
      },
    );
  }, o.heartbeatMs);
  tick.unref();
  arm();
  return stop;
}
