import { type ChildProcess, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './demo-process.js';

/** `custodian serve` as an operator runs it, through tsx like the other CLI tests; its stdout+stderr kept. */
export interface Served {
  child: ChildProcess;
  out(): string;
  exited: Promise<number | null>;
}

export function serve(config: string): Served {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'serve', '--config', config], {
    cwd: ROOT,
    env: { ...process.env, NODE_OPTIONS: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (out += c.toString()));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return { child, out: () => out, exited };
}

export async function until<T>(what: string, s: Served, probe: () => T | undefined, ms = 40_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = probe();
    if (v !== undefined) return v;
    if (Date.now() > end || s.child.exitCode !== null) throw new Error(`${what}: not seen (exit ${s.child.exitCode}):\n${s.out().slice(-4000)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export const logLines = (s: Served) =>
  s
    .out()
    .split('\n')
    .flatMap((l) => {
      try {
        return [JSON.parse(l) as Record<string, unknown>];
      } catch {
        return [];
      }
    });

/** Worker id → pid, as the primary logged them ("worker listening"). */
export const workersSeen = (s: Served) => new Map(logLines(s).filter((l) => l.msg === 'worker listening').map((l) => [Number(l.worker), Number(l.pid)]));

export const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** Writes a config document where `custodian serve --config` reads it. */
export function writeConfig(dir: string, doc: Record<string, unknown>): string {
  const path = join(dir, 'custodian.json');
  writeFileSync(path, JSON.stringify(doc));
  return path;
}
