import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import S3rver from 's3rver';
import { checkSigV4, refuseSignature } from './sigv4-check.js';

export interface S3Simulator {
  endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
  dir: string;
  /**
   * Moves a stored object to an archive storage class, as a bucket lifecycle rule does: GET answers
   * 403 InvalidObjectState until a RestoreObject (POST ?restore) has run for `restoreMs`; HEAD tells
   * the class (x-amz-storage-class) and the restore's progress (x-amz-restore).
   */
  archive(bucket: string, key: string, opts?: { storageClass?: 'GLACIER' | 'DEEP_ARCHIVE'; restoreMs?: number }): void;
  /** Stores an object through the real AWS SDK, as an archive's exporter would (path-style, this simulator's account). */
  putObject(bucket: string, key: string, body: Buffer, contentType?: string): Promise<void>;
  /** Every RestoreObject request the simulator accepted, in order. */
  readonly restores: { bucket: string; key: string; days: number | null; tier: string | null; status: number }[];
  stop(): Promise<void>;
}

interface Archived {
  storageClass: string;
  restoreMs: number;
  restoreStartedAt?: number;
  days?: number;
}

// s3rver knows exactly one account.
const ACCESS_KEY_ID = 'S3RVER';
const SECRET_ACCESS_KEY = 'S3RVER';

/**
 * A real S3 protocol server (s3rver) on a loopback ephemeral port, for tests and the demo. It is
 * mounted on our own http.Server so that SigV4 signatures are actually checked (s3rver skips that).
 * Clients must use path-style addressing.
 */
export async function startS3Simulator(opts: { dir?: string; buckets?: string[] } = {}): Promise<S3Simulator> {
  const ownDir = opts.dir === undefined;
  const dir = opts.dir ?? (await mkdtemp(join(tmpdir(), 'custodian-s3-')));
  const s3 = new S3rver({ silent: true, directory: dir, configureBuckets: (opts.buckets ?? []).map((name) => ({ name })) });
  const app = s3.callback();
  const archived = new Map<string, Archived>();
  const restores: S3Simulator['restores'] = [];
  const server = createServer((req, res) => {
    if (checkSigV4(req, { [ACCESS_KEY_ID]: SECRET_ACCESS_KEY }) === 'mismatch') refuseSignature(req, res);
    else if (!archiveTier(req, res, archived, restores)) app(req, res);
  });
  try {
    await s3.configureBuckets();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
  } catch (e) {
    if (ownDir) await rm(dir, { recursive: true, force: true });
    throw e;
  }
  const { port } = server.address() as AddressInfo;
  let stopped: Promise<void> | undefined;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    accessKeyId: ACCESS_KEY_ID,
    secretAccessKey: SECRET_ACCESS_KEY,
    dir,
    archive(bucket, key, o = {}) {
      archived.set(`${bucket}/${key}`, { storageClass: o.storageClass ?? 'GLACIER', restoreMs: o.restoreMs ?? 0 });
    },
    restores,
    async putObject(bucket, key, body, contentType) {
      // Imported here: the SDK loads only where S3 is used (lazy-aws-sdk.test.ts).
      const { PutObjectCommand, S3Client } = await import('@aws-sdk/client-s3');
      const client = new S3Client({
        endpoint: `http://127.0.0.1:${port}`,
        region: 'us-east-1',
        forcePathStyle: true,
        credentials: { accessKeyId: ACCESS_KEY_ID, secretAccessKey: SECRET_ACCESS_KEY },
        requestChecksumCalculation: 'WHEN_REQUIRED',
        responseChecksumValidation: 'WHEN_REQUIRED',
      });
      try {
        await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ...(contentType ? { ContentType: contentType } : {}) }));
      } finally {
        client.destroy();
      }
    },
    stop() {
      stopped ??= (async () => {
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        // Keep-alive sockets held by SDK agents would otherwise keep close() pending.
        server.closeAllConnections();
        await closed;
        if (ownDir) await rm(dir, { recursive: true, force: true });
      })();
      return stopped;
    },
  };
}

const errorXml = (code: string, message: string, extra = '') =>
  `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message>${extra}<RequestId>sim</RequestId></Error>`;

function sendXml(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

/**
 * The archive storage classes s3rver does not model, as S3 documents them (Working with archived
 * objects; RestoreObject): a GET of an archived object is 403 InvalidObjectState; POST ?restore is
 * 202 the first time, 409 RestoreAlreadyInProgress while it runs, 200 once restored; HEAD carries
 * x-amz-storage-class and x-amz-restore. Answers the request itself (true) or leaves it to s3rver
 * (false), with the headers set that s3rver's answer should carry.
 */
function archiveTier(req: IncomingMessage, res: ServerResponse, archived: Map<string, Archived>, restores: S3Simulator['restores']): boolean {
  const url = new URL(req.url ?? '/', 'http://sim');
  const [bucket = '', ...rest] = url.pathname.slice(1).split('/');
  let key: string;
  try {
    key = rest.map(decodeURIComponent).join('/');
  } catch {
    return false;
  }
  const a = archived.get(`${decodeURIComponent(bucket)}/${key}`);
  if (!a) return false;
  const now = Date.now();
  const state = a.restoreStartedAt === undefined ? 'archived' : now - a.restoreStartedAt < a.restoreMs ? 'restoring' : 'restored';
  if (req.method === 'POST' && url.searchParams.has('restore')) {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString();
      const days = /<Days>(\d+)<\/Days>/.exec(body)?.[1];
      const tier = /<Tier>(\w+)<\/Tier>/.exec(body)?.[1] ?? null;
      const status = state === 'restoring' ? 409 : state === 'restored' ? 200 : 202;
      restores.push({ bucket, key, days: days === undefined ? null : Number(days), tier, status });
      if (status === 409) return sendXml(res, 409, errorXml('RestoreAlreadyInProgress', 'Object restore is already in progress'));
      if (status === 202) a.restoreStartedAt = Date.now();
      if (days !== undefined) a.days = Number(days);
      res.writeHead(status, { 'content-length': 0 });
      res.end();
    });
    return true;
  }
  // Only plain object reads (not ?acl, ?tagging, …) are refused for an archived object.
  if (req.method === 'GET' && state !== 'restored' && ![...url.searchParams.keys()].some((k) => k !== 'x-id')) {
    req.resume();
    sendXml(res, 403, errorXml('InvalidObjectState', "The operation is not valid for the object's storage class", `<StorageClass>${a.storageClass}</StorageClass>`));
    return true;
  }
  res.setHeader('x-amz-storage-class', a.storageClass);
  if (state === 'restoring') res.setHeader('x-amz-restore', 'ongoing-request="true"');
  if (state === 'restored') res.setHeader('x-amz-restore', `ongoing-request="false", expiry-date="${new Date(a.restoreStartedAt! + a.restoreMs + (a.days ?? 1) * 86_400_000).toUTCString()}"`);
  return false;
}
