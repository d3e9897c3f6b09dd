import { parseArgs, type ParseArgsConfig } from 'node:util';

/**
 * A command line the CLI cannot read (an unknown option, an option without its value, a stray
 * argument): exit 2 with one line naming it, as for a missing command — not a stack trace.
 */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** node:util's parseArgs (strict) for one command ('' before one is known), with its refusals turned into a UsageError that names the command's --help. */
export function parseCommandArgs<T extends ParseArgsConfig>(command: string, config: T): ReturnType<typeof parseArgs<T>> {
  try {
    return parseArgs(config);
  } catch (e) {
    // Every refusal of parseArgs carries an ERR_PARSE_ARGS_* code; anything else is not ours to reword.
    const code = (e as { code?: unknown }).code;
    if (typeof code !== 'string' || !code.startsWith('ERR_PARSE_ARGS_')) throw e;
    // Its messages end with advice on positionals starting with '-' that does not apply here.
    const first = (e as Error).message.split('. To specify a positional')[0] ?? (e as Error).message;
    const cmd = command ? `custodian ${command}` : 'custodian';
    throw new UsageError(`${cmd}: ${first.replace(/\.$/, '')} (${cmd} --help)`);
  }
}

export const USAGE = `custodian <command> [--config file]

  serve                 run the gateway with the config file (CUSTODIAN_CONFIG or --config)
  demo                  seed a demo catalog and archive in the data directory and serve it (npm start)
  migrate               bring the catalog schema up to date
  import <file>         load catalog records (.jsonl or .csv); nothing is written if any row is bad
  export [--tenant t]   write catalog records as JSONL to stdout (or --out file)
  keys create --tenant t --principal p --scopes a,b [--description text]   issue an API key (shown once)
  keys revoke <id>      revoke an API key
  audit verify          walk the audit hash chain and its signed checkpoints; report the first broken link
  audit export --from d --to d [--tenant t] --out file.jsonl   events + signed manifest (docs/AUDIT.md)
  sync [--tenant t] [--source name] [--since ISO]   sync the catalog from Genesys Cloud and legacy archives, then link copies (docs/SYNC.md)
  report migration [--tenant t] [--format json|csv] [--out file]   legacy-only, cloud-only, both, ambiguous, mismatched, retention gaps
  verify integrity [--tenant t] (--recording ref | --sample N|P%) [--concurrency n] [--min-similarity 0.9]   decode both copies of linked recordings and compare them (docs/SYNC.md)
  doctor [--tenant t] [--json] [--timeout-ms N]   preflight every source: reachable, credentials, Genesys rights, link lifetime, clock skew
  sim genesys [--port N] [--host h] [--seed file.json]   run the Genesys Cloud simulator standalone
  sim legacy --provider p [--port N] [--host h] [--file media.wav]   run a legacy recorder simulator standalone

Every command but sim also takes --config (sim reads no config file), and every one --help; any
other option or argument it does not use is refused (exit 2), never ignored.`;

/** Every option of the commands below, parsed once; which command takes which is COMMANDS' business. */
const OPTIONS = {
  config: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
  tenant: { type: 'string' },
  principal: { type: 'string' },
  scopes: { type: 'string' },
  description: { type: 'string' },
  out: { type: 'string' },
  source: { type: 'string' },
  since: { type: 'string' },
  from: { type: 'string' },
  to: { type: 'string' },
  format: { type: 'string' },
} as const;
type Option = Exclude<keyof typeof OPTIONS, 'config' | 'help'>;

interface CommandSpec {
  /** Options it acts on, besides --config and --help. */
  readonly options: readonly Option[];
  /** Its positional arguments after the command words, all required. */
  readonly args: readonly string[];
  /** Why an option does not apply, where "it takes …" would not say it: shown when it is refused. */
  readonly why?: Partial<Record<Option, string>>;
}

const WHOLE_CHAIN = 'it walks the whole chain';

/**
 * What each command acts on. A compliance operator's script must not be told "ok" for something
 * that was not done, so an option or argument a command does not use is refused, not ignored.
 * doctor, sim and verify read their own command lines (src/cli/doctor.ts, sim.ts, sync/integrity/cli.ts).
 */
export const COMMANDS = {
  serve: { options: [], args: [] },
  demo: { options: [], args: [] },
  migrate: { options: [], args: [] },
  import: { options: [], args: ['<file>'], why: { tenant: 'each row names its tenant_id' } },
  export: { options: ['tenant', 'out'], args: [] },
  'keys create': { options: ['tenant', 'principal', 'scopes', 'description'], args: [] },
  'keys revoke': { options: [], args: ['<id>'] },
  'audit verify': { options: [], args: [], why: { tenant: WHOLE_CHAIN, from: WHOLE_CHAIN, to: WHOLE_CHAIN } },
  'audit export': { options: ['from', 'to', 'tenant', 'out'], args: [] },
  sync: { options: ['tenant', 'source', 'since'], args: [] },
  'report migration': { options: ['tenant', 'format', 'out'], args: [] },
} as const satisfies Record<string, CommandSpec>;
export type CommandName = keyof typeof COMMANDS;

type Values = ReturnType<typeof parseArgs<{ args: string[]; allowPositionals: true; options: typeof OPTIONS }>>['values'];

export interface CommandLine {
  /** The command named, or undefined when there is none or it is not one of COMMANDS. */
  command: CommandName | undefined;
  /** Its arguments after the command words. */
  rest: string[];
  /** Every positional argument, command words included. */
  positionals: string[];
  values: Values;
  /** --help (or -h) was given: nothing else was judged. */
  help: boolean;
}

function commandOf(positionals: string[]): CommandName | undefined {
  const two = positionals.slice(0, 2).join(' ');
  return (Object.hasOwn(COMMANDS, two) ? two : Object.hasOwn(COMMANDS, positionals[0] ?? '') ? positionals[0] : undefined) as CommandName | undefined;
}

/** Reads the command line of every command in COMMANDS, refusing (UsageError) what the command named does not take. */
export function parseCommandLine(argv: string[]): CommandLine {
  // The command a refusal names, read leniently first: the first word not starting with '-' may be
  // an option's value (`--config x audit verify --bogus` is about `audit verify`, not `x`).
  const named = commandOf(parseArgs({ args: argv, allowPositionals: true, options: OPTIONS, strict: false }).positionals);
  const { values, positionals } = parseCommandArgs(named ?? '', { args: argv, allowPositionals: true, options: OPTIONS });
  const command = commandOf(positionals);
  const rest = command ? positionals.slice(command.split(' ').length) : [];
  const help = values.help === true;
  if (!command || help) return { command, rest, positionals, values, help };

  const spec: CommandSpec = COMMANDS[command];
  const cmd = `custodian ${command}`;
  // In the order given, so the line names the first one the operator typed.
  for (const name of Object.keys(values)) {
    if (name === 'config' || name === 'help' || (spec.options as readonly string[]).includes(name)) continue;
    const takes = spec.why?.[name as Option] ?? (spec.options.length ? `it takes ${spec.options.map((o) => `--${o}`).join(', ')}` : 'it takes no options');
    throw new UsageError(`${cmd}: --${name} does not apply (${takes})`);
  }
  if (rest.length > spec.args.length) throw new UsageError(`${cmd}: Unexpected argument '${rest[spec.args.length]}' (${cmd} --help)`);
  if (rest.length < spec.args.length) throw new UsageError(`${cmd}: missing ${spec.args[rest.length]} (${cmd} --help)`);
  return { command, rest, positionals, values, help };
}
