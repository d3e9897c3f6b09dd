import { ExponentialBackoff, type IBackoff } from 'cockatiel';
import { abortedError, sleep } from './net.js';

export interface RetryPolicy {
  /** Attempts in all, the first one included. */
  attempts: number;
  initialDelayMs: number;
  maxDelayMs: number;
  /** Whether a failure is worth another attempt (5xx, network errors); anything else is thrown at once. */
  retryable(e: unknown): boolean;
  /** What the caller sees when the attempts are spent. */
  exhausted(e: unknown): unknown;
  /** Counts a retry (connector metrics). */
  onRetry?(): void;
}

/**
 * Runs `fn` again after retryable failures, with cockatiel's decorrelated-jitter exponential
 * backoff between attempts; stops at once when `signal` aborts (also during the wait). Every
 * connector's "bounded retries before the first byte" go through here.
 */
export async function withRetries<T>(fn: () => Promise<T>, signal: AbortSignal, policy: RetryPolicy): Promise<T> {
  let backoff: IBackoff<unknown> = new ExponentialBackoff({ initialDelay: policy.initialDelayMs, maxDelay: policy.maxDelayMs }).next();
  for (let attempt = 1; ; attempt++) {
    if (signal.aborted) throw abortedError();
    try {
      return await fn();
    } catch (e) {
      if (signal.aborted) throw abortedError();
      if (!policy.retryable(e)) throw e;
      if (attempt >= policy.attempts) throw policy.exhausted(e);
      policy.onRetry?.();
      await sleep(backoff.duration, signal);
      backoff = backoff.next(undefined);
    }
  }
}
