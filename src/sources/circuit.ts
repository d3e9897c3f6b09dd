import { CircuitState, ConsecutiveBreaker, circuitBreaker, handleWhen, isBrokenCircuitError, type CircuitBreakerPolicy } from 'cockatiel';
import { AppError, isAppError } from '../errors.js';

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

/** Failures that say the source is unwell — not "not found", refused credentials or a caller abort. */
export function isOutage(e: unknown): boolean {
  return isAppError(e) && (e.code === 'source.unavailable' || e.code === 'source.timeout' || e.code === 'source.bad_gateway');
}

/**
 * One breaker per connector (cockatiel): after `failures` consecutive outages, calls fail fast
 * with source.unavailable and a Retry-After until a trial call succeeds — a failing archive is
 * not hammered by every client, and requests fall back to another copy at once.
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
    this.#breaker = circuitBreaker(handleWhen((e) => isFailure(e)), {
      halfOpenAfter: cfg.half_open_after_ms,
      breaker: new ConsecutiveBreaker(cfg.failures),
    });
    this.#breaker.onBreak(() => {
      this.#openings++;
      this.#openedAt = Date.now();
    });
  }

  async execute<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await this.#breaker.execute(fn);
    } catch (e) {
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
