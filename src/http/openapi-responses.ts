import type { FastifySchema, RouteOptions } from 'fastify';
import { jsonSchemaTransform } from 'fastify-type-provider-zod';

/**
 * What /openapi.json says each operation answers. Documentation only: the routes carry no
 * `response` schemas (fastify would then serialize, and strip, their bodies); the swagger
 * `transform` (app.ts) adds these to the copy of each route's schema it documents.
 *
 * One row per operation: its success answers, and the problem+json statuses it can produce
 * beyond those every route shares (see `commonErrors`). Statuses come from src/errors.ts
 * (docs/ERRORS.md); an /api route missing here shows up in test/openapi.test.ts.
 */

type JsonSchema = Record<string, unknown>;
interface Header {
  description: string;
  type?: 'string' | 'integer';
}
interface Answer {
  description: string;
  /** Media type → schema; none for a bodiless answer (204). */
  content?: Record<string, JsonSchema>;
  headers?: Record<string, Header>;
}
interface Operation {
  ok: Record<number, Answer>;
  /** Problem statuses of this operation beyond the common ones. */
  errors: number[];
}

const text = (description: string) => ({ type: 'string' as const, description });
export const PROBLEM_SCHEMA = {
  type: 'object' as const,
  description: 'RFC 9457 problem details (docs/ERRORS.md); some codes add members (e.g. `errors`, `codec`, `job_error`)',
  required: ['type', 'title', 'status', 'detail', 'code', 'request_id'],
  properties: {
    type: { ...text('https://custodian.dev/errors/<code>'), format: 'uri' },
    title: text('The title of the code (stable)'),
    status: { type: 'integer' as const, description: 'The HTTP status' },
    detail: text('What went wrong with this request'),
    code: text('Stable error code, e.g. recording.not_found'),
    request_id: text('The X-Request-Id of the request'),
  },
  additionalProperties: true,
};

// --- building blocks ---

const AUDIO_TYPES = ['audio/wav', 'audio/mpeg', 'audio/ogg', 'application/octet-stream'];
const binary = (type: string): JsonSchema => ({ type: 'string', contentMediaType: type });
const object = (description?: string): JsonSchema => ({ type: 'object', ...(description ? { description } : {}) });

const H = {
  audit: { 'X-Audit-Event-Id': { description: 'The audit event recording this access' } },
  media: {
    'X-Recording-Origin': { description: 'Which copy was served: GENESYS_CLOUD or LEGACY_ARCHIVE' },
    'X-Retention-Status': { description: 'Retention status of the recording: ACTIVE or LEGAL_HOLD (EXPIRED comes with the 410)' },
    'X-Audio-Codec': { description: 'Codec of the stored recording' },
    'X-Transcoded': { description: 'true when the bytes were converted to the requested format' },
  },
  ranges: {
    'Accept-Ranges': { description: 'bytes, or none for an output of unknown length' },
    ETag: { description: 'Names the bytes served; send it back in If-Range' },
  },
  partial: { 'Content-Range': { description: 'bytes <start>-<end>/<size>' } },
  poll: {
    Location: { description: 'The endpoint to poll' },
    'Retry-After': { description: 'Seconds to wait before polling', type: 'integer' },
  },
} satisfies Record<string, Record<string, Header>>;

const json = (description: string, headers: Record<string, Header> = H.audit, schema: JsonSchema = object()): Answer => ({ description, content: { 'application/json': schema }, headers });
const media = (description: string, types: string[], headers: Record<string, Header>): Answer => ({ description, content: Object.fromEntries(types.map((t) => [t, binary(t)])), headers });

/** A retrieval handed to a job: product.md's 202 body. */
const retrievalAccepted: Answer = json('Accepted: the recording is fetched by a job; poll the Location', { ...H.poll, ...H.audit }, {
  type: 'object',
  required: ['status', 'message', 'job_id', 'poll_endpoint'],
  properties: { status: { const: 202 }, message: { type: 'string' }, job_id: { type: 'string' }, poll_endpoint: { type: 'string' } },
});
const recordingMedia = (description: string, types = AUDIO_TYPES): Answer => media(description, types, { ...H.media, ...H.ranges, ...H.audit });
const partialMedia = (types = AUDIO_TYPES): Answer => media('Partial content: the requested byte range', types, { ...H.media, ...H.partial, ...H.ranges, ...H.audit });

/** Errors of every path that opens a recording at its source (resolve, retention, keys, copies, transcoding). */
const OPENS_RECORDING = [404, 409, 410, 415, 422, 502, 503, 504];

// --- the table: "METHOD url" as the route is registered ---

const OPERATIONS: Record<string, Operation> = {
  'POST /api/v1/recordings/retrieve': {
    ok: {
      200: {
        description: 'The recording, streamed (chunked, SHA-256 trailer); format_preference json: its metadata as application/json',
        content: { ...Object.fromEntries(AUDIO_TYPES.map((t) => [t, binary(t)])), 'application/json': object('Normalised metadata (format_preference json)') },
        headers: { ...H.media, ...H.audit, 'X-Recording-Metadata': { description: 'Normalised metadata, with include_metadata' } },
      },
      202: retrievalAccepted,
    },
    errors: OPENS_RECORDING,
  },
  'GET /api/v1/recordings/:ref/media': { ok: { 200: recordingMedia('The recording for a player'), 206: partialMedia() }, errors: [...OPENS_RECORDING, 416] },
  'GET /api/v1/recordings/:ref': {
    ok: { 200: json('Normalised metadata of the recording (from the catalog: no source is read)', { ...H.audit, 'X-Recording-Origin': H.media['X-Recording-Origin'], 'X-Retention-Status': H.media['X-Retention-Status'] }) },
    errors: [404, 409, 410],
  },
  'GET /api/v1/recordings': { ok: { 200: json('A page of recordings and next_cursor') }, errors: [] },
  'GET /api/v1/recordings/status/:job_id': {
    ok: { 200: json('The job; Retry-After while it is queued or running', { ...H.audit, 'Retry-After': H.poll['Retry-After'] }) },
    errors: [404],
  },
  'GET /api/v1/recordings/jobs/:job_id/content': {
    ok: { 200: recordingMedia('The staged media of a ready job'), 206: partialMedia() },
    errors: [404, 409, 410, 416, 422, 502, 503],
  },
  'POST /api/v1/recordings/:ref/holds': {
    ok: { 201: json('The hold placed', { ...H.audit, Location: { description: 'The hold' } }) },
    errors: [404, 409],
  },
  'GET /api/v1/holds': { ok: { 200: json('A page of legal holds and next_cursor') }, errors: [] },
  'POST /api/v1/holds/:id/release': {
    ok: { 200: json('Released: a second administrator confirmed'), 202: json('Release requested: a different administrator must confirm') },
    errors: [404, 409],
  },
  'GET /api/v1/audit/events': { ok: { 200: json('A page of audit events and next_after') }, errors: [] },
  'GET /api/v1/audit/verify': { ok: { 200: json("The hash chain check of the tenant's trail") }, errors: [] },
  'GET /api/v1/audit/signing-key': { ok: { 200: json('The Ed25519 public key that signs checkpoints and exports') }, errors: [] },
  'GET /api/v1/audit/export': { ok: { 200: media('The events as JSON lines, ending with a signed manifest', ['application/x-ndjson'], H.audit) }, errors: [] },
  'GET /api/v1/reports/migration': {
    ok: { 200: { description: 'The migration report (format=csv: as CSV)', content: { 'application/json': object(), 'text/csv': { type: 'string' } }, headers: H.audit } },
    errors: [],
  },
  'POST /api/v1/recordings/:ref/integrity': { ok: { 200: json('The verdict of the comparison, stored') }, errors: [404, 409] },
  'GET /api/v1/whoami': { ok: { 200: json('The authenticated principal') }, errors: [] },
  'GET /api/v1/console/config': { ok: { 200: json('Public console settings', {}) }, errors: [] },
  'POST /api/v1/media-tickets': { ok: { 201: json('The ticket: media_url plays the recording') }, errors: [404, 409, 410] },
  'GET /api/v1/media-tickets/play': {
    ok: { 200: recordingMedia('The recording for the <audio> element'), 206: partialMedia() },
    // The ticket in the query string is the credential: 401 when it is not good, 403 from another site, 429 its principal's rate limit.
    errors: [401, 403, 429, ...OPENS_RECORDING, 416],
  },
  'DELETE /api/v1/media-tickets/:ticket_id': { ok: { 204: { description: 'Revoked (also when there was nothing to revoke)', headers: H.audit } }, errors: [] },
  'GET /api/v1/recordings/:ref/waveform': {
    ok: { 200: json('Min/max envelope per channel', { ...H.audit, 'X-Audio-Codec': H.media['X-Audio-Codec'], 'X-Recording-Origin': H.media['X-Recording-Origin'] }) },
    errors: OPENS_RECORDING,
  },
  'GET /api/v1/evidence/public-key': { ok: { 200: json('The key that signs evidence packages') }, errors: [] },
  'POST /api/v1/evidence': {
    ok: {
      200: media('The signed evidence package, streamed (SHA-256 trailer)', ['application/zip'], { ...H.audit, 'X-Evidence-Package-Id': { description: 'The package id' } }),
      202: json('Accepted: the package is built by a job; poll the Location', { ...H.poll, ...H.audit }, {
        type: 'object',
        required: ['status', 'message', 'job_id', 'package_id', 'poll_endpoint'],
        properties: { status: { const: 202 }, message: { type: 'string' }, job_id: { type: 'string' }, package_id: { type: 'string' }, poll_endpoint: { type: 'string' } },
      }),
    },
    errors: [404, 409, 410, 502, 503, 504],
  },
  'GET /api/v1/evidence/jobs/:job_id': { ok: { 200: json('Progress of the package job; Retry-After while it is queued or running', { ...H.audit, 'Retry-After': H.poll['Retry-After'] }) }, errors: [404] },
  'GET /api/v1/evidence/jobs/:job_id/content': {
    ok: { 200: media('The ready evidence package', ['application/zip'], { ...H.ranges, ...H.audit }), 206: media('Partial content: the requested byte range', ['application/zip'], { ...H.partial, ...H.ranges, ...H.audit }) },
    errors: [404, 409, 410, 416, 502, 503],
  },
};

/**
 * Problem statuses every route shares: 400 (malformed JSON, a URL that does not decode, a bad
 * Range), 422 (schema), 500; with a body 413/415; with a bearer 401/429/503 (rate limit store),
 * and 403 with a scope; an audited route 503 (audit.unavailable).
 */
function commonErrors(route: RouteOptions, schema: FastifySchema | undefined): number[] {
  const cfg = (route.config ?? {}) as { auth?: boolean; scope?: string; unaudited?: boolean };
  const s = [400, 422, 500];
  if (schema?.body) s.push(413, 415);
  if (cfg.auth) s.push(401, 429, 503);
  if (cfg.auth && cfg.scope) s.push(403);
  if (!cfg.unaudited) s.push(503);
  return s;
}

const PROBLEM_TITLES: Record<number, string> = {
  400: 'Bad request (malformed JSON, URL or Range)',
  401: 'Not authenticated',
  403: 'Not allowed',
  404: 'Not found',
  409: 'Conflict',
  410: 'Gone (retention ended, or staged media purged)',
  413: 'Request body too large',
  415: 'Unsupported media type (request body, or source codec)',
  416: 'Range not satisfiable',
  422: 'Invalid request',
  429: 'Rate limited (Retry-After)',
  500: 'Internal error',
  502: 'A source answered with an error',
  503: 'Unavailable (source, transcoder, audit trail, keys, a catalog miss still being searched for; Retry-After)',
  504: 'A source did not answer in time',
};

function responsesOf(op: Operation, route: RouteOptions, schema: FastifySchema | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [status, a] of Object.entries(op.ok)) {
    out[status] = {
      description: a.description,
      ...(a.content ? { content: Object.fromEntries(Object.entries(a.content).map(([t, s]) => [t, { schema: s }])) } : { type: 'null' }),
      ...(a.headers && Object.keys(a.headers).length ? { headers: Object.fromEntries(Object.entries(a.headers).map(([k, h]) => [k, { type: h.type ?? 'string', description: h.description }])) } : {}),
    };
  }
  for (const status of [...new Set([...commonErrors(route, schema), ...op.errors])].sort()) {
    out[status] = {
      description: PROBLEM_TITLES[status] ?? 'Error',
      content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } },
      ...(status === 429 || status === 503 ? { headers: { 'Retry-After': { type: 'integer', description: 'Seconds to wait before trying again' } } } : {}),
    };
  }
  return out;
}

/** The swagger `transform`: fastify-type-provider-zod's, plus each operation's documented answers and security. */
export const openapiTransform: typeof jsonSchemaTransform = (input) => {
  const result = jsonSchemaTransform(input);
  const methods = Array.isArray(input.route.method) ? input.route.method : [input.route.method];
  const op = methods.map((m) => OPERATIONS[`${m} ${input.route.url}`]).find(Boolean);
  if (!op) return result;
  const cfg = (input.route.config ?? {}) as { auth?: boolean };
  return {
    ...result,
    schema: { ...result.schema, response: responsesOf(op, input.route, input.schema), ...(cfg.auth ? {} : { security: [] }) },
  };
};
