import { existsSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { buildWav, ffmpegBytes, fixturePath, fmtBody, readFixture, wavChunks } from '../../test/support/audio.js';
import { CODECS, sniff, type SniffResult } from './sniff.js';

const whole = (name: string): SniffResult => {
  const b = readFixture(name);
  return sniff(b.subarray(0, 65536), { totalSize: b.length });
};

describe('sniff: the shared fixtures', () => {
  it.each([
    ['call_mono_pcm16_8k.wav', { container: 'wav', codec: 'pcm_s16le', formatTag: 1, sampleRate: 8000, channels: 1, bitsPerSample: 16, blockAlign: 2, dataOffset: 44, dataLength: 135066 }],
    ['call_stereo_pcm16_8k.wav', { container: 'wav', codec: 'pcm_s16le', formatTag: 1, sampleRate: 8000, channels: 2, blockAlign: 4, dataOffset: 44, dataLength: 214944 }],
    ['call_mono_mulaw_8k.wav', { container: 'wav', codec: 'mulaw', formatTag: 7, sampleRate: 8000, channels: 1, dataOffset: 92, dataLength: 67533 }],
    ['call_mono_alaw_8k.wav', { container: 'wav', codec: 'alaw', formatTag: 6, sampleRate: 8000, channels: 1, dataOffset: 92, dataLength: 67533 }],
    ['call_mono_gsm610_8k.wav', { container: 'wav', codec: 'gsm_ms', formatTag: 0x31, blockAlign: 65, dataOffset: 94, dataLength: 13780 }],
    ['call_mono_g729_8k.wav', { container: 'wav', codec: 'g729', formatTag: 0x83, blockAlign: 10, dataOffset: 46, dataLength: 8450 }],
    ['call_mono_g722_16k.wav', { container: 'wav', codec: 'g722', formatTag: 0x28f, sampleRate: 16000, dataOffset: 92, dataLength: 67533 }],
    ['call_mono_8k.mp3', { container: 'mp3', codec: 'mp3', sampleRate: 8000, channels: 1 }],
    ['call_mono_48k.opus.ogg', { container: 'ogg', codec: 'opus', sampleRate: 48000, channels: 1 }],
    ['call_mono_g729_8k.g729', { container: 'unknown', codec: 'unknown' }],
  ])('%s', (name, expected) => {
    const s = whole(name);
    expect(s).toMatchObject(expected);
    expect(s.problem).toBeUndefined();
  });

  it('bad_truncated_pcm16.wav: the header promises more data than the file holds', () => {
    const s = whole('bad_truncated_pcm16.wav');
    expect(s).toMatchObject({ container: 'wav', codec: 'unknown', formatTag: 1 });
    expect(s.problem).toMatch(/truncated.*135066.*2956/);
    // Without knowing the size, the header alone looks fine: prepareMedia supplies the size.
    expect(sniff(readFixture('bad_truncated_pcm16.wav')).codec).toBe('pcm_s16le');
  });

  it('bad_garbage_riff.wav: RIFF/WAVE without fmt', () => {
    const s = whole('bad_garbage_riff.wav');
    expect(s).toMatchObject({ container: 'wav', codec: 'unknown' });
    expect(s.problem).toMatch(/chunk 'junk' at offset 12 claims \d+ bytes, past the end of the file/);
  });

  it('bad_text.wav: not audio at all, whatever the name says', () => {
    expect(whole('bad_text.wav')).toEqual({ container: 'unknown', codec: 'unknown' });
  });

  it('fixture path resolves to the shared read-only directory', () => {
    // shared/ sits beside the repository wherever it is cloned (CI clones elsewhere).
    expect(fixturePath('x')).toMatch(/\/shared\/fixtures\/audio\/x$/);
    expect(existsSync(fixturePath('call_mono_pcm16_8k.wav'))).toBe(true);
  });
});

describe('sniff: RIFF chunk walking', () => {
  const mulaw = readFixture('call_mono_mulaw_8k.wav');
  const chunks = wavChunks(mulaw);
  const fmt = chunks.find(([id]) => id === 'fmt ')![1];
  const data = chunks.find(([id]) => id === 'data')![1];

  it('skips LIST, fact, bext and odd-sized chunks (pad byte) before data', () => {
    const bext = Buffer.alloc(602 + 13);
    bext.write('custodian test', 0, 'latin1');
    const list = Buffer.concat([Buffer.from('INFOISFT'), Buffer.from([5, 0, 0, 0]), Buffer.from('test\0'), Buffer.alloc(1)]);
    const wav = buildWav([
      ['bext', bext], // 615 bytes: odd, padded
      ['fmt ', fmt],
      ['junk', Buffer.from('abc')], // odd again
      ['fact', Buffer.from([0xcd, 0x07, 0x01, 0x00])],
      ['LIST', list],
      ['data', data],
      ['LIST', list], // after data: never read
    ]);
    const s = sniff(wav.subarray(0, 65536), { totalSize: wav.length });
    expect(s).toMatchObject({ container: 'wav', codec: 'mulaw', dataLength: data.length });
    expect(wav.subarray(s.dataOffset!, s.dataOffset! + 16)).toEqual(data.subarray(0, 16));
  });

  it('RF64: data size from ds64', () => {
    const ds64 = Buffer.alloc(28);
    ds64.writeBigUInt64LE(BigInt(data.length + 36), 0);
    ds64.writeBigUInt64LE(BigInt(data.length), 8);
    ds64.writeBigUInt64LE(BigInt(data.length), 16);
    const wav = buildWav([['ds64', ds64], ['fmt ', fmt], ['data', data]], { magic: 'RF64', riffSize: 0xffffffff });
    wav.writeUInt32LE(0xffffffff, wav.indexOf('data', 12, 'latin1') + 4);
    const s = sniff(wav.subarray(0, 65536), { totalSize: wav.length });
    expect(s).toMatchObject({ container: 'wav', codec: 'mulaw', dataLength: data.length });
    expect(s.notes?.join()).toMatch(/RF64/);
    // RF64 without ds64 cannot say how long its data is.
    const noDs64 = buildWav([['fmt ', fmt], ['data', data]], { magic: 'RF64' });
    noDs64.writeUInt32LE(0xffffffff, noDs64.indexOf('data', 12, 'latin1') + 4);
    expect(sniff(noDs64).problem).toMatch(/ds64/);
  });

  it('streamed WAV (sizes 0xFFFFFFFF): data runs to end of file', () => {
    const wav = buildWav([['fmt ', fmt], ['data', data]], { riffSize: 0xffffffff });
    wav.writeUInt32LE(0xffffffff, wav.indexOf('data', 12, 'latin1') + 4);
    const s = sniff(wav, { totalSize: wav.length });
    expect(s.codec).toBe('mulaw');
    expect(s.dataLength).toBeUndefined();
    expect(s.problem).toBeUndefined();
  });

  it('WAVE_FORMAT_EXTENSIBLE: codec from the sub-format GUID', () => {
    const ext = (subTag: number, bits: number, guidTail = '000000001000800000aa00389b71'): Buffer => {
      const extra = Buffer.alloc(22);
      extra.writeUInt16LE(bits, 0); // valid bits
      extra.writeUInt32LE(0x3, 2); // FL|FR
      extra.writeUInt16LE(subTag, 6);
      Buffer.from(guidTail, 'hex').copy(extra, 8);
      const f = fmtBody({ tag: 0xfffe, channels: 2, sampleRate: 48000, byteRate: 48000 * 2 * (bits / 8), blockAlign: 2 * (bits / 8), bits, extra });
      return buildWav([['fmt ', f], ['data', Buffer.alloc(96)]]);
    };
    expect(sniff(ext(1, 24))).toMatchObject({ codec: 'pcm_s24le', formatTag: 1, extensible: true, channels: 2 });
    expect(sniff(ext(3, 32))).toMatchObject({ codec: 'pcm_f32le', formatTag: 3, extensible: true });
    expect(sniff(ext(7, 8))).toMatchObject({ codec: 'mulaw', extensible: true });
    const alien = sniff(ext(1, 16, '000000001000800000aa00389b72'));
    expect(alien).toMatchObject({ container: 'wav', codec: 'unknown' });
    expect(alien.problem).toBeUndefined();
    expect(alien.notes?.join()).toMatch(/GUID/);
  });

  it('odd PCM widths are recognised as PCM but not named as a decodable codec', () => {
    const f = fmtBody({ tag: 1, channels: 1, sampleRate: 8000, byteRate: 16000, blockAlign: 2, bits: 12 });
    const s = sniff(buildWav([['fmt ', f], ['data', Buffer.alloc(10)]]));
    expect(s).toMatchObject({ codec: 'unknown', formatTag: 1 });
    expect(s.notes?.join()).toMatch(/12 bits/);
  });

  it('data before fmt, missing data, implausible fmt values, broken chunk ids', () => {
    expect(sniff(buildWav([['data', data], ['fmt ', fmt]])).problem).toMatch(/before fmt/);
    const onlyFmt = buildWav([['fmt ', fmt]]);
    expect(sniff(onlyFmt, { totalSize: onlyFmt.length }).problem).toMatch(/no data chunk/);
    const zeroCh = Buffer.from(fmt);
    zeroCh.writeUInt16LE(0, 2);
    expect(sniff(buildWav([['fmt ', zeroCh], ['data', data]])).problem).toMatch(/channel/);
    const hugeRate = Buffer.from(fmt);
    hugeRate.writeUInt32LE(0xffffffff, 4);
    expect(sniff(buildWav([['fmt ', hugeRate], ['data', data]])).problem).toMatch(/sample rate/);
    const bin = buildWav([['fmt ', fmt], ['data', data]]);
    bin[bin.indexOf('data', 12, 'latin1')] = 0; // chunk id of data
    expect(sniff(bin).problem).toMatch(/malformed chunk id/);
    expect(sniff(Buffer.from('RIFF\x10\0\0\0WA')).problem).toMatch(/truncated/);
    expect(sniff(Buffer.from('RIFF\x10\0\0\0AVI LIST'))).toEqual({ container: 'unknown', codec: 'unknown' });
  });

  it('a fmt chunk beyond the sniff window is reported, not guessed', () => {
    const big = buildWav([['LIST', Buffer.alloc(70000)], ['fmt ', fmt], ['data', data]]);
    const s = sniff(big.subarray(0, 65536));
    expect(s).toMatchObject({ container: 'wav', codec: 'unknown' });
    expect(s.problem).toMatch(/within the first 65536 bytes/);
  });
});

describe('sniff: mislabelled G.729 and G.722', () => {
  const g729 = wavChunks(readFixture('call_mono_g729_8k.wav'));
  const g729data = g729.find(([id]) => id === 'data')![1];
  const g729wav = (tag: number, blockAlign = 10, byteRate = 1000): Buffer =>
    buildWav([['fmt ', fmtBody({ tag, channels: 1, sampleRate: 8000, byteRate, blockAlign, bits: 0, extra: Buffer.alloc(0) })], ['data', g729data]]);

  const hex = (t: number): string => `0x${t.toString(16).padStart(4, '0')}`;

  it.each([0x0133, 0x0134].map((t) => [hex(t), t] as const))('Sipro Lab tag %s → g729 (ffmpeg 5.1 does not know it)', (_name, tag) => {
    const s = sniff(g729wav(tag));
    expect(s).toMatchObject({ container: 'wav', codec: 'g729', formatTag: tag, dataLength: g729data.length });
    expect(s.notes?.join()).toMatch(/Sipro/);
  });

  it.each(
    (
      [
        [0x0083, 20, 8000],
        [0x729a, 1, 1],
        [0x0083, 10, 1000],
      ] as const
    ).map(([t, b, r]) => [hex(t), t, b, r] as const),
  )('Avaya-style tag %s (blockAlign %i, bytesPerSec %i) → g729', (_name, tag, blockAlign, byteRate) => {
    const s = sniff(g729wav(tag, blockAlign, byteRate));
    expect(s.codec).toBe('g729');
    if (blockAlign !== 10) expect(s.notes?.join()).toMatch(/non-standard G\.729/);
    else expect(s.notes).toBeUndefined();
  });

  it('APICOM G.722 tag 0x0065 → g722, not G.726', () => {
    const wav = Buffer.from(readFixture('call_mono_g722_16k.wav'));
    wav.writeUInt16LE(0x0065, 20);
    const s = sniff(wav.subarray(0, 65536), { totalSize: wav.length });
    expect(s).toMatchObject({ codec: 'g722', formatTag: 0x65 });
    expect(s.notes?.join()).toMatch(/APICOM/);
  });

  it.each(
    (
      [
        [0x0042, 'g723_1'],
        [0x0111, 'g723_1'],
        [0xa100, 'g723_1'],
        [0x0045, 'g726'],
        [0x0064, 'g726'],
        [0x0055, 'mp3'],
        [0x0031, 'gsm_ms'],
        [0x1234, 'unknown'],
      ] as const
    ).map(([t, c]) => [hex(t), c, t] as const),
  )('format tag %s → %s', (_name, codec, tag) => {
    expect(sniff(g729wav(tag)).codec).toBe(codec);
  });
});

describe('sniff: Ogg and MP3', () => {
  it('Ogg Vorbis and Ogg Speex (the latter: container known, codec not)', async () => {
    const pcm = readFixture('call_mono_pcm16_8k.wav');
    const vorbis = await ffmpegBytes(['-f', 'wav', '-i', 'pipe:0', '-t', '1', '-c:a', 'libvorbis', '-ar', '16000', '-f', 'ogg', 'pipe:1'], pcm);
    expect(sniff(vorbis)).toMatchObject({ container: 'ogg', codec: 'vorbis', sampleRate: 16000, channels: 1 });
    const speex = await ffmpegBytes(['-f', 'wav', '-i', 'pipe:0', '-t', '1', '-c:a', 'libspeex', '-f', 'ogg', 'pipe:1'], pcm);
    const s = sniff(speex);
    expect(s).toMatchObject({ container: 'ogg', codec: 'unknown' });
    expect(s.problem).toBeUndefined();
    expect(sniff(Buffer.from('OggS\0\x02'))).toMatchObject({ container: 'ogg', codec: 'unknown', problem: expect.stringMatching(/truncated/) });
  });

  it('MP3 without an ID3 tag: two consecutive frames', () => {
    const mp3 = readFixture('call_mono_8k.mp3');
    const firstFrame = 10 + 35;
    expect(sniff(mp3.subarray(firstFrame))).toMatchObject({ container: 'mp3', codec: 'mp3', sampleRate: 8000, channels: 1 });
    // One plausible frame header followed by garbage is not MP3.
    const lone = Buffer.concat([mp3.subarray(firstFrame, firstFrame + 4), Buffer.alloc(200, 0x11)]);
    expect(sniff(lone).container).toBe('unknown');
  });

  it('MP3 whose ID3 tag is larger than the sniff window', () => {
    const id3 = Buffer.from([0x49, 0x44, 0x33, 4, 0, 0, 0x00, 0x08, 0x00, 0x00]); // 128 KiB tag
    const s = sniff(Buffer.concat([id3, Buffer.alloc(65526)]));
    expect(s).toMatchObject({ container: 'mp3', codec: 'mp3' });
    expect(s.sampleRate).toBeUndefined();
  });

  it('ID3 followed by something else is undecodable', () => {
    const id3 = Buffer.from([0x49, 0x44, 0x33, 4, 0, 0, 0, 0, 0, 4]);
    expect(sniff(Buffer.concat([id3, Buffer.alloc(4), Buffer.from('not mpeg at all, not at all')]))).toMatchObject({ container: 'unknown', problem: expect.any(String) });
  });
});

describe('sniff: properties', () => {
  const codecs = new Set<string>(CODECS);
  const check = (s: SniffResult, total?: number): void => {
    expect(['wav', 'ogg', 'mp3', 'unknown']).toContain(s.container);
    expect(codecs.has(s.codec)).toBe(true);
    if (s.container === 'wav' && s.problem === undefined && s.codec !== 'unknown') {
      expect(s.dataOffset).toBeGreaterThanOrEqual(20);
      if (total !== undefined && s.dataLength !== undefined) expect(s.dataOffset! + s.dataLength).toBeLessThanOrEqual(total);
      expect(s.channels).toBeGreaterThanOrEqual(1);
      expect(s.sampleRate).toBeGreaterThanOrEqual(1);
    }
  };

  it('random bytes never make it throw', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), fc.boolean(), (arr, known) => {
        const b = Buffer.from(arr);
        check(sniff(b, known ? { totalSize: b.length } : {}), known ? b.length : undefined);
      }),
      { numRuns: 2000 },
    );
  });

  it('random bytes behind each magic never make it throw', () => {
    const magics = ['RIFF', 'RF64', 'OggS', 'ID3', '\xff\xfb'].map((m) => Buffer.from(m, 'latin1'));
    fc.assert(
      fc.property(fc.constantFrom(...magics), fc.uint8Array({ maxLength: 300 }), (magic, arr) => {
        const b = Buffer.concat([magic, Buffer.from('\0\0\0\0WAVE', 'latin1').subarray(0, magic.toString() === 'RIFF' ? 8 : 0), Buffer.from(arr)]);
        check(sniff(b, { totalSize: b.length }), b.length);
      }),
      { numRuns: 2000 },
    );
  });

  it('random mutations and truncations of valid WAV headers never make it throw', () => {
    const bases = ['call_mono_mulaw_8k.wav', 'call_mono_gsm610_8k.wav', 'call_mono_g729_8k.wav', 'call_mono_pcm16_8k.wav'].map((n) => readFixture(n).subarray(0, 400));
    fc.assert(
      fc.property(
        fc.constantFrom(...bases),
        fc.array(fc.record({ i: fc.nat({ max: 99 }), v: fc.nat({ max: 255 }) }), { minLength: 1, maxLength: 8 }),
        fc.nat({ max: 400 }),
        (base, muts, cut) => {
          const b = Buffer.from(base.subarray(0, Math.max(cut, 12)));
          for (const { i, v } of muts) if (i < b.length) b[i] = v;
          check(sniff(b), undefined);
          check(sniff(b, { totalSize: b.length }), b.length);
        },
      ),
      { numRuns: 3000 },
    );
  });
});
