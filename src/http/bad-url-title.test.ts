import Fastify from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ERRORS } from '../errors.js';
import { problemBody, toAppError } from './problem.js';
import { parseQueryString, useStrictQueryStrings } from './query-string.js';

/**
 * request.bad_url is the code for a path that does not percent-decode (app.ts refuseUnrouted) and
 * for a query string that does not (query-string.ts): its title, sent in every such problem body,
 * must be true of both — it said "The request path …" when the path was fine and the query was not.
 */
describe('request.bad_url title', () => {
  const app = Fastify({ routerOptions: { querystringParser: parseQueryString } });
  beforeAll(async () => {
    useStrictQueryStrings(app);
    app.setErrorHandler(async (err, req, reply) => {
      const e = toAppError(err);
      return reply.code(e.status).send(problemBody(e, req.id));
    });
    app.get('/recordings', async () => ({ ok: true }));
    await app.ready();
  });
  afterAll(() => app.close());

  it('is true of a bad query string on a well-formed path', async () => {
    const res = await app.inject({ method: 'GET', url: '/recordings?purpose=case%FF' });
    expect(res.statusCode).toBe(400);
    const body = res.json();
    expect(body.code).toBe('request.bad_url');
    expect(body.title).toBe(ERRORS['request.bad_url'].title);
    // The path here is fine: a title blaming the path would be false.
    expect(body.title).not.toMatch(/path/i);
    expect(body.title).toMatch(/URL/);
  });

  it('still describes a path that does not decode', () => {
    expect(ERRORS['request.bad_url'].title).toMatch(/request URL.*percent-encoded UTF-8/);
  });
});
