import { describe, expect, it } from 'vitest';
import { COMMANDS, parseCommandArgs, parseCommandLine, USAGE, UsageError } from './args.js';

const options = { port: { type: 'string' }, json: { type: 'boolean' } } as const;

describe('parseCommandArgs', () => {
  it('returns what parseArgs returns for a good command line', () => {
    const r = parseCommandArgs('sim', { args: ['genesys', '--port', '7', '--json'], allowPositionals: true, options });
    expect(r.values).toEqual({ port: '7', json: true });
    expect(r.positionals).toEqual(['genesys']);
  });

  it.each([
    [['--bogus'], true, /^custodian sim: Unknown option '--bogus' \(custodian sim --help\)$/],
    [['--port'], true, /^custodian sim: Option '--port <value>' argument missing \(custodian sim --help\)$/],
    [['--json=yes'], true, /^custodian sim: Option '--json' does not take an argument \(custodian sim --help\)$/],
    [['stray'], false, /^custodian sim: Unexpected argument 'stray'.*\(custodian sim --help\)$/],
  ])('refuses %j with a one-line UsageError naming the command', (args, allowPositionals, message) => {
    let caught: unknown;
    try {
      parseCommandArgs('sim', { args, allowPositionals, options });
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(UsageError);
    expect((caught as Error).message).toMatch(message);
    expect((caught as Error).message).not.toContain('To specify a positional');
  });

  it('names no command before one is known', () => {
    expect(() => parseCommandArgs('', { args: ['--bogus'], options })).toThrow(/^custodian: Unknown option '--bogus' \(custodian --help\)$/);
  });
});

/** Every command takes only what it reads: anything else is refused, never silently ignored. */
describe('parseCommandLine', () => {
  const C = ['--config', 'c.yaml'];

  // Each command line as USAGE, README and docs/ write it.
  it.each([
    [['serve', ...C], 'serve', []],
    [['demo'], 'demo', []],
    [['migrate', ...C], 'migrate', []],
    [['import', 'records.jsonl', ...C], 'import', ['records.jsonl']],
    [['export', ...C], 'export', []],
    [['export', '--tenant', 'acme', '--out', 'x.jsonl', ...C], 'export', []],
    [['keys', 'create', '--tenant', 'acme', '--principal', 'p', '--scopes', 'recordings:read,audit:read', '--description', 'd', ...C], 'keys create', []],
    [['keys', 'revoke', 'k1', ...C], 'keys revoke', ['k1']],
    [['audit', 'verify', ...C], 'audit verify', []],
    [[...C, 'audit', 'verify'], 'audit verify', []],
    [['audit', 'export', '--from', '2026-01-01', '--to', '2026-04-01', '--tenant', 'acme', '--out', 'a.jsonl', ...C], 'audit export', []],
    [['sync', '--tenant', 'acme', '--source', 'nas', '--since', '2024-03-01', ...C], 'sync', []],
    [['report', 'migration', '--tenant', 'acme', '--format', 'csv', '--out', 'r.csv', ...C], 'report migration', []],
  ])('accepts %j', (argv, command, rest) => {
    const r = parseCommandLine(argv);
    expect(r.command).toBe(command);
    expect(r.rest).toEqual(rest);
    expect(r.help).toBe(false);
  });

  it.each([
    [['audit', 'verify', '--tenant', 't1'], /^custodian audit verify: --tenant does not apply \(it walks the whole chain\)$/],
    [['migrate', '--out', 'x', 'extra'], /^custodian migrate: --out does not apply \(it takes no options\)$/],
    [['migrate', 'extra'], /^custodian migrate: Unexpected argument 'extra' \(custodian migrate --help\)$/],
    [['import', 'f.jsonl', '--tenant', 't'], /^custodian import: --tenant does not apply \(each row names its tenant_id\)$/],
    [['import', 'f.jsonl', 'g.jsonl'], /^custodian import: Unexpected argument 'g\.jsonl' \(custodian import --help\)$/],
    [['import'], /^custodian import: missing <file> \(custodian import --help\)$/],
    [['keys', 'revoke'], /^custodian keys revoke: missing <id> \(custodian keys revoke --help\)$/],
    [['keys', 'revoke', 'k1', 'k2'], /^custodian keys revoke: Unexpected argument 'k2'/],
    [['keys', 'create', '--tenant', 'a', '--principal', 'p', '--out', 'k'], /^custodian keys create: --out does not apply \(it takes --tenant, --principal, --scopes, --description\)$/],
    [['export', '--source', 's'], /^custodian export: --source does not apply \(it takes --tenant, --out\)$/],
    [['audit', 'export', '--format', 'csv'], /^custodian audit export: --format does not apply/],
    [['sync', 'now'], /^custodian sync: Unexpected argument 'now'/],
    [['serve', '--tenant', 'acme'], /^custodian serve: --tenant does not apply/],
    [['demo', '--out', 'x'], /^custodian demo: --out does not apply/],
  ])('refuses %j with one line naming the option and the command', (argv, message) => {
    let caught: unknown;
    try {
      parseCommandLine([...argv, '--config', 'c.yaml']);
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(UsageError);
    expect((caught as Error).message).toMatch(message);
    expect((caught as Error).message).not.toContain('\n');
  });

  it('names the command, not an option value before it, when parseArgs itself refuses', () => {
    expect(() => parseCommandLine(['--config', 'c.yaml', 'audit', 'verify', '--bogus'])).toThrow(/^custodian audit verify: Unknown option '--bogus' \(custodian audit verify --help\)$/);
    expect(() => parseCommandLine(['--config', 'c.yaml', 'sync', '--since'])).toThrow(/^custodian sync: /);
  });

  it('answers --help (or -h) before judging the rest, and leaves unknown commands to the caller', () => {
    expect(parseCommandLine(['audit', 'verify', '--tenant', 't1', '--help']).help).toBe(true);
    expect(parseCommandLine(['-h']).help).toBe(true);
    expect(parseCommandLine([])).toMatchObject({ command: undefined, help: false });
    for (const argv of [['bogus'], ['audit'], ['audit', 'bogus'], ['keys'], ['report', 'x']]) expect(parseCommandLine(argv).command, argv.join(' ')).toBeUndefined();
  });

  // The table and the help text are kept apart; this keeps them telling the same story.
  it('has a USAGE line for every command, naming only options the command takes', () => {
    const lines = USAGE.split('\n').map((l) => l.trim());
    for (const [name, spec] of Object.entries(COMMANDS)) {
      const line = lines.find((l) => l === name || l.startsWith(`${name} `));
      expect(line, name).toBeDefined();
      const named = [...line!.matchAll(/--([a-z-]+)/g)].map((m) => m[1]).filter((o) => o !== 'config' && o !== 'help');
      for (const o of named) expect(spec.options, `${name} --${o}`).toContain(o);
    }
  });

  // USAGE promised --config to every command and left out doctor's --timeout-ms.
  it("tells the truth about the commands that read their own command lines (doctor, verify, sim)", async () => {
    const lines = USAGE.split('\n').map((l) => l.trim());
    expect(lines.find((l) => l.startsWith('doctor '))).toContain('--timeout-ms');
    const verify = lines.find((l) => l.startsWith('verify integrity '))!;
    for (const o of ['--tenant', '--recording', '--sample', '--concurrency', '--min-similarity']) expect(verify, o).toContain(o);
    // sim takes no --config (it reads no config file): USAGE must not say every command does.
    const { runSim } = await import('./sim.js');
    await expect(runSim(['genesys', '--config', 'x.yaml'])).rejects.toBeInstanceOf(UsageError);
    const claim = USAGE.slice(USAGE.indexOf('\n\n', USAGE.indexOf('sim legacy'))).replace(/\s+/g, ' ');
    expect(claim).toMatch(/Every command but sim also takes --config/);
  });
});
