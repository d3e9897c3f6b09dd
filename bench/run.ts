/**
 * Runs the benchmarks: all of them, or those named on the command line.
 *
 *   npm run bench                          # everything, normal sizes (about 17–18 minutes on 2 cores)
 *   npm run bench -- --quick               # smoke run, every benchmark shrunk (< 60 s each)
 *   npm run bench -- stream catalog        # only these
 *   npm run bench -- catalog --full        # 10 M recordings instead of 1 M
 *   npm run bench -- --wait-quiet=600      # first wait (up to 600 s) until the machine is idle
 *
 * Parameters `--key=value` go to every benchmark (each reads its own; see the head of each file).
 * Each benchmark prints its tables and writes bench/results/<name>.json; this runner also writes
 * bench/results/run.json with every goal. Exit code 1 when a benchmark failed (a correctness
 * check such as the token benchmark's single login, or an error).
 */
import { catalog } from './catalog.js';
import { type Benchmark, type BenchResult, type Goal, cpuBusy, loadavg, machineInfo, numParam, parseArgs, printTable, runBenchmark, sleep, verdict, writeResult } from './lib/common.js';
import { stream } from './stream.js';
import { timeTo202 } from './time-to-202.js';
import { token } from './token.js';
import { transcode } from './transcode.js';

const ALL: Benchmark[] = [transcode, token, timeTo202, catalog, stream];

const args = parseArgs(process.argv.slice(2));
const unknown = args.names.filter((n) => !ALL.some((b) => b.name === n));
if (unknown.length) {
  console.error(`unknown benchmark ${unknown.join(', ')}; known: ${ALL.map((b) => b.name).join(', ')}`);
  process.exit(2);
}
const selected = args.names.length ? ALL.filter((b) => args.names.includes(b.name)) : ALL;

console.log(`custodian benchmarks: ${selected.map((b) => b.name).join(', ')}${args.quick ? ' (--quick)' : ''}${args.full ? ' (--full)' : ''}`);
console.log(JSON.stringify(machineInfo()));

// Other work on the machine skews every number: say so, or wait for quiet.
const waitQuiet = numParam(args, 'wait-quiet', 0);
const until = Date.now() + waitQuiet * 1000;
let busy = await cpuBusy(2000);
while (busy > 0.15 && Date.now() < until) {
  console.log(`machine busy (${(busy * 100).toFixed(0)} % CPU, load ${loadavg()}): waiting for quiet…`);
  await sleep(10_000);
  busy = await cpuBusy(3000);
}
if (busy > 0.15) console.warn(`WARNING: the machine is busy before the run (${(busy * 100).toFixed(0)} % CPU in use, load ${loadavg()}): numbers will be low and noisy.`);

const started = Date.now();
const results: BenchResult[] = [];
const failures: string[] = [];
for (const b of selected) {
  try {
    results.push(await runBenchmark(b, args));
  } catch (e) {
    console.error(`\n!!! ${b.name}: ${(e as Error).stack ?? e}`);
    failures.push(`${b.name}: ${(e as Error).message}`);
  }
}

const goals: (Goal & { bench: string })[] = results.flatMap((r) => r.goals.map((g) => ({ ...g, bench: r.name })));
printTable(
  `All goals (${((Date.now() - started) / 1000).toFixed(0)} s)`,
  ['benchmark', 'goal', 'target', 'measured', ''],
  goals.map((g) => [g.bench, g.goal, g.target, g.value, verdict(g)]),
);
writeResult({
  name: 'run',
  started_at: new Date(started).toISOString(),
  duration_s: (Date.now() - started) / 1000,
  quick: args.quick,
  machine: { ...machineInfo(), cpu_busy_before: +busy.toFixed(2), loadavg_at_end: loadavg() },
  params: Object.fromEntries(args.params),
  results: results.map((r) => ({ name: r.name, duration_s: r.duration_s, goals: r.goals, observations: r.observations })),
  goals,
  notes: [],
  observations: failures,
});
if (failures.length) {
  console.error(`\nFAILED: ${failures.join('; ')}`);
  process.exit(1);
}
process.exit(0);
