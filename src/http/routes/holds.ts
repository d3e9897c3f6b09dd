import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { freeText, identifier } from '../../catalog/record.js';
import type { AppDeps } from '../../deps.js';
import { AppError } from '../../errors.js';
import type { LegalHold } from '../../holds/hold-repository.js';
import { sourceDeleted } from '../../resolve/retention.js';
import { auditOrRefuse, resolveOrAudit } from '../evidence.js';
import { queryInt } from '../query-string.js';

/** A hold's matter names it on one line; its reasons may run to paragraphs (record.ts freeText). */
const matter = freeText(200);
const reason = freeText(2000, { multiline: true });

const holdView = (h: LegalHold) => ({
  id: h.id,
  recording_id: h.recordingPk,
  matter: h.matter,
  reason: h.reason,
  status: h.status,
  created_by: h.createdBy,
  created_at: h.createdAt,
  release_requested_by: h.releaseRequestedBy,
  release_requested_at: h.releaseRequestedAt,
  released_by: h.releasedBy,
  released_at: h.releasedAt,
});

const cursorOf = (c: { createdAt: string; id: string }) => Buffer.from(JSON.stringify([c.createdAt, c.id])).toString('base64url');
/** A creation time exactly as the repository stores it (toISOString), so the cursor compares like the column (recordings.ts does the same). */
const isStoredTime = (v: unknown): v is string => typeof v === 'string' && !Number.isNaN(Date.parse(v)) && new Date(v).toISOString() === v;
/**
 * Reads a cursor back as what this server issues, or refuses it (422): only a stored time and an
 * id reach the query — anything else (a NUL PostgreSQL refuses, a date in another form that would
 * compare as text) is not a cursor this server gave out.
 */
function parseCursor(s: string): { createdAt: string; id: string } {
  try {
    const v = JSON.parse(Buffer.from(s, 'base64url').toString('utf8')) as unknown;
    const [createdAt, id] = Array.isArray(v) && v.length === 2 ? (v as unknown[]) : [];
    if (isStoredTime(createdAt) && typeof id === 'string' && /^[0-9a-f-]{36}$/.test(id)) return { createdAt, id };
  } catch {
    // falls through
  }
  throw new AppError('request.invalid', 'cursor is not one this server issued');
}

/**
 * Legal holds as records (docs/AUDIT.md): placed by an admin, listed for admins and auditors,
 * lifted by two different admins (request, then confirm). Every step is an audit event.
 */
export function holdRoutes(deps: AppDeps): FastifyPluginAsyncZod {
  return async (app) => {
    app.post(
      '/api/v1/recordings/:ref/holds',
      {
        config: { auth: true, scope: 'admin', action: 'hold.create' },
        schema: {
          summary: 'Place a legal hold on a recording (it then stays served and kept whatever its retention)',
          params: z.object({ ref: identifier }).strict(),
          body: z.object({ matter, reason }).strict(),
        },
      },
      async (req, reply) => {
        const p = req.principal!;
        req.audit.ref = req.params.ref;
        req.audit.callerId = p.id;
        // Before the lookup: a refused attempt is recorded with what it asked for.
        req.audit.detail = { matter: req.body.matter, reason: req.body.reason };
        // Another tenant's ref is a 404 like an unknown one, and evidence in the owner's trail (product.md principle 4).
        // A ref the catalog does not know yet is found (self-heal) here, outside the hold's transaction.
        req.audit.recordingPk = (await resolveOrAudit(deps, req, req.params.ref, AbortSignal.timeout(30_000))).id;
        // The hold and its event commit together: no hold without evidence (503 audit.unavailable, nothing placed).
        const { hold, event, atRisk } = await auditOrRefuse(deps, req, { outcome: 'completed', status: 201 }, async (trx, record) => {
          // Resolved again in the hold's transaction, the recording's keys locked as an import locks
          // them: an import that moved the ref's copy to another call's recording (or merged the
          // recording away) since the resolve above would have the hold land on a recording without
          // that copy — or on none. Now it lands where the copy is, and an import starting meanwhile
          // waits, then finds the hold and takes it along (HoldRepository.followCopy).
          const recording = await deps.recordings.findByRefLocked(trx, p.tenantId, req.params.ref);
          if (!recording) throw new AppError('recording.not_found');
          req.audit.recordingPk = recording.id;
          // A hold binds us, not the sources: copies a source will delete on its own date are named, so someone acts.
          const atRisk = recording.copies
            .filter((c) => c.sourceRetentionExpiry && !sourceDeleted(c))
            .map((c) => ({ copy_id: c.id, origin: c.origin, source_retention_expiry: c.sourceRetentionExpiry }));
          const h = await deps.holds.createIn(trx, { tenantId: p.tenantId, recordingPk: recording.id, matter: req.body.matter, reason: req.body.reason, createdBy: p.id });
          req.audit.detail = { ...req.audit.detail, hold_id: h.id, copies_at_risk: atRisk.length };
          return { hold: h, event: await record(), atRisk };
        });
        reply.code(201).header('Location', `/api/v1/holds/${hold.id}`).header('X-Audit-Event-Id', event.id).header('Cache-Control', 'no-store');
        return { ...holdView(hold), copies_deleted_by_source_on: atRisk };
      },
    );

    app.get(
      '/api/v1/holds',
      {
        // audit:read, or admin (which holds every scope).
        config: { auth: true, scope: 'audit:read', action: 'hold.list' },
        schema: {
          summary: "List the tenant's legal holds",
          querystring: z
            .object({
              status: z.enum(['active', 'released']).optional(),
              recording: z.uuid().optional(),
              limit: queryInt({ min: 1, max: 1000 }).default(100),
              cursor: z.string().regex(/^[A-Za-z0-9_-]{1,400}$/).optional(),
            })
            .strict(),
        },
      },
      async (req, reply) => {
        const q = req.query;
        req.audit.callerId = req.principal!.id;
        const page = await deps.holds.list({
          tenantId: req.principal!.tenantId,
          limit: q.limit,
          ...(q.status ? { status: q.status } : {}),
          ...(q.recording ? { recordingPk: q.recording } : {}),
          ...(q.cursor ? { after: parseCursor(q.cursor) } : {}),
        });
        req.audit.detail = { query: q, results: page.items.length };
        // No evidence of the read, no list (503 audit.unavailable).
        const ev = await auditOrRefuse(deps, req, { outcome: 'completed', status: 200 });
        reply.header('X-Audit-Event-Id', ev.id).header('Cache-Control', 'no-store');
        return { items: page.items.map(holdView), next_cursor: page.next ? cursorOf(page.next) : null };
      },
    );

    app.post(
      '/api/v1/holds/:id/release',
      {
        config: { auth: true, scope: 'admin', action: 'hold.release' },
        schema: {
          summary: 'Release a legal hold: the first admin requests, a different admin confirms (four eyes)',
          params: z.object({ id: z.uuid() }).strict(),
          body: z.object({ reason: reason.optional() }).strict().nullish(),
        },
      },
      async (req, reply) => {
        const p = req.principal!;
        req.audit.callerId = p.id;
        req.audit.detail = { hold_id: req.params.id, ...(req.body?.reason ? { reason: req.body.reason } : {}) };
        const existing = await deps.holds.get(p.tenantId, req.params.id);
        if (existing) req.audit.recordingPk = existing.recordingPk;
        try {
          // The step and its event commit together: a step without evidence is refused (503
          // audit.unavailable) and leaves the hold as it was. Which step it is (request or
          // confirmation), and so the status, is known inside the transaction only.
          const { step, hold, event } = await auditOrRefuse(deps, req, { outcome: 'completed', status: 202 }, async (trx, record) => {
            const r = await deps.holds.releaseIn(trx, p.tenantId, req.params.id, p.id);
            const released = r.step === 'released';
            req.audit.action = released ? 'hold.release' : 'hold.release_request';
            req.audit.detail = { ...req.audit.detail, matter: r.hold.matter, ...(released ? { requested_by: r.hold.releaseRequestedBy } : {}) };
            return { ...r, event: await record({ status: released ? 200 : 202 }) };
          });
          reply.code(step === 'released' ? 200 : 202).header('X-Audit-Event-Id', event.id).header('Cache-Control', 'no-store');
          return holdView(hold);
        } catch (e) {
          // A refused confirmation is a denied attempt at lifting a hold, not a mere failure.
          if (e instanceof AppError && e.code === 'hold.second_admin_required') {
            try {
              await deps.audit.record(req, { outcome: 'denied', status: e.status, errorCode: e.code });
            } catch (auditErr) {
              // Nothing was granted: the refusal stands, as for any refusal the trail cannot take (app.ts auditRefusal).
              req.log.error({ err: auditErr }, 'audit write failed for a refused hold release');
              req.audit.written = true;
            }
          }
          throw e;
        }
      },
    );
  };
}
