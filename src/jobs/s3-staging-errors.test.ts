import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { failure } from '../../test/support/failure.js';
import { s3StagingConfig } from '../../test/support/s3-staging.js';
import { AppError } from '../errors.js';
import { createLogger } from '../logger.js';
import { S3Staging } from './s3-staging.js';

/**
 * S3 error messages name principals and role ARNs, account ids, KMS key ARNs: none of that may reach
 * the log through a staging error (its message or its cause, which the logger prints too).
 */
const AKID = 'AKIASTAGINGERRORS';
const LEAK = 'arn:aws:iam::123456789012:role/staging-writer';
const S3_MESSAGE = `User: ${LEAK} (${AKID}) is not authorized to perform this action`;

const servers: Server[] = [];
const made: S3Staging[] = [];
afterAll(async () => {
  await Promise.all(made.map((s) => s.close()));
  for (const s of servers) s.closeAllConnections();
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
});

/** A store that refuses everything: 403 AccessDenied quoting the principal; HEAD gets a bodiless 403. */
async function refusingStore(): Promise<string> {
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    req.resume();
    req.on('end', () => {
      if (req.method === 'HEAD') {
        res.writeHead(403, { 'x-amz-request-id': 'r' }).end();
        return;
      }
      const body = `<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>${S3_MESSAGE}</Message><RequestId>r</RequestId></Error>`;
      res.writeHead(403, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(body) }).end(body);
    });
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

function staging(endpoint: string): S3Staging {
  const s = new S3Staging(s3StagingConfig({ endpoint, accessKeyId: AKID, secretAccessKey: 'stagingErrorsSecret000000000000000000000' }, 'stage', {}), { idleTimeoutMs: 2000 });
  made.push(s);
  return s;
}

describe('S3 staging errors', () => {
  it('log the S3 error code and status, never the S3 message text', async () => {
    const s = staging(await refusingStore());
    const lines: string[] = [];
    const log = createLogger('info', { write: (line: string) => void lines.push(line) });

    const del = await failure(s.delete('job_x_1'));
    expect(del.message).toBe('the staged object could not be deleted (AccessDenied)');
    expect(del.cause).toEqual({ name: 'AccessDenied', status: 403 });
    log.warn({ err: del, job: 'x' }, 'staged media could not be deleted at its TTL');

    // HEAD answers without a body: the SDK calls that 'Unknown'; the status is what is known.
    const open = await failure(s.open('job_x_1'));
    expect(open.message).toBe('the staged object could not be read (HTTP 403)');
    expect(open.cause).toEqual({ name: 'HTTP 403', status: 403 });
    log.warn({ err: open }, 'staged media could not be read');
    log.warn({ err: await failure(s.size('job_x_1')) }, 'staged media could not be sized');

    const w = await s.writer('job_x_2');
    await new Promise<void>((r) => w.stream.end(Buffer.alloc(10), () => r()));
    const commit = await failure(w.commit());
    expect(commit.code).toBe('staging.write_failed');
    expect(commit.message).toBe('staging could not be written (AccessDenied)');
    log.error({ err: commit }, 'commit failed');

    const all = lines.join('');
    expect(lines).toHaveLength(4);
    expect(all).toContain('AccessDenied');
    expect(all).toContain('HTTP 403');
    expect(all).not.toContain(AKID);
    expect(all).not.toContain(LEAK);
    expect(all).not.toContain('not authorized');
    expect(all).not.toContain('Unknown');
  });

  it('a failed part fails the write stream with the code only, even down its cause chain', async () => {
    const s = staging(await refusingStore());
    const w = await s.writer('job_x_3');
    const err = await new Promise<Error & { code?: string }>((resolve, reject) => {
      w.stream.on('error', resolve);
      w.stream.on('finish', () => reject(new Error('the write finished')));
      w.stream.end(Buffer.alloc(5 * 1024 * 1024 + 1));
    });
    await w.abort();
    expect(err.code).toBe('AccessDenied');
    expect(err.cause).toEqual({ name: 'AccessDenied', status: 403 });
    // run-job wraps the stream's error as the cause of its own.
    const lines: string[] = [];
    createLogger('info', { write: (line: string) => void lines.push(line) }).error({ err: new AppError('staging.write_failed', 'staging could not be written', { cause: err }) }, 'write failed');
    expect(lines.join('')).toContain('AccessDenied');
    expect(lines.join('')).not.toContain(LEAK);
  });
});
