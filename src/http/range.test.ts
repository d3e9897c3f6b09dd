import { describe, expect, it } from 'vitest';
import { AppError } from '../errors.js';
import { parseRange, resolveRange } from './range.js';

function thrown(fn: () => unknown): AppError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(AppError);
    return e as AppError;
  }
  throw new Error('expected an AppError');
}

describe('parseRange', () => {
  it('gives null without a header', () => {
    expect(parseRange(undefined)).toBeNull();
  });

  it('parses closed, open-ended and suffix ranges', () => {
    expect(parseRange('bytes=0-499')).toEqual({ start: 0, end: 499 });
    expect(parseRange('bytes=500-')).toEqual({ start: 500 });
    expect(parseRange('bytes=-500')).toEqual({ suffix: 500 });
    expect(parseRange('bytes=7-7')).toEqual({ start: 7, end: 7 });
    expect(parseRange('Bytes=1-2')).toEqual({ start: 1, end: 2 });
    expect(parseRange('  bytes=1-2  ')).toEqual({ start: 1, end: 2 });
    expect(parseRange('bytes=0-999999999999999')).toEqual({ start: 0, end: 999_999_999_999_999 });
  });

  it('answers several ranges with null (the whole representation is sent)', () => {
    expect(parseRange('bytes=0-1,5-9')).toBeNull();
    expect(parseRange('bytes=0-1, -5')).toBeNull();
    expect(parseRange('bytes=0-0,0-0,0-0')).toBeNull();
  });

  it.each([
    'bytes',
    'bytes=',
    'bytes=-',
    'bytes=a-b',
    'bytes=1-a',
    'bytes=1.5-2',
    'bytes=--5',
    'bytes=-5-',
    'bytes=1 - 2',
    'bytes=0x10-0x20',
    'bytes=+1-2',
    'items=0-1',
    '0-1',
    'bytes=0-1,x',
    'bytes=5-3',
    'bytes=1234567890123456-',
    '',
  ])('refuses %j as range.malformed (400)', (header) => {
    const e = thrown(() => parseRange(header));
    expect(e.code).toBe('range.malformed');
    expect(e.status).toBe(400);
  });

  it('accepts a zero-length suffix at parse time; resolving it is a 416 with Content-Range', () => {
    const r = parseRange('bytes=-0');
    expect(r).toEqual({ suffix: 0 });
    const e = thrown(() => resolveRange(r!, 1000));
    expect(e.code).toBe('range.not_satisfiable');
    expect(e.headers['Content-Range']).toBe('bytes */1000');
  });
});

describe('resolveRange', () => {
  it('resolves within the length', () => {
    expect(resolveRange({ start: 0, end: 499 }, 1000)).toEqual({ start: 0, end: 499 });
    expect(resolveRange({ start: 500 }, 1000)).toEqual({ start: 500, end: 999 });
    expect(resolveRange({ start: 999 }, 1000)).toEqual({ start: 999, end: 999 });
    expect(resolveRange({ suffix: 200 }, 1000)).toEqual({ start: 800, end: 999 });
  });

  it('clamps an end past the length and a suffix longer than the representation', () => {
    expect(resolveRange({ start: 10, end: 5000 }, 1000)).toEqual({ start: 10, end: 999 });
    expect(resolveRange({ suffix: 5000 }, 1000)).toEqual({ start: 0, end: 999 });
    expect(resolveRange({ suffix: 1 }, 1)).toEqual({ start: 0, end: 0 });
  });

  it.each<[Parameters<typeof resolveRange>[0], number]>([
    [{ start: 1000 }, 1000],
    [{ start: 1000, end: 2000 }, 1000],
    [{ start: 5000, end: 6000 }, 1000],
    [{ start: 0 }, 0],
    [{ start: 0, end: 0 }, 0],
    [{ suffix: 10 }, 0],
    [{ suffix: 0 }, 10],
  ])('%j of %i bytes is 416 with Content-Range: bytes */length', (r, len) => {
    const e = thrown(() => resolveRange(r, len));
    expect(e.code).toBe('range.not_satisfiable');
    expect(e.status).toBe(416);
    expect(e.headers).toEqual({ 'Content-Range': `bytes */${len}` });
    expect(e.extra).toEqual({ size: len });
  });
});
