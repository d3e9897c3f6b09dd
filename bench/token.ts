/**
 * token: 1 000 concurrent opens of Genesys Cloud copies with a cold token must cause exactly one
 * OAuth login at the (simulated) Genesys login host — logins are single-flight. Two phases, each
 * on a freshly booted gateway (so the token cache is cold):
 *
 *  - connector: 1 000 × GenesysConnector.open() at once, in process, no HTTP in front;
 *  - http: 1 000 × GET /api/v1/recordings/{ref}/media?format=original at once through the gateway.
 *
 * The simulator holds every login answer --login-delay-ms (200 ms) — a real token endpoint is not
 * instant, and with an instant one a broken single-flight would hardly show over HTTP (the first
 * token would be back before most requests asked). A login is every request to the login host,
 * whatever its status (the simulator's loginAttempts), not only the tokens issued.
 *
 * Prints the login count and fails (exit 1) when it is not exactly 1 in either phase.
 *
 *   npx tsx bench/token.ts [--quick] [--opens=1000] [--recordings=50] [--login-delay-ms=200]
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
  const p = { opens: numParam(args, 'opens', 1000, 1000), recordings: numParam(args, 'recordings', 50, 20), login_delay_ms: numParam(args, 'login-delay-ms', 200, 200) };
  const r = newResult('token', args, p);
  r.notes.push(
    `Genesys Cloud simulator (split layout: login, api and media hosts on their own ports), ${p.recordings} recordings of ${MEDIA.length} bytes, opens spread round-robin over them; each phase on a freshly booted gateway (cold token). Login answers held ${p.login_delay_ms} ms (loginDelayMs); logins counted as login requests of any status (loginAttempts), tokens issued beside them.`,
  );
  const dir = mkdtempSync(join(tmpdir(), 'custodian-bench-token-'));
  const sim: GenesysSimulator = await startGenesysSimulator({ transcodePolls: 0, loginDelayMs: p.login_delay_ms });
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
  const phases: Record<string, { logins: number; tokens_issued: number; ok: number; wall_ms: number; latency_ms: ReturnType<typeof summarize>; errors: Record<string, number>; sim_requests: Record<string, number> }> = {};
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
        const before = sim.loginAttempts;
        const tokensBefore = sim.logins;
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
        phases.connector = { logins: sim.loginAttempts - before, tokens_issued: sim.logins - tokensBefore, ok, wall_ms: msSince(t0), latency_ms: summarize(lat), errors, sim_requests: simCounts() };
      } finally {
        await gw.close();
      }
    }
    // ---------------------------------------------------------------- HTTP × N
    {
      const gw = await boot('http');
      const agent = loadAgent();
      try {
        const before = sim.loginAttempts;
        const tokensBefore = sim.logins;
        sim.clearLog();
        const t0 = process.hrtime.bigint();
        const ds = await Promise.all(
          Array.from({ length: p.opens }, (_, i) => download(`${gw.url}/api/v1/recordings/rec-${i % p.recordings}/media?format=original`, agent, { headers: bearer })),
        );
        phases.http = {
          logins: sim.loginAttempts - before,
          tokens_issued: sim.logins - tokensBefore,
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
    `${p.opens} concurrent opens with a cold token (login answers held ${p.login_delay_ms} ms)`,
    ['phase', 'login requests', 'tokens issued', 'complete', 'wall ms', 'p50 ms', 'p99 ms', 'errors', 'simulator requests'],
    Object.entries(phases).map(([k, v]) => [
      k,
      v.logins,
      v.tokens_issued,
      `${v.ok}/${p.opens}`,
      fmt.ms(v.wall_ms),
      fmt.ms(v.latency_ms.p50),
      fmt.ms(v.latency_ms.p99),
      Object.entries(v.errors).map(([e, n]) => `${n}× ${e}`).join('; ') || '0',
      Object.entries(v.sim_requests).map(([e, n]) => `${e}: ${n}`).join(', '),
    ]),
  );
  for (const [k, v] of Object.entries(phases)) {
    console.log(`LOGINS (${k}): ${v.logins} login requests, ${v.tokens_issued} tokens issued`);
    r.goals.push({ goal: `login requests (any status) for ${p.opens} concurrent opens, cold token, login ${p.login_delay_ms} ms (${k})`, target: 'exactly 1', value: `${v.logins} (tokens issued ${v.tokens_issued})`, met: v.logins === 1 });
    r.goals.push({ goal: `opens that delivered every byte (${k})`, target: `${p.opens}`, value: String(v.ok), met: v.ok === p.opens });
  }
  r.results = phases;
  const res = finish(r);
  const bad = Object.entries(phases).filter(([, v]) => v.logins !== 1);
  const short = Object.entries(phases).filter(([, v]) => v.ok !== p.opens);
  // fail loudly, after the result is written (runBenchmark throws on `failed`)
  const problems = [
    ...(bad.length ? [`expected exactly 1 login request per phase, got ${bad.map(([k, v]) => `${k}: ${v.logins}`).join(', ')}`] : []),
    ...(short.length ? [`not every open delivered every byte: ${short.map(([k, v]) => `${k}: ${v.ok}/${p.opens}`).join(', ')}`] : []),
  ];
  if (problems.length) res.failed = problems.join('; ');
  return res;
}

export const token: Benchmark = { name: 'token', description: '1 000 concurrent Genesys opens with a cold token → exactly one login', run };

if (isMain(import.meta.url)) await standalone(token);
