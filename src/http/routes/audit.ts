import { Readable } from 'node:stream';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { auditExportLines } from '../../audit/export.js';
import { tenantVerifyView } from '../../audit/tenant-view.js';
import type { AppDeps } from '../../deps.js';
import { AppError, isAppError } from '../../errors.js';
import { auditOrRefuse } from '../evidence.js';
import { queryInt, timeWindow } from '../query-string.js';
import { streamOut } from '../stream-out.js';

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
              limit: queryInt({ min: 1, max: 1000 }).default(100),
              after: queryInt({ min: 0, max: Number.MAX_SAFE_INTEGER }).optional(),
            })
            .strict(),
        },
      },
      async (req, reply) => {
        const q = req.query;
        req.audit.callerId = req.principal!.id;
        req.audit.detail = { query: q };
        // A reversed window is refused before the read is logged as done.
        const window = timeWindow(q);
        // The read is logged before the data is read; no evidence, no events (503 audit.unavailable).
        const ev = await auditOrRefuse(deps, req, { outcome: 'completed', status: 200 });
        const page = await deps.auditRepo.query({
          tenantId: req.principal!.tenantId,
          limit: q.limit,
          ...window,
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
        const p = req.principal!;
        req.audit.callerId = p.id;
        const ev = await auditOrRefuse(deps, req, { outcome: 'completed', status: 200 });
        const result = await deps.auditRepo.verify();
        reply.header('X-Audit-Event-Id', ev.id).header('Cache-Control', 'no-store');
        // Every caller is some tenant's principal — `admin` included, a scope granted per tenant — and
        // gets that tenant's view (audit/tenant-view.ts). The whole walk is the operator's: `custodian audit verify`.
        return tenantVerifyView(deps.auditRepo, p.tenantId, result);
      },
    );

    app.get(
      '/api/v1/audit/signing-key',
      { config: { auth: true, scope: 'audit:read', action: 'audit.signing_key' }, schema: { summary: 'The public key that signs checkpoints and exports (pin it)' } },
      async (req, reply) => {
        req.audit.callerId = req.principal!.id;
        const keyId = await deps.keys.signingKeyId();
        const ev = await auditOrRefuse(deps, req, { outcome: 'completed', status: 200 });
        reply.header('X-Audit-Event-Id', ev.id).header('Cache-Control', 'no-store');
        return { key_id: keyId, algorithm: 'Ed25519', public_key: await deps.keys.publicKey(keyId) };
      },
    );

    app.get(
      '/api/v1/audit/export',
      {
        config: { auth: true, scope: 'audit:read', action: 'audit.export' },
        schema: {
          summary: "Export the tenant's audit events of a period as JSONL with a signed manifest (docs/AUDIT.md)",
          querystring: z.object({ from: isoTime, to: isoTime }).strict(),
        },
      },
      async (req, reply) => {
        const { from, to } = timeWindow(req.query);
        const tenantId = req.principal!.tenantId;
        req.audit.callerId = req.principal!.id;
        req.audit.detail = { from, to };
        // Logged before the first line leaves; no evidence, no export.
        const allowed = await auditOrRefuse(deps, req, { outcome: 'allowed', status: 200 });
        async function* lines() {
          try {
            yield* auditExportLines(deps.auditRepo, deps.keys, { from, to, tenantId });
          } catch (e) {
            // The trail, not a source: its failure is logged here and recorded as what it is.
            req.log.error({ err: e }, 'audit export failed midway');
            throw isAppError(e) ? e : new AppError('internal', 'the audit export failed midway', { cause: e });
          }
        }
        // Streamed page by page with backpressure (an export of millions of events is never in memory),
        // as media are: the bytes that left and their SHA-256 in audit.export.end, a HEAD the head alone
        // (no export read or signed), a failure an incomplete transfer, never a clean end without the manifest.
        await streamOut(
          deps,
          req,
          reply,
          Readable.from(lines()),
          {
            'Content-Type': 'application/x-ndjson',
            'Content-Disposition': `attachment; filename="audit-${tenantId}-${from.slice(0, 10)}-${to.slice(0, 10)}.jsonl"`,
            'Cache-Control': 'no-store',
            'X-Content-Type-Options': 'nosniff',
            'X-Request-Id': req.id,
            'X-Audit-Event-Id': allowed.id,
          },
          200,
          { allowedEventId: allowed.id, chunked: false, expectSha256: null, origin: 'AUDIT_EXPORT', transcoded: false },
        );
      },
    );
  };
}
