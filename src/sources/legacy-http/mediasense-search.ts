import type { Agent } from 'undici';
import { AppError } from '../../errors.js';
import { type LegacyHttpSourceConfig, mediaSenseProfile, type MediaSenseProfile } from './config.js';
import { clientErrorToAppError, discard, fillTemplate, LegacyHttp, readJson } from './http.js';
import { MediaSenseSession } from './mediasense-profile.js';
import type { LegacyTimeSearch, TimeSearchHit, TimeSearchPage } from './time-search.js';
import { timeOf } from './time-search.js';

type Json = Record<string, unknown>;

function at(json: unknown, path: string): unknown {
  let cur = json;
  for (const k of path.split('.')) {
    if (!cur || typeof cur !== 'object' || Array.isArray(cur)) return undefined;
    cur = (cur as Json)[k];
  }
  return cur;
}

/**
 * Cisco MediaSense sessions by start time (profile time_query_path, getSessions): a JSON query
 * with a "between" condition on time_query_field (epoch ms, both ends inclusive, so the window's
 * end is sent minus 1 ms) and paginationParams {offset, limit}, ordered by start. Each hit's
 * locator is the session id, which the legacy-http connector opens as it is. Signs in with its
 * own session and signs in again once when MediaSense says the session expired.
 */
export class MediaSenseTimeSearch implements LegacyTimeSearch {
  readonly #http: LegacyHttp;
  readonly #p: MediaSenseProfile;
  readonly #session: MediaSenseSession;
  readonly #closing = new AbortController();

  constructor(
    private readonly cfg: LegacyHttpSourceConfig,
    private readonly agent: Agent,
  ) {
    this.#p = mediaSenseProfile(cfg);
    this.#http = new LegacyHttp(cfg, agent, { requests: 0, retries: 0 }, this.#p.allow_download_origins);
    if (!cfg.username || !cfg.password) throw new AppError('request.invalid', `source ${cfg.name}: cisco_mediasense needs username and password`);
    this.#session = new MediaSenseSession({ http: this.#http, profile: this.#p, username: cfg.username, password: cfg.password, timeoutMs: cfg.timeout_ms, closing: this.#closing.signal });
  }

  async page(from: Date, to: Date, offset: number, limit: number, signal: AbortSignal): Promise<TimeSearchPage> {
    const p = this.#p;
    const what = 'MediaSense time query';
    const url = fillTemplate(this.#http.endpoint, p.time_query_path, {});
    const body = JSON.stringify({
      requestParameters: [{ fieldName: p.time_query_field, fieldConditions: [{ fieldOperator: 'between', fieldValues: [from.getTime(), to.getTime() - 1], fieldConnector: 'AND' }], paramConnector: 'AND' }],
      sortParams: [{ byFieldName: p.time_query_field, order: 'ASC' }],
      paginationParams: { offset, limit },
    });
    const json = await this.#http.retrying(
      async () => {
        for (let renewed = false; ; renewed = true) {
          const value = await this.#session.get(signal);
          const s = AbortSignal.any([signal, AbortSignal.timeout(this.cfg.timeout_ms)]);
          const res = await this.#http.send({
            method: 'POST',
            url,
            what,
            signal: s,
            session: this.#session.headers(value),
            credentials: false,
            headers: { accept: 'application/json', 'content-type': 'application/json' },
            body,
          });
          let expired = res.statusCode === 401;
          let answer: unknown;
          if (expired) await discard(res);
          else if (res.statusCode !== 200) {
            await discard(res);
            throw clientErrorToAppError(res.statusCode, what, 'upstream');
          } else {
            answer = await readJson(res, what);
            const raw = (answer as Json | null)?.[p.response_code_field];
            const code = typeof raw === 'number' ? raw : typeof raw === 'string' && /^\d+$/.test(raw) ? Number(raw) : undefined;
            if (code !== undefined && p.session_expired_codes.includes(code)) expired = true;
            else if (code !== undefined && !(code >= 2000 && code < 3000)) {
              throw new AppError('source.bad_gateway', `${what}: MediaSense answered responseCode ${code}`, { extra: { mediasense_code: code } });
            }
          }
          if (!expired) return answer;
          this.#session.invalidate(value);
          if (renewed) throw new AppError('source.auth_failed', `${what}: MediaSense refused a fresh session`);
        }
      },
      signal,
      what,
    );
    const found = at(json, p.sessions_field);
    const list = (Array.isArray(found) ? found : []).filter((s): s is Json => !!s && typeof s === 'object' && !Array.isArray(s));
    const hits: TimeSearchHit[] = [];
    for (const s of list) {
      const id = s[p.session_id_field];
      if ((typeof id !== 'string' && typeof id !== 'number') || String(id) === '') continue;
      const start = s[p.time_query_field];
      const dur = p.session_duration_field ? s[p.session_duration_field] : undefined;
      const state = s[p.session_state_field];
      hits.push({
        id: String(id),
        locator: String(id),
        startedAt: typeof start === 'number' || typeof start === 'string' ? timeOf(start) : null,
        durationMs: typeof dur === 'number' && Number.isFinite(dur) ? Math.round(dur) : null,
        ani: null,
        dnis: null,
        ucid: null,
        state: typeof state === 'string' ? state : null,
      });
    }
    return { hits, count: list.length, total: null };
  }

  async close(): Promise<void> {
    this.#closing.abort();
    await this.agent.close();
  }
}
