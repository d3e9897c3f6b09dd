import { createHash, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createServer, type IncomingHttpHeaders, type RequestListener, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withSecretContext } from '../../config/secret.js';
import { AppError } from '../../errors.js';
import type { CopyLocation } from '../port.js';
import { s3SourceConfig } from './config.js';
import { S3Connector, type S3ConnectorTuning } from './connector.js';
import { startS3Simulator, type S3Simulator } from './simulator.js';

const BUCKET = 'archive';
const BIG = randomBytes(5 * 1024 * 1024);
const FIXTURE = new URL('../../../../shared/fixtures/audio/call_mono_mulaw_8k.wav', import.meta.url);
const SSE_KEY = randomBytes(32).toString('base64');

let sim: S3Simulator;
const open: S3Connector[] = [];
const servers: Server[] = [];

function parse(fields: Record<string, unknown>) {
  return withSecretContext({ env: {}, allowInline: true }, () => s3SourceConfig.parse({ name: 'legacy-s3', type: 's3', bucket: BUCKET, access_key_id: 'AKIATEST', secret_access_key: 'test-secret', ...fields }));
}

function connector(fields: Record<string, unknown> = {}, tuning?: S3ConnectorTuning): S3Connector {
  const cfg = parse({
    endpoint: sim.endpoint,
    force_path_style: true,
    access_key_id: sim.accessKeyId,
    secret_access_key: sim.secretAccessKey,
    timeout_ms: 5000,
    ...fields,
  });
  const c = new S3Connector('tenant-a', cfg, tuning);
  open.push(c);
  return c;
}

function copy(fields: Partial<CopyLocation> = {}): CopyLocation {
  return { copyId: 'c1', locator: null, sourceSystem: 'avaya_aura', genesysRecordingId: null, conversationId: null, legacyArchiveId: null, sizeBytes: null, ...fields };
}

const signal = () => new AbortController().signal;
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

async function readAll(body: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of body) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

async function appError(p: Promise<unknown>): Promise<AppError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(AppError);
  return e as AppError;
}

/** A plain HTTP server standing in for a misbehaving S3 endpoint; records what it was sent. */
async function fakeEndpoint(handler: RequestListener): Promise<{ endpoint: string; requests: IncomingHttpHeaders[] }> {
  const requests: IncomingHttpHeaders[] = [];
  const server = createServer((req, res) => {
    requests.push(req.headers);
    handler(req, res);
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests };
}

async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as AddressInfo;
  await new Promise((r) => s.close(r));
  return port;
}

beforeAll(async () => {
  sim = await startS3Simulator({ buckets: [BUCKET] });
  const put = (key: string, body: Buffer, contentType?: string) => sim.putObject(BUCKET, key, body, contentType);
  await put('calls/big.bin', BIG, 'application/octet-stream');
  await put('calls/call_mono_mulaw_8k.wav', await readFile(FIXTURE), 'audio/wav');
  await put('calls/empty.bin', Buffer.alloc(0));
  await put('tenant-a/calls/conv-1/LA-1.wav', Buffer.from('templated'));
  await put('tenant-a/explicit/x.wav', Buffer.from('explicit'));
  await put('cold/glacier.wav', Buffer.from('thawed bytes'));
  await put('cold/deep.wav', Buffer.from('deep bytes'));
  // A lifecycle rule moved these to archive storage classes.
  sim.archive(BUCKET, 'cold/glacier.wav', { restoreMs: 300 });
  sim.archive(BUCKET, 'cold/deep.wav', { storageClass: 'DEEP_ARCHIVE', restoreMs: 60_000 });
});

afterAll(async () => {
  await Promise.all(open.map((c) => c.close()));
  for (const s of servers) s.closeAllConnections();
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  await sim?.stop();
});

describe('S3Connector reads', () => {
  it('reads a 5 MiB object whole', async () => {
    const media = await connector().open(copy({ locator: 'calls/big.bin' }), { signal: signal() });
    expect(media.totalSize).toBe(BIG.length);
    expect(media.range).toBeUndefined();
    expect(media.contentType).toBe('application/octet-stream');
    expect(sha(await readAll(media.body))).toBe(sha(BIG));
  });

  it('reads the real WAV fixture byte for byte', async () => {
    const want = await readFile(FIXTURE);
    const media = await connector().open(copy({ locator: 'calls/call_mono_mulaw_8k.wav' }), { signal: signal() });
    expect(media.totalSize).toBe(want.length);
    expect(media.contentType).toBe('audio/wav');
    expect((await readAll(media.body)).equals(want)).toBe(true);
  });

  it('serves start-end, open-ended and over-long ranges', async () => {
    const c = connector();
    const loc = copy({ locator: 'calls/big.bin' });
    const cases = [
      { ask: { start: 1000, end: 1999 }, want: { start: 1000, end: 1999 } },
      { ask: { start: BIG.length - 100 }, want: { start: BIG.length - 100, end: BIG.length - 1 } },
      { ask: { start: BIG.length - 10, end: BIG.length + 1000 }, want: { start: BIG.length - 10, end: BIG.length - 1 } },
    ];
    for (const { ask, want } of cases) {
      const media = await c.open(loc, { range: ask, signal: signal() });
      expect(media.range).toEqual(want);
      expect(media.totalSize).toBe(BIG.length);
      expect((await readAll(media.body)).equals(BIG.subarray(want.start, want.end + 1))).toBe(true);
    }
  });

  it('refuses unsatisfiable ranges with the object size', async () => {
    const c = connector();
    for (const range of [{ start: BIG.length }, { start: 10, end: 5 }]) {
      const e = await appError(c.open(copy({ locator: 'calls/big.bin' }), { range, signal: signal() }));
      expect(e.code).toBe('range.not_satisfiable');
      expect(e.extra).toEqual({ size: BIG.length });
      expect(e.headers).toEqual({ 'Content-Range': `bytes */${BIG.length}` });
    }
  });

  it('refuses any range of an empty object without waiting for bytes that never come', async () => {
    const t0 = Date.now();
    const e = await appError(connector().open(copy({ locator: 'calls/empty.bin' }), { range: { start: 0 }, signal: signal() }));
    expect(e.code).toBe('range.not_satisfiable');
    expect(e.extra).toEqual({ size: 0 });
    expect(Date.now() - t0).toBeLessThan(2000);
  });

  it('maps a missing key, or a copy with nothing to derive a key from, to source.object_missing', async () => {
    const c = connector();
    expect((await appError(c.open(copy({ locator: 'calls/nope.wav' }), { signal: signal() }))).code).toBe('source.object_missing');
    expect((await appError(c.open(copy(), { signal: signal() }))).code).toBe('source.object_missing');
  });

  it('derives the key from prefix + path_template, and prefixes explicit locators too', async () => {
    const c = connector({ prefix: 'tenant-a/', path_template: 'calls/{conversation_id}/{legacy_archive_id}.wav' });
    const templated = copy({ conversationId: 'conv-1', legacyArchiveId: 'LA-1' });
    expect(c.keyOf(templated)).toBe('tenant-a/calls/conv-1/LA-1.wav');
    expect((await readAll((await c.open(templated, { signal: signal() })).body)).toString()).toBe('templated');
    const explicit = copy({ locator: 'explicit/x.wav', legacyArchiveId: 'LA-1' });
    expect((await readAll((await c.open(explicit, { signal: signal() })).body)).toString()).toBe('explicit');
  });
});

describe('S3Connector refusals and failures', () => {
  it('refuses traversal, NUL and absolute keys before sending anything', async () => {
    const fake = await fakeEndpoint((_req, res) => res.writeHead(500).end());
    const c = connector({ endpoint: fake.endpoint });
    for (const locator of ['../secret.wav', 'calls/../../x.wav', 'calls\\..\\x.wav', 'a\0b.wav', '/etc/passwd', '..']) {
      const e = await appError(c.open(copy({ locator }), { signal: signal() }));
      expect(e.code).toBe('source.path_refused');
    }
    const absPrefix = connector({ endpoint: fake.endpoint, prefix: '/root/' });
    expect((await appError(absPrefix.open(copy({ locator: 'x.wav' }), { signal: signal() }))).code).toBe('source.path_refused');
    const viaTemplate = connector({ endpoint: fake.endpoint, path_template: 'calls/{legacy_archive_id}' });
    expect((await appError(viaTemplate.open(copy({ legacyArchiveId: '../../x' }), { signal: signal() }))).code).toBe('source.path_refused');
    expect(fake.requests).toHaveLength(0);
  });

  it('maps a wrong secret to source.auth_failed (was a 503 source.unavailable, an outage to retry) without revealing credentials', async () => {
    const secret = 'wrong-secret-5f1c0e9a';
    const c = connector({ secret_access_key: secret });
    for (const attempt of [() => c.open(copy({ locator: 'calls/big.bin' }), { signal: signal() }), () => c.check(signal())]) {
      const e = await appError(attempt());
      expect(e.code).toBe('source.auth_failed');
      const shown = `${e.message} ${String(e)} ${JSON.stringify(e.extra)} ${JSON.stringify(e.headers)}`;
      expect(shown).not.toContain(secret);
      expect(shown).not.toContain(sim.accessKeyId);
    }
  });

  it('maps an unknown access key id to source.auth_failed', async () => {
    const e = await appError(connector({ access_key_id: 'AKIANOTKNOWN' }).check(signal()));
    expect(e.code).toBe('source.auth_failed');
    expect(e.message).not.toContain('AKIANOTKNOWN');
  });

  it('maps a closed port to source.unavailable quickly', async () => {
    const c = connector({ endpoint: `http://127.0.0.1:${await closedPort()}`, timeout_ms: 20_000 });
    const t0 = Date.now();
    expect((await appError(c.open(copy({ locator: 'calls/big.bin' }), { signal: signal() }))).code).toBe('source.unavailable');
    expect((await appError(c.check(signal()))).code).toBe('source.unavailable');
    expect(Date.now() - t0).toBeLessThan(5000);
  });

  it('maps 5xx answers to source.bad_gateway', async () => {
    const fake = await fakeEndpoint((_req, res) => res.writeHead(501, { 'Content-Type': 'application/xml' }).end('<Error><Code>NotImplemented</Code></Error>'));
    const e = await appError(connector({ endpoint: fake.endpoint }).open(copy({ locator: 'a.wav' }), { signal: signal() }));
    expect(e.code).toBe('source.bad_gateway');
  });

  it('times out when the first byte does not come, but not once headers have arrived', async () => {
    const silent = await fakeEndpoint(() => {});
    const t0 = Date.now();
    const e = await appError(connector({ endpoint: silent.endpoint, timeout_ms: 300 }).open(copy({ locator: 'a.wav' }), { signal: signal() }));
    expect(e.code).toBe('source.timeout');
    expect(Date.now() - t0).toBeLessThan(3000);

    const slowBody = await fakeEndpoint((_req, res) => {
      res.writeHead(200, { 'Content-Length': '10', 'Content-Type': 'audio/wav' });
      res.write('01234');
      setTimeout(() => res.end('56789'), 700);
    });
    const media = await connector({ endpoint: slowBody.endpoint, timeout_ms: 300 }).open(copy({ locator: 'a.wav' }), { signal: signal() });
    expect((await readAll(media.body)).toString()).toBe('0123456789');
  });

  it('ends a body that stalls after its headers within idle_timeout_ms, and gives the socket back', async () => {
    let calls = 0;
    const stall = await fakeEndpoint((_req, res) => {
      calls++;
      res.writeHead(200, { 'Content-Length': '1000000', 'Content-Type': 'audio/wav' });
      res.write(Buffer.alloc(1000));
      if (calls > 1) res.end(Buffer.alloc(999_000));
    });
    const c = connector({ endpoint: stall.endpoint, timeout_ms: 5000, idle_timeout_ms: 300 }, { maxSockets: 1 });
    const media = await c.open(copy({ locator: 'a.wav' }), { signal: signal() });
    const t0 = Date.now();
    await expect(readAll(media.body)).rejects.toThrow();
    expect(Date.now() - t0).toBeLessThan(3000);
    // The one pooled socket is free again: a second read goes through.
    expect((await readAll((await c.open(copy({ locator: 'a.wav' }), { signal: signal() })).body)).length).toBe(1_000_000);
    expect(() => parse({ idle_timeout_ms: 10 })).toThrow();
  });

  it('cuts the whole object a store sends when it ignores Range (200 to a ranged GET) to the range asked', async () => {
    const OBJ = randomBytes(1000);
    const ignoring = await fakeEndpoint((_req, res) => res.writeHead(200, { 'Content-Length': String(OBJ.length) }).end(OBJ));
    const c = connector({ endpoint: ignoring.endpoint });
    const media = await c.open(copy({ locator: 'a.wav' }), { signal: signal(), range: { start: 100, end: 199 } });
    expect(ignoring.requests[0]!.range).toBe('bytes=100-199');
    expect(media).toMatchObject({ totalSize: 1000, range: { start: 100, end: 199 } });
    expect((await readAll(media.body)).equals(OBJ.subarray(100, 200))).toBe(true);
    const open = await c.open(copy({ locator: 'a.wav' }), { signal: signal(), range: { start: 900 } });
    expect(open.range).toEqual({ start: 900, end: 999 });
    expect((await readAll(open.body)).equals(OBJ.subarray(900))).toBe(true);
    expect(await appError(c.open(copy({ locator: 'a.wav' }), { signal: signal(), range: { start: 1000 } }))).toMatchObject({ code: 'range.not_satisfiable', extra: { size: 1000 } });
  });

  it("maps the store's KMS refusals to source.key_refused, without the key ARN S3's message quotes", async () => {
    const arn = 'arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab';
    const kms = await fakeEndpoint((_req, res) => {
      const body = `<?xml version="1.0" encoding="UTF-8"?><Error><Code>KMS.DisabledException</Code><Message>${arn} is disabled.</Message><RequestId>r</RequestId></Error>`;
      res.writeHead(400, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(body) }).end(body);
    });
    const e = await appError(connector({ endpoint: kms.endpoint, sse: { mode: 'aws:kms' } }).open(copy({ locator: 'a.wav' }), { signal: signal() }));
    expect(e.code).toBe('source.key_refused');
    expect(`${e.message} ${JSON.stringify(e.extra)}`).not.toContain('arn:aws:kms');
  });

  it('sends SSE-C headers, with the key MD5, when configured', async () => {
    const fake = await fakeEndpoint((_req, res) => res.writeHead(200, { 'Content-Length': '2' }).end('ok'));
    const c = connector({ endpoint: fake.endpoint, sse: { mode: 'sse-c', customer_key: SSE_KEY } });
    await readAll((await c.open(copy({ locator: 'a.wav' }), { signal: signal() })).body);
    const h = fake.requests[0]!;
    expect(h['x-amz-server-side-encryption-customer-algorithm']).toBe('AES256');
    expect(h['x-amz-server-side-encryption-customer-key']).toBe(SSE_KEY);
    expect(h['x-amz-server-side-encryption-customer-key-md5']).toBe(createHash('md5').update(Buffer.from(SSE_KEY, 'base64')).digest('base64'));
    expect(() => parse({ sse: { mode: 'sse-c', customer_key: 'not-a-256-bit-key' } })).toThrow(/base64/);
  });

  it('refuses a 206 that covers part of the object to a GET asking for all of it, and errors a body that ends short', async () => {
    const OBJ = randomBytes(1000);
    const partial = await fakeEndpoint((_req, res) => res.writeHead(206, { 'Content-Length': '500', 'Content-Range': 'bytes 0-499/1000' }).end(OBJ.subarray(0, 500)));
    const e = await appError(connector({ endpoint: partial.endpoint }).open(copy({ locator: 'a.wav' }), { signal: signal() }));
    expect(e.code).toBe('source.bad_gateway');
    expect(partial.requests[0]!.range).toBeUndefined();
    const tail = await fakeEndpoint((_req, res) => res.writeHead(206, { 'Content-Length': '500', 'Content-Range': 'bytes 500-999/1000' }).end(OBJ.subarray(500)));
    expect((await appError(connector({ endpoint: tail.endpoint }).open(copy({ locator: 'a.wav' }), { signal: signal() }))).code).toBe('source.bad_gateway');
    // A 206 that does cover the whole object is the whole object.
    const whole = await fakeEndpoint((_req, res) => res.writeHead(206, { 'Content-Length': '1000', 'Content-Range': 'bytes 0-999/1000' }).end(OBJ));
    const media = await connector({ endpoint: whole.endpoint }).open(copy({ locator: 'a.wav' }), { signal: signal() });
    expect(media.totalSize).toBe(1000);
    expect((await readAll(media.body)).equals(OBJ)).toBe(true);
    // A 200 (or 206) whose body stops short of what it promised errors, never ends as if whole.
    for (const head of [{ 'Content-Length': '1000' }, { 'Content-Length': '1000', 'Content-Range': 'bytes 0-999/1000' }]) {
      const short = await fakeEndpoint((_req, res) => {
        res.writeHead('Content-Range' in head ? 206 : 200, head);
        res.write(OBJ.subarray(0, 500));
        setTimeout(() => res.socket?.destroy(), 50);
      });
      const m = await connector({ endpoint: short.endpoint }).open(copy({ locator: 'a.wav' }), { signal: signal() });
      expect(m.totalSize).toBe(1000);
      const err = await readAll(m.body).then(() => undefined, (x: unknown) => x);
      expect(err).toBeInstanceOf(AppError);
      expect(err).toMatchObject({ code: 'source.unavailable', extra: { delivered_bytes: 500 } });
    }
    // A ranged 206 whose body stops short errors too.
    const shortRange = await fakeEndpoint((_req, res) => {
      res.writeHead(206, { 'Content-Length': '100', 'Content-Range': 'bytes 100-199/1000' });
      res.write(OBJ.subarray(100, 150));
      setTimeout(() => res.socket?.destroy(), 50);
    });
    const r = await connector({ endpoint: shortRange.endpoint }).open(copy({ locator: 'a.wav' }), { signal: signal(), range: { start: 100, end: 199 } });
    expect(await readAll(r.body).then(() => undefined, (x: unknown) => x)).toMatchObject({ code: 'source.unavailable', extra: { delivered_bytes: 50 } });
  });

  it("maps SSE-C refusals (object needs a customer key, key MD5 mismatch, a 403 under the customer key) to source.key_refused, without S3's message", async () => {
    const xmlError = async (status: number, code: string, message: string) =>
      fakeEndpoint((req, res) => {
        const body = `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>${message}</Message><RequestId>r</RequestId></Error>`;
        res.writeHead(status, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(body) }).end(req.method === 'HEAD' ? undefined : body);
      });
    const sseC = { sse: { mode: 'sse-c', customer_key: SSE_KEY } };
    const cases: [number, string, string, Record<string, unknown>, string][] = [
      [400, 'InvalidRequest', 'The object was stored using a form of Server Side Encryption. secret-detail-1', sseC, 'source.key_refused'],
      [400, 'InvalidRequest', 'The object was stored using a form of Server Side Encryption. secret-detail-1', {}, 'source.key_refused'],
      [400, 'InvalidArgument', 'The calculated MD5 hash of the key did not match the hash that was provided. secret-detail-1', sseC, 'source.key_refused'],
      [403, 'AccessDenied', 'User: arn:aws:iam::123:user/secret-detail-1 is not authorized', sseC, 'source.key_refused'],
      // Without SSE-C a 403 stays a credentials or permissions refusal; under SSE-C a refused signature too.
      [403, 'AccessDenied', 'User: arn:aws:iam::123:user/secret-detail-1 is not authorized', {}, 'source.auth_failed'],
      [403, 'SignatureDoesNotMatch', 'secret-detail-1', sseC, 'source.auth_failed'],
    ];
    for (const [status, code, message, fields, want] of cases) {
      const fake = await xmlError(status, code, message);
      const e = await appError(connector({ endpoint: fake.endpoint, ...fields }).open(copy({ locator: 'a.wav' }), { signal: signal() }));
      expect([code, e.code]).toEqual([code, want]);
      expect(e.message).toContain(code);
      expect(`${e.message} ${JSON.stringify(e.extra)}`).not.toContain('secret-detail-1');
      // Asked once: not an outage the SDK retries.
      expect(fake.requests).toHaveLength(1);
    }
  });

  it('refuses keys S3 cannot hold (over 1024 bytes of UTF-8, a lone surrogate) as source.path_refused before sending anything', async () => {
    const fake = await fakeEndpoint((_req, res) => res.writeHead(500).end());
    const c = connector({ endpoint: fake.endpoint, prefix: 'p/' });
    for (const locator of ['y'.repeat(1100), 'é'.repeat(512), 'bad\ud800.wav', 'bad\udc00x.wav', 'end\ud83d']) {
      const e = await appError(c.open(copy({ locator }), { signal: signal() }));
      expect(e.code).toBe('source.path_refused');
    }
    expect(fake.requests).toHaveLength(0);
    // At the limit, and a well-formed astral character, are keys like any other.
    expect(c.keyOf(copy({ locator: 'x'.repeat(1022) }))).toHaveLength(1024);
    expect(c.keyOf(copy({ locator: 'call-\ud83d\ude00.wav' }))).toBe('p/call-\ud83d\ude00.wav');
  });

  it("refuses a source without keys unless it opts into the deployment's own AWS identity, and a non-AWS endpoint for that identity unless opted in too", async () => {
    const bare = { access_key_id: undefined, secret_access_key: undefined };
    expect(() => parse(bare)).toThrow(/use_default_credentials: true/);
    expect(() => parse({ ...bare, endpoint: 'https://minio.tenant.example' })).toThrow(/use_default_credentials: true/);
    expect(parse({ ...bare, use_default_credentials: true }).use_default_credentials).toBe(true);
    expect(parse({ ...bare, use_default_credentials: true, endpoint: 'https://s3.eu-west-1.amazonaws.com' }).endpoint).toBe('https://s3.eu-west-1.amazonaws.com');
    expect(() => parse({ ...bare, use_default_credentials: true, endpoint: 'https://minio.tenant.example' })).toThrow(/non-AWS endpoint/);
    expect(() => parse({ ...bare, use_default_credentials: true, endpoint: 'https://evil.example/.amazonaws.com' })).toThrow(/non-AWS endpoint/);
    expect(parse({ ...bare, use_default_credentials: 'any_endpoint', endpoint: 'https://minio.tenant.example' }).use_default_credentials).toBe('any_endpoint');
    expect(() => parse({ access_key_id: 'AKIAX', secret_access_key: 's', use_default_credentials: true })).toThrow(/exclude each other/);
    expect(parse({ access_key_id: 'AKIAX', secret_access_key: 's' }).use_default_credentials).toBe(false);
    // A config that did not come through the schema still never falls back on the default chain:
    // nothing is sent, not even an unsigned request.
    const fake = await fakeEndpoint((_req, res) => res.writeHead(200, { 'Content-Length': '2' }).end('ok'));
    const cfg = { ...parse({ endpoint: fake.endpoint, force_path_style: true, access_key_id: 'AKIAX', secret_access_key: 's' }), access_key_id: undefined, secret_access_key: undefined };
    const c = new S3Connector('tenant-a', cfg);
    open.push(c);
    expect((await appError(c.open(copy({ locator: 'a.wav' }), { signal: signal() }))).code).toBe('source.auth_failed');
    expect(fake.requests).toHaveLength(0);
  });

  it('refuses a prefix that does not end with "/" (it reached sibling prefixes: acme + -eu/x.wav)', () => {
    expect(() => parse({ prefix: 'acme' })).toThrow(/empty, or ending with/);
    expect(() => parse({ prefix: 'acme/eu' })).toThrow(/empty, or ending with/);
    expect(parse({ prefix: 'acme/' }).prefix).toBe('acme/');
    expect(parse({}).prefix).toBe('');
  });
});

describe('S3Connector aborts', () => {
  it('refuses to start when the signal is already aborted', async () => {
    const ac = new AbortController();
    ac.abort();
    expect((await appError(connector().open(copy({ locator: 'calls/big.bin' }), { signal: ac.signal }))).code).toBe('source.unavailable');
  });

  it('destroys the body when the signal aborts mid-stream, and gives the socket back', async () => {
    const c = connector({}, { maxSockets: 2 });
    const loc = copy({ locator: 'calls/big.bin' });
    for (let i = 0; i < 30; i++) {
      const ac = new AbortController();
      const { body } = await c.open(loc, { signal: ac.signal });
      // Paused mode: reading one chunk must not drain the rest, or the socket would be freed by EOF.
      await new Promise((r) => body.once('readable', r));
      expect(body.read(1024)).not.toBeNull();
      const closed = new Promise((r) => body.once('close', r));
      ac.abort();
      await closed;
      expect(body.destroyed).toBe(true);
      expect(body.readableEnded).toBe(false);
    }
    const media = await c.open(loc, { signal: signal() });
    expect(sha(await readAll(media.body))).toBe(sha(BIG));
  });

  it('gives the socket back when it refuses a response it already holds', async () => {
    // s3rver answers a range of an empty object with headers and a body that never comes.
    const c = connector({ timeout_ms: 2000 }, { maxSockets: 1 });
    for (let i = 0; i < 3; i++) {
      const e = await appError(c.open(copy({ locator: 'calls/empty.bin' }), { range: { start: 0 }, signal: signal() }));
      expect(e.code).toBe('range.not_satisfiable');
    }
    const media = await c.open(copy({ locator: 'calls/big.bin' }), { range: { start: 0, end: 99 }, signal: signal() });
    expect((await readAll(media.body)).equals(BIG.subarray(0, 100))).toBe(true);
  });
});

describe('S3Connector.check', () => {
  it('passes against a reachable bucket and fails for a missing one', async () => {
    await expect(connector().check(signal())).resolves.toBeUndefined();
    const e = await appError(connector({ bucket: 'no-such-bucket' }).check(signal()));
    expect(e.code).toBe('source.unavailable');
    const e2 = await appError(connector({ bucket: 'no-such-bucket' }).open(copy({ locator: 'calls/big.bin' }), { signal: signal() }));
    expect(e2.code).toBe('source.unavailable');
  });
});

describe('S3Connector and archive storage classes (Glacier)', () => {
  it('answers source.archived for an object not restored (was a credentials refusal), restores it with the configured tier and days, then source.restoring until S3 has the copy, then the bytes', async () => {
    const c = connector({ restore_tier: 'Bulk' });
    const loc = copy({ locator: 'cold/glacier.wav' });
    const first = await appError(c.open(loc, { signal: signal() }));
    expect(first).toMatchObject({ code: 'source.archived', extra: { storage_class: 'GLACIER' } });
    await c.restore(loc, new Date(Date.now() + 2.5 * 86_400_000), signal());
    expect(sim.restores.at(-1)).toMatchObject({ key: 'cold/glacier.wav', days: 3, tier: 'Bulk', status: 202 });
    expect(await appError(c.open(loc, { signal: signal() }))).toMatchObject({ code: 'source.restoring' });
    // Asked again while it runs (another instance's worker, a retried job): S3's 409 is not a failure.
    await c.restore(loc, new Date(Date.now() + 86_400_000), signal());
    expect(sim.restores.at(-1)).toMatchObject({ status: 409 });
    await new Promise((r) => setTimeout(r, 350));
    expect((await readAll((await c.open(loc, { signal: signal() })).body)).toString()).toBe('thawed bytes');
  });

  it('a Range of an archived object is archived too, not a bad range; the default tier is Standard', async () => {
    const c = connector();
    const loc = copy({ locator: 'cold/deep.wav' });
    expect(await appError(c.open(loc, { signal: signal(), range: { start: 2, end: 5 } }))).toMatchObject({ code: 'source.archived', extra: { storage_class: 'DEEP_ARCHIVE' } });
    await c.restore(loc, new Date(Date.now() - 1000), signal());
    expect(sim.restores.at(-1)).toMatchObject({ key: 'cold/deep.wav', days: 1, tier: 'Standard', status: 202 });
    expect(await appError(c.open(loc, { signal: signal() }))).toMatchObject({ code: 'source.restoring' });
  });

  it('refuses a restore_tier S3 does not have', () => {
    expect(() => parse({ restore_tier: 'Instant' })).toThrow();
    expect(parse({}).restore_tier).toBe('Standard');
  });
});
