import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

/**
 * The factor V8 applied at each old-generation limit it computed, in a fresh process that calls
 * applyHeapGrowth(percent) (or not) and then allocates enough for several full GCs: V8's own
 * --trace-gc-verbose line "[HeapController] Limit: old size: …, new limit: … (<factor>)".
 */
function appliedFactors(percent: number | null): string[] {
  const mod = fileURLToPath(new URL('./heap-growth.ts', import.meta.url));
  const code = `
    const { applyHeapGrowth } = await import(${JSON.stringify(mod)});
    ${percent === null ? '' : `applyHeapGrowth(${percent});`}
    const keep = [];
    for (let i = 0; i < 150; i++) {
      for (let k = 0; k < 20000; k++) keep.push({ a: k, b: 'x' + k });
      if (keep.length > 1000000) keep.splice(0, 500000);
    }
  `;
  const r = spawnSync(process.execPath, ['--trace-gc', '--trace-gc-verbose', '--import', 'tsx', '--input-type=module', '-e', code], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  expect(r.status, r.stderr).toBe(0);
  return [...r.stdout.matchAll(/\[HeapController\] Limit: old size: \d+ KB, new limit: \d+ KB \(([\d.]+)\)/g)].map((m) => m[1]!);
}

describe('applyHeapGrowth', () => {
  it('fixes the factor V8 grows the old generation by after each full GC, set after start', () => {
    const twice = appliedFactors(100);
    expect(twice.length).toBeGreaterThan(1);
    expect(new Set(twice)).toEqual(new Set(['2.0']));
    expect(new Set(appliedFactors(50))).toEqual(new Set(['1.5']));
  });

  it('0 hands the choice back to V8 (its own factor, not a fixed one)', () => {
    const own = appliedFactors(0);
    expect(own.length).toBeGreaterThan(1);
    // Without any call, V8's first choice on this allocation pattern; 0 gives the same.
    expect(own[0]).toBe(appliedFactors(null)[0]);
    expect(own[0]).not.toBe('1.5');
  });
});
