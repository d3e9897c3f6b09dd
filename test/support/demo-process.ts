import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export interface DemoProcess {
  child: ChildProcess;
  url: string;
  /** The demo tenant's API key, as printed. */
  key: string;
  /** Everything it printed so far. */
  output(): string;
  /** SIGTERM (if still running), wait for the exit, remove the data directory. */
  stop(): Promise<void>;
}

/**
 * Runs `custodian demo` as a child process the way a newcomer does (its own data directory,
 * PORT 0) and waits for the lines it prints: the URL and the demo key. `argv` picks how it runs
 * (through tsx, or the compiled dist/).
 */
export async function startDemo(argv: string[], timeoutMs = 30_000): Promise<DemoProcess> {
  const dataDir = mkdtempSync(join(tmpdir(), 'custodian-demo-'));
  const child = spawn(process.execPath, argv, {
    cwd: ROOT,
    env: { ...process.env, PORT: '0', CUSTODIAN_DATA_DIR: dataDir, CUSTODIAN_LOG_LEVEL: 'warn', NODE_OPTIONS: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (out += c.toString()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    }
    rmSync(dataDir, { recursive: true, force: true });
  };
  try {
    const { url, key } = await new Promise<{ url: string; key: string }>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`demo did not start:\n${out}`)), timeoutMs);
      const check = setInterval(() => {
        const m = /custodian demo is up at (http:\/\/\S+)/.exec(out);
        const k = /Bearer (cst_demo_[A-Za-z0-9_-]+)/.exec(out);
        if (m && k) {
          clearInterval(check);
          clearTimeout(timer);
          resolve({ url: m[1]!, key: k[1]! });
        }
      }, 50);
      child.once('exit', (code) => {
        clearInterval(check);
        clearTimeout(timer);
        reject(new Error(`demo exited ${code}:\n${out}`));
      });
    });
    return { child, url, key, output: () => out, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}
