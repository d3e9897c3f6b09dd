import type { Recording } from '../catalog/model.js';
import type { CatalogRecord } from '../catalog/record.js';
import type { RecordingRepository } from '../catalog/recording-repository.js';
import { AppError } from '../errors.js';
import { abortedError } from '../sources/net.js';

/**
 * Looks a ref up somewhere other than the catalog (e.g. Genesys Cloud's analytics query when the
 * migration sync lags) and returns records to write back, or null.
 */
export interface RefFinder {
  readonly name: string;
  /** The configured source it asks (its `name` in the tenant's sources): that source's mode and first-byte budget bound a retrieval's wait for it. */
  readonly source?: string;
  find(tenantId: string, ref: string, signal: AbortSignal, hint?: FindHint): Promise<CatalogRecord[] | null>;
}

/** What the catalog knows of the call a ref names, for a finder that searches by time. */
export interface FindHint {
  /** The catalogued recording's start (`started_at`): a search by time looks around it. */
  startedAt?: string | null;
}

export interface Resolution {
  recording: Recording;
  /** Set when the catalog did not know the ref and a finder discovered it (a self-heal). */
  discoveredBy?: string;
  /**
   * With discoveredBy: the request whose search it was, when that was another request — one that
   * stopped waiting (503 `recording.lookup_pending`) while the search went on in the background.
   */
  searchStartedBy?: string;
}

export interface ResolveOptions {
  /**
   * Wait at most this long (ms, counted from the call: the catalog's lookup too) for a finders'
   * search (a catalog miss). A search still running
   * then goes on in the background and this call fails with 503 `recording.lookup_pending`; the
   * retry finds what it filed, or takes its outcome. Without it the caller waits for the search.
   */
  waitMs?: number;
  /** Retry-After (seconds) of that 503. */
  retryAfterS?: number;
  /** The request in whose name a search starts (the one that later takes its outcome is told, `searchStartedBy`). */
  requestId?: string;
}

export interface ResolverOptions {
  /** How long a search may run, whoever waits for it or none (default 2 minutes). */
  searchTimeoutMs?: number;
  /** How long the outcome of a search that finished with nobody waiting is kept for the retry (default 5 minutes). */
  keepOutcomeMs?: number;
}

type Outcome = { ok: true; value: Resolution } | { ok: false; error: unknown };

/** One finders' search for a tenant's ref: at most one at a time (single flight), whoever asks. */
interface Search {
  readonly startedBy: string | undefined;
  readonly abort: AbortController;
  readonly done: Promise<Outcome>;
  /** Callers waiting for it now. */
  waiting: number;
  /** Set when it finished while nobody waited: the next resolve of the ref takes it. */
  kept?: Outcome;
  keepTimer?: NodeJS.Timeout;
}

export interface Rediscovery {
  /** The recording read again after the write-back: same id, now with the copy the finder found. */
  recording: Recording;
  by: string;
  /**
   * Legal holds the write-back placed: a found copy the catalog had filed on another recording
   * moves to this one and that recording's holds follow it (HoldRepository.followCopy). The
   * reader's audit event counts them (`holds_placed`, open-copy.ts), as an import's event does.
   */
  holdsPlaced: number;
}

export class Resolver {
  /** Searches by tenant and ref (`tenant NUL ref`): running, or finished and kept for a retry. */
  readonly #searches = new Map<string, Search>();
  readonly #searchTimeoutMs: number;
  readonly #keepOutcomeMs: number;
  #closed = false;

  constructor(
    private readonly repo: RecordingRepository,
    private readonly finders: (tenantId: string) => RefFinder[] = () => [],
    opts: ResolverOptions = {},
  ) {
    this.#searchTimeoutMs = opts.searchTimeoutMs ?? 120_000;
    this.#keepOutcomeMs = opts.keepOutcomeMs ?? 300_000;
  }

  /** The sources the tenant's finders ask (RefFinder.source), for the caller to learn their mode and budget. */
  finderSources(tenantId: string): string[] {
    return this.finders(tenantId).flatMap((f) => (f.source ? [f.source] : []));
  }

  /**
   * Catalog first, then each finder of the tenant; writes what a finder found back so the next
   * lookup is direct. The finders' search is not the caller's: a slow source (a Genesys 429's
   * Retry-After, the shared request budget) would hold a retrieval past its first-byte budget, so
   * a caller with `waitMs` stops waiting (`recording.lookup_pending`) while the search runs on,
   * bounded by its own timeout and stopped by close(). One search per tenant and ref runs at a
   * time: a second caller joins it. A search that ended with nobody waiting keeps its outcome for
   * the next caller (the retry): its write-back is then in the catalog, or its 404 is answered at
   * once instead of searching again — a retry that restarted the search could be answered
   * `lookup_pending` forever by a source slower than the budget.
   */
  async resolve(tenantId: string, ref: string, signal: AbortSignal, opts: ResolveOptions = {}): Promise<Resolution> {
    const deadline = opts.waitMs === undefined ? undefined : performance.now() + opts.waitMs;
    const rec = await this.repo.findByRef(tenantId, ref);
    const key = `${tenantId}\u0000${ref}`;
    const search = this.#searches.get(key);
    if (search?.kept) {
      this.#searches.delete(key);
      clearTimeout(search.keepTimer);
      const kept = search.kept;
      // The recording as the catalog has it now; the event of the caller that takes the outcome says how it got there.
      if (rec) return kept.ok ? { recording: rec, ...this.#heal(kept.value, search, opts) } : { recording: rec };
      if (kept.ok) return { ...kept.value, ...this.#heal(kept.value, search, opts) };
      throw kept.error;
    }
    if (rec) return { recording: rec };
    if (this.finders(tenantId).length === 0) throw new AppError('recording.not_found');
    return this.#wait(search ?? this.#start(key, tenantId, ref, opts.requestId), signal, deadline, opts);
  }

  /** What a caller reports of a search's find: the finder, and the request that started it when another. */
  #heal(found: Resolution, search: Search, opts: ResolveOptions): Pick<Resolution, 'discoveredBy' | 'searchStartedBy'> {
    if (!found.discoveredBy) return {};
    return { discoveredBy: found.discoveredBy, ...(search.startedBy && search.startedBy !== opts.requestId ? { searchStartedBy: search.startedBy } : {}) };
  }

  #start(key: string, tenantId: string, ref: string, startedBy: string | undefined): Search {
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), this.#searchTimeoutMs);
    timer.unref();
    if (this.#closed) abort.abort(); // shutting down: nothing new may write to a catalog about to close
    const done: Promise<Outcome> = this.#search(tenantId, ref, abort.signal).then(
      (value) => ({ ok: true, value }),
      (error: unknown) => ({
        ok: false,
        // Stopped by its own bound (not by close): say so, as a source that did not answer in time.
        error:
          abort.signal.aborted && !this.#closed
            ? new AppError('source.timeout', `the search for the reference in the tenant's sources did not finish within ${Math.round(this.#searchTimeoutMs / 1000)} s`, { cause: error })
            : error,
      }),
    );
    const search: Search = { startedBy, abort, done, waiting: 0 };
    this.#searches.set(key, search);
    // Registered before any caller's wait, so it runs first when the search ends: `waiting` still
    // counts those about to take the outcome.
    void done.then((outcome) => {
      clearTimeout(timer);
      if (this.#searches.get(key) !== search) return;
      if (search.waiting > 0 || this.#closed) {
        this.#searches.delete(key);
        return;
      }
      search.kept = outcome;
      search.keepTimer = setTimeout(() => this.#searches.get(key) === search && this.#searches.delete(key), this.#keepOutcomeMs);
      search.keepTimer.unref();
    });
    return search;
  }

  async #search(tenantId: string, ref: string, signal: AbortSignal): Promise<Resolution> {
    for (const finder of this.finders(tenantId)) {
      const found = await finder.find(tenantId, ref, signal);
      if (!found?.length) continue;
      await this.repo.upsertAll(found.map((r) => ({ ...r, tenant_id: tenantId })));
      const healed = await this.repo.findByRef(tenantId, ref);
      if (healed) return { recording: healed, discoveredBy: finder.name };
    }
    throw new AppError('recording.not_found');
  }

  async #wait(search: Search, signal: AbortSignal, deadline: number | undefined, opts: ResolveOptions): Promise<Resolution> {
    search.waiting++;
    let timer: NodeJS.Timeout | undefined;
    let onAbort: (() => void) | undefined;
    try {
      const stop = new Promise<'timeout' | 'aborted'>((resolve) => {
        if (deadline !== undefined) timer = setTimeout(() => resolve('timeout'), Math.max(0, deadline - performance.now()));
        onAbort = () => resolve('aborted');
        if (signal.aborted) onAbort();
        else signal.addEventListener('abort', onAbort, { once: true });
      });
      const outcome = await Promise.race([search.done, stop]);
      // The caller went away: it stops waiting; the search goes on for whoever asks next.
      if (outcome === 'aborted') throw abortedError();
      if (outcome === 'timeout') {
        throw new AppError('recording.lookup_pending', 'the reference is not in the catalog and the search in the tenant\'s sources has not finished; it goes on — retry (the same request_id) after Retry-After', {
          headers: { 'Retry-After': String(opts.retryAfterS ?? 2) },
        });
      }
      if (!outcome.ok) throw outcome.error;
      return { ...outcome.value, ...this.#heal(outcome.value, search, opts) };
    } finally {
      search.waiting--;
      clearTimeout(timer);
      if (onAbort) signal.removeEventListener('abort', onAbort);
    }
  }

  /** Stops the searches in flight (shutdown: before the catalog they write back to closes) and waits for them to settle. */
  async close(): Promise<void> {
    this.#closed = true;
    const searches = [...this.#searches.values()];
    this.#searches.clear();
    for (const s of searches) {
      clearTimeout(s.keepTimer);
      s.abort.abort();
    }
    await Promise.allSettled(searches.map((s) => s.done));
  }

  /** Whether rediscover could ask anyone: the tenant has finders and the recording a call id to file a find under. */
  canRediscover(rec: Recording): boolean {
    return !!rec.callId && this.finders(rec.tenantId).length > 0;
  }

  /**
   * The same lag seen from a recording the catalog does know, whose legacy copies are gone and
   * whose cloud copy is not catalogued yet (open-copy.ts `openOrRediscover` decides when). Asks each
   * finder by the recording's call id, then its conversation id, and writes what one found back
   * filed under that call id: upsertAll joins a copy to a recording by call id only, and a finder
   * files one under a call id only when the id looks like a date-stamped legacy one — without it the
   * cloud copy would become a second recording of the same call. What a finder answers to the
   * recording's own ids is that call, so filing it there is no guess. A recording without a call id
   * has nothing to join by, and is not looked for. The recording's start goes with the question:
   * a finder searching by time looks around it, not only at its recent past (a call id need not
   * carry a date: an Avaya UCID does not). Returns null when no finder found a cloud copy.
   */
  async rediscover(rec: Recording, signal: AbortSignal): Promise<Rediscovery | null> {
    const callId = rec.callId;
    if (!callId || !this.canRediscover(rec)) return null;
    const refs = [...new Set([callId, rec.conversationId].filter((r): r is string => !!r))];
    let holdsPlaced = 0;
    for (const finder of this.finders(rec.tenantId)) {
      for (const ref of refs) {
        const found = await finder.find(rec.tenantId, ref, signal, { startedAt: rec.startedAt });
        if (!found?.length) continue;
        holdsPlaced += (await this.repo.upsertAll(found.map((r) => ({ ...r, tenant_id: rec.tenantId, call_id: callId })))).holdsPlaced;
        const fresh = await this.repo.get(rec.tenantId, rec.id);
        if (fresh?.copies.some((c) => c.origin === 'GENESYS_CLOUD')) return { recording: fresh, by: finder.name, holdsPlaced };
      }
    }
    return null;
  }
}
