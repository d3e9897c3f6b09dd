/**
 * token: 1 000 concurrent opens of Genesys Cloud copies with a cold token must cause exactly one
 * OAuth login at the (simulated) Genesys login host — logins are single-flight. Two phases, each
 * on a freshly booted gateway (so the token cache is cold):
 *
 *  - connector: 1 000 × GenesysConnector.open() at once, in process, no HTTP in front;
 *  - http: 1 000 × GET /api/v1/recordings/{ref}/media?format=original at once through the gateway.
 *
 * Prints the login count and fails (exit 1) when it is not exactly 1 in either phase.
 *
 *   npx tsx bench/token.ts [--quick] [--opens=1000] [--recordings=50]
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type GenesysSimulator, startGenesysSimulator } from '../src/sources/genesys/simulator.js';
import { locationOf } from '../src/sources/registry.js';
import { type BenchArgs, type Benchmark, DEMO_AUDIO, finish, fmt, isMain, msSince, newResult, numParam, printTable, standalone, summarize } from './lib/common.js';
import { type BenchGateway, bearer, bootGateway } from './lib/gateway.js';
import { complete, download, failures, loadAgent } from './lib/load.js';

const MEDIA = readFileSync(join(DEMO_AUDIO, 'call_mono_mulaw_8k.wav'));

async function run(args: BenchArgs) {
  const p = { opens: numParam(args, 'opens', 1000, 1000), recordings: numParam(args, 'recordings', 50, 20) };
  const r = newResult('token', args, p);
  r.notes.push(
    `Genesys Cloud simulator (split layout: login, api and media hosts on their own ports), ${p.recordings} recordings of ${MEDIA.length} bytes, opens spread round-robin over them; each phase on a freshly booted gateway (cold token).`,
  );
  const dir = mkdtempSync(join(tmpdir(), 'custodian-bench-token-'));
  const sim: GenesysSimulator = await startGenesysSimulator({ transcodePolls: 0 });
  for (let i = 0; i < p.recordings; i++) sim.addRecording({ conversationId: `conv-${i}`, recordingId: `rec-${i}`, bytes: MEDIA });
  const source = {
    name: 'genesys',
    type: 'genesys',
    environment: 'mypurecloud.ie',
    login_base_url: sim.loginBaseUrl,
    api_base_url: sim.apiBaseUrl,
    client_id: 'custodian-sim',
    client_secret: 'custodian-sim-secret',
    source_systems: ['genesys_cloud'],
    timeout_ms: 60_000,
  };
  const seed = Array.from({ length: p.recordings }, (_, i) => ({ call_id: `c-${i}`, source_system: 'genesys_cloud', recording_id: `rec-${i}`, conversation_id: `conv-${i}` }));
  const phases: Record<string, { logins: number; ok: number; wall_ms: number; latency_ms: ReturnType<typeof summarize>; errors: Record<string, number>; sim_requests: Record<string, number> }> = {};
  const boot = async (name: string): Promise<BenchGateway> => {
    const gw = await bootGateway({ dir: join(dir, name), sources: [source] });
    await gw.seed(seed);
    return gw;
  };
  const simCounts = () => {
    const out: Record<string, number> = {};
    for (const q of sim.requests) out[`${q.role} ${q.method} ${q.status ?? '-'}`] = (out[`${q.role} ${q.method} ${q.status ?? '-'}`] ?? 0) + 1;
    return out;
  };
  try {
    // ---------------------------------------------------------------- connector.open × N
    {
      const gw = await boot('connector');
      try {
        const recs = await Promise.all(seed.map((s) => gw.deps.recordings.findByRef('acme', s.recording_id)));
        const before = sim.logins;
        sim.clearLog();
        const t0 = process.hrtime.bigint();
        const lat: number[] = [];
        const errors: Record<string, number> = {};
        let ok = 0;
        await Promise.all(
          Array.from({ length: p.opens }, async (_, i) => {
            const rec = recs[i % recs.length]!;
            const copy = rec.copies[0]!;
            const s0 = process.hrtime.bigint();
            try {
              const media = await gw.deps.sources.forCopy('acme', copy).open(locationOf(copy, rec.conversationId), { signal: new AbortController().signal });
              let n = 0;
              for await (const c of media.body) n += (c as Buffer).length;
              if (n === MEDIA.length) ok++;
              else errors[`short body ${n}`] = (errors[`short body ${n}`] ?? 0) + 1;
            } catch (e) {
              const k = (e as { code?: string }).code ?? (e as Error).message;
              errors[k] = (errors[k] ?? 0) + 1;
            }
            lat.push(msSince(s0));
          }),
        );
        phases.connector = { logins: sim.logins - before, ok, wall_ms: msSince(t0), latency_ms: summarize(lat), errors, sim_requests: simCounts() };
      } finally {
        await gw.close();
      }
    }
    // ---------------------------------------------------------------- HTTP × N
    {
      const gw = await boot('http');
      const agent = loadAgent();
      try {
        const before = sim.logins;
        sim.clearLog();
        const t0 = process.hrtime.bigint();
        const ds = await Promise.all(
          Array.from({ length: p.opens }, (_, i) => download(`${gw.url}/api/v1/recordings/rec-${i % p.recordings}/media?format=original`, agent, { headers: bearer })),
        );
        phases.http = {
          logins: sim.logins - before,
          ok: ds.filter((d) => complete(d, MEDIA.length)).length,
          wall_ms: msSince(t0),
          latency_ms: summarize(ds.map((d) => d.totalMs)),
          errors: failures(ds, MEDIA.length),
          sim_requests: simCounts(),
        };
        const logs = gw.logs.snapshot();
        if (Object.keys(logs).length) r.observations.push(`gateway log lines (http phase): ${JSON.stringify(logs)}`);
      } finally {
        await gw.close();
        await agent.close();
      }
    }
  } finally {
    await sim.close();
    rmSync(dir, { recursive: true, force: true });
  }

  printTable(
    `${p.opens} concurrent opens with a cold token`,
    ['phase', 'logins', 'complete', 'wall ms', 'p50 ms', 'p99 ms', 'errors', 'simulator requests'],
    Object.entries(phases).map(([k, v]) => [
      k,
      v.logins,
      `${v.ok}/${p.opens}`,
      fmt.ms(v.wall_ms),
      fmt.ms(v.latency_ms.p50),
      fmt.ms(v.latency_ms.p99),
      Object.entries(v.errors).map(([e, n]) => `${n}× ${e}`).join('; ') || '0',
      Object.entries(v.sim_requests).map(([e, n]) => `${e}: ${n}`).join(', '),
    ]),
  );
  for (const [k, v] of Object.entries(phases)) {
    console.log(`LOGINS (${k}): ${v.logins}`);
    r.goals.push({ goal: `logins for ${p.opens} concurrent opens, cold token (${k})`, target: 'exactly 1', value: String(v.logins), met: v.logins === 1 });
    r.goals.push({ goal: `opens that delivered every byte (${k})`, target: `${p.opens}`, value: String(v.ok), met: v.ok === p.opens });
  }
  r.results = phases;
  const res = finish(r);
  const bad = Object.entries(phases).filter(([, v]) => v.logins !== 1);
  // fail loudly, after the result is written (runBenchmark throws on `failed`)
  if (bad.length) res.failed = `expected exactly 1 login per phase, got ${bad.map(([k, v]) => `${k}: ${v.logins}`).join(', ')}`;
  return res;
}

export const token: Benchmark = { name: 'token', description: '1 000 concurrent Genesys opens with a cold token → exactly one login', run };

if (isMain(import.meta.url)) await standalone(token);
