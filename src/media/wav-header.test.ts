import { describe, expect, it } from 'vitest';
import { ffprobe, parseWav } from '../../test/support/audio.js';
import { MAX_WAV_DATA_LENGTH, WAV_HEADER_BYTES, WAV_UNKNOWN_SIZE, wavHeader } from './wav-header.js';

describe('wavHeader', () => {
  it('writes the canonical 44-byte PCM header', () => {
    const h = wavHeader({ sampleRate: 8000, channels: 2, bitsPerSample: 16, dataLength: 32000 });
    expect(h.length).toBe(WAV_HEADER_BYTES);
    expect(h.toString('latin1', 0, 4)).toBe('RIFF');
    expect(h.readUInt32LE(4)).toBe(36 + 32000);
    expect(h.toString('latin1', 8, 16)).toBe('WAVEfmt ');
    expect(h.readUInt32LE(16)).toBe(16);
    expect(h.readUInt16LE(20)).toBe(1);
    expect(h.readUInt16LE(22)).toBe(2);
    expect(h.readUInt32LE(24)).toBe(8000);
    expect(h.readUInt32LE(28)).toBe(32000);
    expect(h.readUInt16LE(32)).toBe(4);
    expect(h.readUInt16LE(34)).toBe(16);
    expect(h.toString('latin1', 36, 40)).toBe('data');
    expect(h.readUInt32LE(40)).toBe(32000);
  });

  it('ffprobe reads header + payload as the declared format and duration', async () => {
    const payload = Buffer.alloc(2 * 16000 * 2); // 2 s of 16 kHz mono 16-bit
    const probe = await ffprobe(Buffer.concat([wavHeader({ sampleRate: 16000, channels: 1, bitsPerSample: 16, dataLength: payload.length }), payload]), 'wav');
    expect(probe.streams[0]).toMatchObject({ codec_name: 'pcm_s16le', sample_rate: '16000', channels: 1 });
    expect(Number(probe.streams[0]!.duration)).toBeCloseTo(2, 3);
  });

  it('unknown length: 0xFFFFFFFF in both sizes (streaming convention)', () => {
    const h = wavHeader({ sampleRate: 48000, channels: 1, bitsPerSample: 16, dataLength: undefined });
    expect(h.readUInt32LE(4)).toBe(WAV_UNKNOWN_SIZE);
    expect(h.readUInt32LE(40)).toBe(WAV_UNKNOWN_SIZE);
    expect(parseWav(Buffer.concat([h, Buffer.alloc(8)])).samples.length).toBe(4);
  });

  it('odd data lengths count the pad byte in the RIFF size', () => {
    expect(wavHeader({ sampleRate: 8000, channels: 1, bitsPerSample: 8, dataLength: 3 }).readUInt32LE(4)).toBe(40);
  });

  it('the largest representable payload, and refusals beyond it', () => {
    const h = wavHeader({ sampleRate: 8000, channels: 1, bitsPerSample: 16, dataLength: MAX_WAV_DATA_LENGTH });
    expect(h.readUInt32LE(4)).toBe(0xfffffffe);
    expect(() => wavHeader({ sampleRate: 8000, channels: 1, bitsPerSample: 16, dataLength: MAX_WAV_DATA_LENGTH + 2 })).toThrow(RangeError);
    expect(() => wavHeader({ sampleRate: 8000, channels: 1, bitsPerSample: 16, dataLength: -1 })).toThrow(RangeError);
    expect(() => wavHeader({ sampleRate: 0, channels: 1, bitsPerSample: 16, dataLength: 0 })).toThrow(RangeError);
    expect(() => wavHeader({ sampleRate: 8000, channels: 1, bitsPerSample: 12, dataLength: 0 })).toThrow(RangeError);
  });
});
