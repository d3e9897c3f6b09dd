import { describe, expect, it } from 'vitest';
import { MAX_LINE_BYTES, NotUtf8Error, checkedUtf8, utf8Lines } from './utf8-lines.js';

async function* chunks(...parts: (string | number[] | Buffer)[]): AsyncGenerator<Buffer> {
  for (const p of parts) yield typeof p === 'string' ? Buffer.from(p) : Buffer.isBuffer(p) ? p : Buffer.from(p);
}
const collect = async <T>(g: AsyncIterable<T>) => {
  const out: T[] = [];
  for await (const x of g) out.push(x);
  return out;
};

describe('utf8Lines', () => {
  it('splits at LF and CRLF across chunk ends, a multi-byte character cut in two included', async () => {
    const e = Buffer.from('é'); // 2 bytes
    const lines = await collect(utf8Lines(chunks('a\r', '\nb', [e[0]!], [e[1]!, 0x0a], 'x'.repeat(10), 'y'.repeat(10), '\n\nlast')));
    expect(lines).toEqual([
      { line: 1, text: 'a' },
      { line: 2, text: 'bé' },
      { line: 3, text: 'x'.repeat(10) + 'y'.repeat(10) },
      { line: 4, text: '' },
      { line: 5, text: 'last' },
    ]);
  });

  it('gives a line that is not UTF-8 as null, and goes on', async () => {
    const lines = await collect(utf8Lines(chunks('ok\n', [0x61, 0xff, 0x0a], [0xed, 0xa0, 0x80, 0x0a], 'fine\n')));
    expect(lines).toEqual([
      { line: 1, text: 'ok' },
      { line: 2, text: null },
      { line: 3, text: null }, // an encoded surrogate is not UTF-8 either
      { line: 4, text: 'fine' },
    ]);
  });
});

describe('checkedUtf8', () => {
  it('passes the bytes on unchanged', async () => {
    const out = await collect(checkedUtf8(chunks('a,b\n', 'c', 'é\nd')));
    expect(Buffer.concat(out).toString()).toBe('a,b\ncé\nd');
  });

  it('throws at the first line that is not UTF-8, with its number', async () => {
    await expect(collect(checkedUtf8(chunks('h\n', 'x\ny', [0xc3], '\n')))).rejects.toEqual(new NotUtf8Error(3));
    await expect(collect(checkedUtf8(chunks('h\n', [0xff])))).rejects.toMatchObject({ line: 2, code: 'CUSTODIAN_NOT_UTF8' });
  });
});

describe('lines without an end', () => {
  // An endless stream of bytes with no LF: a file saved with CR-only line ends, or a recording
  // given to `custodian import` by mistake. Before, the whole of it was held as one line.
  async function* noLineFeed(): AsyncGenerator<Buffer> {
    for (;;) yield Buffer.alloc(64 * 1024, 0x78);
  }

  it('utf8Lines reports a line past MAX_LINE_BYTES as soon as it passes it, holding no more of it, and goes on after its LF', async () => {
    const it = utf8Lines(noLineFeed())[Symbol.asyncIterator]();
    expect((await it.next()).value).toEqual({ line: 1, text: null, tooLong: true });
    await it.return(undefined);
    const long = Buffer.alloc(MAX_LINE_BYTES + 10, 0x78);
    const lines = await collect(utf8Lines(chunks('a\n', long.subarray(0, 1000), long.subarray(1000), '\nb\n')));
    expect(lines).toEqual([{ line: 1, text: 'a' }, { line: 2, text: null, tooLong: true }, { line: 3, text: 'b' }]);
    // At the limit exactly, a line is still a line.
    expect(await collect(utf8Lines(chunks(Buffer.alloc(MAX_LINE_BYTES, 0x61), '\n')))).toEqual([{ line: 1, text: 'a'.repeat(MAX_LINE_BYTES) }]);
  });

  it('checkedUtf8 refuses such a line as soon as it passes the limit', async () => {
    const it = checkedUtf8(noLineFeed())[Symbol.asyncIterator]();
    await expect((async () => { for (;;) if ((await it.next()).done) return; })()).rejects.toMatchObject({ line: 1, reason: expect.stringMatching(/longer than/) });
  });
});
