import type { Agent } from 'undici';
import { AppError } from '../../errors.js';
import { avayaProfile, type AvayaProfile, type LegacyHttpSourceConfig } from './config.js';
import { clientErrorToAppError, discard, fillTemplate, LegacyHttp, readSmallBody } from './http.js';
import type { LegacyTimeSearch, TimeSearchHit, TimeSearchPage } from './time-search.js';
import { timeOf } from './time-search.js';
import { extractRecords, XmlRefused } from './xml.js';

const ANSWER_LIMIT = 8 * 1024 * 1024;

/**
 * Avaya Contact Recorder search by time window (profile time_search_path): the same XML answer
 * as a UCID search, one `segment_element` per segment with its inum, UCID, start, duration, ANI
 * and DNIS when the recorder gives them, and a total on the root element. Each hit's locator is
 * "inum:<inum>", which the legacy-http connector replays as it is.
 */
export class AvayaTimeSearch implements LegacyTimeSearch {
  readonly #http: LegacyHttp;
  readonly #p: AvayaProfile;

  constructor(
    private readonly cfg: LegacyHttpSourceConfig,
    private readonly agent: Agent,
  ) {
    this.#http = new LegacyHttp(cfg, agent, { requests: 0, retries: 0 });
    this.#p = avayaProfile(cfg);
  }

  async page(from: Date, to: Date, offset: number, limit: number, signal: AbortSignal): Promise<TimeSearchPage> {
    const p = this.#p;
    const what = 'Avaya time search';
    const fmt = (d: Date) => (p.time_search_time_format === 'iso' ? d.toISOString() : String(p.time_search_time_format === 'epoch_ms' ? d.getTime() : Math.floor(d.getTime() / 1000)));
    const url = fillTemplate(this.#http.endpoint, p.time_search_path, { from: fmt(from), to: fmt(to), offset: String(offset), limit: String(limit) });
    const xml = await this.#http.retrying(
      async () => {
        const s = AbortSignal.any([signal, AbortSignal.timeout(this.cfg.timeout_ms)]);
        const res = await this.#http.send({ method: 'GET', url, what, signal: s, credentials: true, headers: { accept: 'application/xml, text/xml' } });
        if (res.statusCode !== 200) {
          await discard(res);
          throw clientErrorToAppError(res.statusCode, what, 'upstream');
        }
        return (await readSmallBody(res, what, ANSWER_LIMIT)).toString('utf8');
      },
      signal,
      what,
    );
    const fields = [p.inum_field, p.start_field, p.ucid_field, p.duration_field, p.ani_field, p.dnis_field].filter((f): f is string => !!f);
    let records;
    let total: number | null = null;
    try {
      records = extractRecords(xml, p.segment_element, fields, Math.max(limit, 1) + 1);
      const root = /<(?![?!/])([A-Za-z_][A-Za-z0-9_.:-]*)/.exec(xml.replace(/<!--[\s\S]*?-->/g, ''))?.[1];
      if (p.total_attribute && root) {
        const t = extractRecords(xml, root.includes(':') ? root.slice(root.indexOf(':') + 1) : root, [p.total_attribute], 1)[0]?.fields[p.total_attribute];
        if (t !== undefined && /^\d+$/.test(t)) total = Number(t);
      }
    } catch (e) {
      if (e instanceof XmlRefused) throw new AppError('source.bad_gateway', `${what}: the answer is not acceptable XML (${e.message})`);
      throw e;
    }
    const hits: TimeSearchHit[] = [];
    for (const r of records) {
      const inum = r.fields[p.inum_field];
      if (!inum) continue;
      const get = (f: string | null) => (f ? (r.fields[f] ?? '') || null : null);
      const dur = get(p.duration_field);
      const durN = dur !== null && /^\d+(\.\d+)?$/.test(dur) ? Math.round(Number(dur) * (p.duration_unit === 's' ? 1000 : 1)) : null;
      hits.push({ id: inum, locator: `inum:${inum}`, startedAt: timeOf(get(p.start_field)), durationMs: durN, ani: get(p.ani_field), dnis: get(p.dnis_field), ucid: get(p.ucid_field), state: null });
    }
    return { hits, count: records.length, total };
  }

  close(): Promise<void> {
    return this.agent.close();
  }
}
