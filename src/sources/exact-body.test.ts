import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { ExactBody } from './exact-body.js';

/**
 * A source of `chunks` 1000-byte chunks, one per event-loop turn as a socket delivers them, whose
 * destroy completes only after `closeDelayMs` (as a socket's close does).
 */
function slowClosingSource(chunks: number, closeDelayMs: number): Readable {
  let left = chunks;
  return new Readable({
    read() {
      setImmediate(() => this.push(left-- > 0 ? Buffer.alloc(1000, 1) : null));
    },
    destroy(err, cb) {
      setTimeout(() => cb(err), closeDelayMs);
    },
  });
}

const signal = () => new AbortController().signal;

/**
 * The class's own rules, with the cases the filesystem body (WholeRange until it was merged here)
 * tested and the HTTP and S3 bodies did not: close after the source, bytesRead.
 */
describe('ExactBody', () => {
  it('closes only after its source has closed, also for a network body whose destroy takes time', async () => {
    const source = slowClosingSource(1000, 50);
    const body = new ExactBody(source, 0, 1_000_000, false, signal(), 'media: the transfer');
    // A client that takes one chunk, stops reading, then goes away.
    await new Promise((resolve) => body.once('data', resolve));
    body.pause();
    expect(body.destroyed).toBe(false);
    const order: string[] = [];
    source.once('close', () => order.push('source'));
    const closed = new Promise((resolve) => body.once('close', resolve)).then(() => order.push('body'));
    body.destroy();
    await closed;
    expect(order).toEqual(['source', 'body']);
  });

  it('an S3 object cut to a range: skipped bytes count in bytesRead, the body ends on the range, and closes after its source', async () => {
    const source = slowClosingSource(10, 20);
    // A 200 to bytes=2500-4499: the store ignored Range and sends all 10 000 bytes.
    const body = new ExactBody(source, 2500, 2000, true, signal(), 'the S3 object: the transfer');
    const chunks: Buffer[] = [];
    for await (const c of body) chunks.push(c as Buffer);
    expect(Buffer.concat(chunks).length).toBe(2000);
    // A source without its own count (an HTTP body): the bytes taken from it, the 2500 skipped included.
    expect(body.bytesRead).toBe(5000);
    expect(source.destroyed).toBe(true);
    if (!body.closed) await new Promise((resolve) => body.once('close', resolve));
    expect(source.closed).toBe(true);
  });

  it('names its subject when the source ends short or breaks, with counts only', async () => {
    const short = new ExactBody(Readable.from([Buffer.alloc(300)]), 0, 1000, false, signal(), 'media: the transfer');
    await expect((async () => { for await (const _ of short); })()).rejects.toMatchObject({
      code: 'source.unavailable',
      message: 'media: the transfer ended after 300 of 1000 bytes',
    });
    const broken = new Readable({ read() {} });
    const body = new ExactBody(broken, 0, 1000, false, signal(), 'the archive file');
    broken.push(Buffer.alloc(10));
    const failed = new Promise<unknown>((resolve) => body.once('error', resolve));
    body.resume();
    await new Promise((r) => setImmediate(r));
    broken.destroy(Object.assign(new Error('EIO: i/o error, read /secret/path'), { code: 'EIO' }));
    const e = (await failed) as Error;
    expect(e).toMatchObject({ code: 'source.unavailable', message: 'the archive file broke after 10 bytes (EIO)' });
    expect(e.message).not.toContain('/secret/path');
  });
});
