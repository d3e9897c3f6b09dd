import fc from 'fast-check';
// fastify's own parser (through find-my-way): what parseQueryString must agree with on well-formed input.
import { parse as fastParse } from 'fast-querystring';
import { describe, expect, it } from 'vitest';
import { identifier } from '../catalog/record.js';
import { parseQueryString, printable, unprintableAt } from './query-string.js';

describe('query strings', () => {
  it('the printable rule is the one identifiers follow, character for character', () => {
    // Every range either rule names (controls, separators, zero-width and bidi controls, surrogates, the BOM) and what borders them.
    const codePoints = [[0, 0x2100], [0xd7f0, 0xe010], [0xfef0, 0xffff]].flatMap(([from, to]) => Array.from({ length: to! - from! + 1 }, (_, i) => from! + i));
    for (const cp of codePoints) {
      const ch = String.fromCharCode(cp);
      // In the middle: identifier's trim rule is about the ends only.
      expect(printable(`a${ch}b`), `U+${cp.toString(16).padStart(4, '0')}`).toBe(identifier.safeParse(`a${ch}b`).success);
    }
    expect(printable('case 7 \u{1F600}')).toBe(true);
  });

  it('reads well-formed query strings as fastify did', () => {
    for (const qs of ['', 'a=1', 'a=1&b=2', 'a=1&a=2&a=3', 'a', 'a=', '=x', '&&a=1&', 'purpose=case+7+%F0%9F%98%80', 'a%20b=c%2Bd', 'x=a=b', '__proto__=1', 'constructor=2']) {
      expect({ ...parseQueryString(qs) }, qs).toEqual({ ...fastParse(qs) });
    }
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.string(), fc.string()), { maxLength: 6 }), (pairs) => {
        const qs = pairs.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&');
        // A lone surrogate has no UTF-8 form: encodeURIComponent refuses it, so such strings never reach here.
        expect({ ...parseQueryString(qs) }).toEqual({ ...fastParse(qs) });
      }),
      { examples: [[[['k', 'v']]]] },
    );
  });

  it('names the first key or value that breaks the printable rule', () => {
    expect(unprintableAt(parseQueryString('a=1&b=x%00y'))).toBe('/b');
    expect(unprintableAt(parseQueryString('a=1&a=%E2%80%AE'))).toBe('/a/1');
    expect(unprintableAt(parseQueryString('a%2Fb=%0A'))).toBe('/a~1b');
    expect(unprintableAt(parseQueryString('x%01=1'))).toBe('/x?');
    expect(unprintableAt(parseQueryString('a=1&b=%C3%BC'))).toBeNull();
  });
});
