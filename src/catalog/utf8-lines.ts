import { isUtf8 } from 'node:buffer';

/**
 * Lines of a UTF-8 byte stream, numbered from 1, LF or CRLF. Decoding the stream as text would
 * turn bytes that are not UTF-8 into U+FFFD without a word — an identifier imported that way is
 * silently not the one in the file — so each line's bytes are checked first, and such a line
 * comes with `text: null`.
 */
export type Utf8Line = { line: number; text: string | null; tooLong?: true };

/**
 * The longest line read: far above any catalog record (a few hundred bytes), far below memory.
 * A longer one — a file with CR-only line ends, a recording given as a catalog by mistake — is
 * reported as soon as it passes this, and its bytes are dropped up to its LF: never held whole.
 */
export const MAX_LINE_BYTES = 1024 * 1024;
export const TOO_LONG = `longer than ${MAX_LINE_BYTES / 1024 / 1024} MiB: not a catalog line (a file without LF line ends?)`;

export async function* utf8Lines(bytes: AsyncIterable<Buffer>): AsyncGenerator<Utf8Line> {
  for await (const { line, bytes: b } of byteLines(bytes)) {
    if (b === null) yield { line, text: null, tooLong: true };
    else yield { line, text: isUtf8(b) ? b.toString('utf8') : null };
  }
}

/** A byte stream that is not UTF-8 at `line` (or whose line there is too long to be read). */
export class NotUtf8Error extends Error {
  readonly code = 'CUSTODIAN_NOT_UTF8';
  constructor(
    readonly line: number,
    readonly reason = 'not valid UTF-8',
  ) {
    super(`line ${line} is ${reason}`);
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
    if (b === null) throw new NotUtf8Error(line, TOO_LONG);
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

/**
 * Splits bytes at LF (a byte no multi-byte UTF-8 sequence contains); drops one CR before it. A line
 * past MAX_LINE_BYTES is yielded as `bytes: null` the moment it passes, and the rest of it, up to
 * its LF, is dropped as it arrives.
 */
async function* byteLines(bytes: AsyncIterable<Buffer>): AsyncGenerator<{ line: number; bytes: Buffer | null }> {
  let line = 0;
  // A line cut by chunk ends, as its pieces: joined once when it ends (a long line is not copied once per chunk).
  let pieces: Buffer[] = [];
  let size = 0;
  // The current line passed the limit and was reported: its bytes are dropped up to its LF.
  let dropping = false;
  const emit = (last: Buffer) => {
    line++;
    let b = pieces.length ? Buffer.concat([...pieces, last]) : last;
    pieces = [];
    size = 0;
    if (b.length && b[b.length - 1] === 0x0d) b = b.subarray(0, b.length - 1);
    return { line, bytes: b };
  };
  const tooLong = () => {
    line++;
    pieces = [];
    size = 0;
    return { line, bytes: null };
  };
  for await (const chunk of bytes) {
    let start = 0;
    for (let nl = chunk.indexOf(0x0a, start); nl !== -1; nl = chunk.indexOf(0x0a, start)) {
      // The limit counts the line's bytes before its LF, its CR included.
      if (dropping) dropping = false;
      else if (size + (nl - start) > MAX_LINE_BYTES) yield tooLong();
      else yield emit(chunk.subarray(start, nl));
      start = nl + 1;
    }
    if (start < chunk.length && !dropping) {
      const rest = chunk.subarray(start);
      if (size + rest.length > MAX_LINE_BYTES) {
        dropping = true;
        yield tooLong();
      } else {
        pieces.push(rest);
        size += rest.length;
      }
    }
  }
  if (pieces.length) yield emit(Buffer.alloc(0));
}
