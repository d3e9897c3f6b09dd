import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LegacySimulator, startLegacySimulator } from '../src/sources/legacy-http/simulator.js';
import { postgresAvailable, createTestDatabase } from './support/postgres.js';
import { AUDIO, KEYS, retrieveBody } from './support/gateway.js';
import { raw } from './support/http.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const MULAW = readFileSync(join(AUDIO, 'call_mono_mulaw_8k.wav'));
const PCM = readFileSync(join(AUDIO, 'call_mono_pcm16_8k.wav'));

interface Instance {
  child: ChildProcess;
  url: string;
}

/**
 * Several gateway processes, one PostgreSQL: any instance answers any request, jobs are claimed
 * by exactly one worker, a killed instance's jobs finish elsewhere, and the audit chain stays whole.
 */
describe.runIf(await postgresAvailable())('three instances on one PostgreSQL', () => {
  let dir: string;
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  let sim: LegacySimulator;
  const instances: Instance[] = [];

  async function startInstance(config: string): Promise<Instance> {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'serve', '--config', config], { cwd: ROOT, env: { ...process.env, PORT: '0' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`instance did not start:\n${out}`)), 30_000);
      child.stdout!.on('data', (c: Buffer) => {
        out += c.toString();
        const m = /"address":"(http:\/\/[^"]+)"/.exec(out);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]!);
        }
      });
      child.stderr!.on('data', (c: Buffer) => (out += c.toString()));
      child.once('exit', (code) => reject(new Error(`instance exited ${code}:\n${out}`)));
    });
    return { child, url };
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'custodian-scale-'));
    cpSync(AUDIO, join(dir, 'archive'), { recursive: true });
    db = await createTestDatabase();
    // A slow WAN archive: every job spends seconds fetching, so one can be killed mid-job.
    sim = await startLegacySimulator({
      provider: 'generic_http',
      recordings: Array.from({ length: 6 }, (_, i) => ({ id: `wan-${i}`, path: join(AUDIO, 'call_mono_mulaw_8k.wav') })),
      knobs: { latencyMs: 300, bytesPerSecond: 40_000, auth: 'none' },
    });
    const config = join(dir, 'custodian.json');
    writeFileSync(
      config,
      JSON.stringify({
        data_dir: join(dir, 'data'),
        allow_inline_secrets: true,
        catalog: { driver: 'postgres', url: db.url },
        logging: { level: 'info' },
        jobs: { poll_interval_ms: 100, lease_ms: 2_000, heartbeat_ms: 300, retry_base_ms: 100 },
        auth: {
          api_keys: [{ id: 'acme-reader', tenant: 'acme', principal: 'alice', scopes: ['recordings:read', 'audit:read'], key: KEYS.acme }],
          rate_limit: { max: 10_000, window_ms: 60_000 },
        },
        tenants: [
          {
            id: 'acme',
            sources: [
              { name: 'archive', type: 'filesystem', root: join(dir, 'archive'), source_systems: ['avaya_aura'] },
              { name: 'wan', type: 'legacy-http', provider: 'generic_http', api_endpoint: sim.endpoint, auth_type: 'none', mode: 'async', source_systems: ['wan_archive'] },
            ],
          },
        ],
      }),
    );
    for (let i = 0; i < 3; i++) instances.push(await startInstance(config));
    // Seed through the CLI, as an operator would.
    const records = join(dir, 'records.jsonl');
    writeFileSync(
      records,
      [
        ...Array.from({ length: 6 }, (_, i) => JSON.stringify({ tenant_id: 'acme', call_id: `c-wan-${i}`, source_system: 'wan_archive', legacy_archive_id: `wan-${i}` })),
        JSON.stringify({ tenant_id: 'acme', call_id: 'c-local', source_system: 'avaya_aura', legacy_archive_id: 'local-1', locator: 'call_mono_pcm16_8k.wav' }),
      ].join('\n'),
    );
    const imp = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'import', records, '--config', config], { cwd: ROOT, stdio: 'ignore' });
    expect(await new Promise((r) => imp.once('exit', r))).toBe(0);
  }, 120_000);

  afterAll(async () => {
    for (const i of instances) if (i.child.exitCode === null) i.child.kill('SIGKILL');
    await sim?.close();
    await db?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  const auth = { authorization: `Bearer ${KEYS.acme}` };
  const post = (url: string, body: unknown) =>
    raw(`${url}/api/v1/recordings/retrieve`, { method: 'POST', headers: { 'content-type': 'application/json', ...auth }, body: JSON.stringify(body) });

  it('serves any request from any instance, survives a SIGKILL mid-job, and keeps one audit chain', async () => {
    // Direct streams from every instance.
    for (const inst of instances) {
      const res = await post(inst.url, retrieveBody({ target_recording_ref: 'c-local', format_preference: 'original' }));
      expect(res.status).toBe(200);
      expect(sha256(res.body)).toBe(sha256(PCM));
    }
    // Six slow jobs, queued through different instances.
    const jobs: { id: string; poll: string }[] = [];
    for (let i = 0; i < 6; i++) {
      const res = await post(instances[i % 3]!.url, retrieveBody({ target_recording_ref: `c-wan-${i}`, format_preference: 'original' }));
      expect(res.status).toBe(202);
      const b = JSON.parse(res.body.toString());
      jobs.push({ id: b.job_id, poll: b.poll_endpoint });
    }
    // Wait until the first instance holds a running job, then kill it without warning.
    const victim = instances[0]!;
    const victimPid = victim.child.pid!;
    const { default: pg } = await import('pg');
    const heldByVictim = async () => {
      const c = new pg.Client({ connectionString: db.url });
      await c.connect();
      const r = await c.query<{ id: string }>("select id from jobs where status = 'running' and lease_owner like $1", [`%:${victimPid}:%`]);
      await c.end();
      return r.rows.map((x) => x.id);
    };
    let victimJobs: string[] = [];
    for (let i = 0; i < 200 && victimJobs.length === 0; i++) {
      victimJobs = await heldByVictim();
      if (!victimJobs.length) await new Promise((r2) => setTimeout(r2, 50));
    }
    expect(victimJobs.length).toBeGreaterThan(0);
    victim.child.kill('SIGKILL');
    await new Promise((r) => victim.child.once('exit', r));
    // What it held when it died: it may have claimed another job between the query and the kill
    // (its rows keep its lease owner until the lease lapses and a survivor takes them over).
    victimJobs = [...new Set([...victimJobs, ...(await heldByVictim())])];

    // Every job finishes on the survivors; content is byte-exact.
    const survivor = instances[1]!.url;
    for (const job of jobs) {
      let status;
      for (let i = 0; i < 600; i++) {
        status = JSON.parse((await raw(`${survivor}${job.poll}`, { headers: auth })).body.toString());
        if (status.status === 'ready' || status.status === 'failed') break;
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(status.status, JSON.stringify(status)).toBe('ready');
      expect(status.attempts).toBeLessThanOrEqual(victimJobs.includes(job.id) ? 2 : 1);
      const content = await raw(`${instances[2]!.url}${status.content_endpoint}`, { headers: auth });
      expect(sha256(content.body)).toBe(sha256(MULAW));
    }
    // Fetches: one per job, plus one for each job the victim was holding.
    const gets = sim.requests.filter((r) => r.method === 'GET').length;
    expect(gets).toBeLessThanOrEqual(jobs.length + victimJobs.length);

    const verify = JSON.parse((await raw(`${survivor}/api/v1/audit/verify`, { headers: auth })).body.toString());
    expect(verify.ok, JSON.stringify(verify)).toBe(true);
  }, 120_000);
});

describe.runIf(await postgresAvailable())('the rate limit holds across instances', () => {
  it('counts one principal’s requests to two instances against one budget', async () => {
    const { parseConfig } = await import('../src/config/load.js');
    const { startGateway } = await import('../src/main.js');
    const pino = (await import('pino')).default;
    const db = await createTestDatabase();
    const dir = mkdtempSync(join(tmpdir(), 'custodian-rl-'));
    const doc = {
      data_dir: dir,
      allow_inline_secrets: true,
      server: { port: 0 },
      catalog: { driver: 'postgres', url: db.url },
      jobs: { concurrency: 0 },
      auth: { api_keys: [{ id: 'acme-reader', tenant: 'acme', principal: 'alice', scopes: ['recordings:read'], key: KEYS.acme }], rate_limit: { max: 3, window_ms: 60_000 } },
      tenants: [{ id: 'acme' }],
    };
    const a = await startGateway(parseConfig(doc, {}), { logger: pino({ level: 'silent' }) });
    const b = await startGateway(parseConfig(doc, {}), { logger: pino({ level: 'silent' }) });
    try {
      const statuses: number[] = [];
      for (const url of [a.url, b.url, a.url, b.url]) statuses.push((await raw(`${url}/api/v1/recordings`, { headers: { authorization: `Bearer ${KEYS.acme}` } })).status);
      expect(statuses).toEqual([200, 200, 200, 429]);
    } finally {
      await a.close();
      await b.close();
      await db.drop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
