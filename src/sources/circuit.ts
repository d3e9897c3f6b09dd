import { CircuitState, ConsecutiveBreaker, circuitBreaker, handleWhen, isBrokenCircuitError, type CircuitBreakerPolicy } from 'cockatiel';
import { AppError, isAppError, isNotAnOutage } from '../errors.js';
import { isCallerAbort } from './net.js';

export interface CircuitConfig {
  failures: number;
  half_open_after_ms: number;
}

export interface CircuitStats {
  circuit: 'closed' | 'open' | 'half-open';
  /** Times the circuit opened. */
  circuitOpenings: number;
  /** Calls refused at once because the circuit was open. */
  circuitRejections: number;
}

// notAnOutage / isNotAnOutage live with AppError (errors.ts): retryLaterHelps reads them too.
export { isNotAnOutage, notAnOutage } from '../errors.js';

/**
 * Failures that say the source is unwell: unreachable, timing out, 5xx once retries are spent, a
 * 429 that persists, answers that break the protocol. Not "not found", refused credentials, a
 * caller abort, nor an answer about one recording (notAnOutage).
 */
export function isOutage(e: unknown): boolean {
  return (
    isAppError(e) &&
    !isCallerAbort(e) &&
    !isNotAnOutage(e) &&
    (e.code === 'source.unavailable' || e.code === 'source.timeout' || e.code === 'source.bad_gateway')
  );
}

/** Whatever a call threw after its caller had gone: passed through the breaker uncounted. */
class AfterCallerAbort {
  constructor(readonly error: unknown) {}
}

/**
 * One breaker per connector (cockatiel): after `failures` consecutive outages, calls fail fast
 * with source.unavailable and a Retry-After until a trial call succeeds — a failing archive is
 * not hammered by every client, and requests fall back to another copy at once.
 *
 * A caller that goes away is never a failure, whatever the connector's `isFailure` says: clients
 * hang up most while a source is merely slow (Genesys transcoding), and a few hang-ups would
 * otherwise suspend every read of the source. Such a call is neutral — it neither counts towards
 * nor resets a run of outages (cockatiel leaves unhandled errors out of a closed breaker's count;
 * a half-open trial call that its caller abandons closes the breaker, the cautious side of it).
 * An error marked notAnOutage is treated the same way, whatever `isFailure` says: neutral while
 * closed, and a half-open trial answered that way closes the breaker — the source did answer.
 */
export class SourceCircuit {
  readonly #breaker: CircuitBreakerPolicy;
  #openings = 0;
  #rejections = 0;
  #openedAt = 0;

  constructor(
    private readonly name: string,
    private readonly cfg: CircuitConfig,
    isFailure: (e: unknown) => boolean = isOutage,
  ) {
    this.#breaker = circuitBreaker(handleWhen((e) => !(e instanceof AfterCallerAbort) && !isCallerAbort(e) && !isNotAnOutage(e) && isFailure(e)), {
      halfOpenAfter: cfg.half_open_after_ms,
      breaker: new ConsecutiveBreaker(cfg.failures),
    });
    this.#breaker.onBreak(() => {
      this.#openings++;
      this.#openedAt = Date.now();
    });
  }

  /**
   * Runs `fn` through the breaker. With the caller's signal, whatever `fn` throws once that signal
   * has fired is not counted either: an abort can surface as another error (a request torn down
   * mid-answer), and only the signal knows whose doing it was.
   */
  async execute<T>(fn: () => Promise<T>, caller?: AbortSignal): Promise<T> {
    try {
      return await this.#breaker.execute(
        caller
          ? async () => {
              try {
                return await fn();
              } catch (e) {
                throw caller.aborted ? new AfterCallerAbort(e) : e;
              }
            }
          : fn,
      );
    } catch (e) {
      if (e instanceof AfterCallerAbort) throw e.error;
      if (!isBrokenCircuitError(e)) throw e;
      this.#rejections++;
      const waitS = Math.max(1, Math.ceil((this.#openedAt + this.cfg.half_open_after_ms - Date.now()) / 1000));
      throw new AppError('source.unavailable', `source ${this.name} is failing; calls are suspended (circuit open)`, {
        headers: { 'Retry-After': String(waitS) },
        extra: { circuit: 'open' },
      });
    }
  }

  stats(): CircuitStats {
    const s = this.#breaker.state;
    return {
      circuit: s === CircuitState.Closed ? 'closed' : s === CircuitState.HalfOpen ? 'half-open' : 'open',
      circuitOpenings: this.#openings,
      circuitRejections: this.#rejections,
    };
  }
}
