import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { recordingMetadata } from '../../catalog/metadata.js';
import { catalogRecord, freeText, identifier } from '../../catalog/record.js';
import type { SearchCursor } from '../../catalog/recording-repository.js';
import type { AppDeps } from '../../deps.js';
import { AppError } from '../../errors.js';
import { FORMAT_PREFERENCES } from '../../media/format.js';
import { retentionStatus } from '../../resolve/retention.js';
import { queryInt, timeWindow } from '../query-string.js';
import { parseRange } from '../range.js';
import { auditOrRefuse } from '../evidence.js';
import { serveRecording } from '../serve-recording.js';

const refParams = z.object({ ref: identifier }).strict();
const isoTime = z.iso.datetime({ offset: true });

/**
 * A search's next_cursor: base64url of the last id (no time window, id order), or of the JSON
 * pair [started_at, id] (a time window: (started_at, id) order, as holds.ts pages).
 */
const cursorOf = (c: SearchCursor) => Buffer.from(typeof c === 'string' ? c : JSON.stringify([c.startedAt, c.id])).toString('base64url');

const ID = /^[0-9a-f-]{36}$/;
/** A start time exactly as the catalog stores it (toISOString), so the cursor compares like the column. */
const isStoredTime = (v: unknown): v is string => typeof v === 'string' && !Number.isNaN(Date.parse(v)) && new Date(v).toISOString() === v;

/**
 * Reads a cursor back as what this server issues for this kind of query, or refuses it: an id
 * cursor given with a window (or a window's cursor without one) would page in the wrong order.
 * A window's cursor also names a start time inside the window, as every row of its pages has.
 */
function parseCursor(s: string, timeWindow: { from?: string; to?: string } | null): SearchCursor {
  const text = Buffer.from(s, 'base64url').toString('utf8');
  if (!timeWindow) {
    if (ID.test(text)) return text;
  } else {
    try {
      const v = JSON.parse(text) as unknown;
      if (Array.isArray(v) && v.length === 2 && isStoredTime(v[0]) && typeof v[1] === 'string' && ID.test(v[1])) {
        const [startedAt, id] = v as [string, string];
        if ((!timeWindow.from || startedAt >= timeWindow.from) && (!timeWindow.to || startedAt < timeWindow.to)) return { startedAt, id };
      }
    } catch {
      // falls through: not JSON, so not a window's cursor
    }
  }
  throw new AppError('request.invalid', 'cursor is not one this server issued');
}

/** Player-friendly media, normalised metadata and catalog search (product.md). */
export function recordingRoutes(deps: AppDeps): FastifyPluginAsyncZod {
  return async (app) => {
    app.get(
      '/api/v1/recordings/:ref/media',
      {
        config: { auth: true, scope: 'recordings:read', action: 'recording.media' },
        schema: {
          summary: 'Stream a recording for a player (supports Range)',
          params: refParams,
          querystring: z
            .object({
              format: z.enum(FORMAT_PREFERENCES).exclude(['json']).default('wav'),
              purpose: freeText(500).optional(),
            })
            .strict(),
        },
      },
      async (req, reply) => {
        req.audit.ref = req.params.ref;
        req.audit.callerId = req.principal!.id;
        if (req.query.purpose) req.audit.detail = { purpose: req.query.purpose };
        const rangeHeader = req.headers.range;
        const range = parseRange(Array.isArray(rangeHeader) ? rangeHeader[0] : rangeHeader);
        if (range) req.audit.detail = { ...req.audit.detail, range: req.headers.range };
        await serveRecording(deps, req, reply, { ref: req.params.ref, format: req.query.format, includeMetadata: false, range, ifRange: req.headers['if-range'], chunked: false, allowJobs: false });
      },
    );

    app.get(
      '/api/v1/recordings/:ref',
      {
        config: { auth: true, scope: 'recordings:read', action: 'recording.metadata' },
        schema: { summary: 'Normalised metadata of a recording', params: refParams },
      },
      async (req, reply) => {
        req.audit.ref = req.params.ref;
        req.audit.callerId = req.principal!.id;
        await serveRecording(deps, req, reply, { ref: req.params.ref, format: 'json', includeMetadata: false, range: null, chunked: false, allowJobs: false });
      },
    );

    app.get(
      '/api/v1/recordings',
      {
        config: { auth: true, scope: 'recordings:read', action: 'catalog.search' },
        schema: {
          summary: 'Search the catalog (paginated)',
          querystring: z
            .object({
              call_id: identifier.optional(),
              from: isoTime.optional(),
              to: isoTime.optional(),
              // The catalog's own rule (record.ts): a value no copy can have is refused, not searched for.
              source_system: catalogRecord.shape.source_system.optional(),
              origin: z.enum(['GENESYS_CLOUD', 'LEGACY_ARCHIVE']).optional(),
              state: z.enum(['AVAILABLE', 'ARCHIVED', 'RESTORING', 'RESTORED', 'DELETED', 'UPLOADING', 'ERROR']).optional(),
              limit: queryInt({ min: 1, max: 500 }).default(50),
              // A window's cursor, ["<24-character time>","<36-character id>"], is 67 bytes, 90 in
              // base64url (94 with a six-digit year); an id cursor is 48.
              cursor: z.string().regex(/^[A-Za-z0-9_-]{1,200}$/).optional(),
            })
            .strict(),
        },
      },
      async (req, reply) => {
        const q = req.query;
        req.audit.callerId = req.principal!.id;
        req.audit.detail = { query: q };
        // Bounds in the catalog's form (UTC, milliseconds), as stored started_at values compare.
        const window = q.from || q.to ? timeWindow(q) : null;
        const after = q.cursor ? parseCursor(q.cursor, window) : undefined;
        const page = await deps.recordings.search({
          tenantId: req.principal!.tenantId,
          limit: q.limit,
          ...(q.call_id ? { callId: q.call_id } : {}),
          ...window,
          ...(q.source_system ? { sourceSystem: q.source_system } : {}),
          ...(q.origin ? { origin: q.origin } : {}),
          ...(q.state ? { state: q.state } : {}),
          ...(after ? { after } : {}),
        });
        req.audit.detail = { query: q, results: page.items.length };
        // No evidence of the search, no results (503 audit.unavailable).
        const ev = await auditOrRefuse(deps, req, { outcome: 'completed', status: 200 });
        reply.header('X-Audit-Event-Id', ev.id).header('Cache-Control', 'no-store');
        return {
          items: page.items.map((r) => recordingMetadata(r, retentionStatus(r))),
          next_cursor: page.next ? cursorOf(page.next) : null,
        };
      },
    );
  };
}
