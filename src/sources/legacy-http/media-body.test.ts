import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { toSourceMedia } from './media-body.js';
import type { MediaAnswer } from './strategy.js';

/** A 200 answer whose body is an endless source of 64 KiB chunks (as a socket delivers them). */
function answer(size: number): { res: MediaAnswer; produced: () => number } {
  let produced = 0;
  const body = new Readable({
    read() {
      if (produced >= size) return void this.push(null);
      produced += 65536;
      this.push(Buffer.alloc(65536, 7));
    },
  });
  const res = { statusCode: 200, headers: { 'content-length': String(size) }, body } as unknown as MediaAnswer;
  return { res, produced: () => produced };
}

describe('legacy-http media body', () => {
  it('holds no chunk of its own while the consumer waits: a slow client keeps one chunk in the source, not a copy per stage', async () => {
    const { res, produced } = answer(64 * 65536);
    const media = await toSourceMedia(res, undefined, new AbortController().signal, 'media');
    // A consumer that takes one chunk and then stops, as a client that is behind does.
    let got = 0;
    const first = await new Promise<Buffer>((resolve) =>
      media.body.on('data', (c: Buffer) => {
        if (got === 0) {
          media.body.pause();
          resolve(c);
        }
        got += c.length;
      }),
    );
    await new Promise((r) => setTimeout(r, 20));
    expect(first.length).toBe(65536);
    expect(got).toBe(65536);
    expect(media.body.readableLength).toBe(0);
    // Only what the source's own buffer asked for has been produced: nothing ran ahead.
    expect(produced()).toBeLessThanOrEqual(3 * 65536);
    media.body.resume();
    await new Promise((r) => media.body.once('end', r));
    expect(got).toBe(64 * 65536);
  });

  it('a body that ends short still errors when read by pulling', async () => {
    const body = Readable.from([Buffer.alloc(1000)], { objectMode: false });
    const res = { statusCode: 200, headers: { 'content-length': '5000' }, body } as unknown as MediaAnswer;
    const media = await toSourceMedia(res, undefined, new AbortController().signal, 'media');
    await expect((async () => { for await (const _ of media.body); })()).rejects.toMatchObject({ code: 'source.unavailable' });
  });
});
