import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, readFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { chunked, collect, fixturePath } from '../../test/support/audio.js';
import { peekHead } from './peek-head.js';

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** An endless source that counts how many bytes it was asked for. */
function counting(chunk = 1000): Readable & { produced: number } {
  const r = new Readable({
    read() {
      const b = Buffer.alloc(chunk, r.produced & 0xff);
      r.produced += chunk;
      this.push(b);
    },
  }) as Readable & { produced: number };
  r.produced = 0;
  return r;
}

describe('peekHead', () => {
  it('a file longer than the window: head is the first 64 KiB, the stream replays every byte', async () => {
    const file = fixturePath('call_mono_pcm16_8k.wav');
    const { head, stream, ended } = await peekHead(createReadStream(file, { highWaterMark: 1000 }));
    const all = readFileSync(file);
    expect(ended).toBe(false);
    expect(head).toEqual(all.subarray(0, 65536));
    expect(sha(await collect(stream))).toBe(sha(all));
  });

  it('a short stream ends the peek early and is replayed whole', async () => {
    const data = randomBytes(3000);
    const { head, stream, ended } = await peekHead(chunked(data, 7));
    expect(ended).toBe(true);
    expect(head).toEqual(data);
    expect(await collect(stream)).toEqual(data);
  });

  it('an empty stream', async () => {
    const { head, stream, ended } = await peekHead(Readable.from([], { objectMode: false }));
    expect(ended).toBe(true);
    expect(head.length).toBe(0);
    expect((await collect(stream)).length).toBe(0);
  });

  it('custom window and odd chunking', async () => {
    const data = randomBytes(10_000);
    const { head, stream } = await peekHead(chunked(data, 333), 1000);
    expect(head).toEqual(data.subarray(0, 1000));
    expect(await collect(stream)).toEqual(data);
  });

  it('keeps backpressure: an endless source is read only as far as the consumer pulls', async () => {
    const src = counting();
    const { stream } = await peekHead(src);
    await new Promise((r) => setTimeout(r, 50));
    const afterPeek = src.produced;
    expect(afterPeek).toBeLessThan(65536 + 3 * 16384 + 2000);
    let got = 0;
    for await (const c of stream) {
      got += (c as Buffer).length;
      if (got > 500_000) break; // break destroys the replay, which destroys the source
    }
    expect(src.produced).toBeLessThan(got + 200_000);
    expect(src.destroyed).toBe(true);
  });

  it('a source error after the head reaches the replay consumer', async () => {
    let n = 0;
    const src = new Readable({
      read() {
        n += 1;
        if (n <= 80) this.push(Buffer.alloc(1000));
        else this.destroy(new Error('disk gone'));
      },
    });
    const { stream } = await peekHead(src);
    await expect(collect(stream)).rejects.toThrow('disk gone');
  });

  it('a source error during the peek rejects', async () => {
    const src = new Readable({
      read() {
        this.destroy(new Error('no such object'));
      },
    });
    await expect(peekHead(src)).rejects.toThrow('no such object');
  });

  it('a source destroyed without error during the peek rejects (premature close)', async () => {
    const src = new Readable({ read() {} });
    src.push(Buffer.alloc(10));
    setTimeout(() => src.destroy(), 10);
    await expect(peekHead(src)).rejects.toMatchObject({ code: 'ERR_STREAM_PREMATURE_CLOSE' });
  });

  it('an abort signal stops a stalled peek', async () => {
    const ac = new AbortController();
    const src = new Readable({ read() {} });
    setTimeout(() => ac.abort(new Error('client left')), 10);
    await expect(peekHead(src, 65536, ac.signal)).rejects.toThrow('client left');
  });

  it('past the head, the stream is the source itself: no stage that copies (and holds) every later chunk', async () => {
    const src = counting();
    const { stream, head } = await peekHead(src);
    expect(stream).toBe(src);
    const first = stream.read() as Buffer;
    expect(first.subarray(0, head.length)).toEqual(head);
    stream.destroy();
  });

  it('a source error before anyone listens does not take the process down, and the consumer still sees it', async () => {
    const src = counting();
    const { stream } = await peekHead(src);
    src.destroy(new Error('late failure'));
    await new Promise((r) => setImmediate(r));
    await expect(collect(stream)).rejects.toThrow('late failure');
  });

  it('destroying the replay destroys the source', async () => {
    const src = counting();
    const { stream } = await peekHead(src);
    stream.destroy();
    await new Promise((r) => setImmediate(r));
    expect(src.destroyed).toBe(true);
  });
});
