import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { usableCatalogs } from './support/catalogs.js';
import { KEYS, retrieveBody, startTestGateway, type TestGateway } from './support/gateway.js';
import { exchange, type RawAnswer } from './support/raw-socket.js';

/**
 * Requests Node's HTTP parser refuses before fastify sees them (src/http/client-error.ts): answered in
 * problem+json with a stable code and an X-Request-Id, the connection closed, nothing audited — and a
 * request parsed before the bad bytes on the same connection gets its real answer first.
 */
describe.each(await usableCatalogs())('requests the HTTP parser refuses, on %s', (kind) => {
  let gw: TestGateway;
  let port: number;
  const MARK = 'zz-raw-bytes-marker';

  beforeAll(async () => {
    gw = await startTestGateway({ catalog: kind });
    port = Number(new URL(gw.url).port);
    await gw.seed([{ call_id: '2023-10-27T14:30:00Z-8923', legacy_archive_id: 'avaya_8923', locator: 'call_mono_pcm16_8k.wav' }]);
  }, 120_000);
  afterAll(async () => gw?.stop());

  const db = () => gw.catalogDb.db;
  const auditCount = async () => Number((await db().selectFrom('audit_events').select(db().fn.countAll().as('n')).executeTakeFirstOrThrow()).n);

  function expectProblem(a: RawAnswer | undefined, status: number, code: string): void {
    expect(a, 'an answer').toBeDefined();
    expect(a!.status).toBe(status);
    expect(a!.headers['content-type']).toBe('application/problem+json');
    expect(a!.headers.connection).toBe('close');
    const body = JSON.parse(a!.body.toString());
    expect(body).toMatchObject({ status, code, type: `https://custodian.dev/errors/${code}` });
    expect(a!.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    expect(body.request_id).toBe(a!.headers['x-request-id']);
  }

  const H = 'Host: 127.0.0.1\r\n';
  const cases: [string, Buffer | string, number, string][] = [
    ['a 70 000-character path', `GET /api/v1/recordings/${'a'.repeat(70_000)} HTTP/1.1\r\n${H}\r\n`, 431, 'request.header_too_large'],
    ['a 70 000-character query value', `GET /api/v1/recordings?call_id=${'a'.repeat(70_000)} HTTP/1.1\r\n${H}\r\n`, 431, 'request.header_too_large'],
    ['a 40 KB header', `GET /healthz HTTP/1.1\r\n${H}X-Big: ${'b'.repeat(40_000)}\r\n\r\n`, 431, 'request.header_too_large'],
    ['a raw 0xFF byte in the URL', Buffer.concat([Buffer.from('GET /api/v1/recordings/a'), Buffer.from([0xff]), Buffer.from(` HTTP/1.1\r\n${H}\r\n`)]), 400, 'request.malformed'],
    ['a control character in a header value', `GET /healthz HTTP/1.1\r\n${H}X-A: a\u0001${MARK}\r\n\r\n`, 400, 'request.malformed'],
    ['Content-Length: abc', `POST /api/v1/recordings/retrieve HTTP/1.1\r\n${H}Content-Length: abc\r\n\r\n`, 400, 'request.malformed'],
    ['Content-Length: -1', `POST /api/v1/recordings/retrieve HTTP/1.1\r\n${H}Content-Length: -1\r\n\r\n`, 400, 'request.malformed'],
    ['two Content-Length values', `POST /api/v1/recordings/retrieve HTTP/1.1\r\n${H}Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}`, 400, 'request.malformed'],
    ['Content-Length with Transfer-Encoding', `POST /api/v1/recordings/retrieve HTTP/1.1\r\n${H}Content-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n`, 400, 'request.malformed'],
    ['an unknown method', `FOO /healthz HTTP/1.1\r\n${H}\r\n`, 400, 'request.malformed'],
    ['a lowercase method', `get /healthz HTTP/1.1\r\n${H}\r\n`, 400, 'request.malformed'],
    ['bare LF line endings', `GET /healthz HTTP/1.1\n${H.trim()}\n\n`, 400, 'request.malformed'],
    ['an obs-fold header line', `GET /healthz HTTP/1.1\r\n${H}X-A: a\r\n folded\r\n\r\n`, 400, 'request.malformed'],
    ['a garbage request line', `${MARK} \u0002\r\n\r\n`, 400, 'request.malformed'],
  ];

  it.each(cases)('%s: problem+json with a code, the connection closed, no audit event', async (_name, bytes, status, code) => {
    const before = await auditCount();
    const x = await exchange(port, bytes);
    expect(x.closedByServer).toBe(true);
    expect(x.answers).toHaveLength(1);
    expectProblem(x.answers[0], status, code);
    expect(x.rest.length).toBe(0);
    expect(await auditCount()).toBe(before);
  });

  it('a request whose head parsed but whose chunked body does not: the refusal is not audited (the parsed head may be, as the 401 it earned)', async () => {
    const x = await exchange(port, `POST /api/v1/recordings/retrieve HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\nzz\r\n{}\r\n0\r\n\r\n`);
    expect(x.closedByServer).toBe(true);
    expect(x.answers).toHaveLength(1);
    expectProblem(x.answers[0], 400, 'request.malformed');
    // The route's pre-body hooks ran on the parsed head (401: no credential); let that event land.
    await new Promise((r) => setTimeout(r, 300));
    const events = await db().selectFrom('audit_events').select(['status', 'error_code']).where('error_code', 'like', 'request.%').execute();
    expect(events.filter((e) => ['request.malformed', 'request.header_too_large', 'request.timeout'].includes(e.error_code ?? ''))).toEqual([]);
  });

  it('logs one line with the code and never the bytes', async () => {
    const x = await exchange(port, `${MARK} \u0002\r\n\r\n`);
    const id = x.answers[0]!.headers['x-request-id']!;
    const lines = gw.logs.filter((l) => l.includes(id));
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0]!)).toMatchObject({ level: 30, code: 'request.malformed', msg: 'request refused before routing' });
    expect(gw.logs.some((l) => l.includes(MARK))).toBe(false);
  });

  it('a hold created by a request followed by garbage on its connection: its client gets the 201, then the 400, and the trail agrees', async () => {
    const matter = `pipelined-${kind}-${Math.random()}`;
    const json = JSON.stringify({ matter, reason: 'r' });
    const head = `POST /api/v1/recordings/avaya_8923/holds HTTP/1.1\r\n${H}Authorization: Bearer ${KEYS.acmeAdmin}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(json)}\r\n\r\n`;
    const x = await exchange(port, head + json + 'garbage\r\n\r\n');
    expect(x.closedByServer).toBe(true);
    expect(x.answers.map((a) => a.status)).toEqual([201, 400]);
    expect(x.answers[0]!.headers['content-type']).toMatch(/^application\/json/);
    expectProblem(x.answers[1], 400, 'request.malformed');
    const holds = await db().selectFrom('legal_holds').selectAll().where('matter', '=', matter).execute();
    expect(holds).toHaveLength(1);
    const events = await db().selectFrom('audit_events').selectAll().where('http_request_id', '=', x.answers[0]!.headers['x-request-id']!).execute();
    expect(events.map((e) => [e.action, e.outcome, Number(e.status)])).toEqual([['hold.create', 'completed', 201]]);
  });

  it('a retrieve followed by garbage: its answer first, then the refusal', async () => {
    const json = JSON.stringify(retrieveBody({ format_preference: 'json' }));
    const head = `POST /api/v1/recordings/retrieve HTTP/1.1\r\n${H}Authorization: Bearer ${KEYS.acme}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(json)}\r\n\r\n`;
    const x = await exchange(port, head + json + 'garbage\r\n\r\n');
    expect(x.answers.map((a) => a.status)).toEqual([200, 400]);
    expectProblem(x.answers[1], 400, 'request.malformed');
    const events = await db().selectFrom('audit_events').selectAll().where('http_request_id', '=', x.answers[0]!.headers['x-request-id']!).execute();
    expect(events.map((e) => [e.outcome, Number(e.status)])).toEqual([['completed', 200]]);
  });

  it('two requests, then garbage: both answered in order before the refusal', async () => {
    const get = `GET /healthz HTTP/1.1\r\n${H}\r\n`;
    const x = await exchange(port, get + get + 'garbage\r\n\r\n');
    expect(x.answers.map((a) => a.status)).toEqual([200, 200, 400]);
    expectProblem(x.answers[2], 400, 'request.malformed');
  });

  it('an HTTP/1.1 request without Host: problem+json 400 (Node still refuses it), not audited', async () => {
    const before = await auditCount();
    const x = await exchange(port, `GET /api/v1/recordings/avaya_8923 HTTP/1.1\r\nAuthorization: Bearer ${KEYS.acme}\r\n\r\n`);
    expect(x.closedByServer).toBe(true);
    expect(x.answers).toHaveLength(1);
    expectProblem(x.answers[0], 400, 'request.malformed');
    expect(JSON.parse(x.answers[0]!.body.toString()).detail).toMatch(/Host/);
    expect(await auditCount()).toBe(before);
    // HTTP/1.0 needs no Host, and a HEAD without Host gets the head only.
    const old = await exchange(port, 'GET /healthz HTTP/1.0\r\n\r\n');
    expect(old.answers[0]?.status).toBe(200);
    const head = await exchange(port, 'HEAD /healthz HTTP/1.1\r\n\r\n', { head: true });
    expect(head.answers[0]?.status).toBe(400);
    expect(head.answers[0]?.headers['content-type']).toBe('application/problem+json');
  });

  it('CONNECT: problem+json 400, then the connection is closed', async () => {
    for (const target of ['example.com:443', '/api/v1/recordings/avaya_8923']) {
      const x = await exchange(port, `CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`);
      expect(x.closedByServer).toBe(true);
      expect(x.answers).toHaveLength(1);
      expectProblem(x.answers[0], 400, 'request.malformed');
      expect(JSON.parse(x.answers[0]!.body.toString()).detail).toMatch(/CONNECT/);
    }
  });

  it('CONNECT after a request on the same connection: the request is answered first', async () => {
    const x = await exchange(port, `GET /healthz HTTP/1.1\r\n${H}\r\nCONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n`);
    expect(x.answers.map((a) => a.status)).toEqual([200, 400]);
    expectProblem(x.answers[1], 400, 'request.malformed');
  });

  it('the gateway still serves ordinary requests, keep-alive included', async () => {
    const get = `GET /healthz HTTP/1.1\r\n${H}\r\n`;
    const x = await exchange(port, get + `GET /healthz HTTP/1.1\r\n${H}Connection: close\r\n\r\n`);
    expect(x.answers.map((a) => a.status)).toEqual([200, 200]);
  });
});

describe('requests the HTTP parser refuses, over TLS', () => {
  it('answers them in problem+json too (the HTTPS server gets the same handler and response class)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'custodian-tls-'));
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '1', '-subj', '/CN=127.0.0.1'], { stdio: 'ignore' });
    const gw = await startTestGateway({ config: (doc) => (doc.server.tls = { cert_file: join(dir, 'cert.pem'), key_file: join(dir, 'key.pem') }) });
    try {
      const port = Number(new URL(gw.url).port);
      const cases: [string, number][] = [
        ['GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nFOO / HTTP/1.1\r\n\r\n', 200],
        ['GET /healthz HTTP/1.1\r\n\r\n', 0],
      ];
      for (const [bytes, first] of cases) {
        const x = await exchange(port, bytes, { tls: true });
        expect(x.closedByServer).toBe(true);
        const last = x.answers.at(-1)!;
        expect(x.answers.map((a) => a.status)).toEqual(first ? [first, 400] : [400]);
        expect(last.headers['content-type']).toBe('application/problem+json');
        expect(JSON.parse(last.body.toString()).code).toBe('request.malformed');
      }
    } finally {
      await gw.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
