import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { wavEnvelope } from '../../src/console/waveform.js';

/** A PCM WAV header as a crafted file would carry it: any sample rate, any declared data size. */
function wavHeader(sampleRate: number, channels: number, bits: number, dataBytes: number): Buffer {
  const h = Buffer.alloc(44);
  const blockAlign = (channels * bits) / 8;
  h.write('RIFF', 0, 'latin1');
  h.writeUInt32LE(36 + dataBytes, 4);
  h.write('WAVE', 8, 'latin1');
  h.write('fmt ', 12, 'latin1');
  h.writeUInt32LE(16, 16);
  h.writeUInt16LE(1, 20);
  h.writeUInt16LE(channels, 22);
  h.writeUInt32LE(sampleRate, 24);
  h.writeUInt32LE(sampleRate * blockAlign, 28);
  h.writeUInt16LE(blockAlign, 32);
  h.writeUInt16LE(bits, 34);
  h.write('data', 36, 'latin1');
  h.writeUInt32LE(dataBytes, 40);
  return h;
}

/** A header, then `dataBytes` of PCM16 made on the fly in 64 KiB chunks (a quiet hum, one full-scale spike each way). */
function craftedWav(sampleRate: number, channels: number, dataBytes: number): Readable {
  let sent = -1;
  const spikeLow = Math.floor(dataBytes / 3 / 2) * 2;
  const spikeHigh = Math.floor((2 * dataBytes) / 3 / 2) * 2;
  return new Readable({
    read() {
      if (sent < 0) {
        sent = 0;
        this.push(wavHeader(sampleRate, channels, 16, dataBytes));
        return;
      }
      if (sent >= dataBytes) return void this.push(null);
      const n = Math.min(64 * 1024, dataBytes - sent);
      const b = Buffer.alloc(n);
      for (let o = 0; o + 1 < n; o += 2) {
        const at = sent + o;
        b.writeInt16LE(at === spikeLow ? -32768 : at === spikeHigh ? 32767 : ((at / 2) % 200) - 100, o);
      }
      sent += n;
      this.push(b);
    },
  });
}

describe('waveform memory is bounded whatever the WAV header says', () => {
  it('a 1 Hz mono WAV of 8 MiB (4 Mi frames, one 20 ms block per frame before) keeps at most 2^20 blocks, and its envelope is exact', async () => {
    const { peaks, blocks } = await wavEnvelope(craftedWav(1, 1, 8 * 1024 * 1024), 1000);
    expect(blocks).toBeLessThanOrEqual(1 << 20);
    expect(blocks).toBeGreaterThan(1000);
    expect(peaks).toMatchObject({ sample_rate: 1, channels: 1, bits_per_sample: 16, duration_s: 4 * 1024 * 1024, points: 1000 });
    expect(peaks.min[0]).toHaveLength(1000);
    expect(Math.min(...peaks.min[0]!)).toBe(-1);
    expect(Math.max(...peaks.max[0]!)).toBe(1);
  });

  it('more channels share the same bound', async () => {
    const { peaks, blocks } = await wavEnvelope(craftedWav(3, 8, 8 * 1024 * 1024), 500);
    expect(blocks * 8).toBeLessThanOrEqual(1 << 20);
    expect(peaks.channels).toBe(8);
    expect(peaks.min).toHaveLength(8);
    for (const m of peaks.min) expect(m).toHaveLength(500);
  });
});
