import { createHash } from 'node:crypto';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { checkCaller } from '../../access/principal.js';
import { freeText, identifier } from '../../catalog/record.js';
import type { AppDeps } from '../../deps.js';
import { AppError } from '../../errors.js';
import { FORMAT_PREFERENCES } from '../../media/format.js';
import { serveRecording } from '../serve-recording.js';

export const retrieveBody = z
  .object({
    request_id: identifier.describe('Idempotency key per tenant; repeating it with the same body repeats the outcome'),
    caller_id: identifier.describe('The person or tool on whose behalf the request is made; must be the principal unless it holds admin'),
    target_recording_ref: identifier.describe('Any identifier the catalog knows for the recording'),
    format_preference: z.enum(FORMAT_PREFERENCES).default('wav'),
    include_metadata: z.boolean().default(false),
    audit_log_id: identifier.optional().describe("The caller's own audit reference, recorded with the event"),
    purpose: freeText(500).optional().describe('Purpose of access, recorded with the event'),
  })
  .strict();

/** POST /api/v1/recordings/retrieve — the single entry point of product.md. */
export function retrieveRoutes(deps: AppDeps): FastifyPluginAsyncZod {
  return async (app) => {
    app.post(
      '/api/v1/recordings/retrieve',
      {
        config: { auth: true, scope: 'recordings:read', action: 'recording.retrieve' },
        schema: {
          summary: 'Retrieve a recording by any identifier',
          body: retrieveBody,
        },
      },
      async (req, reply) => {
        const b = req.body;
        Object.assign(req.audit, { callerId: b.caller_id, requestId: b.request_id, auditLogId: b.audit_log_id ?? null, ref: b.target_recording_ref });
        if (b.purpose) req.audit.detail = { ...req.audit.detail, purpose: b.purpose };
        checkCaller(req.principal!, b.caller_id);
        await claimRequestId(deps, req.principal!.tenantId, b.request_id, b);
        await serveRecording(deps, req, reply, {
          ref: b.target_recording_ref,
          format: b.format_preference,
          includeMetadata: b.include_metadata,
          range: null,
          chunked: true,
          allowJobs: true,
        });
      },
    );
  };
}

/**
 * request_id is an idempotency key per tenant: the same key with the same body repeats the
 * request (and is audited again); with a different body it is a conflict, not a silent reuse.
 */
function requestHash(body: z.infer<typeof retrieveBody>): string {
  const fields: unknown[] = [body.caller_id, body.target_recording_ref, body.format_preference, body.include_metadata, body.audit_log_id ?? null];
  // The purpose of access is part of the request (it is audited with it). It joined the hash later, as a
  // sixth element only when given: a body without one hashes as before, so keys stored by earlier
  // versions still match their repeats (a stored key whose request had a purpose conflicts once).
  if (body.purpose !== undefined) fields.push(body.purpose);
  return createHash('sha256').update(JSON.stringify(fields)).digest('hex');
}

async function claimRequestId(deps: AppDeps, tenantId: string, requestId: string, body: z.infer<typeof retrieveBody>): Promise<void> {
  if ((await deps.requests.claim(tenantId, requestId, requestHash(body))) === 'conflict') {
    throw new AppError('request.idempotency_conflict', `request_id "${requestId}" was used before with a different request`);
  }
}
