import { describe, expect, it } from 'vitest';
import { chunked, collect, ffmpegBytes, readFixture, s16, wavChunks } from '../../test/support/audio.js';
import { ALAW_TO_S16, decodeG711, G711Decoder, MULAW_TO_S16 } from './g711.js';

const ALL_BYTES = Buffer.from(Array.from({ length: 256 }, (_, i) => i));

describe('G.711 tables', () => {
  it.each(['mulaw', 'alaw'] as const)('%s: all 256 codes identical to ffmpeg', async (law) => {
    const ref = s16(await ffmpegBytes(['-f', law, '-ar', '8000', '-ac', '1', '-i', 'pipe:0', '-f', 's16le', 'pipe:1'], ALL_BYTES));
    const table = law === 'mulaw' ? MULAW_TO_S16 : ALAW_TO_S16;
    expect(Array.from(table)).toEqual(Array.from(ref));
  });

  it('known code points (ITU-T G.711)', () => {
    expect(MULAW_TO_S16[0xff]).toBe(0);
    expect(MULAW_TO_S16[0x7f]).toBe(0);
    expect(MULAW_TO_S16[0x00]).toBe(-32124);
    expect(MULAW_TO_S16[0x80]).toBe(32124);
    expect(ALAW_TO_S16[0xd5]).toBe(8);
    expect(ALAW_TO_S16[0x55]).toBe(-8);
    expect(ALAW_TO_S16[0xaa]).toBe(32256);
    expect(ALAW_TO_S16[0x2a]).toBe(-32256);
  });

  it('both laws are odd-symmetric: the sign bit only flips the sign', () => {
    for (let b = 0; b < 128; b++) {
      expect(MULAW_TO_S16[b]! + MULAW_TO_S16[b | 0x80]!).toBe(0);
      expect(ALAW_TO_S16[b]! + ALAW_TO_S16[b | 0x80]!).toBe(0);
    }
  });
});

describe('G711Decoder stream', () => {
  it('decodes the µ-law fixture identically to ffmpeg, whatever the chunk boundaries', async () => {
    const wav = readFixture('call_mono_mulaw_8k.wav');
    const data = wavChunks(wav).find(([id]) => id === 'data')![1];
    const ref = await ffmpegBytes(['-i', 'pipe:0', '-f', 's16le', 'pipe:1'], wav);
    const out = await collect(chunked(data, 997).pipe(new G711Decoder('mulaw')));
    expect(out.equals(ref)).toBe(true);
    expect(decodeG711('mulaw', data).equals(ref)).toBe(true);
  });

  it('decodes the A-law fixture identically to ffmpeg', async () => {
    const wav = readFixture('call_mono_alaw_8k.wav');
    const data = wavChunks(wav).find(([id]) => id === 'data')![1];
    const ref = await ffmpegBytes(['-i', 'pipe:0', '-f', 's16le', 'pipe:1'], wav);
    expect((await collect(chunked(data, 1).pipe(new G711Decoder('alaw')))).equals(ref)).toBe(true);
  });
});
