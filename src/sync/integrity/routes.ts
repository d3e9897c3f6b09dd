import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { identifier } from '../../catalog/record.js';
import type { AppDeps } from '../../deps.js';
import { auditOrRefuse, resolveOrAudit } from '../../http/evidence.js';
import { judgeRecording, verdictView } from './check.js';
import { IntegrityRepository } from './integrity-repository.js';

/**
 * POST /api/v1/recordings/{ref}/integrity: compares the recording's legacy and cloud copies now
 * (scope audit:read or admin). The verdict is stored and is the detail of the request's audit
 * event. A ref of another tenant gets the same 404 as an unknown one; a recording without both
 * kinds of copy is 409 integrity.not_a_pair; a copy that cannot be read is a verdict
 * (`unreadable` with the code), not an error.
 */
export function integrityRoutes(deps: AppDeps): FastifyPluginAsyncZod {
  return async (app) => {
    app.post(
      '/api/v1/recordings/:ref/integrity',
      {
        config: { auth: true, scope: 'audit:read', action: 'recording.integrity' },
        schema: {
          summary: "Compare a recording's legacy and cloud copies by their decoded audio (PCM hash, then fingerprint) and record the verdict",
          params: z.object({ ref: identifier }).strict(),
        },
      },
      async (req, reply) => {
        const p = req.principal!;
        req.audit.ref = req.params.ref;
        req.audit.callerId = p.id;
        const rec = await resolveOrAudit(deps, req, req.params.ref, AbortSignal.timeout(30_000));
        req.audit.recordingPk = rec.id;
        // Not tied to the client: a verdict reached after a hang-up is still worth keeping.
        const check = await judgeRecording(deps, rec, { principalId: p.id, trigger: 'on_demand', signal: AbortSignal.timeout(deps.config.media.transcode_timeout_ms) });
        const view = verdictView(check);
        req.audit.detail = view;
        // The verdict and its event commit together: no evidence of the check, no verdict kept or
        // told to the caller (503 audit.unavailable). Stored first, the verdict outlived a failed audit.
        const ev = await auditOrRefuse(deps, req, { outcome: 'completed', status: 200 }, async (trx, record) => {
          await new IntegrityRepository(trx).insert(check);
          return record();
        });
        reply.header('X-Audit-Event-Id', ev.id).header('Cache-Control', 'no-store');
        return view;
      },
    );
  };
}
