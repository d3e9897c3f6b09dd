import { Ajv2020 } from 'ajv/dist/2020.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from './support/gateway.js';
import { raw } from './support/http.js';

/**
 * /openapi.json describes each operation's real answers (src/http/openapi-responses.ts): success
 * statuses with their media types, 202 hand-offs, Range answers and the problem+json errors —
 * documentation only, the routes themselves carry no response schemas.
 */

type Doc = Record<string, any>;
const METHODS = ['get', 'post', 'put', 'patch', 'delete'] as const;
const MEDIA = ['audio/wav', 'audio/mpeg', 'audio/ogg', 'application/octet-stream'];

describe('OpenAPI document', () => {
  let gw: TestGateway;
  let doc: Doc;
  const op = (method: string, path: string) => {
    const o = doc.paths[path]?.[method];
    expect(o, `${method.toUpperCase()} ${path}`).toBeDefined();
    return o;
  };
  const problem = (o: Doc, status: string) => {
    expect(o.responses[status], `response ${status}`).toBeDefined();
    expect(o.responses[status].content['application/problem+json'].schema).toEqual({ $ref: '#/components/schemas/Problem' });
  };

  beforeAll(async () => {
    gw = await startTestGateway();
    const r = await raw(`${gw.url}/openapi.json`);
    expect(r.status).toBe(200);
    doc = JSON.parse(r.body.toString());
  });
  afterAll(async () => gw?.stop());

  it('has a shared Problem schema with the fields of every problem body', () => {
    const p = doc.components.schemas.Problem;
    expect(p.type).toBe('object');
    expect(p.required).toEqual(expect.arrayContaining(['type', 'title', 'status', 'detail', 'code', 'request_id']));
    for (const f of ['type', 'title', 'status', 'detail', 'code', 'request_id']) expect(p.properties[f]).toBeDefined();
  });

  it('POST /api/v1/recordings/retrieve: media or JSON 200, 202 with the job body, problems', () => {
    const o = op('post', '/api/v1/recordings/retrieve');
    expect(Object.keys(o.responses['200'].content)).toEqual(expect.arrayContaining([...MEDIA, 'application/json']));
    expect(o.responses['200'].headers).toEqual(expect.objectContaining({ 'X-Audit-Event-Id': expect.anything(), 'X-Recording-Origin': expect.anything(), 'X-Audio-Codec': expect.anything() }));
    const accepted = o.responses['202'];
    expect(accepted.content['application/json'].schema.required).toEqual(expect.arrayContaining(['status', 'message', 'job_id', 'poll_endpoint']));
    expect(Object.keys(accepted.headers)).toEqual(expect.arrayContaining(['Location', 'Retry-After', 'X-Audit-Event-Id']));
    for (const s of ['400', '401', '403', '404', '409', '410', '413', '415', '422', '429', '500', '502', '503', '504']) problem(o, s);
    expect(o.security).toBeUndefined(); // the global bearer applies
  });

  it('Range routes document 206 and 416 with their media types', () => {
    const media = op('get', '/api/v1/recordings/{ref}/media');
    for (const s of ['200', '206']) expect(Object.keys(media.responses[s].content)).toEqual(expect.arrayContaining(MEDIA));
    expect(media.responses['206'].headers['Content-Range']).toBeDefined();
    expect(Object.keys(media.responses['200'].headers)).toEqual(expect.arrayContaining(['X-Retention-Status', 'X-Transcoded']));
    problem(media, '416');
    problem(media, '401');

    const job = op('get', '/api/v1/recordings/jobs/{job_id}/content');
    for (const s of ['200', '206']) expect(Object.keys(job.responses[s].content)).toEqual(expect.arrayContaining(MEDIA));
    for (const s of ['404', '409', '410', '416']) problem(job, s);

    const pkg = op('get', '/api/v1/evidence/jobs/{job_id}/content');
    for (const s of ['200', '206']) expect(Object.keys(pkg.responses[s].content)).toEqual(['application/zip']);
    problem(pkg, '416');

    const play = op('get', '/api/v1/media-tickets/play');
    expect(Object.keys(play.responses['206'].content)).toEqual(expect.arrayContaining(MEDIA));
    problem(play, '416');
  });

  it('holds: 201 with Location, a release 200 or 202', () => {
    const create = op('post', '/api/v1/recordings/{ref}/holds');
    expect(create.responses['201'].content['application/json']).toBeDefined();
    expect(create.responses['201'].headers.Location).toBeDefined();
    expect(create.responses['200']).toBeUndefined();
    for (const s of ['403', '404', '409']) problem(create, s);
    const release = op('post', '/api/v1/holds/{id}/release');
    expect(release.responses['200'].content['application/json']).toBeDefined();
    expect(release.responses['202'].content['application/json']).toBeDefined();
    problem(release, '409');
  });

  it('evidence packages: a ZIP streamed (200) or a job (202)', () => {
    const o = op('post', '/api/v1/evidence');
    expect(Object.keys(o.responses['200'].content)).toEqual(['application/zip']);
    expect(o.responses['202'].content['application/json'].schema.required).toEqual(expect.arrayContaining(['job_id', 'poll_endpoint']));
    expect(o.responses['202'].headers.Location).toBeDefined();
  });

  it('other media types and statuses: the audit export, the migration report, a ticket revocation', () => {
    expect(Object.keys(op('get', '/api/v1/audit/export').responses['200'].content)).toEqual(['application/x-ndjson']);
    expect(Object.keys(op('get', '/api/v1/reports/migration').responses['200'].content)).toEqual(expect.arrayContaining(['application/json', 'text/csv']));
    const revoke = op('delete', '/api/v1/media-tickets/{ticket_id}');
    expect(revoke.responses['204']).toBeDefined();
    expect(revoke.responses['204'].content).toBeUndefined();
    expect(revoke.responses['200']).toBeUndefined();
    expect(op('post', '/api/v1/media-tickets').responses['201']).toBeDefined();
  });

  it('routes without bearer authentication have security: [] and no bearer refusals', () => {
    const cfg = op('get', '/api/v1/console/config');
    expect(cfg.security).toEqual([]);
    expect(cfg.responses['401']).toBeUndefined();
    expect(cfg.responses['403']).toBeUndefined();
    expect(cfg.responses['200'].content['application/json']).toBeDefined();
    // The ticket in the query string is the credential: no bearer, but a bad ticket is a 401.
    const play = op('get', '/api/v1/media-tickets/play');
    expect(play.security).toEqual([]);
    problem(play, '401');
    problem(play, '403');
    // Authenticated routes keep the global bearer requirement.
    expect(doc.security).toEqual([{ bearer: [] }]);
    expect(op('get', '/api/v1/whoami').security).toBeUndefined();
  });

  it('every registered API route is documented, with more than a bare 200', () => {
    // The router's tree: each level indented by four characters, a child's segment appended to its parent's path.
    const tree = gw.app.printRoutes({ commonPrefix: false });
    const registered = new Set<string>();
    const stack: string[] = [];
    for (const line of tree.split('\n')) {
      const m = /^((?:│ {3}| {4})*)[├└]── (\S+) \(([A-Z, ]+)\)/.exec(line);
      if (!m) continue;
      const depth = m[1]!.length / 4;
      stack[depth] = (depth ? stack[depth - 1]! : '') + m[2]!;
      stack.length = depth + 1;
      const path = stack[depth]!;
      if (!path.startsWith('/api/')) continue;
      for (const method of m[3]!.split(', ')) if (method !== 'HEAD') registered.add(`${method.toLowerCase()} ${path.replace(/:(\w+)/g, '{$1}')}`);
    }
    expect(registered.size).toBeGreaterThanOrEqual(25);
    const documented = new Set<string>();
    for (const [path, item] of Object.entries<Doc>(doc.paths)) {
      for (const method of METHODS) {
        const o = item[method];
        if (!o) continue;
        documented.add(`${method} ${path}`);
        const statuses = Object.keys(o.responses);
        expect(statuses.some((s) => s !== '200'), `${method} ${path}: ${statuses.join(',')}`).toBe(true);
        expect(o.responses['200']?.description, `${method} ${path}`).not.toBe('Default Response');
        problem(o, '400');
        problem(o, '500');
      }
    }
    expect([...registered].filter((r) => !documented.has(r))).toEqual([]);
  });

  it('is well-formed OpenAPI 3.1: responses, headers and references resolve', () => {
    expect(doc.openapi).toBe('3.1.0');
    const ajv = new Ajv2020({ strict: false, validateFormats: false });
    ajv.addSchema({ $id: 'doc', components: doc.components });
    const resolveRef = (ref: string) => ref.replace(/^#\//, '').split('/').reduce<any>((v, k) => v?.[k], doc);
    for (const [path, item] of Object.entries<Doc>(doc.paths)) {
      for (const method of METHODS) {
        const o = item[method];
        if (!o) continue;
        expect(typeof o.responses).toBe('object');
        for (const [status, r] of Object.entries<Doc>(o.responses)) {
          expect(status, `${method} ${path}`).toMatch(/^[1-5]\d\d$/);
          expect(typeof r.description, `${method} ${path} ${status}`).toBe('string');
          for (const [name, h] of Object.entries<Doc>(r.headers ?? {})) {
            expect(typeof h.schema, `${method} ${path} ${status} ${name}`).toBe('object');
            expect(Object.keys(h).every((k) => ['description', 'schema', 'required'].includes(k))).toBe(true);
          }
          for (const [type, media] of Object.entries<Doc>(r.content ?? {})) {
            expect(type).toMatch(/^[a-z]+\/[a-z0-9.+-]+$/);
            expect(typeof media.schema, `${method} ${path} ${status} ${type}`).toBe('object');
            const refs = JSON.stringify(media.schema).match(/"\$ref":"[^"]+"/g) ?? [];
            for (const ref of refs) expect(resolveRef(ref.slice(8, -1)), ref).toBeDefined();
            // Each schema compiles as JSON Schema 2020-12 (the dialect of OpenAPI 3.1), references included.
            const schema = JSON.parse(JSON.stringify(media.schema).replace(/"#\/components\//g, '"doc#/components/'));
            expect(() => ajv.compile(schema), `${method} ${path} ${status} ${type}`).not.toThrow();
          }
        }
        if (o.security !== undefined) expect(Array.isArray(o.security)).toBe(true);
      }
    }
  });
});
