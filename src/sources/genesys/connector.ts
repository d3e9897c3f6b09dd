import { Agent } from 'undici';
import { AppError } from '../../errors.js';
import type { CopyLocation, OpenOptions, SourceConnector, SourceMedia } from '../port.js';
import { BATCH_MAX_ITEMS, GenesysApiClient, newCounters, type GenesysCounters } from './api-client.js';
import { genesysBaseUrls, type GenesysFormat, type GenesysSourceConfig } from './config.js';
import { abortedError, sleep } from './http-util.js';
import type { AnalyticsConversation, BatchDownloadJobResult, ConversationQuery, DetailQueryPredicate, Recording, RecordingMetadata } from './models.js';
import { genesysPreflight, readViewSensitiveData, sensitiveDataStatement, type PreflightReport, type SensitiveDataStatement } from './preflight.js';
import { assertPlayable, pickMediaUri } from './recording-state.js';
import { ResumableMedia } from './resumable-media.js';
import { TokenSource } from './token-source.js';
import { type CircuitStats, SourceCircuit } from '../circuit.js';
import { type BudgetStore, memoryBudgetStore } from '../request-budget.js';

export interface GenesysOpenOptions extends OpenOptions {
  /** formatId for this read; cfg.default_format when absent. */
  format?: GenesysFormat;
}

/** A known grant is read again after this long at most (and after every fresh login). */
const SENSITIVE_DATA_RECHECK_MS = 60 * 60 * 1000;
/** Grants that could not be read are tried again after this long. */
const SENSITIVE_DATA_RETRY_MS = 60 * 1000;

interface SensitiveDataEntry {
  /** TokenSource.logins when it was read. */
  login: number;
  at: number;
  /** False when nothing is known: the grants could not be read and nothing is declared. */
  known: boolean;
  value: Promise<SensitiveDataStatement>;
}

export interface GenesysStats extends GenesysCounters, CircuitStats {
  logins: number;
  loginFailures: number;
  opens: number;
}

/** What to look for in analytics; at least one of the ids. */
export interface ConversationSearch {
  conversationId?: string;
  externalTag?: string;
  /** SIP Call-ID (segment level). */
  protocolCallId?: string;
  /** Genesys limits query intervals: search around the call time when it is known. */
  interval: { start: Date; end: Date };
  /** Stop after this many conversations (default 100). */
  limit?: number;
}

/** One recording (or, without recordingId, every recording of a conversation) asked of a batch download. */
export interface BatchDownloadItem {
  conversationId: string;
  recordingId?: string;
}

/** A downloadable result: a pre-authorised link (a credential: never log it) to the original codec. */
export interface BatchResultLink {
  recordingId?: string;
  resultUrl: string;
  contentType?: string;
}

/** What became of one item, in the order the items were given. */
export interface BatchItemOutcome {
  item: BatchDownloadItem;
  /** The Genesys job the item was part of. */
  jobId: string;
  /** One per recording (several when the item named no recordingId). */
  results: BatchResultLink[];
  /** Genesys' errorMsg of failed results (archived, not found…), or ours (job unfinished within the budget). */
  errors: string[];
}

export interface BatchPollOptions {
  initial_ms: number;
  max_ms: number;
  budget_ms: number;
}

/**
 * Genesys Cloud CX as a source: metadata first (fileState), then the recording in the wanted
 * format (polling while Genesys transcodes), then the pre-authorised media link, resumed with
 * Range requests when the link expires or the transfer breaks.
 */
export class GenesysConnector implements SourceConnector {
  readonly kind = 'genesys';
  readonly origin = 'GENESYS_CLOUD' as const;
  readonly name: string;
  readonly #agent: Agent;
  readonly #tokens: TokenSource;
  readonly #api: GenesysApiClient;
  readonly #counters = newCounters();
  readonly #circuit: SourceCircuit;
  #opens = 0;
  /** recording:recording:viewSensitiveData of this client, as its grants said at the login `login`. */
  #sensitive: SensitiveDataEntry | undefined;

  constructor(
    readonly tenantId: string,
    private readonly cfg: GenesysSourceConfig,
    budgets: BudgetStore = memoryBudgetStore(),
  ) {
    this.name = cfg.name;
    const urls = genesysBaseUrls(cfg);
    this.#agent = new Agent({ connect: { timeout: cfg.timeout_ms }, keepAliveTimeout: 10_000 });
    this.#tokens = new TokenSource({
      loginBaseUrl: urls.login,
      clientId: cfg.client_id,
      clientSecret: cfg.client_secret,
      dispatcher: this.#agent,
      timeoutMs: cfg.timeout_ms,
    });
    this.#circuit = new SourceCircuit(cfg.name, cfg.circuit_breaker);
    this.#api = new GenesysApiClient({
      apiBaseUrl: urls.api,
      tokens: this.#tokens,
      dispatcher: this.#agent,
      timeoutMs: cfg.timeout_ms,
      counters: this.#counters,
      transcodePoll: cfg.transcode_poll,
      // One budget per OAuth client and environment, whichever tenant or instance uses it.
      budget: budgets.budget(`genesys:${urls.api}:${cfg.client_id}`, cfg.request_budget.max, cfg.request_budget.window_ms),
    });
  }

  /** The typed Platform API client (resolve/ uses it for lookups). */
  get api(): GenesysApiClient {
    return this.#api;
  }

  async open(copy: CopyLocation, opts: GenesysOpenOptions): Promise<SourceMedia> {
    const { conversationId, recordingId } = ids(copy);
    if (opts.signal.aborted) throw abortedError();
    this.#opens++;
    // Stops every request of this read when the caller goes away or the body is destroyed.
    const ac = new AbortController();
    const onAbort = () => ac.abort();
    opts.signal.addEventListener('abort', onAbort, { once: true });
    const done = () => {
      opts.signal.removeEventListener('abort', onAbort);
      ac.abort();
    };
    try {
      // The breaker watches everything before the first byte: metadata, transcode polling, the link.
      // Given the caller's signal, it leaves out what a hang-up causes (circuit.ts): clients give up
      // most while Genesys transcodes, which says nothing about Genesys.
      const format = opts.format ?? this.cfg.default_format;
      const rec = await this.#circuit.execute(async () => {
        assertPlayable(await this.#api.getRecordingMetadata(conversationId, recordingId, ac.signal));
        const r = await this.#api.getRecordingWhenReady(conversationId, recordingId, format, ac.signal);
        assertPlayable(r);
        return r;
      }, opts.signal);
      // Once per login, not per read (#sensitiveData); before the media starts flowing.
      const sensitiveData = await this.#sensitiveData();
      const media = new ResumableMedia({
        api: this.#api,
        conversationId,
        recordingId,
        format,
        range: opts.range,
        maxResumes: this.cfg.max_resumes,
        counters: this.#counters,
        signal: ac.signal,
      });
      const body = await media.start(pickMediaUri(rec));
      const onCallerAbort = () => body.destroy();
      opts.signal.addEventListener('abort', onCallerAbort, { once: true });
      body.once('close', () => {
        opts.signal.removeEventListener('abort', onCallerAbort);
        done();
      });
      return {
        body,
        ...(media.totalSize !== undefined ? { totalSize: media.totalSize } : {}),
        ...(media.range ? { range: media.range } : {}),
        ...(media.contentType ? { contentType: media.contentType } : {}),
        auditDetail: { ...sensitiveData },
      };
    } catch (e) {
      done();
      if (opts.signal.aborted) throw abortedError();
      throw e;
    }
  }

  /**
   * Whether this client's media may come back redacted (recording.yml: without
   * recording:recording:viewSensitiveData, with the org's redaction on). Read from the client's
   * grants once per login — not per retrieval — and again after an hour; unreadable grants count
   * as may_be_redacted and are tried again after a minute, unless the operator declared the
   * permission (`view_sensitive_data`): then the declaration stands in for them, kept like a
   * known answer (an endpoint that refuses this client is not asked every minute for nothing).
   * Never throws; bounded by its own timeout, not the caller's signal, so one caller hanging up
   * does not spoil the cached answer.
   */
  #sensitiveData(): Promise<SensitiveDataStatement> {
    const login = this.#tokens.logins;
    const now = Date.now();
    const c = this.#sensitive;
    if (c && c.login === login && now - c.at < (c.known ? SENSITIVE_DATA_RECHECK_MS : SENSITIVE_DATA_RETRY_MS)) return c.value;
    const entry: SensitiveDataEntry = {
      login,
      at: now,
      known: true,
      value: readViewSensitiveData(this.#api, AbortSignal.timeout(this.cfg.timeout_ms)).then((g) => {
        const stated = sensitiveDataStatement(g, this.cfg.view_sensitive_data);
        entry.known = stated.sensitive_data_basis !== 'unknown';
        return stated;
      }),
    };
    this.#sensitive = entry;
    return entry.value;
  }

  /** Metadata only (no media, never 202): existence, fileState, archive and delete dates. */
  metadata(copy: CopyLocation, signal: AbortSignal): Promise<RecordingMetadata> {
    const { conversationId, recordingId } = ids(copy);
    return this.#api.getRecordingMetadata(conversationId, recordingId, signal);
  }

  /** Metadata of every recording of a conversation. */
  listRecordings(conversationId: string, signal: AbortSignal): Promise<RecordingMetadata[]> {
    return this.#api.listRecordingMetadata(conversationId, signal);
  }

  /**
   * Starts the restore of an ARCHIVED recording, keeping it restored until `until` (the new
   * archiveDate). Genesys takes hours: callers poll `metadata` for RESTORED. The metadata is read
   * first: only an ARCHIVED recording is PUT (on any other the PUT would be a retention edit, which
   * needs editRetention and is not the gateway's to make; its metadata is returned as it is), and
   * its deleteDate is sent back unchanged so the restore never drops it (api-client.ts).
   */
  async restore(copy: CopyLocation, until: Date, signal: AbortSignal): Promise<Recording | RecordingMetadata> {
    const { conversationId, recordingId } = ids(copy);
    const meta = await this.#api.getRecordingMetadata(conversationId, recordingId, signal);
    if (meta.fileState !== 'ARCHIVED') return meta;
    return this.#api.restoreRecording(conversationId, recordingId, until, signal, meta.deleteDate);
  }

  /** Finds conversations by id, externalTag (legacy ids) or SIP Call-ID via the analytics details query. */
  async findConversations(search: ConversationSearch, signal: AbortSignal): Promise<AnalyticsConversation[]> {
    const conv: DetailQueryPredicate[] = [];
    if (search.conversationId) conv.push({ type: 'dimension', dimension: 'conversationId', operator: 'matches', value: search.conversationId });
    if (search.externalTag) conv.push({ type: 'dimension', dimension: 'externalTag', operator: 'matches', value: search.externalTag });
    const seg: DetailQueryPredicate[] = [];
    if (search.protocolCallId) seg.push({ type: 'dimension', dimension: 'protocolCallId', operator: 'matches', value: search.protocolCallId });
    if (conv.length === 0 && seg.length === 0) throw new AppError('request.invalid', 'a conversation search needs conversationId, externalTag or protocolCallId');
    const limit = search.limit ?? 100;
    const pageSize = Math.min(100, limit);
    const found: AnalyticsConversation[] = [];
    for (let pageNumber = 1; found.length < limit; pageNumber++) {
      const query: ConversationQuery = {
        interval: `${search.interval.start.toISOString()}/${search.interval.end.toISOString()}`,
        order: 'asc',
        orderBy: 'conversationStart',
        paging: { pageSize, pageNumber },
        ...(conv.length ? { conversationFilters: [{ type: 'and', predicates: conv }] } : {}),
        ...(seg.length ? { segmentFilters: [{ type: 'and', predicates: seg }] } : {}),
      };
      const page = await this.#api.queryConversationDetails(query, signal);
      const items = page.conversations ?? [];
      found.push(...items);
      if (items.length < pageSize || (page.totalHits !== undefined && found.length >= page.totalHits)) break;
    }
    return found.slice(0, limit);
  }

  /**
   * The doctor's checks (see preflight.ts): login, identity (tokens/me), rights for each call the
   * gateway makes, media link lifetime, clock skew. Bypasses the circuit breaker: it tests Genesys,
   * not our opinion of it.
   */
  preflight(signal: AbortSignal): Promise<PreflightReport> {
    return genesysPreflight({ api: this.#api, login: (s) => this.#tokens.get(s), clientId: this.cfg.client_id, maxResumes: this.cfg.max_resumes, viewSensitiveData: this.cfg.view_sensitive_data }, signal);
  }

  /** How long /readyz may reuse a preflight of this source. */
  get readinessCacheMs(): number {
    return this.cfg.readiness_cache_ms;
  }

  /**
   * Batch download (POST /api/v2/recording/batchrequests, then polling GET …/{jobId}): items are
   * sent 100 per job, jobs are polled with backoff until Completed or the budget is spent, and
   * each item gets its result links (original codec) or errors. Result links are pre-authorised
   * credentials, valid for the org's recordingBatchDownloadUrlTtl; only this client may read the
   * job. Nothing in the gateway calls it yet (no endpoint, sync or evidence export): it is the
   * connector's side of a bulk export, tested against the simulator (batch.test.ts).
   */
  async batchDownload(items: readonly BatchDownloadItem[], signal: AbortSignal, poll: Partial<BatchPollOptions> = {}): Promise<BatchItemOutcome[]> {
    const opts: BatchPollOptions = { ...this.cfg.batch_poll, ...poll };
    for (const it of items) {
      if (typeof it.conversationId !== 'string' || it.conversationId === '') throw new AppError('request.invalid', 'every batch item needs a conversationId');
    }
    const chunks: BatchDownloadItem[][] = [];
    for (let i = 0; i < items.length; i += BATCH_MAX_ITEMS) chunks.push(items.slice(i, i + BATCH_MAX_ITEMS));
    // Submitted one after another (each is one request), then polled side by side.
    const jobs: { jobId: string; chunk: BatchDownloadItem[] }[] = [];
    for (const chunk of chunks) {
      const list = chunk.map((it) => ({ conversationId: it.conversationId, ...(it.recordingId ? { recordingId: it.recordingId } : {}) }));
      jobs.push({ jobId: await this.#api.submitBatchDownload(list, signal), chunk });
    }
    const outcomes = await Promise.all(jobs.map((j) => this.#awaitBatch(j.jobId, j.chunk, opts, signal)));
    return outcomes.flat();
  }

  async #awaitBatch(jobId: string, chunk: BatchDownloadItem[], opts: BatchPollOptions, signal: AbortSignal): Promise<BatchItemOutcome[]> {
    const deadline = Date.now() + opts.budget_ms;
    let delay = opts.initial_ms;
    let results: BatchDownloadJobResult[] = [];
    let completed = false;
    for (;;) {
      const st = await this.#api.getBatchDownload(jobId, signal);
      results = st.results ?? [];
      if (st.status === 'Completed') {
        completed = true;
        break;
      }
      const left = deadline - Date.now();
      if (left <= 0) break;
      await sleep(Math.min(delay, left), signal);
      delay = Math.min(opts.max_ms, delay * 2);
    }
    const out: BatchItemOutcome[] = chunk.map((item) => ({ item, jobId, results: [], errors: [] }));
    for (const r of results) {
      const matches = out.filter((o) => o.item.conversationId === r.conversationId && (o.item.recordingId === undefined || o.item.recordingId === r.recordingId));
      for (const o of matches) {
        if (typeof r.resultUrl === 'string' && r.resultUrl !== '' && r.errorMsg === undefined) {
          o.results.push({ resultUrl: r.resultUrl, ...(r.recordingId ? { recordingId: r.recordingId } : {}), ...(r.contentType ? { contentType: r.contentType } : {}) });
        } else {
          o.errors.push(r.errorMsg ?? 'Genesys returned a result without a link');
        }
      }
    }
    for (const o of out) {
      const answered = o.results.length > 0 || o.errors.length > 0;
      // Unfinished: an item naming no recordingId may still have recordings to come.
      if (!completed && (!answered || o.item.recordingId === undefined)) o.errors.push(`the batch job did not complete within ${opts.budget_ms} ms`);
      else if (!answered) o.errors.push('Genesys returned no result for this item');
    }
    return out;
  }

  /** Reachable with these credentials: a token can be had (cached or by a fresh login). */
  async check(signal: AbortSignal): Promise<void> {
    await this.#api.retrying(() => this.#tokens.get(signal), signal, 'Genesys login');
  }

  /** Counters for /metrics. */
  stats(): GenesysStats {
    return { ...this.#counters, ...this.#circuit.stats(), logins: this.#tokens.logins, loginFailures: this.#tokens.loginFailures, opens: this.#opens };
  }

  /** Lets open requests finish briefly, then cuts them (the gateway aborts its streams before this). */
  async close(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const grace = new Promise<'late'>((resolve) => {
      timer = setTimeout(() => resolve('late'), 2_000);
    });
    const r = await Promise.race([this.#agent.close().then(() => 'closed' as const), grace]);
    clearTimeout(timer);
    if (r === 'late') await this.#agent.destroy();
  }
}

function ids(copy: CopyLocation): { conversationId: string; recordingId: string } {
  if (!copy.conversationId || !copy.genesysRecordingId) {
    throw new AppError('source.object_missing', 'the copy lacks the Genesys conversationId or recordingId');
  }
  return { conversationId: copy.conversationId, recordingId: copy.genesysRecordingId };
}
