import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { AppDeps } from '../../deps.js';

const isoTime = z.iso.datetime({ offset: true });

/** Reads of the trail are themselves audited (PCI DSS 10.2.1.3). */
export function auditRoutes(deps: AppDeps): FastifyPluginAsyncZod {
  return async (app) => {
    app.get(
      '/api/v1/audit/events',
      {
        config: { auth: true, scope: 'audit:read', action: 'audit.read' },
        schema: {
          summary: "Query the tenant's audit events",
          querystring: z
            .object({
              from: isoTime.optional(),
              to: isoTime.optional(),
              principal: z.string().min(1).max(200).optional(),
              recording: z.uuid().optional(),
              outcome: z.enum(['allowed', 'completed', 'denied', 'failed', 'aborted']).optional(),
              action: z.string().regex(/^[a-z_.]{1,64}$/).optional(),
              limit: z.coerce.number().int().min(1).max(1000).default(100),
              after: z.coerce.number().int().min(0).optional(),
            })
            .strict(),
        },
      },
      async (req, reply) => {
        const q = req.query;
        req.audit.callerId = req.principal!.id;
        // The read is logged before the data leaves.
        const ev = await deps.audit.record(req, { outcome: 'completed', status: 200, detail: { query: q } });
        const page = await deps.auditRepo.query({
          tenantId: req.principal!.tenantId,
          limit: q.limit,
          ...(q.from ? { from: new Date(q.from).toISOString() } : {}),
          ...(q.to ? { to: new Date(q.to).toISOString() } : {}),
          ...(q.principal ? { principalId: q.principal } : {}),
          ...(q.recording ? { recordingPk: q.recording } : {}),
          ...(q.outcome ? { outcome: q.outcome } : {}),
          ...(q.action ? { action: q.action } : {}),
          ...(q.after !== undefined ? { afterSeq: q.after } : {}),
        });
        reply.header('X-Audit-Event-Id', ev.id).header('Cache-Control', 'no-store');
        return { items: page.items, next_after: page.next };
      },
    );

    app.get(
      '/api/v1/audit/verify',
      { config: { auth: true, scope: 'audit:read', action: 'audit.verify' }, schema: { summary: 'Verify the hash chain of the audit trail' } },
      async (req, reply) => {
        req.audit.callerId = req.principal!.id;
        const ev = await deps.audit.record(req, { outcome: 'completed', status: 200 });
        const result = await deps.auditRepo.verify();
        reply.header('X-Audit-Event-Id', ev.id).header('Cache-Control', 'no-store');
        return result;
      },
    );
  };
}
