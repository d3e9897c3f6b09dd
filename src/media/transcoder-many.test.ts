import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { Transcoder } from './transcoder.js';

/** transcodeMany: several inputs on their own pipes, one output; the same rules as transcode(). */

const make = () => new Transcoder({ ffmpegPath: 'ffmpeg', maxConcurrent: 1, maxQueued: 0, timeoutMs: 20_000 });
const RAW = ['-f', 's16le', '-ar', '8000', '-ac', '1'];
const GRAPH = '[0:a][1:a]amerge=inputs=2[out]';
const OUT = ['-c:a', 'pcm_s16le', '-ac', '2', '-f', 's16le'];

/** `n` samples of a constant value, s16le. */
const pcm = (n: number, v: number) => {
  const b = Buffer.alloc(n * 2);
  for (let i = 0; i < n; i++) b.writeInt16LE(v, i * 2);
  return b;
};

async function drain(r: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of r) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

describe('Transcoder.transcodeMany', () => {
  it('input 0 on stdin, input n on fd n + 2; the graph output is what is encoded', () => {
    expect(Transcoder.argvMany({ inputs: [{ input: Readable.from([]), inputArgs: ['-f', 'mulaw'] }, { input: Readable.from([]), inputArgs: ['-f', 'g729'] }], filterComplex: GRAPH, outputArgs: ['-f', 's16le'] })).toEqual([
      '-nostdin', '-hide_banner', '-loglevel', 'error',
      '-f', 'mulaw', '-i', 'pipe:0', '-f', 'g729', '-i', 'pipe:3',
      '-filter_complex', GRAPH, '-map', '[out]', '-map_metadata', '-1', '-f', 's16le', '-flush_packets', '0', 'pipe:1',
    ]);
  });

  it('reads each input from its own pipe: two constant inputs come out as two channels', async () => {
    const t = make();
    const out = await t.transcodeMany({ inputs: [{ input: Readable.from([pcm(8000, 1000)]), inputArgs: RAW }, { input: Readable.from([pcm(8000, -2000)]), inputArgs: RAW }], filterComplex: GRAPH, outputArgs: OUT });
    const b = await drain(out);
    expect(b.length).toBe(8000 * 4);
    expect([b.readInt16LE(0), b.readInt16LE(2), b.readInt16LE(b.length - 4), b.readInt16LE(b.length - 2)]).toEqual([1000, -2000, 1000, -2000]);
    expect((await out.exited).code).toBe(0);
    expect(t.active).toBe(0);
  });

  it('the second input failing mid-way fails the output (the first one whole does not make it whole)', async () => {
    const t = make();
    async function* broken() {
      yield pcm(4000, 5);
      throw new Error('far end broke');
    }
    const out = await t.transcodeMany({ inputs: [{ input: Readable.from([pcm(80_000, 1)]), inputArgs: RAW }, { input: Readable.from(broken()), inputArgs: RAW }], filterComplex: GRAPH, outputArgs: OUT });
    await expect(drain(out)).rejects.toThrow('far end broke');
    await out.exited;
    expect(t.active).toBe(0);
  });
});
