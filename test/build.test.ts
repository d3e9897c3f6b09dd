import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { post, raw } from './support/http.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

/**
 * Production runs compiled JavaScript (docs/OPERATIONS.md): `tsc -p tsconfig.build.json` into
 * dist/, then `node dist/cli/main.js`, with no TypeScript loader. The demo, run that way, serves
 * a recording and the console (paths relative to the compiled files must still resolve).
 */
describe('the compiled gateway (dist/)', () => {
  let child: ChildProcess;
  let out = '';
  let url = '';
  let key = '';
  const dataDir = mkdtempSync(join(tmpdir(), 'custodian-dist-'));

  beforeAll(async () => {
    execFileSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'], { cwd: ROOT, stdio: 'pipe' });
    expect(existsSync(join(ROOT, 'dist/cli/main.js'))).toBe(true);
    child = spawn(process.execPath, ['dist/cli/main.js', 'demo'], {
      cwd: ROOT,
      env: { ...process.env, PORT: '0', CUSTODIAN_DATA_DIR: dataDir, CUSTODIAN_LOG_LEVEL: 'warn', NODE_OPTIONS: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr!.on('data', (c: Buffer) => (out += c.toString()));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`compiled demo did not start:\n${out}`)), 60_000);
      const check = setInterval(() => {
        const m = /custodian demo is up at (http:\/\/\S+)/.exec(out);
        const k = /Bearer (cst_demo_[A-Za-z0-9_-]+)/.exec(out);
        if (m && k) {
          clearInterval(check);
          clearTimeout(timer);
          url = m[1]!;
          key = k[1]!;
          resolve();
        }
      }, 50);
      child.once('exit', (code) => reject(new Error(`compiled demo exited ${code}:\n${out}`)));
    });
  }, 120_000);

  afterAll(async () => {
    if (child && child.exitCode === null) {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    }
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('serves a legacy G.729 recording as WAV and the console page', async () => {
    const res = await post({ url } as never, { request_id: 'dist_1', caller_id: 'compliance_tool_user_01', target_recording_ref: 'avaya_7001', format_preference: 'wav' }, key);
    expect(res.status, res.body.toString().slice(0, 300)).toBe(200);
    expect(res.headers['content-type']).toBe('audio/wav');
    expect(res.body.subarray(0, 4).toString()).toBe('RIFF');
    const page = await raw(`${url}/console/`);
    expect(page.status).toBe(200);
    expect(page.body.toString()).toContain('<html');
  });
});
