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
