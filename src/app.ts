import swagger from '@fastify/swagger';
import type { ServerOptions } from 'node:http';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest, type FastifyServerOptions } from 'fastify';
import { serializerCompiler, validatorCompiler } from 'fastify-type-provider-zod';
import { outcomeOf } from './audit/recorder.js';
import { identifier } from './catalog/record.js';
import { consolePlugin } from './console/plugin.js';
import type { AppDeps } from './deps.js';
import { AppError, retryLaterHelps } from './errors.js';
import { AllowedMethods } from './http/allowed-methods.js';
import { clientErrorHandler, gatewayServerResponse, watchConnections } from './http/client-error.js';
import { openapiTransform, PROBLEM_SCHEMA } from './http/openapi-responses.js';
import { authHook, authenticate } from './http/auth.js';
import './http/context.js';
import { useStrictJsonBodies } from './http/json-body.js';
import { problemBody, toAppError } from './http/problem.js';
import { parseQueryString, useStrictQueryStrings } from './http/query-string.js';
import { auditRoutes } from './http/routes/audit.js';
import { holdRoutes } from './http/routes/holds.js';
import { jobRoutes } from './http/routes/jobs.js';
import { opsRoutes } from './http/routes/ops.js';
import { recordingRoutes } from './http/routes/recordings.js';
import { retrieveRoutes } from './http/routes/retrieve.js';
import { integrityRoutes } from './sync/integrity/routes.js';
import { migrationReportRoutes } from './sync/routes.js';
import { requestSerializer } from './logger.js';

/** A caller's X-Request-Id is kept when it is a sane token, so their logs and ours line up. */
const REQUEST_ID_RE = /^[A-Za-z0-9._:-]{1,128}$/;

export interface BuildOptions {
  https?: { cert: Buffer; key: Buffer };
}

/** The longest path parameter the router takes: a 256-character ref, each character percent-encoded UTF-8 (up to 12). */
const MAX_PATH_PARAM = 256 * 12;

/** Path matching of fastify's router; the 405 lookup (http/allowed-methods.ts) must match paths the same way. */
const ROUTER_OPTIONS = { maxParamLength: MAX_PATH_PARAM };

/** Answers with JSON of the API (every route under /api, and the OpenAPI document) — a leading `//` too, which is not found but still JSON. */
const API_PATH = /^\/+(?:api(?:[/?]|$)|openapi\.json(?:\?|$))/;

/**
 * The headers of every answer under /api, however it is sent: JSON and problem+json by fastify,
 * media and packages hijacked by streamOut, refusals before any route (refuseUnrouted). Set on the
 * raw response, which Node merges into whichever head is written; a route's own value wins.
 */
function apiResponseHeaders(req: FastifyRequest, reply: FastifyReply): void {
  if (!API_PATH.test(req.url)) return;
  reply.raw.setHeader('X-Content-Type-Options', 'nosniff');
  reply.raw.setHeader('Referrer-Policy', 'no-referrer');
}

/**
 * The recording a route's path names (`:ref`), for the record of an attempt refused before its
 * handler runs (no or a bad credential, a missing scope, a rate limit: PCI DSS 10.2.2's affected
 * resource). Only for the record: the caller wrote it, nothing is looked up or decided by it, and
 * the handler sets it again once it has validated it. Kept only when the route's own validation
 * would take it (catalog/record.ts identifier: at most 256 characters, printable, well-formed):
 * an over-long or odd ref is refused 422 without a ref in the event, as before.
 */
function claimedRef(req: FastifyRequest): { ref: string } | Record<string, never> {
  return refKept((req.params as Record<string, unknown> | undefined)?.ref);
}

/** claimedRef's rule for a ref read from the path some other way (a 405: no route, so no params). */
function refKept(ref: unknown): { ref: string } | Record<string, never> {
  return typeof ref === 'string' && identifier.safeParse(ref).success ? { ref } : {};
}

async function auditRefusal(deps: AppDeps, req: FastifyRequest, e: AppError): Promise<void> {
  try {
    await deps.audit.record(req, { outcome: outcomeOf(e.status), status: e.status, errorCode: e.code });
  } catch (auditErr) {
    req.log.error({ err: auditErr }, 'audit write failed for an error response');
  }
}

function sendProblem(reply: FastifyReply, e: AppError, requestId: string): FastifyReply {
  for (const [k, v] of Object.entries(e.headers)) reply.header(k, v);
  // product.md: Retry-After "where a retry can help" (errors.ts retryLaterHelps: 503, 504, a source's
  // error answer unless it is about one recording; a 429 brings its own). An error that knows its wait (circuit breaker, rate limit) keeps it.
  if (retryLaterHelps(e) && !e.headers['Retry-After']) reply.header('Retry-After', '5');
  reply.code(e.status).header('Content-Type', 'application/problem+json').header('Cache-Control', 'no-store');
  // A Buffer, so fastify adds no charset parameter to the problem media type.
  return reply.send(Buffer.from(JSON.stringify(problemBody(e, requestId))));
}

/**
 * A request the router cannot route (its path does not percent-decode, or a parameter is longer
 * than MAX_PATH_PARAM). No route and no hook has run: the request is anonymous, as before
 * authentication, and is audited as such.
 */
async function refuseUnrouted(deps: AppDeps, err: { code?: string }, req: FastifyRequest, reply: FastifyReply): Promise<void> {
  apiResponseHeaders(req, reply);
  const e = new AppError(err.code === 'FST_ERR_MAX_PARAM_LENGTH' ? 'request.uri_too_long' : 'request.bad_url');
  req.log.info({ code: e.code }, 'request refused');
  req.audit = { action: 'http.request', written: false };
  await auditRefusal(deps, req, e);
  deps.metrics.requests.inc({ route: 'unknown', origin: 'none', outcome: outcomeOf(e.status), status: String(e.status) });
  sendProblem(reply.header('X-Request-Id', req.id), e, req.id);
}

/** Builds the gateway around its dependencies; main.ts and the tests both call this. */
export async function buildApp(deps: AppDeps, opts: BuildOptions = {}): Promise<FastifyInstance> {
  const serverOpts: FastifyServerOptions & { https?: object; http?: ServerOptions } = {
    loggerInstance: deps.logger,
    // Every request's logger logs its URL without the query string's values (logger.ts
    // requestSerializer), whatever logger the gateway was given and whichever route matched or not.
    childLoggerFactory: (logger, bindings, childOpts) => logger.child(bindings, { ...childOpts, serializers: { ...childOpts.serializers, req: requestSerializer } }),
    bodyLimit: deps.config.server.body_limit_bytes,
    trustProxy: deps.config.server.trust_proxy,
    requestIdHeader: false,
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && REQUEST_ID_RE.test(given) ? given : crypto.randomUUID();
    },
    // Recordings can be long; the stream, not a timer, decides when a response ends.
    requestTimeout: 0,
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    // A ref is up to 256 characters, each up to 12 when percent-encoded (4 UTF-8 bytes): every
    // ref the body of a retrieve accepts also fits a path (find-my-way's default is 100).
    // Query strings decoded strictly (http/query-string.ts): what does not decode is refused below, never kept as raw text.
    routerOptions: { ...ROUTER_OPTIONS, querystringParser: parseQueryString },
    // What the router refuses before any route matches: problem+json and an audit event like every other refusal, not fastify's own JSON.
    frameworkErrors: (err, req, reply) => void refuseUnrouted(deps, err, req, reply),
    // What Node's HTTP parser refuses before the router (not HTTP/1.1, headers too large or too slow):
    // problem+json after the answers already in flight on that connection, then close (http/client-error.ts).
    clientErrorHandler: clientErrorHandler(deps.logger),
    // Node's own refusal of an HTTP/1.1 request without Host, given a problem+json body (http/client-error.ts).
    http: { ServerResponse: gatewayServerResponse(deps.logger) },
  };
  if (opts.https) serverOpts.https = { ...opts.https, minVersion: 'TLSv1.2', ServerResponse: gatewayServerResponse(deps.logger) };
  const app = Fastify(serverOpts) as unknown as FastifyInstance;
  // In-flight answers per connection (for clientErrorHandler's ordering), and CONNECT answered rather than dropped.
  watchConnections(app.server, deps.logger);

  // Before any route, so every route (with its plugin prefix) is seen: a wrong method is 405, not 404.
  const allowedMethods = new AllowedMethods(ROUTER_OPTIONS);
  app.addHook('onRoute', (route) => allowedMethods.add(route));

  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  // JSON only: a text/plain body is refused with 415 rather than parsed and half-understood.
  app.removeContentTypeParser('text/plain');
  useStrictJsonBodies(app);
  // Every route's query string: well-formed UTF-8 (400 request.bad_url), printable (422 request.invalid).
  useStrictQueryStrings(app);
  app.decorateRequest('principal', null);
  app.decorateRequest('audit', null as never);

  app.addHook('onRequest', async (req, reply) => {
    req.audit = { action: req.routeOptions.config.action ?? 'http.request', written: false, ...claimedRef(req) };
    reply.header('X-Request-Id', req.id);
    apiResponseHeaders(req, reply);
  });
  // Authentication runs before the body is parsed: strangers cannot make us parse their payloads.
  app.addHook('onRequest', authHook(deps));

  app.setErrorHandler(async (err, req, reply) => {
    const e = toAppError(err);
    if (e.status >= 500) req.log.error({ err, code: e.code }, 'request failed');
    else req.log.info({ code: e.code }, 'request refused');
    if (!req.routeOptions.config.unaudited && !req.audit.written) await auditRefusal(deps, req, e);
    deps.metrics.requests.inc({ route: req.routeOptions.url ?? 'unknown', origin: req.audit.origin ?? 'none', outcome: outcomeOf(e.status), status: String(e.status) });
    if (reply.sent || reply.raw.headersSent) return;
    return sendProblem(reply, e, req.id);
  });
  app.setNotFoundHandler(async (req) => {
    const allowed = allowedMethods.lookup(req.method, req.url);
    if (!allowed) throw new AppError('request.not_found');
    // The not-found route has no `:ref`: the ref the path names, as the routes there read it, for the record.
    Object.assign(req.audit, refKept(allowed.ref));
    // Which methods a path takes is told to a caller the path's routes would accept: 401 first.
    // (The paths themselves are public, in /openapi.json.)
    if (allowed.auth) await authenticate(deps, req);
    const allow = allowed.methods.join(', ');
    throw new AppError('request.method_not_allowed', `${req.method} is not supported here; the endpoint takes ${allow}`, { headers: { Allow: allow } });
  });

  // Safety net: a response that no handler audited still leaves evidence.
  app.addHook('onResponse', async (req, reply) => {
    // Events carried for other tenants' trails whose ride in the request's own commit was missed
    // (its event was written some other way): late, but kept.
    if (req.audit.alsoFor?.length && (req.audit.written || req.routeOptions.config.unaudited)) await deps.audit.flushAlsoFor(req);
    if (req.routeOptions.config.unaudited || req.audit.written) return;
    try {
      await deps.audit.record(req, { outcome: outcomeOf(reply.statusCode), status: reply.statusCode });
    } catch (e) {
      req.log.error({ err: e }, 'late audit write failed');
    }
    if (reply.statusCode < 400) deps.metrics.requests.inc({ route: req.routeOptions.url ?? '', origin: req.audit.origin ?? 'none', outcome: 'completed', status: String(reply.statusCode) });
  });

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'custodian', version: '1', description: 'Recording retrieval gateway. Errors are application/problem+json; see docs/ERRORS.md.' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } }, schemas: { Problem: PROBLEM_SCHEMA } },
      security: [{ bearer: [] }],
    },
    // Each operation's answers (statuses, media types, problems) and security: http/openapi-responses.ts.
    transform: openapiTransform,
  });
  app.get('/openapi.json', { config: { unaudited: true }, schema: { hide: true } }, async (_req, reply) => {
    // Describes this build: not kept by a cache past a deployment.
    if (!reply.hasHeader('Cache-Control')) reply.header('Cache-Control', 'no-store');
    return app.swagger();
  });

  await app.register(opsRoutes(deps));
  await app.register(retrieveRoutes(deps));
  await app.register(recordingRoutes(deps));
  await app.register(auditRoutes(deps));
  await app.register(holdRoutes(deps));
  await app.register(jobRoutes(deps));
  // Migration report (src/sync/): GET /api/v1/reports/migration.
  await app.register(migrationReportRoutes(deps));
  await app.register(integrityRoutes(deps));
  // The auditor console (static files under /console/) and the endpoints it adds: src/console/.
  await app.register(consolePlugin(deps));
  return app;
}
