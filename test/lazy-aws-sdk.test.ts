import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from './support/demo-process.js';
import { type Served, until, writeConfig } from './support/serve-process.js';

/**
 * The AWS SDK packages cost several MiB of RSS and start-up time, so they are imported on first
 * use (src/sources/s3/client.ts, src/keys/kms.ts), never by a gateway whose configuration has no
 * S3 source, no S3 staging and no AWS KMS. `custodian serve` runs in a child process with a
 * loader hook (test/support/record-aws-sdk.mjs) that logs every @aws-sdk import; the second case,
 * a config with an S3 source (whose readiness check talks to it), shows the hook does see the SDK.
 */
describe('the AWS SDK is loaded only when the configuration uses it', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'custodian-lazy-sdk-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** A port nothing listens on: the S3 source's check fails fast, after the SDK is loaded. */
  async function closedPort(): Promise<number> {
    const s = createServer();
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    const port = (s.address() as { port: number }).port;
    await new Promise((r) => s.close(r));
    return port;
  }

  /** Serves `sources` for one tenant, asks /readyz (each source's check), stops; the @aws-sdk URLs it imported. */
  async function sdkImports(name: string, sources: Record<string, unknown>[]): Promise<string[]> {
    const data = join(dir, name);
    mkdirSync(join(data, 'archive'), { recursive: true });
    const log = join(data, 'aws-sdk.log');
    const config = writeConfig(data, {
      data_dir: data,
      allow_inline_secrets: true,
      server: { host: '127.0.0.1', port: 0, shutdown_grace_ms: 200 },
      tenants: [{ id: 'acme', sources: [{ name: 'archive', type: 'filesystem', root: join(data, 'archive'), source_systems: ['filesystem'] }, ...sources] }],
    });
    const child = spawn(process.execPath, ['--import', 'tsx', '--import', './test/support/record-aws-sdk.mjs', 'src/cli/main.ts', 'serve', '--config', config], {
      cwd: ROOT,
      env: { ...process.env, NODE_OPTIONS: '', CUSTODIAN_TEST_AWS_SDK_LOG: log },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    const served: Served = { child, out: () => out, exited };
    try {
      const url = await until('custodian listening', served, () => /"address":"(http:[^"]+)"[^\n]*custodian listening/.exec(out)?.[1], 20_000);
      const ready = await fetch(`${url}/readyz`);
      await ready.arrayBuffer();
      expect([200, 503]).toContain(ready.status);
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    }
    return existsSync(log) ? readFileSync(log, 'utf8').split('\n').filter(Boolean) : [];
  }

  it('a filesystem-only gateway with local keys and local staging imports no @aws-sdk package', async () => {
    expect(await sdkImports('plain', [])).toEqual([]);
  });

  it('a gateway with an S3 source imports @aws-sdk/client-s3, and only that (the probe sees the SDK)', async () => {
    const s3 = {
      name: 'bucket',
      type: 's3',
      bucket: 'recordings',
      endpoint: `http://127.0.0.1:${await closedPort()}`,
      force_path_style: true,
      access_key_id: 'AKIATEST',
      secret_access_key: 'test-secret',
      timeout_ms: 1_000,
    };
    const urls = await sdkImports('with-s3', [s3]);
    expect(urls.some((u) => u.includes('/@aws-sdk/client-s3/'))).toBe(true);
    expect(urls.some((u) => u.includes('/@aws-sdk/client-kms/'))).toBe(false);
  });
});
