import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

/**
 * A fresh data_dir's first start by several processes at once (the CLI beside the server, every
 * worker of a cluster started by hand): each makes the keyring if it is missing. None may read a
 * key file another is still writing, and all must end up with the same keys.
 */
const RACER = fileURLToPath(new URL('../../test/support/keyring-racer.ts', import.meta.url));

interface Racer {
  ready: Promise<void>;
  go(): void;
  result: Promise<{ keyId?: string; dataKeyId?: string; signingKeyId?: string; error?: string }>;
}

/** A separate process (as the CLI beside the server is), held until go(). */
function racer(path: string): Racer {
  const child = spawn(process.execPath, ['--import', 'tsx', RACER, path], { stdio: ['pipe', 'pipe', 'inherit'] });
  let out = '';
  let onReady!: () => void;
  const ready = new Promise<void>((r) => (onReady = r));
  const result = new Promise<Racer extends { result: Promise<infer T> } ? T : never>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.startsWith('ready\n')) onReady();
    });
    child.once('error', reject);
    child.once('exit', () => {
      const line = out.split('\n').find((l) => l.startsWith('{'));
      resolve(line ? JSON.parse(line) : { error: `no answer: ${out}` });
    });
  });
  return { ready, go: () => child.stdin.write('go\n'), result };
}

describe('LocalKeyring made by several processes at once', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'custodian-keyrace-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('every racer reads whole keys, the same ones, and no temp file is left', async () => {
    const ROUNDS = 6;
    const RACERS = 8;
    for (let round = 0; round < ROUNDS; round++) {
      const path = join(dir, `r${round}`, 'keys', 'staging.key');
      const racers = Array.from({ length: RACERS }, () => racer(path));
      // Every process has loaded the keyring module: release them together.
      await Promise.all(racers.map((r) => r.ready));
      for (const r of racers) r.go();
      const got = await Promise.all(racers.map((r) => r.result));
      expect(got.filter((g) => g.error).map((g) => g.error)).toEqual([]);
      expect(new Set(got.map((g) => g.keyId)).size).toBe(1);
      expect(new Set(got.map((g) => g.dataKeyId)).size).toBe(1);
      expect(new Set(got.map((g) => g.signingKeyId)).size).toBe(1);
      const keysDir = join(dir, `r${round}`, 'keys');
      expect(readdirSync(keysDir).sort()).toEqual(['signing-ed25519.pem', 'staging.key']);
      for (const f of readdirSync(keysDir)) expect(statSync(join(keysDir, f)).mode & 0o777).toBe(0o600);
    }
  }, 120_000);
});
