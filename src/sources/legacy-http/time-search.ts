import { readFileSync } from 'node:fs';
import { Agent } from 'undici';
import { AppError } from '../../errors.js';
import { AvayaTimeSearch } from './avaya-search.js';
import type { LegacyHttpSourceConfig } from './config.js';
import { MediaSenseTimeSearch } from './mediasense-search.js';

/** One recording a recorder's search-by-time API reported. */
export interface TimeSearchHit {
  /** The vendor id: Avaya inum, MediaSense session id. */
  id: string;
  /** What the legacy-http connector opens unchanged: "inum:<inum>", or the MediaSense session id. */
  locator: string;
  startedAt: string | null;
  durationMs: number | null;
  ani: string | null;
  dnis: string | null;
  /** Avaya: the call the segment belongs to. */
  ucid: string | null;
  /** MediaSense sessionState; null when the recorder does not give one. */
  state: string | null;
}

export interface TimeSearchPage {
  hits: TimeSearchHit[];
  /** Records in the answer (hits plus any without an id): a page shorter than asked is the last. */
  count: number;
  /** Every match of the window, when the recorder says. */
  total: number | null;
}

/** A recorder's search by start time, paged by offset: what the legacy search sync needs. */
export interface LegacyTimeSearch {
  /** Recordings started in [from, to), oldest first, `limit` from `offset`. */
  page(from: Date, to: Date, offset: number, limit: number, signal: AbortSignal): Promise<TimeSearchPage>;
  close(): Promise<void>;
}

/**
 * The search client of a legacy-http source. It has its own HTTP agent (and, for MediaSense, its
 * own session) so a long sync never competes with retrievals for the connector's connections.
 */
export function createTimeSearch(cfg: LegacyHttpSourceConfig): LegacyTimeSearch {
  const ca = cfg.tls_ca_file ? readFileSync(cfg.tls_ca_file) : undefined;
  const agent = new Agent({ connect: { timeout: cfg.timeout_ms, ...(ca ? { ca } : {}) }, keepAliveTimeout: 10_000 });
  switch (cfg.provider) {
    case 'avaya_aura':
      return new AvayaTimeSearch(cfg, agent);
    case 'cisco_mediasense':
      return new MediaSenseTimeSearch(cfg, agent);
    default:
      void agent.close();
      throw new AppError('request.invalid', `source ${cfg.name}: ${cfg.provider} has no search API to sync from`);
  }
}

/** ISO-8601 with an offset, or epoch seconds / milliseconds (by magnitude); null when neither. */
export function timeOf(v: string | number | undefined | null): string | null {
  if (v === undefined || v === null || v === '') return null;
  const s = String(v).trim();
  if (/^\d{9,13}$/.test(s)) {
    const n = Number(s);
    return new Date(n < 1e11 ? n * 1000 : n).toISOString();
  }
  if (!/^\d{4}-\d{2}-\d{2}T[\d:.]+(Z|[+-]\d{2}:?\d{2})$/.test(s)) return null;
  const t = Date.parse(s);
  return Number.isNaN(t) ? null : new Date(t).toISOString();
}
