/**
 * When to start a 202 hand-off so the 202 reaches the client within the first-byte budget.
 *
 * The budget is what the client experiences: it counts from the request's arrival, and the
 * hand-off itself costs time (the job row and the audit event are two durable writes before the
 * 202 may leave). Waiting the whole budget and then writing puts every 202 late by that cost —
 * and under load the tail of that cost is what a client sees. So the wait ends early by the cost
 * the recent hand-offs actually had (their 95th percentile), never by more than a quarter of the
 * budget: a fetch still gets at least three quarters of its budget to produce a first byte.
 * Before anything was measured, a prior (two durable commits under some load) stands in.
 */
export class HandoffClock {
  readonly #samples: number[] = [];
  #next = 0;

  constructor(
    private readonly window = 64,
    private readonly priorMs = 25,
  ) {}

  /** How long one hand-off took, from the decision to the 202 handed to the socket. */
  record(ms: number): void {
    if (!Number.isFinite(ms) || ms < 0) return;
    if (this.#samples.length < this.window) this.#samples.push(ms);
    else this.#samples[this.#next] = ms;
    this.#next = (this.#next + 1) % this.window;
  }

  /** The hand-off cost to plan for: p95 of the recent samples (the prior before any), at most budget/4. */
  headroom(budgetMs: number): number {
    if (this.#samples.length === 0) return Math.min(this.priorMs, budgetMs / 4);
    const sorted = [...this.#samples].sort((a, b) => a - b);
    const p95 = sorted[Math.min(sorted.length - 1, Math.ceil(sorted.length * 0.95) - 1)] ?? 0;
    return Math.min(p95, budgetMs / 4);
  }

  /** Milliseconds left to wait for a first byte, given the time already spent on this request. */
  remaining(budgetMs: number, elapsedMs: number): number {
    return Math.max(0, budgetMs - elapsedMs - this.headroom(budgetMs));
  }
}
