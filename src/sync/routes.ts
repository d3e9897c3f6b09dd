import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { AppDeps } from '../deps.js';
import { auditOrRefuse } from '../http/evidence.js';
import { queryInt } from '../http/query-string.js';
import { migrationReport, reportCsv } from './report.js';

/** GET /api/v1/reports/migration: the caller's tenant's migration report (scope audit:read or admin), audited before the data leaves. */
export function migrationReportRoutes(deps: AppDeps): FastifyPluginAsyncZod {
  return async (app) => {
    app.get(
      '/api/v1/reports/migration',
      {
        config: { auth: true, scope: 'audit:read', action: 'report.migration' },
        schema: {
          summary: 'Migration report: legacy-only, cloud-only, both, ambiguous, mismatched and retention-gap recordings of the tenant',
          querystring: z
            .object({
              format: z.enum(['json', 'csv']).default('json'),
              /** Longest list per category (counts are always complete). */
              limit: queryInt({ min: 0, max: 100_000 }).default(1000),
            })
            .strict(),
        },
      },
      async (req, reply) => {
        const q = req.query;
        req.audit.callerId = req.principal!.id;
        const report = await migrationReport(deps.catalog.db, req.principal!.tenantId, { limit: q.limit });
        req.audit.detail = { query: q, counts: report.counts, truncated: report.truncated };
        // No evidence of the read, no report (503 audit.unavailable).
        const ev = await auditOrRefuse(deps, req, { outcome: 'completed', status: 200 });
        reply.header('X-Audit-Event-Id', ev.id).header('Cache-Control', 'no-store');
        if (q.format === 'csv') {
          reply.header('Content-Type', 'text/csv; charset=utf-8').header('Content-Disposition', `attachment; filename="migration-${report.tenant}.csv"`);
          return reply.send(reportCsv([report]));
        }
        return report;
      },
    );
  };
}
