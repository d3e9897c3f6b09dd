import { readFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { AppError } from '../../errors.js';
import { wavHeader } from '../../media/wav-header.js';
import { SEGMENT_HEAD_BYTES, joinedBody, parseSegmentHead, piecesFor, planJoin, type SegmentHead } from './avaya-segments.js';
import { FIXTURE_PATH, drain } from './test-helpers.js';

const PCM = readFileSync(new URL('../../../demo/audio/call_mono_pcm16_8k.wav', import.meta.url));
const PCM_FMT = PCM.subarray(20, 36);
const G729_FMT = readFileSync(FIXTURE_PATH).subarray(20, 38);

/** A segment WAV: RIFF, fmt, optional fact and LIST chunks, data (size overridable). */
function segmentWav(fmt: Buffer, data: Buffer, o: { fact?: number; list?: boolean; dataSize?: number } = {}): Buffer {
  const chunk = (id: string, body: Buffer) => Buffer.concat([Buffer.from(id, 'latin1'), u32(body.length), body, Buffer.alloc(body.length & 1)]);
  const parts = [chunk('fmt ', fmt)];
  if (o.fact !== undefined) parts.push(chunk('fact', u32(o.fact)));
  if (o.list) parts.push(chunk('LIST', Buffer.from('INFOISFT\x05\x00\x00\x00ACR1\x00', 'latin1')));
  parts.push(Buffer.concat([Buffer.from('data', 'latin1'), u32(o.dataSize ?? data.length), data]));
  const body = Buffer.concat(parts);
  return Buffer.concat([Buffer.from('RIFF', 'latin1'), u32(4 + body.length), Buffer.from('WAVE', 'latin1'), body]);
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
}

const pos = (n: number, of = 3) => ({ n, of, inum: `inum-${n}` });
/** `total` null: the recorder gave no size. */
const head = (wav: Buffer, n: number, total: number | null = wav.length) => parseSegmentHead(wav.subarray(0, SEGMENT_HEAD_BYTES), total ?? undefined, pos(n));

function refusal(fn: () => unknown): AppError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(AppError);
    return e as AppError;
  }
  throw new Error('expected a refusal');
}

describe('parseSegmentHead', () => {
  it('finds fmt, fact and data past other chunks', () => {
    const data = PCM.subarray(44, 1044);
    const h = head(segmentWav(PCM_FMT, data, { fact: 500, list: true }), 2);
    expect(h).toMatchObject({ n: 2, inum: 'inum-2', factSamples: 500, dataLength: 1000 });
    expect(h.fmt.equals(PCM_FMT)).toBe(true);
    const wav = segmentWav(PCM_FMT, data, { fact: 500, list: true });
    expect(wav.subarray(h.dataOffset, h.dataOffset + h.dataLength).equals(data)).toBe(true);
  });

  it('an open data size (0xFFFFFFFF or 0) is taken from the file size, and refused without one', () => {
    const wav = segmentWav(PCM_FMT, PCM.subarray(44, 1044), { dataSize: 0xffffffff });
    expect(head(wav, 1).dataLength).toBe(1000);
    expect(head(segmentWav(PCM_FMT, PCM.subarray(44, 1044), { dataSize: 0 }), 1).dataLength).toBe(1000);
    const e = refusal(() => head(wav, 3, null));
    expect(e.code).toBe('source.bad_gateway');
    expect(e.message).toMatch(/segment 3 of 3 \(inum inum-3\).*cannot be known/);
    expect(e.extra).toEqual({ segment: 3, inum: 'inum-3' });
  });

  it('a declared size is trusted without a file size, and checked against one', () => {
    const wav = segmentWav(PCM_FMT, PCM.subarray(44, 1044));
    expect(head(wav, 1, null).dataLength).toBe(1000);
    expect(refusal(() => head(wav, 1, wav.length - 10)).message).toMatch(/truncated: its header declares 1000 data bytes, the file holds 990/);
  });

  it('refuses what is not a joinable WAV', () => {
    expect(refusal(() => head(Buffer.from('not a wav at all'), 1)).message).toMatch(/not a RIFF\/WAVE/);
    const junkOnly = Buffer.concat([Buffer.from('RIFF', 'latin1'), u32(16), Buffer.from('WAVEJUNK', 'latin1'), u32(4), Buffer.alloc(4)]);
    expect(refusal(() => head(junkOnly, 1)).message).toMatch(/has no data chunk$/);
    expect(refusal(() => head(Buffer.concat([junkOnly, Buffer.from('data', 'latin1'), u32(0)]), 1)).message).toMatch(/data chunk before any fmt chunk/);
    const bigList = segmentWav(PCM_FMT, Buffer.alloc(10)).subarray(0, 36);
    expect(refusal(() => parseSegmentHead(bigList, 20_000, pos(1))).message).toMatch(/has no data chunk within its first 36 bytes/);
    expect(refusal(() => head(segmentWav(PCM_FMT.subarray(0, 12), Buffer.alloc(10)), 1)).message).toMatch(/too short/);
  });
});

describe('planJoin', () => {
  const datas = [PCM.subarray(44, 30_044), PCM.subarray(30_044, 90_044), PCM.subarray(90_044)];

  it('PCM segments join into the canonical header of the summed length: the original file again', () => {
    const plan = planJoin(datas.map((d, i) => head(segmentWav(PCM_FMT, d, { list: i === 1 }), i + 1)));
    const total = datas.reduce((a, d) => a + d.length, 0);
    expect(plan.header.equals(wavHeader({ sampleRate: 8000, channels: 1, bitsPerSample: 16, dataLength: total }))).toBe(true);
    expect(plan.size).toBe(PCM.length);
    expect(Buffer.concat([plan.header, ...datas]).equals(PCM)).toBe(true);
  });

  it('copies a non-standard fmt (Avaya G.729) as is, sums fact, pads odd data', () => {
    const avaya = Buffer.from(G729_FMT);
    avaya.writeUInt16LE(20, 12); // Avaya-style block align
    avaya.writeUInt32LE(8000, 8);
    const plan = planJoin([head(segmentWav(avaya, Buffer.alloc(25), { fact: 200 }), 1), head(segmentWav(avaya, Buffer.alloc(30), { fact: 240 }), 2)]);
    const h = plan.header;
    expect(h.subarray(12, 20).toString('latin1', 0, 4)).toBe('fmt ');
    expect(h.readUInt32LE(16)).toBe(18);
    expect(h.subarray(20, 38).equals(avaya)).toBe(true);
    expect(h.toString('latin1', 38, 42)).toBe('fact');
    expect(h.readUInt32LE(46)).toBe(440);
    expect(h.toString('latin1', 50, 54)).toBe('data');
    expect(h.readUInt32LE(54)).toBe(55);
    expect(h.readUInt32LE(4)).toBe(h.length - 8 + 55 + 1);
    expect(plan.size).toBe(h.length + 56);
    // fact only when every segment has one
    const mixed = planJoin([head(segmentWav(avaya, Buffer.alloc(20), { fact: 200 }), 1), head(segmentWav(avaya, Buffer.alloc(20)), 2)]);
    expect(mixed.header.includes(Buffer.from('fact'))).toBe(false);
  });

  it('refuses segments whose fmt differs, naming the segment', () => {
    const mulawFmt = Buffer.from(G729_FMT);
    mulawFmt.writeUInt16LE(7, 0);
    const e = refusal(() =>
      planJoin([head(segmentWav(G729_FMT, Buffer.alloc(10)), 1), head(segmentWav(G729_FMT, Buffer.alloc(10)), 2), head(segmentWav(mulawFmt, Buffer.alloc(10)), 3)]),
    );
    expect(e.code).toBe('source.bad_gateway');
    expect(e.extra).toEqual({ segment: 3, inum: 'inum-3' });
    expect(e.message).toMatch(/segment 3 of 3 .*another audio format than segment 1 \(format tag 0x0007.* vs format tag 0x0083/);
    // same fields, different extra bytes (cbSize): still refused
    const extra = Buffer.from(G729_FMT);
    extra.writeUInt16LE(2, 16);
    expect(refusal(() => planJoin([head(segmentWav(G729_FMT, Buffer.alloc(10)), 1), head(segmentWav(extra, Buffer.alloc(10)), 2)])).message).toMatch(/different fmt bytes/);
  });
});

describe('piecesFor and joinedBody', () => {
  const datas = [Buffer.alloc(100, 1), Buffer.alloc(50, 2), Buffer.alloc(75, 3)];
  const heads = datas.map((d, i) => head(segmentWav(PCM_FMT, d), i + 1));
  const plan = planJoin(heads);
  const whole = Buffer.concat([plan.header, ...datas, Buffer.alloc(1)]);
  const open = (opened: string[]) => async (seg: SegmentHead, from: number, to: number) => {
    opened.push(`${seg.n}:${from}-${to}`);
    return Readable.from([datas[seg.n - 1]!.subarray(from, to + 1)]);
  };

  it('the whole file: header, each segment in turn, the pad byte', async () => {
    expect(plan.size).toBe(whole.length);
    const opened: string[] = [];
    expect((await drain(joinedBody(piecesFor(plan, 0, plan.size - 1), open(opened)))).equals(whole)).toBe(true);
    expect(opened).toEqual(['1:0-99', '2:0-49', '3:0-74']);
  });

  it('a range fetches only the segments it touches, each with its own range', async () => {
    const h = plan.header.length;
    for (const [start, end, want] of [
      [h + 90, h + 109, ['1:90-99', '2:0-9']],
      [10, 20, []],
      [h + 120, h + 160, ['2:20-49', '3:0-10']],
      [h + 224, h + 225, ['3:74-74']],
    ] as const) {
      const opened: string[] = [];
      const got = await drain(joinedBody(piecesFor(plan, start, end), open(opened)));
      expect(got.equals(whole.subarray(start, end + 1)), `${start}-${end}`).toBe(true);
      expect(opened).toEqual(want);
    }
  });

  it('a segment that breaks errors the whole body after the bytes before it', async () => {
    const body = joinedBody(piecesFor(plan, 0, plan.size - 1), async (seg) => {
      if (seg.n === 2) throw new AppError('source.unavailable', 'segment 2 broke');
      return Readable.from([datas[seg.n - 1]!]);
    });
    const got: Buffer[] = [];
    await expect(
      (async () => {
        for await (const c of body) got.push(c as Buffer);
      })(),
    ).rejects.toThrow(/segment 2 broke/);
    expect(Buffer.concat(got).equals(whole.subarray(0, plan.header.length + 100))).toBe(true);
  });
});
