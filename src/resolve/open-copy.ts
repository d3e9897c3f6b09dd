import type { Copy, Recording } from '../catalog/model.js';
import type { AppDeps } from '../deps.js';
import { AppError, isAppError, isRetryable } from '../errors.js';
import type { AudioFormat } from '../media/format.js';
import { type PreparedMedia, prepareMedia } from '../media/prepare.js';
import type { SourceConnector } from '../sources/port.js';
import { locationOf } from '../sources/registry.js';
import { orderCopies } from './copy-policy.js';
import type { Rediscovery } from './resolver.js';

export interface OpenedCopy {
  copy: Copy;
  connector: SourceConnector;
  prepared: PreparedMedia;
  totalSize: number | undefined;
  /** Copies tried before this one, and why they failed. */
  fallbackFrom: Attempt[];
  /** Set when the copy was found by a rediscovery: the recording as re-read, with that copy (locations, metadata). */
  rediscovered?: Recording;
  /** What the source stated about these bytes for the audit event (SourceMedia.auditDetail: Genesys's sensitive_data). */
  sourceDetail?: Readonly<Record<string, string | number | boolean>>;
}

export interface Attempt {
  copy_id: string;
  origin: string;
  code: string;
}

/** Thrown when no copy could be opened; carries every attempt for the audit trail. */
export class NoCopyOpened extends Error {
  constructor(
    readonly last: AppError,
    readonly attempts: Attempt[],
  ) {
    super(last.message);
  }
}

/**
 * Source states that mean "the bytes exist but need time" (a restore, an upload, a transcode):
 * the retrieve endpoint turns these into a 202 job instead of an error.
 */
export const PREPARING_CODES = new Set(['source.archived', 'source.restoring', 'source.media_not_ready']);

/**
 * The bytes of this copy cannot be served (not audio, or a codec we cannot convert): a fault of
 * the copy, not of the recording — another copy may well be a good file.
 */
const MEDIA_FAULTS = new Set(['media.undecodable', 'media.unsupported_codec']);

/**
 * Opens the first copy that works, in policy order, and sniffs/converts it. Another copy is tried
 * for source faults a retry elsewhere can help and for stored bytes that cannot be decoded;
 * nothing has reached a client yet, so a fallback is safe. Shared by the streaming path and the
 * job worker.
 */
export async function openFirstCopy(deps: AppDeps, rec: Recording, format: AudioFormat, signal: AbortSignal, log?: (msg: string, o: object) => void): Promise<OpenedCopy> {
  const copies = orderCopies(rec, deps.config.policy.prefer);
  if (copies.length === 0) {
    throw new NoCopyOpened(
      new AppError('recording.no_copy_available', 'no copy is in a readable state', { extra: { copies: rec.copies.map((c) => ({ origin: c.origin, state: c.state })) } }),
      [],
    );
  }
  const attempts: Attempt[] = [];
  const errors: AppError[] = [];
  let last: AppError | undefined;
  for (const copy of copies) {
    const started = process.hrtime.bigint();
    let connector: SourceConnector | undefined;
    try {
      connector = deps.sources.forCopy(rec.tenantId, copy);
      const media = await connector.open(locationOf(copy, rec.conversationId), { signal });
      deps.metrics.sourceLatency.observe({ kind: connector.kind, outcome: 'ok' }, Number(process.hrtime.bigint() - started) / 1e9);
      if (media.computed && format === 'original') {
        // No stored object to hand over as it is: the source computed these bytes (SourceMedia.computed).
        media.body.destroy();
        throw new AppError(
          'media.unsupported_codec',
          'this recording is computed by its source (a MediaSense session whose tracks are merged into one call): there is no original to serve; ask for wav, mp3 or ogg, or set the source\'s profile.track to serve one track as stored',
          { extra: { codec: 'merged_tracks' } },
        );
      }
      const preparedAsIs = await prepareMedia(media.body, format, {
        transcoder: deps.transcoder,
        signal,
        ...(media.totalSize !== undefined ? { sourceSize: media.totalSize } : {}),
        ...(copy.codec ? { rawCodecHint: copy.codec } : {}),
      }).catch((e: unknown) => {
        media.body.destroy();
        throw e;
      });
      // Computed bytes are never the stored object: no catalog digest check, no strong validator, X-Transcoded: true.
      const prepared = media.computed ? { ...preparedAsIs, transcoded: true } : preparedAsIs;
      return { copy, connector, prepared, totalSize: media.totalSize, fallbackFrom: attempts, ...(media.auditDetail ? { sourceDetail: media.auditDetail } : {}) };
    } catch (e) {
      const err = isAppError(e) ? e : new AppError('source.unavailable', 'the source failed', { cause: e });
      if (connector) deps.metrics.sourceLatency.observe({ kind: connector.kind, outcome: 'error' }, Number(process.hrtime.bigint() - started) / 1e9);
      attempts.push({ copy_id: copy.id, origin: copy.origin, code: err.code });
      errors.push(err);
      last = err;
      // A source saying "not there" about a copy the catalog knows is a missing copy, not a missing recording.
      const copyFault = err.code.startsWith('source.') || isRetryable(err) || err.code === 'recording.not_found' || err.code === 'recording.expired' || MEDIA_FAULTS.has(err.code);
      if (!copyFault || signal.aborted) break;
      log?.('copy failed, trying the next one', { copy: copy.id, code: err.code });
    }
  }
  // A preparing copy (archived, transcoding) is more useful to report than a later copy's hard
  // failure; then bytes that were there but cannot be decoded (the answer before media faults fell
  // back) rather than a later copy's outage.
  const preparing = errors.find((e) => PREPARING_CODES.has(e.code));
  const undecodable = errors.find((e) => MEDIA_FAULTS.has(e.code));
  throw new NoCopyOpened(preparing ?? undecodable ?? last!, attempts);
}

/**
 * "It moved", not "it broke": every copy the catalog has is gone — the ones tried answered
 * source.object_missing, the rest are marked DELETED (the sync's vanish step writes that for a
 * purged file) — and the recording has no cloud copy. That is the brief's half-migrated call: the
 * legacy archive purged the file after the migration, and the mapping sync has not yet filed the
 * cloud copy. A timeout, an auth or key refusal, a refused path, an integrity mismatch or a 5xx says
 * nothing about where the bytes are, and a copy left out for another reason (its key refused, a
 * state we do not read) may still be there: none of those asks Genesys. A recording that already
 * has a cloud copy is synced: a finder would only find that copy again.
 */
export function looksMoved(rec: Recording, e: NoCopyOpened): boolean {
  if (!rec.copies.length || rec.copies.some((c) => c.origin === 'GENESYS_CLOUD')) return false;
  if (e.attempts.some((a) => a.code !== 'source.object_missing')) return false;
  const missing = new Set(e.attempts.map((a) => a.copy_id));
  return rec.copies.every((c) => missing.has(c.id) || c.state === 'DELETED');
}

/**
 * `open`, and when its failure looks like a move (looksMoved) one finder round (Resolver.rediscover:
 * the tenant's Genesys orgs, asked by the recording's call id) and one more `open` of the recording
 * as re-read, without the copies that just answered "not there". A finder that finds nothing or
 * fails leaves the copies' own error (a 502, never a 500); `note` adds what happened to the
 * request's audit event, as the catalog-miss self-heal does.
 */
export async function openOrRediscover(
  deps: AppDeps,
  rec: Recording,
  open: (rec: Recording) => Promise<OpenedCopy>,
  signal: AbortSignal,
  note: (detail: Record<string, unknown>) => void,
  log?: (msg: string, o: object) => void,
): Promise<OpenedCopy> {
  try {
    return await open(rec);
  } catch (e) {
    if (!(e instanceof NoCopyOpened) || signal.aborted || !looksMoved(rec, e) || !deps.resolver.canRediscover(rec)) throw e;
    let found: Rediscovery | null;
    try {
      found = await deps.resolver.rediscover(rec, signal);
    } catch (err) {
      const code = isAppError(err) ? err.code : 'internal';
      log?.('no copy of a known recording is left and asking the finders failed', { recording: rec.id, code, err });
      note({ rediscovery: { outcome: 'failed', code } });
      throw e;
    }
    if (!found) {
      note({ rediscovery: { outcome: 'not_found' } });
      throw e;
    }
    // The holds the write-back placed are counted where the rediscovery is (docs/AUDIT.md), as an import counts its own.
    note({ rediscovered_by: found.by, ...(found.holdsPlaced ? { holds_placed: found.holdsPlaced } : {}) });
    const gone = new Set(e.attempts.map((a) => a.copy_id));
    const retry = { ...found.recording, copies: found.recording.copies.filter((c) => !gone.has(c.id)) };
    // A cloud copy filed as DELETED or ERROR cannot be tried: the copies' own answer stands.
    if (!orderCopies(retry, deps.config.policy.prefer).length) throw e;
    log?.('no copy of a known recording is left; a finder found it elsewhere, opening that', { recording: rec.id, by: found.by });
    try {
      const opened = await open(retry);
      return { ...opened, fallbackFrom: [...e.attempts, ...opened.fallbackFrom], rediscovered: found.recording };
    } catch (e2) {
      if (e2 instanceof NoCopyOpened) throw new NoCopyOpened(e2.last, [...e.attempts, ...e2.attempts]);
      throw e2;
    }
  }
}
