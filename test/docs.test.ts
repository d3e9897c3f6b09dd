import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { errorsDoc } from '../scripts/errors-doc.js';

describe('documentation stays true to the code', () => {
  it('docs/ERRORS.md is the error catalogue (regenerate: npx tsx scripts/errors-doc.ts)', () => {
    expect(readFileSync(new URL('../docs/ERRORS.md', import.meta.url), 'utf8')).toBe(errorsDoc());
  });
});
