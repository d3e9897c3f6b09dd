import { describe, expect, it } from 'vitest';
import { parseCommandArgs, UsageError } from './args.js';

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
