import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { readSeed, runSim } from '../src/cli/sim.js';
import { ConfigError } from '../src/config/load.js';
import { type GenesysSimulator, startGenesysSimulator } from '../src/sources/genesys/simulator.js';
import { AUDIO } from './support/gateway.js';
import { genesysSource } from './support/genesys-source.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** The CLI as a child process; async, because the simulators it talks to run in this process. */
function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { cwd: ROOT, env: { ...process.env, CUSTODIAN_CONFIG: '' } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Starts a long-running CLI command and resolves once its stdout matches `ready`. */
function startCli(args: string[], ready: RegExp): Promise<{ child: ChildProcess; stdout: () => string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { cwd: ROOT });
    let out = '';
    let err = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`no "${ready}" within 30 s: ${out} ${err}`));
    }, 30_000);
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      if (ready.test(out)) {
        clearTimeout(timer);
        resolve({ child, stdout: () => out });
      }
    });
    child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
    child.on('close', (code) => {
      clearTimeout(timer);
      reject(new Error(`exited ${code}: ${out} ${err}`));
    });
  });
}

function stop(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    child.removeAllListeners('close');
    child.on('close', (code) => resolve(code));
    child.kill('SIGTERM');
  });
}

// Each CLI run starts Node with tsx: seconds apiece on a busy machine.
describe('custodian doctor', { timeout: 120_000 }, () => {
  let dir: string;
  let sim: GenesysSimulator;
  const write = (name: string, sources: Record<string, unknown>[]) => {
    const file = join(dir, name);
    writeFileSync(file, JSON.stringify({ data_dir: dir, allow_inline_secrets: true, catalog: { driver: 'sqlite', path: join(dir, 'c.sqlite') }, tenants: [{ id: 'acme', sources }] }));
    return file;
  };
  const genesys = (name: string, over: Record<string, unknown> = {}) => genesysSource(sim, { name, source_systems: [], timeout_ms: 2_000, ...over });

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'custodian-doctor-'));
    mkdirSync(join(dir, 'archive'));
    sim = await startGenesysSimulator({
      clients: [
        { id: 'custodian-sim', secret: 'custodian-sim-secret', name: 'Custodian doctor test' },
        { id: 'no-analytics', secret: 'no-analytics-secret', permissions: ['recording:recording:view'] },
      ],
    });
  });
  afterAll(async () => {
    await sim?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('prints a table and exits 0 when every source passes (warnings allowed)', async () => {
    sim.set({ mediaLinkTtlMs: 3 * 60_000 });
    const config = write('ok.json', [{ name: 'archive', type: 'filesystem', root: join(dir, 'archive') }, genesys('genesys')]);
    const r = await cli(['doctor', '--config', config]);
    sim.set({ mediaLinkTtlMs: 60 * 60_000 });
    expect(r.code, r.stderr + r.stdout).toBe(0);
    const lines = r.stdout.split('\n');
    expect(lines[0]).toMatch(/^TENANT\s+SOURCE\s+KIND\s+STATUS\s+REACHABLE\s+CREDENTIALS\s+TIME$/);
    expect(r.stdout).toMatch(/acme\s+archive\s+filesystem\s+ok\s+yes\s+n\/a/);
    expect(r.stdout).toMatch(/acme\s+genesys\s+genesys\s+warn\s+yes\s+yes/);
    expect(r.stdout).toContain('OAuth client "Custodian doctor test" (custodian-sim)');
    expect(r.stdout).toMatch(/! media link lifetime: media links expire after 3 min/);
    expect(r.stdout).toMatch(/✓ rights: POST analytics conversation details query: allowed/);
    expect(r.stdout).toContain('2 source(s): 1 ok, 1 with warnings, 0 failing');
    expect(r.stdout).not.toContain('custodian-sim-secret');
  });

  it('--json for machines; exit 1 when a source fails (missing rights, wrong secret, unreachable)', async () => {
    const config = write('bad.json', [
      { name: 'archive', type: 'filesystem', root: join(dir, 'archive') },
      { name: 'gone', type: 'filesystem', root: join(dir, 'no-such-dir') },
      genesys('genesys-rights', { client_id: 'no-analytics', client_secret: 'no-analytics-secret' }),
      genesys('genesys-secret', { client_secret: 'wrong-secret-value' }),
      genesys('genesys-down', { login_base_url: 'http://127.0.0.1:9', api_base_url: 'http://127.0.0.1:9', timeout_ms: 300 }),
    ]);
    const r = await cli(['doctor', '--config', config, '--json']);
    expect(r.code, r.stderr).toBe(1);
    const out = JSON.parse(r.stdout) as { ok: boolean; sources: { source: string; status: string; reachable: boolean | null; credentials: boolean | null; checks: { id: string; status: string; data?: Record<string, unknown> }[] }[] };
    expect(out.ok).toBe(false);
    const by = Object.fromEntries(out.sources.map((s) => [s.source, s]));
    expect(by.archive).toMatchObject({ status: 'ok', reachable: true });
    expect(by.gone).toMatchObject({ status: 'fail' });
    expect(by['genesys-rights']).toMatchObject({ status: 'fail', reachable: true, credentials: true });
    const analytics = by['genesys-rights']!.checks.find((c) => c.id === 'rights.analytics');
    expect(analytics).toMatchObject({ status: 'fail', data: { genesys_status: 403, genesys_code: 'missing.any.permissions' } });
    expect(by['genesys-rights']!.checks.find((c) => c.id === 'rights.recordings')?.status).toBe('ok');
    expect(by['genesys-secret']).toMatchObject({ status: 'fail', reachable: true, credentials: false });
    expect(by['genesys-down']).toMatchObject({ status: 'fail', reachable: false, credentials: null });
    expect(r.stdout).not.toMatch(/wrong-secret-value|no-analytics-secret/);
  });

  it('an unknown --tenant is a configuration error (78)', async () => {
    const config = write('one.json', [{ name: 'archive', type: 'filesystem', root: join(dir, 'archive') }]);
    const bad = await cli(['doctor', '--config', config, '--tenant', 'nope']);
    expect(bad.code).toBe(78);
    expect(bad.stderr).toContain('unknown tenant');
  });
});

describe('custodian sim', { timeout: 120_000 }, () => {
  it('sim genesys --seed: serves the seeded recordings on one port and prints URLs and credentials', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'custodian-sim-'));
    try {
      writeFileSync(
        join(dir, 'seed.json'),
        JSON.stringify({
          clients: [{ id: 'seeded-client', secret: 'seeded-secret', name: 'Seeded' }],
          knobs: { mediaLinkTtlMs: 120_000 },
          recordings: [
            { conversationId: 'c-seed-1', recordingId: 'r-seed-1', path: join(AUDIO, 'call_mono_pcm16_8k.wav'), externalTag: 'LEGACY-1' },
            { conversationId: 'c-seed-2', recordingId: 'r-seed-2', text: 'hello', fileState: 'ARCHIVED' },
          ],
        }),
      );
      const { child, stdout } = await startCli(['sim', 'genesys', '--port', '0', '--seed', join(dir, 'seed.json')], /Ctrl-C stops it/);
      try {
        const out = stdout();
        const base = /api base URL:\s+(http:\/\/127\.0\.0\.1:\d+)/.exec(out)?.[1];
        expect(base).toBeDefined();
        expect(out).toMatch(new RegExp(`login base URL:\\s+${base}`));
        expect(out).toMatch(/client id:\s+seeded-client/);
        expect(out).toMatch(/client secret:\s+seeded-secret/);
        expect(out).toContain('c-seed-2 / r-seed-2 (ARCHIVED)');
        const login = await request(`${base}/oauth/token`, {
          method: 'POST',
          headers: { authorization: `Basic ${Buffer.from('seeded-client:seeded-secret').toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
          body: 'grant_type=client_credentials',
        });
        const { access_token } = (await login.body.json()) as { access_token: string };
        const meta = await request(`${base}/api/v2/conversations/c-seed-1/recordingmetadata`, { headers: { authorization: `Bearer ${access_token}` } });
        expect(meta.statusCode).toBe(200);
        expect(await meta.body.json()).toMatchObject([{ id: 'r-seed-1', fileState: 'AVAILABLE' }]);
        const settings = await request(`${base}/api/v2/recording/settings`, { headers: { authorization: `Bearer ${access_token}` } });
        expect(await settings.body.json()).toMatchObject({ recordingPlaybackUrlTtl: 2 });
      } finally {
        expect(await stop(child)).toBe(0);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a seed file is checked: bad fields are named; a bare array is the recordings; paths are relative to the file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'custodian-sim-'));
    try {
      writeFileSync(join(dir, 'bad.json'), JSON.stringify({ recordings: [{ conversationId: 'c', recordingId: 'r', fileState: 'FROZEN' }] }));
      expect(() => readSeed(join(dir, 'bad.json'))).toThrow(ConfigError);
      expect(() => readSeed(join(dir, 'bad.json'))).toThrow(/recordings\.0\.fileState/);
      writeFileSync(join(dir, 'extra.json'), JSON.stringify({ recordings: [], nonsense: 1 }));
      expect(() => readSeed(join(dir, 'extra.json'))).toThrow(/nonsense/);
      writeFileSync(join(dir, 'arr.json'), JSON.stringify([{ conversationId: 'c', recordingId: 'r', path: 'a.wav' }]));
      expect(readSeed(join(dir, 'arr.json'))).toEqual({ recordings: [{ conversationId: 'c', recordingId: 'r', path: join(dir, 'a.wav') }] });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('sim legacy --provider generic_http serves its recording with the printed credentials', async () => {
    const { child, stdout } = await startCli(['sim', 'legacy', '--provider', 'generic_http', '--port', '0'], /Ctrl-C stops it/);
    try {
      const endpoint = /api endpoint:\s+(\S+)/.exec(stdout())?.[1];
      const user = /username:\s+(\S+)/.exec(stdout())?.[1];
      const pass = /password:\s+(\S+)/.exec(stdout())?.[1];
      const res = await request(`${endpoint}/recordings/REC-0001.wav`, { headers: { authorization: `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}` } });
      expect(res.statusCode).toBe(200);
      expect(await res.body.text()).toBe('RIFF-demo-bytes');
    } finally {
      expect(await stop(child)).toBe(0);
    }
  });

  it('sim without a known kind prints usage and exits 2; a bad provider is a configuration error', async () => {
    const log = vi.spyOn(console, 'log').mockImplementation(() => {});
    try {
      expect(await runSim(['nope'])).toBe(2);
      expect(String(log.mock.calls[0]?.[0])).toContain('custodian sim genesys');
    } finally {
      log.mockRestore();
    }
    await expect(runSim(['legacy', '--provider', 'nope'])).rejects.toThrow(/--provider/);
    await expect(runSim(['genesys', '--port', 'x'])).rejects.toThrow(ConfigError);
  });
});
