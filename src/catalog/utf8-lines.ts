import { isUtf8 } from 'node:buffer';

/**
 * Lines of a UTF-8 byte stream, numbered from 1, LF or CRLF. Decoding the stream as text would
 * turn bytes that are not UTF-8 into U+FFFD without a word — an identifier imported that way is
 * silently not the one in the file — so each line's bytes are checked first, and such a line
 * comes with `text: null`.
 */
export type Utf8Line = { line: number; text: string | null };

export async function* utf8Lines(bytes: AsyncIterable<Buffer>): AsyncGenerator<Utf8Line> {
  for await (const { line, bytes: b } of byteLines(bytes)) yield { line, text: isUtf8(b) ? b.toString('utf8') : null };
}

/** A byte stream that is not UTF-8 at `line`. */
export class NotUtf8Error extends Error {
  readonly code = 'CUSTODIAN_NOT_UTF8';
  constructor(readonly line: number) {
    super(`line ${line} is not valid UTF-8`);
    this.name = 'NotUtf8Error';
  }
}

/**
 * The same bytes, passed through unchanged once checked line by line (for a parser that decodes
 * them itself, such as csv-parse); throws NotUtf8Error at the first line that is not UTF-8.
 * A chunk is passed on when its complete lines are checked; a line cut by the chunk's end is
 * checked when it ends, so a parser may see its first part before the error.
 */
export async function* checkedUtf8(bytes: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  const passed: Buffer[] = [];
  const lines = byteLines(tap(bytes, passed));
  for await (const { line, bytes: b } of lines) {
    if (!isUtf8(b)) throw new NotUtf8Error(line);
    while (passed.length > 1) yield passed.shift()!;
  }
  yield* passed.splice(0);
}

/** Records every chunk it passes on, so checkedUtf8 can hand them on once checked. */
async function* tap(bytes: AsyncIterable<Buffer>, into: Buffer[]): AsyncGenerator<Buffer> {
  for await (const chunk of bytes) {
    into.push(chunk);
    yield chunk;
  }
}

/** Splits bytes at LF (a byte no multi-byte UTF-8 sequence contains); drops one CR before it. */
async function* byteLines(bytes: AsyncIterable<Buffer>): AsyncGenerator<{ line: number; bytes: Buffer }> {
  let line = 0;
  // A line cut by chunk ends, as its pieces: joined once when it ends (a long line is not copied once per chunk).
  let pieces: Buffer[] = [];
  const emit = (last: Buffer) => {
    line++;
    let b = pieces.length ? Buffer.concat([...pieces, last]) : last;
    pieces = [];
    if (b.length && b[b.length - 1] === 0x0d) b = b.subarray(0, b.length - 1);
    return { line, bytes: b };
  };
  for await (const chunk of bytes) {
    let start = 0;
    for (let nl = chunk.indexOf(0x0a, start); nl !== -1; nl = chunk.indexOf(0x0a, start)) {
      yield emit(chunk.subarray(start, nl));
      start = nl + 1;
    }
    if (start < chunk.length) pieces.push(chunk.subarray(start));
  }
  if (pieces.length) yield emit(Buffer.alloc(0));
}
