import { readFileSync } from 'node:fs';
import { Agent } from 'undici';
import { AppError } from '../../errors.js';
import type { Transcoder } from '../../media/transcoder.js';
import { ConfigError } from '../../config/load.js';
import type { CopyLocation, OpenOptions, SourceConnector, SourceMedia } from '../port.js';
import { AvayaStrategy, parseAvayaKey, type AvayaSegment } from './avaya-profile.js';
import { avayaProfile, genericProfile, mediaSenseProfile, type LegacyHttpSourceConfig, type LegacyProvider } from './config.js';
import { GenericStrategy } from './generic-profile.js';
import { LegacyHttp, abortedError, isSourceFailure, sourceFailure, type HttpCounters } from './http.js';
import { toSourceMedia } from './media-body.js';
import { type CircuitStats, SourceCircuit } from '../circuit.js';
import { MediaSenseSession, MediaSenseStrategy } from './mediasense-profile.js';
import { vendorKey, type ProviderStrategy } from './strategy.js';

export interface LegacyHttpStats extends HttpCounters, CircuitStats {
  opens: number;
  signIns: number;
  signInFailures: number;
  reauths: number;
}

/** Why a call's controller was aborted. */
const DEADLINE = Symbol('deadline');
const CALLER = Symbol('caller');
const DONE = Symbol('done');

/**
 * A legacy recorder reached over HTTP(S): Avaya Contact Recorder (search and replay), Cisco
 * MediaSense (ORA API with a JSESSIONID session) or a generic "GET the file" archive. Each
 * provider is a small strategy; this class adds what they share:
 * - one undici Agent per connector (no global fetch), no redirects followed;
 * - credentials only to api_endpoint's origin (and a profile's allow_download_origins);
 * - timeout_ms bounds everything before the first media byte (sign-in, search, retries);
 * - bounded retries of 5xx/429/network errors before the body is handed over, never after;
 * - a circuit breaker: after `failures` consecutive source failures, calls fail fast with
 *   source.unavailable (and Retry-After) until a trial call succeeds.
 */
export class LegacyHttpConnector implements SourceConnector {
  readonly kind = 'legacy-http';
  readonly origin = 'LEGACY_ARCHIVE' as const;
  readonly name: string;
  readonly provider: LegacyProvider;
  readonly #agent: Agent;
  readonly #http: LegacyHttp;
  readonly #strategy: ProviderStrategy;
  readonly #circuit: SourceCircuit;
  readonly #closing = new AbortController();
  readonly #counters: HttpCounters = { requests: 0, retries: 0 };
  #opens = 0;
  #closed: Promise<void> | undefined;

  constructor(
    readonly tenantId: string,
    private readonly cfg: LegacyHttpSourceConfig,
    /** The app's ffmpeg pool, for answers composed with ffmpeg (MediaSense tracks merged); absent: a default pool (tools, tests). */
    transcoder?: Transcoder,
  ) {
    this.name = cfg.name;
    this.provider = cfg.provider;
    let ca: Buffer | undefined;
    if (cfg.tls_ca_file) {
      try {
        ca = readFileSync(cfg.tls_ca_file);
      } catch (e) {
        // A config mistake (start-up, migrate, doctor): one line, exit 78.
        throw new ConfigError(`source ${cfg.name}: tls_ca_file cannot be read (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
      }
    }
    this.#agent = new Agent({ connect: { timeout: cfg.timeout_ms, ...(ca ? { ca } : {}) }, keepAliveTimeout: 10_000 });
    switch (cfg.provider) {
      case 'avaya_aura':
        this.#http = new LegacyHttp(cfg, this.#agent, this.#counters);
        this.#strategy = new AvayaStrategy(this.#http, avayaProfile(cfg));
        break;
      case 'cisco_mediasense': {
        const profile = mediaSenseProfile(cfg);
        this.#http = new LegacyHttp(cfg, this.#agent, this.#counters, profile.allow_download_origins);
        if (!cfg.username || !cfg.password) throw new Error(`source ${cfg.name}: cisco_mediasense needs username and password`);
        const session = new MediaSenseSession({
          http: this.#http,
          profile,
          username: cfg.username,
          password: cfg.password,
          timeoutMs: cfg.timeout_ms,
          closing: this.#closing.signal,
        });
        this.#strategy = new MediaSenseStrategy(this.#http, profile, session, transcoder);
        break;
      }
      case 'generic_http':
        this.#http = new LegacyHttp(cfg, this.#agent, this.#counters);
        this.#strategy = new GenericStrategy(this.#http, genericProfile(cfg));
        break;
    }
    this.#circuit = new SourceCircuit(cfg.name, cfg.circuit_breaker, isSourceFailure);
  }

  async open(copy: CopyLocation, opts: OpenOptions): Promise<SourceMedia> {
    if (opts.signal.aborted) throw abortedError();
    this.#opens++;
    // One controller per read: the caller's abort, the deadline and the end of the body all stop it.
    const ac = new AbortController();
    const onCallerAbort = () => ac.abort(CALLER);
    opts.signal.addEventListener('abort', onCallerAbort, { once: true });
    const release = () => {
      opts.signal.removeEventListener('abort', onCallerAbort);
      if (!ac.signal.aborted) ac.abort(DONE);
    };
    try {
      const media = await this.#guarded(ac, async (signal) => {
        const res = await this.#strategy.media(copy, opts.range, signal);
        return toSourceMedia(res, opts.range, signal, this.#strategy.mediaWhat);
      });
      media.body.once('close', release);
      return media;
    } catch (e) {
      release();
      throw e;
    }
  }

  /**
   * Avaya: the segments of the copy's call in order (a copy naming an inum is one segment).
   * open() serves a "ucid:<ucid>" copy as the whole call (segments joined, avaya-segments.ts), or the n-th segment with "ucid:<ucid>#<n>".
   */
  async segments(copy: CopyLocation, signal: AbortSignal): Promise<AvayaSegment[]> {
    if (!(this.#strategy instanceof AvayaStrategy)) throw new AppError('internal', `segments() is an avaya_aura feature; source ${this.name} is ${this.provider}`);
    const key = parseAvayaKey(vendorKey(copy));
    if (key.kind === 'inum') return [{ inum: key.inum }];
    const strategy = this.#strategy;
    return this.#call(signal, (s) => strategy.segments(key.ucid, s));
  }

  /** Reachable with these credentials: MediaSense has (or gets) a session; others answer a HEAD of the endpoint without 401/403/5xx. */
  check(signal: AbortSignal): Promise<void> {
    return this.#call(signal, (s) => this.#strategy.check(s));
  }

  stats(): LegacyHttpStats {
    return {
      ...this.#counters,
      opens: this.#opens,
      ...this.#circuit.stats(),
      signIns: 0,
      signInFailures: 0,
      reauths: 0,
      ...this.#strategy.stats?.(),
    };
  }

  /** Lets open requests finish briefly, then cuts them (the gateway aborts its streams before this). Idempotent. */
  close(): Promise<void> {
    this.#closed ??= this.#close();
    return this.#closed;
  }

  async #close(): Promise<void> {
    this.#closing.abort();
    let timer: NodeJS.Timeout | undefined;
    const grace = new Promise<'late'>((resolve) => {
      timer = setTimeout(() => resolve('late'), 2_000);
    });
    const r = await Promise.race([this.#agent.close().then(() => 'closed' as const), grace]);
    clearTimeout(timer);
    if (r === 'late') await this.#agent.destroy();
  }

  /** A call that holds no body afterwards: its own controller, released when it settles. */
  async #call<T>(signal: AbortSignal, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
    if (signal.aborted) throw abortedError();
    const ac = new AbortController();
    const onAbort = () => ac.abort(CALLER);
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      return await this.#guarded(ac, fn);
    } finally {
      signal.removeEventListener('abort', onAbort);
      if (!ac.signal.aborted) ac.abort(DONE);
    }
  }

  /** Through the circuit breaker, within timeout_ms; maps the controller's abort to a timeout or an abort. */
  async #guarded<T>(ac: AbortController, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
    if (this.#closing.signal.aborted) throw new AppError('source.unavailable', `source ${this.name} is closed`);
    return this.#circuit.execute(async () => {
      const timer = setTimeout(() => ac.abort(DEADLINE), this.cfg.timeout_ms);
      try {
        return await fn(ac.signal);
      } catch (e) {
        if (ac.signal.aborted && ac.signal.reason === DEADLINE) {
          throw sourceFailure(new AppError('source.timeout', `the source did not deliver within timeout_ms (${this.cfg.timeout_ms} ms)`));
        }
        if (ac.signal.aborted) throw abortedError();
        throw e;
      } finally {
        clearTimeout(timer);
      }
    });
  }
}
