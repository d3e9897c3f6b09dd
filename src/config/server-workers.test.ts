import { availableParallelism } from 'node:os';
import { describe, expect, it } from 'vitest';
import { checkClusterConfig } from '../cluster/prepare.js';
import { ConfigError, parseConfig } from './load.js';

const issues = (workers: unknown): string[] => {
  try {
    parseConfig({ server: { workers } }, {});
  } catch (e) {
    if (e instanceof ConfigError) return e.issues;
    throw e;
  }
  return [];
};

describe('server.workers', () => {
  it('defaults to one process; "auto" is one per core; 1..64 as given', () => {
    expect(parseConfig({}, {}).server.workers).toBe(1);
    expect(parseConfig({ server: { workers: 'auto' } }, {}).server.workers).toBe(Math.min(64, availableParallelism()));
    expect(parseConfig({ server: { workers: 1 } }, {}).server.workers).toBe(1);
    expect(parseConfig({ server: { workers: 64 } }, {}).server.workers).toBe(64);
  });

  it.each([0, 65, -1, 2.5, 'many', '2', null, true, []])('refuses %j, naming server.workers and what it accepts', (bad) => {
    expect(issues(bad)).toEqual(['server.workers: must be an integer from 1 to 64, or "auto" (one per core)']);
  });

  it('server.worker_scheduling: round_robin by default, or os; anything else named', () => {
    expect(parseConfig({}, {}).server.worker_scheduling).toBe('round_robin');
    expect(parseConfig({ server: { worker_scheduling: 'os' } }, {}).server.worker_scheduling).toBe('os');
    for (const bad of ['kernel', 1, null]) {
      expect(() => parseConfig({ server: { worker_scheduling: bad } }, {})).toThrow(/server\.worker_scheduling: must be "round_robin" or "os"/);
    }
  });

  it('server.heap_growing_percent: 100 by default, 0 to 300 as given; anything else named', () => {
    expect(parseConfig({}, {}).server.heap_growing_percent).toBe(100);
    for (const ok of [0, 50, 300]) expect(parseConfig({ server: { heap_growing_percent: ok } }, {}).server.heap_growing_percent).toBe(ok);
    for (const bad of [-1, 301, 12.5, '100', null, true]) {
      let got: string[] = [];
      try {
        parseConfig({ server: { heap_growing_percent: bad } }, {});
      } catch (e) {
        if (!(e instanceof ConfigError)) throw e;
        got = e.issues;
      }
      expect(got).toEqual(["server.heap_growing_percent: must be an integer from 0 (V8's own choice) to 300"]);
    }
  });

  it('refuses several workers on an in-memory SQLite catalog (one per process), naming server.workers', () => {
    const mem = parseConfig({ server: { workers: 2 }, catalog: { driver: 'sqlite', path: ':memory:' } }, {});
    expect(() => checkClusterConfig(mem)).toThrow(ConfigError);
    expect(() => checkClusterConfig(mem)).toThrow(/^server\.workers: 2 workers cannot share catalog\.path ":memory:"/);
    // One worker, or a file: fine.
    expect(() => checkClusterConfig(parseConfig({ server: { workers: 1 }, catalog: { driver: 'sqlite', path: ':memory:' } }, {}))).not.toThrow();
    expect(() => checkClusterConfig(parseConfig({ server: { workers: 2 } }, {}))).not.toThrow();
  });
});
