import { randomUUID } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { decodeJwt } from 'jose';
import { z } from 'zod';
import { type Principal, requireScope } from '../access/principal.js';
import { freeText, identifier } from '../catalog/record.js';
import type { Recording } from '../catalog/model.js';
import type { AuditEvent } from '../audit/event.js';
import type { AppDeps } from '../deps.js';
import { AppError } from '../errors.js';
import { entityTag, ifRangeHolds, parseRange, resolveRange } from '../http/range.js';
import { auditOrRefuse, noteServedMedia } from '../http/evidence.js';
import { queryInt } from '../http/query-string.js';
import { serveRecording } from '../http/serve-recording.js';
import { streamOut } from '../http/stream-out.js';
import { NoCopyOpened } from '../resolve/open-copy.js';
import { openRecording } from '../resolve/open-recording.js';
import type { EvidenceJob, EvidenceJobs } from './evidence/jobs.js';
import { buildEvidencePackage, type EvidenceInput, type EvidenceItem } from './evidence/package.js';
import type { EvidenceSigner } from './evidence/signer.js';
import { openStagedContent } from '../jobs/staged-content.js';
import { EvidenceJobStore } from './evidence/job-store.js';
import { recheckPackaged } from './evidence/recheck.js';
import { clientGone, refuseExpired, resolveInTenant } from './resolve.js';
import { MediaTicketStore } from './tickets.js';
import { wavPeaks } from './waveform.js';

export interface ConsoleApiDeps {
  tickets: MediaTicketStore;
  jobs: EvidenceJobs;
  signer: () => Promise<EvidenceSigner>;
}

const purpose = freeText(500).describe('Purpose of access, recorded with the audit event');
const playFormat = z.enum(['wav', 'original', 'mp3', 'opus']);
const evidenceJobParams = z.object({ job_id: z.string().regex(/^evjob_[0-9a-f-]{36}$/, 'not an evidence job id') }).strict();

/** Above these, `mode: auto` builds the package as a background job instead of streaming it. */
export const STREAM_MAX_RECORDINGS = 3;
export const STREAM_MAX_KNOWN_BYTES = 32 * 1024 * 1024;

/** The `exp` (ms since the epoch) of the request's bearer token, which the auth hook has just verified. */
function bearerExpiry(req: FastifyRequest): number {
  const token = /^Bearer[ ]+(\S+)$/i.exec(req.headers.authorization ?? '')?.[1];
  const exp = token ? decodeJwt(token).exp : undefined;
  // The verifier requires exp: a token without one never got here.
  if (typeof exp !== 'number') throw new AppError('auth.invalid_token', 'the bearer token has no expiry');
  return exp * 1000;
}

/**
 * Whether the credential a ticket was issued to would still be let in by the auth hook: an API key
 * still configured or stored and not revoked, still naming the same principal and tenant with a
 * scope that reads recordings. A bearer token's ticket ends at the token's exp (capped at issue);
 * it still needs a configured token verifier.
 */
async function issuerStillValid(deps: AppDeps, p: Principal): Promise<boolean> {
  if (p.kind === 'jwt') return Boolean(deps.jwt);
  if (!p.credentialId) return false;
  const now = await deps.apiKeys.currentPrincipal(p.credentialId);
  return now !== null && now.id === p.id && now.tenantId === p.tenantId && (now.scopes.has('recordings:read') || now.scopes.has('admin'));
}

/** Sec-Fetch-Site values a ticket's request may carry: the console itself (same-origin), or a user's own navigation (none). */
const OWN_FETCH_SITES = new Set(['same-origin', 'none']);

/**
 * A media ticket is a bearer secret in a URL: a page of another origin (or site) that learnt one
 * must not play it in its own <audio>. Browsers say where a request comes from (Sec-Fetch-Site);
 * one that says another origin is refused before the ticket is used (no use counted), and the
 * refusal goes into the ticket's tenant's trail as its principal's denied play. A request without
 * the header (curl, older clients) is not a browser's cross-origin load and plays.
 */
async function refuseOtherSites(tickets: MediaTicketStore, req: FastifyRequest<{ Querystring: { t: string } }>): Promise<void> {
  const site = req.headers['sec-fetch-site'];
  if (site === undefined || OWN_FETCH_SITES.has(site)) return;
  const seen = site === 'cross-site' || site === 'same-site' ? site : 'other';
  const whose = await tickets.whose(req.query.t);
  if (whose) {
    req.principal = whose.principal;
    Object.assign(req.audit, { callerId: whose.principal.id, ref: whose.recordingPk, recordingPk: whose.recordingPk });
    req.audit.detail = { purpose: whose.purpose, via: 'media_ticket', ticket_id: whose.id, sec_fetch_site: seen };
  } else {
    req.audit.detail = { via: 'media_ticket', sec_fetch_site: seen };
  }
  throw new AppError('access.cross_site', `a media ticket is not played for a request from ${seen === 'other' ? 'another origin' : `a ${seen} page`}`);
}

/** Copy errors are carried by NoCopyOpened; clients get the last copy's error, as on the streaming path. */
async function openOrThrow(...args: Parameters<typeof openRecording>) {
  try {
    return await openRecording(...args);
  } catch (e) {
    if (e instanceof NoCopyOpened) throw e.last;
    throw e;
  }
}

/**
 * The API endpoints the console needs beyond the recordings/audit API: who am I, media tickets for
 * the <audio> element, a waveform envelope, and evidence packages. Same auth hook, same error
 * handler, same audit trail as every other route.
 */
export function consoleApiRoutes(deps: AppDeps, c: ConsoleApiDeps): FastifyPluginAsyncZod {
  return async (app) => {
    app.get(
      '/api/v1/whoami',
      { config: { auth: true, action: 'auth.whoami' }, schema: { summary: 'The authenticated principal: tenant, scopes, credential kind' } },
      async (req, reply) => {
        const p = req.principal!;
        req.audit.callerId = p.id;
        const ev = await auditOrRefuse(deps, req, { outcome: 'completed', status: 200 });
        reply.header('X-Audit-Event-Id', ev.id).header('Cache-Control', 'no-store');
        return { principal: p.id, tenant: p.tenantId, kind: p.kind, scopes: [...p.scopes].sort(), credential_id: p.credentialId };
      },
    );

    // Public: what the sign-in page needs before anyone is signed in (no secret: a public client).
    app.get(
      '/api/v1/console/config',
      { config: { unaudited: true }, schema: { summary: 'Public console settings: the OIDC provider to sign in with, if any, and the idle logoff' } },
      async (_req, reply) => {
        reply.header('Cache-Control', 'no-store');
        const o = deps.config.console.oidc;
        return {
          oidc: o ? { issuer: o.issuer, client_id: o.client_id, scopes: o.scopes, redirect_path: o.redirect_path } : null,
          idle_logoff_ms: deps.config.console.idle_logoff_ms,
        };
      },
    );

    // --- media tickets (see tickets.ts for the design) ---
    app.post(
      '/api/v1/media-tickets',
      {
        config: { auth: true, scope: 'recordings:read', action: 'media_ticket.issue' },
        schema: {
          summary: 'Issue a short-lived media ticket so a browser <audio> element can play (and seek in) one recording',
          body: z.object({ ref: identifier, format: playFormat.default('wav'), purpose }).strict(),
        },
      },
      async (req, reply) => {
        const p = req.principal!;
        const b = req.body;
        Object.assign(req.audit, { callerId: p.id, ref: b.ref, detail: { purpose: b.purpose, format: b.format } });
        const rec = await resolveInTenant(deps, req, b.ref, clientGone(reply));
        req.audit.recordingPk = rec.id;
        refuseExpired(rec, b.ref);
        // A ticket dies with the bearer token that asked for it, never later.
        const { secret, ticket } = await c.tickets.issue({ principal: p, recordingPk: rec.id, ref: b.ref, format: b.format, purpose: b.purpose }, p.kind === 'jwt' ? { notAfter: bearerExpiry(req) } : {});
        if (ticket.expiresAt <= ticket.issuedAt) throw new AppError('auth.expired_token', 'the bearer token has expired');
        req.audit.detail = { ...req.audit.detail, ticket_id: ticket.id, expires_at: new Date(ticket.expiresAt).toISOString() };
        const ev = await auditOrRefuse(deps, req, { outcome: 'completed', status: 201 });
        reply.code(201).header('X-Audit-Event-Id', ev.id).header('Cache-Control', 'no-store');
        return {
          ticket_id: ticket.id,
          recording_id: rec.id,
          media_url: `/api/v1/media-tickets/play?t=${secret}`,
          first_use_by: new Date(ticket.firstUseBy).toISOString(),
          expires_at: new Date(ticket.expiresAt).toISOString(),
        };
      },
    );

    app.get(
      // The sealed ticket is longer than a path parameter may be (find-my-way's maxParamLength): a query parameter.
      '/api/v1/media-tickets/play',
      {
        // The URL carries the ticket: this route's request log is off (warnings and errors only, which never print URLs).
        logLevel: 'warn',
        config: { action: 'recording.media' },
        schema: { summary: 'Play a recording with a media ticket (Range supported); audited as recording.media', querystring: z.object({ t: z.string().max(4096) }).strict() },
        // Before anything can refuse the request: every answer of this route, media or problem, is
        // for the gateway's own pages only (a browser does not hand it to another origin's page).
        onRequest: async (_req, reply) => {
          reply.raw.setHeader('Cross-Origin-Resource-Policy', 'same-origin');
        },
      },
      async (req, reply) => {
        await refuseOtherSites(c.tickets, req);
        const ticket = await c.tickets.use(req.query.t);
        if (!ticket) throw new AppError('auth.invalid_token', 'the media ticket is unknown, expired, used up or revoked');
        req.principal = ticket.principal;
        req.audit.callerId = ticket.principal.id;
        req.audit.detail = { purpose: ticket.purpose, via: 'media_ticket', ticket_id: ticket.id, ticket_use: ticket.uses };
        // The ticket is only as good as the credential that asked for it, checked as the auth hook
        // would check it now: a revoked key's tickets die with it. The refusal is in the ticket's
        // tenant's trail (the sealed claims say whose it was), with the recording it was for.
        if (!(await issuerStillValid(deps, ticket.principal))) {
          Object.assign(req.audit, { ref: ticket.recordingPk, recordingPk: ticket.recordingPk });
          throw new AppError('auth.invalid_token', 'the credential that issued the media ticket is no longer valid');
        }
        const limit = await deps.rateLimiter.consume(`${ticket.principal.tenantId}:${ticket.principal.id}`);
        if (!limit.ok) throw new AppError('access.rate_limited', `retry after ${limit.retryAfterS} s`, { headers: { 'Retry-After': String(limit.retryAfterS) } });
        const rangeHeader = req.headers.range;
        const range = parseRange(Array.isArray(rangeHeader) ? rangeHeader[0] : rangeHeader);
        if (range) req.audit.detail.range = req.headers.range;
        await serveRecording(deps, req, reply, { ref: ticket.recordingPk, format: ticket.format, includeMetadata: false, range, ifRange: req.headers['if-range'], chunked: false, allowJobs: false });
      },
    );

    app.delete(
      '/api/v1/media-tickets/:ticket_id',
      {
        config: { auth: true, scope: 'recordings:read', action: 'media_ticket.revoke' },
        schema: { summary: 'Revoke a media ticket (idempotent)', params: z.object({ ticket_id: z.string().regex(/^mtk_[0-9a-f-]{36}$/, 'not a ticket id') }).strict() },
      },
      async (req, reply) => {
        req.audit.callerId = req.principal!.id;
        // 204 whoever asks (idempotent; the id alone does not say whose ticket it is, so nor does
        // the answer). The event records what the revocation can take effect on, not that a ticket died.
        const takesEffect = await c.tickets.revoke(req.principal!, req.params.ticket_id);
        req.audit.detail = { ticket_id: req.params.ticket_id, takes_effect: takesEffect };
        const ev = await auditOrRefuse(deps, req, { outcome: 'completed', status: 204 });
        reply.code(204).header('X-Audit-Event-Id', ev.id).header('Cache-Control', 'no-store');
        return reply.send();
      },
    );

    // --- waveform ---
    app.get(
      '/api/v1/recordings/:ref/waveform',
      {
        config: { auth: true, scope: 'recordings:read', action: 'recording.waveform' },
        schema: {
          summary: 'Min/max envelope of the playable audio per channel (for drawing a waveform); no audio leaves',
          params: z.object({ ref: identifier }).strict(),
          querystring: z.object({ points: queryInt({ min: 16, max: 4000 }).default(1000), purpose: purpose.optional() }).strict(),
        },
      },
      async (req, reply) => {
        const p = req.principal!;
        const signal = clientGone(reply);
        Object.assign(req.audit, { callerId: p.id, ref: req.params.ref, detail: { points: req.query.points, ...(req.query.purpose ? { purpose: req.query.purpose } : {}) } });
        const rec = await resolveInTenant(deps, req, req.params.ref, signal);
        req.audit.recordingPk = rec.id;
        refuseExpired(rec, req.params.ref);
        // The key checks and the finder round of every reader: what was refused or found goes into the event.
        const note = (d: Record<string, unknown>) => (req.audit.detail = { ...req.audit.detail, ...d });
        const opened = await openOrThrow(deps, rec, 'wav', signal, note, (msg, o) => req.log.warn(o, msg));
        Object.assign(req.audit, { copyId: opened.copy.id, origin: opened.copy.origin });
        let peaks;
        try {
          peaks = await wavPeaks(opened.prepared.body, req.query.points);
        } finally {
          opened.prepared.body.destroy();
        }
        noteServedMedia(req, { codec: opened.prepared.codec, transcoded: opened.prepared.transcoded, notes: opened.prepared.sniff.notes }, opened.copy.sha256);
        const ev = await auditOrRefuse(deps, req, { outcome: 'completed', status: 200 });
        reply.header('X-Audit-Event-Id', ev.id).header('Cache-Control', 'no-store').header('X-Audio-Codec', opened.prepared.codec).header('X-Recording-Origin', opened.copy.origin);
        return { recording_id: rec.id, codec: opened.prepared.codec, ...peaks };
      },
    );

    // --- evidence packages ---
    app.get(
      '/api/v1/evidence/public-key',
      { config: { auth: true, action: 'evidence.public_key' }, schema: { summary: 'The Ed25519 public key that signs evidence packages, with its fingerprint (public_key_sha256)' } },
      async (req, reply) => {
        req.audit.callerId = req.principal!.id;
        const s = await c.signer();
        const ev = await auditOrRefuse(deps, req, { outcome: 'completed', status: 200 });
        reply.header('X-Audit-Event-Id', ev.id).header('Cache-Control', 'no-store');
        return { algorithm: s.algorithm, key_id: s.keyId, public_key_sha256: s.fingerprint, public_key_pem: s.publicKeyPem };
      },
    );

    app.post(
      '/api/v1/evidence',
      {
        config: { auth: true, scope: 'recordings:export', action: 'evidence.export' },
        schema: {
          summary: 'Build a signed evidence package (ZIP) of recordings: streamed when small, else a job (202)',
          body: z
            .object({
              refs: z.array(identifier).min(1).max(100),
              purpose,
              mode: z.enum(['auto', 'stream', 'job']).default('auto'),
            })
            .strict(),
        },
      },
      async (req, reply) => {
        const p = req.principal!;
        const b = req.body;
        // The package carries the recordings' audit events, so it needs the audit scope as well.
        requireScope(p, 'audit:read');
        const packageId = randomUUID();
        req.audit.callerId = p.id;
        req.audit.detail = { purpose: b.purpose, package_id: packageId, refs: b.refs };
        const signal = clientGone(reply);

        const byId = new Map<string, { rec: Recording; ref: string }>();
        for (const ref of b.refs) {
          const rec = await resolveInTenant(deps, req, ref, signal);
          refuseExpired(rec, ref);
          if (!byId.has(rec.id)) byId.set(rec.id, { rec, ref });
        }
        const chosen = [...byId.values()];
        const knownBytes = chosen.reduce((n, x) => n + Math.max(0, ...x.rec.copies.map((cp) => cp.sizeBytes ?? 0)), 0);
        const mode = b.mode !== 'auto' ? b.mode : chosen.length > STREAM_MAX_RECORDINGS || knownBytes > STREAM_MAX_KNOWN_BYTES ? 'job' : 'stream';
        req.audit.detail = { ...req.audit.detail, mode, recordings: chosen.map((x) => x.rec.id) };

        // A key service that cannot sign fails the request here, before anything is recorded as exported.
        const signer = await c.signer();

        // What the request records as exported commits in one transaction: one "download" event per
        // recording (the trail of each recording shows the export), the request's own `allowed` event
        // and, for a job, the row that names them both. All of it, before any byte, or none of it: a
        // row that cannot be written (or a trail that cannot be) leaves no export in the trail that
        // did not happen.
        const status = mode === 'job' ? 202 : 200;
        const exported: AuditEvent[] = [];
        const { allowed, input, job } = await auditOrRefuse(deps, req, { outcome: 'allowed', status }, async (trx, record) => {
          const items: EvidenceItem[] = [];
          for (const { rec, ref } of chosen) {
            const ev = await deps.audit.repo
              .appendIn(trx, { ...deps.audit.base(req), action: 'recording.export', ref, recordingPk: rec.id, outcome: 'allowed', status, detail: { purpose: b.purpose, package_id: packageId, mode } })
              .catch((e: unknown) => {
                req.audit.written = true;
                throw new AppError('audit.unavailable', undefined, { cause: e });
              });
            exported.push(ev);
            items.push({ recording: rec, ref, exportEventId: ev.id });
          }
          const allowed = await record();
          const input: EvidenceInput = { packageId, createdAt: new Date(), principal: p, purpose: b.purpose, items };
          const job = mode === 'job' ? await c.jobs.startIn(trx, input, { requestEventId: allowed.id, httpRequestId: req.id }) : null;
          return { allowed, input, job };
        });
        // auditOrRefuse tells the checkpointer of the event `record` wrote; these it did not see.
        deps.audit.repo.published(exported);

        if (job) {
          c.jobs.queued();
          const poll = `/api/v1/evidence/jobs/${job.id}`;
          reply.code(202).header('Location', poll).header('Retry-After', '1').header('X-Audit-Event-Id', allowed.id).header('Cache-Control', 'no-store');
          return { status: 202, message: 'Evidence package initiated', job_id: job.id, package_id: packageId, poll_endpoint: poll };
        }

        // The package is built on its own signal: the build stops when the client goes away.
        const built = buildEvidencePackage(deps, signer, input, signal);
        built.done.catch(() => {});
        await streamOut(
          deps,
          req,
          reply,
          built.stream,
          {
            'Content-Type': 'application/zip',
            'Content-Disposition': `attachment; filename="evidence-${packageId}.zip"`,
            'Cache-Control': 'no-store',
            'X-Content-Type-Options': 'nosniff',
            'X-Request-Id': req.id,
            'X-Audit-Event-Id': allowed.id,
            'X-Evidence-Package-Id': packageId,
            Trailer: 'X-Content-SHA256',
          },
          200,
          { allowedEventId: allowed.id, chunked: true, expectSha256: null, origin: 'EVIDENCE', transcoded: false },
        );
      },
    );

    const visibleJob = async (req: FastifyRequest, id: string): Promise<EvidenceJob> => {
      const p = req.principal!;
      const job = await c.jobs.get(p.tenantId, id);
      if (!job || (job.principalId !== p.id && !p.scopes.has('admin'))) throw new AppError('job.not_found');
      req.audit.detail = { ...req.audit.detail, job_id: job.id, purpose: job.purpose };
      return job;
    };

    app.get(
      '/api/v1/evidence/jobs/:job_id',
      { config: { auth: true, scope: 'recordings:export', action: 'evidence.job_status' }, schema: { summary: 'Progress of an evidence package job', params: evidenceJobParams } },
      async (req, reply) => {
        req.audit.callerId = req.principal!.id;
        const job = await visibleJob(req, req.params.job_id);
        const ev = await auditOrRefuse(deps, req, { outcome: 'completed', status: 200 });
        reply.header('X-Audit-Event-Id', ev.id).header('Cache-Control', 'no-store');
        if (job.status === 'queued' || job.status === 'running') reply.header('Retry-After', '1');
        return {
          job_id: job.id,
          status: job.status,
          progress: job.progress,
          created_at: job.createdAt,
          ...(job.error ? { error: job.error } : {}),
          ...(job.status === 'ready'
            ? { content_endpoint: `/api/v1/evidence/jobs/${job.id}/content`, size: job.size, sha256: job.sha256, problems: job.problems, expires_at: job.expiresAt }
            : {}),
        };
      },
    );

    app.get(
      '/api/v1/evidence/jobs/:job_id/content',
      { config: { auth: true, scope: 'recordings:export', action: 'evidence.download' }, schema: { summary: 'Download a ready evidence package (Range supported)', params: evidenceJobParams } },
      async (req, reply) => streamJobContent(deps, req, reply, await visibleJob(req, req.params.job_id)),
    );
  };
}

async function streamJobContent(deps: AppDeps, req: FastifyRequest, reply: FastifyReply, job: EvidenceJob): Promise<void> {
  req.audit.callerId = req.principal!.id;
  if (job.status === 'expired') throw new AppError('job.expired');
  if (job.status === 'failed') throw new AppError('job.failed', `the package failed: ${job.error?.code ?? 'unknown'}`, { extra: { job_error: job.error?.code ?? null } });
  if (job.status !== 'ready' || !job.stagingKey || !job.dekKeyId || !job.dekWrapped || job.size === null) {
    throw new AppError('job.not_ready', `the package is ${job.status}`, { headers: { 'Retry-After': '1' } });
  }
  // Retention and keys as they are now, not as they were when the package was built.
  await recheckPackaged(deps, req, job);
  const size = job.size;
  // A package is written once: its id and digest name its bytes.
  const etag = entityTag('evidence', job.id, job.sha256, size);
  const rangeHeader = req.headers.range;
  const asked = parseRange(Array.isArray(rangeHeader) ? rangeHeader[0] : rangeHeader);
  const range = asked && ifRangeHolds(req.headers['if-range'], etag) ? asked : null;
  const r = range ? resolveRange(range, size) : { start: 0, end: size - 1 };
  // Gone for good (purged, or sealed under a rotated master key: docs/OPERATIONS.md) is 410 and the
  // job expires; a first record that fails its check is a 500 problem, before anything is allowed.
  const body = await openStagedContent(deps, { stagingKey: job.stagingKey, dekKeyId: job.dekKeyId, dekWrapped: job.dekWrapped, size }, r, 'package', () => new EvidenceJobStore(deps.catalog).markExpired(job.id), req.method === 'HEAD');
  const allowed = await auditOrRefuse(deps, req, { outcome: 'allowed', status: range ? 206 : 200 }).catch((e: unknown) => {
    body.destroy();
    throw e;
  });
  await streamOut(
    deps,
    req,
    reply,
    body,
    {
      'Content-Type': 'application/zip',
      'Content-Disposition': `attachment; filename="evidence-${job.id.slice('evjob_'.length)}.zip"`,
      'Content-Length': r.end - r.start + 1,
      'Cache-Control': 'no-store',
      'X-Content-Type-Options': 'nosniff',
      'X-Request-Id': req.id,
      'X-Audit-Event-Id': allowed.id,
      'Accept-Ranges': 'bytes',
      ETag: etag,
      ...(range ? { 'Content-Range': `bytes ${r.start}-${r.end}/${size}` } : job.sha256 ? { 'X-Content-SHA256': job.sha256 } : {}),
    },
    range ? 206 : 200,
    { allowedEventId: allowed.id, chunked: false, expectSha256: range ? null : job.sha256, origin: 'EVIDENCE', transcoded: false },
  );
}
