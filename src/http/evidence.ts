import type { FastifyRequest } from 'fastify';
import type { Kysely } from 'kysely';
import type { AuditEvent } from '../audit/event.js';
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
      // principle 4). The owner's event carries the caller's request id (httpRequestId), so the
      // operator can join the two.
      const owners = await deps.recordings.otherTenantsHoldingRef(ref, tenantId);
      // The owners' events go into the commit of the caller's own 404 event (AuditRecorder.record,
      // from the error handler): written here, one commit each, they made a foreign ref answer one
      // durable commit slower than an unknown one — an existence oracle for anyone with a clock.
      // In the shared commit the difference is a row. A failed owner write is logged there and does
      // not change the caller's answer: anything else would tell the caller the ref exists elsewhere.
      if (owners.length) {
        req.audit.alsoFor = owners.map((owner) => ({
          ...deps.audit.base(req),
          tenantId: owner,
          ref,
          action: 'recording.cross_tenant_attempt',
          outcome: 'denied' as const,
          status: 404,
          errorCode: 'recording.not_found',
          detail: { requesting_tenant: tenantId },
        }));
      }
    }
    throw e;
  }
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
