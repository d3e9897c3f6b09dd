import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
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
  stop(): Promise<void>;
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
  const server = createServer((req, res) => {
    if (checkSigV4(req, { [ACCESS_KEY_ID]: SECRET_ACCESS_KEY }) === 'mismatch') refuseSignature(req, res);
    else app(req, res);
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
