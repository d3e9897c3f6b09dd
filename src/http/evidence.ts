import type { FastifyRequest } from 'fastify';
import type { Kysely } from 'kysely';
import type { AuditEvent, AuditEventInput } from '../audit/event.js';
import { afterOwnCommit } from '../audit/recorder.js';
import { writeTransaction } from '../catalog/database.js';
import type { Recording } from '../catalog/model.js';
import type { Database } from '../catalog/tables.js';
import type { AppDeps } from '../deps.js';
import { AppError, isAppError } from '../errors.js';
import type { ResolveOptions } from '../resolve/resolver.js';

// The request's evidence, written before what it is evidence of: used by every route that reads or
// changes something on a principal's behalf (not only the streaming path in serve-recording.ts).

/**
 * Resolves a ref in the caller's tenant; a miss that another tenant holds is evidence for that tenant too.
 * With `lookup.waitMs` a catalog miss's search in the tenant's sources is waited for that long at
 * most (503 `recording.lookup_pending`, the search going on: Resolver.resolve); without it the
 * request waits for the search.
 */
export async function resolveOrAudit(deps: AppDeps, req: FastifyRequest, ref: string, signal: AbortSignal, lookup: Pick<ResolveOptions, 'waitMs'> = {}): Promise<Recording> {
  const tenantId = req.principal!.tenantId;
  try {
    const { recording, discoveredBy, searchStartedBy } = await deps.resolver.resolve(tenantId, ref, signal, {
      ...lookup,
      requestId: req.id,
      retryAfterS: deps.config.jobs.retry_after_s,
    });
    // A search that outlived an earlier request (answered lookup_pending) is reported by the request
    // that takes its find, naming the one that started it (its event has the ref and the 503).
    if (discoveredBy) req.audit.detail = { ...req.audit.detail, self_heal: discoveredBy, ...(searchStartedBy ? { self_heal_started_by: searchStartedBy } : {}) };
    return recording;
  } catch (e) {
    if (isAppError(e) && e.code === 'recording.not_found') {
      // Same answer as "does not exist", but the attempt is evidence for the owner too.
      // Only the owner's trail learns of it: nothing on the caller's request changes (its own
      // event, which its tenant's auditors read, must be that of an unknown ref — product.md
      // principle 4), nor what its commit holds (companionEvents). The owner's event carries the
      // caller's request id (httpRequestId), so the operator can join the two.
      req.audit.alsoFor = companionEvents(deps, req, ref, tenantId, await deps.recordings.otherTenantsRecordingsOfRef(ref, tenantId));
    }
    throw e;
  }
}

/**
 * What a `recording.not_found` of resolveOrAudit writes besides the caller's own event. Exactly one
 * companion, written in the caller's commit right after its event (AuditRecorder.record), whoever
 * holds the ref: the owner's `recording.cross_tenant_attempt` when one other tenant holds it; else
 * (nobody, or several tenants) one `recording.lookup_miss` in the operator's trail (no tenant: no
 * tenant's view or export shows it), naming the owners in `detail.owning_tenants`.
 *
 * Why one always: every tenant's events share one chain, and a tenant reads the seq, hash and
 * prevHash of its own. With owner events only when the ref is someone's, the caller's next event
 * sat one seq further per owner and never linked (prevHash) to its 404 event: whether another
 * tenant holds the ref, and how many do, for certain. Written in commits of their own instead,
 * they made that 404 one durable commit slower: the same oracle by timing. Now either 404 writes
 * two rows in one commit, in the same positions. Several owners (a ref two tenants both use; rare)
 * get their own events after the caller's commit (`afterOwnCommit`), so their number does not show
 * in it nor in the answer's time. A companion whose write fails is logged by the recorder and
 * changes nothing of the caller's answer.
 */
function companionEvents(deps: AppDeps, req: FastifyRequest, ref: string, tenantId: string, owners: { tenantId: string; recordingPk: string | null }[]): AuditEventInput[] {
  const miss = { ...deps.audit.base(req), ref, outcome: 'denied' as const, status: 404, errorCode: 'recording.not_found', copyId: null, origin: null };
  // The owner's event names its recording, so an auditor who filters by recording finds the attempt too.
  const ownerEvent = (owner: { tenantId: string; recordingPk: string | null }): AuditEventInput => ({
    ...miss,
    tenantId: owner.tenantId,
    recordingPk: owner.recordingPk,
    action: 'recording.cross_tenant_attempt',
    detail: { requesting_tenant: tenantId },
  });
  if (owners.length === 1) return [ownerEvent(owners[0]!)];
  const lookupMiss: AuditEventInput = {
    ...miss,
    tenantId: null,
    recordingPk: null,
    action: 'recording.lookup_miss',
    detail: { requesting_tenant: tenantId, owning_tenants: owners.map((o) => o.tenantId) },
  };
  return [lookupMiss, ...owners.map((o) => afterOwnCommit(ownerEvent(o)))];
}

/** At most this many sniffer notes, each cut to this many characters, go into an event. */
const MAX_NOTES = 8;
const MAX_NOTE_CHARS = 200;

/** What a media answer sends, as its reader knows it: PreparedMedia, or a job's staged result. */
export interface ServedMedia {
  /** Codec of the stored recording (as `X-Audio-Codec`). */
  codec: string;
  /** Whether the bytes sent are the transcoder's output rather than the stored bytes (as `X-Transcoded`). */
  transcoded: boolean;
  /** The sniffer's notes on the stored bytes (sniff.ts SniffResult.notes). */
  notes?: readonly string[] | undefined;
}

/**
 * Records in the request's event detail which bytes are sent: `codec`, `transcoded`, the sniffer's
 * `sniff_notes` (bounded) and, for a transcode, the stored copy's catalog digest as
 * `source_sha256` — the `.end` event's sha256 is then of the transcoder's output, and this links
 * it to the stored object it came from. Called before the `allowed` event, so both events carry it.
 * Every reader that serves (or reads) media uses this one shape: serve-recording.ts, job content,
 * the console's waveform.
 */
export function noteServedMedia(req: FastifyRequest, media: ServedMedia, sourceSha256: string | null | undefined): void {
  const notes = (media.notes ?? []).slice(0, MAX_NOTES).map((n) => n.slice(0, MAX_NOTE_CHARS));
  req.audit.detail = {
    ...req.audit.detail,
    codec: media.codec,
    transcoded: media.transcoded,
    ...(notes.length ? { sniff_notes: notes } : {}),
    ...(media.transcoded && sourceSha256 ? { source_sha256: sourceSha256 } : {}),
  };
}

class AuditWriteFailed extends Error {
  constructor(cause: unknown) {
    super('audit write failed', { cause });
  }
}

/**
 * Writes the request's audit event, failing closed: no evidence, no access. With `within`, the
 * event is appended inside one write transaction together with the caller's own writes (`record`
 * appends it there), so both commit or neither does.
 */
export async function auditOrRefuse(deps: AppDeps, req: FastifyRequest, fields: { outcome: 'allowed' | 'completed'; status: number }): Promise<AuditEvent>;
export async function auditOrRefuse<T>(
  deps: AppDeps,
  req: FastifyRequest,
  fields: { outcome: 'allowed' | 'completed'; status: number },
  within: (trx: Kysely<Database>, record: (late?: { status: number }) => Promise<AuditEvent>) => Promise<T>,
): Promise<T>;
export async function auditOrRefuse<T>(
  deps: AppDeps,
  req: FastifyRequest,
  fields: { outcome: 'allowed' | 'completed'; status: number },
  within?: (trx: Kysely<Database>, record: (late?: { status: number }) => Promise<AuditEvent>) => Promise<T>,
): Promise<T | AuditEvent> {
  // A HEAD is answered with the head alone: the trail says so, as a GET's bytes would say what left.
  if (req.method === 'HEAD') req.audit.detail = { ...req.audit.detail, head: true };
  try {
    if (!within) return await deps.audit.record(req, fields);
    const written: AuditEvent[] = [];
    const out = await writeTransaction(deps.catalog.db, (trx) =>
      // `late`: what only the transaction learns (e.g. whether a release was the request or the confirmation).
      within(trx, async (late) => {
        try {
          const ev = await deps.audit.repo.appendIn(trx, { ...deps.audit.base(req), ...fields, ...late });
          written.push(ev);
          return ev;
        } catch (e) {
          throw new AuditWriteFailed(e);
        }
      }),
    );
    deps.audit.repo.published(written);
    req.audit.written = true;
    return out;
  } catch (e) {
    // The caller's own writes failing is their error, not the trail's.
    if (within && !(e instanceof AuditWriteFailed)) throw e;
    // Fail closed: no evidence, no access.
    req.log.error({ err: e }, 'audit write failed; refusing access');
    req.audit.written = true;
    throw new AppError('audit.unavailable', undefined, { cause: e });
  }
}
