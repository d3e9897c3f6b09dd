/**
 * G.726 in WAV with more than one channel. ffmpeg's G.726 decoder is mono only ("Decoding more
 * than one channel is not implemented"), which the fmt chunk tells before a byte is decoded: such a
 * file is a 415 media.unsupported_codec decided from the header (describe-output.ts), like G.726
 * coded in other than 2..5 bits — not a 422 media.undecodable after ffmpeg was started and failed.
 * The fixtures are made here from the repository's mono PCM recording, by ffmpeg itself.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appErrorOf, buildWav, collect, FFMPEG, ffmpegBytes, fixturePath, fmtBody, prepareBytes, wavChunks } from '../../test/support/audio.js';
import { describeOutput } from './describe-output.js';
import { sniff } from './sniff.js';
import { Transcoder } from './transcoder.js';

const transcoder = new Transcoder({ ffmpegPath: FFMPEG, maxConcurrent: 2, maxQueued: 8, timeoutMs: 20_000, killGraceMs: 500 });
/** A Transcoder that can never start ffmpeg: a refusal it gives is 503 media.transcoder_unavailable. */
const noFfmpeg = new Transcoder({ ffmpegPath: '/nonexistent/ffmpeg', maxConcurrent: 1, maxQueued: 1, timeoutMs: 5_000, killGraceMs: 100 });

describe('stereo G.726 WAV', () => {
  let dir: string;
  let mono: Buffer;
  let stereo: Buffer;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'custodian-g726-'));
    // ffmpeg's G.726 encoder is mono only too: encode mono at 32 kbit/s (4 bits per sample)…
    const file = join(dir, 'mono_g726.wav');
    await ffmpegBytes(['-i', fixturePath('call_mono_pcm16_8k.wav'), '-c:a', 'g726', '-b:a', '32k', '-y', file]);
    mono = readFileSync(file);
    const chunks = wavChunks(mono);
    const fmt = chunks.find(([id]) => id === 'fmt ')![1];
    const data = chunks.find(([id]) => id === 'data')![1];
    expect(fmt.readUInt16LE(0)).toBe(0x0045);
    expect(fmt.readUInt16LE(14)).toBe(4);
    // …and relabel the same payload as two channels interleaved, as a stereo recorder writes it.
    stereo = buildWav([
      ['fmt ', fmtBody({ tag: 0x0045, channels: 2, sampleRate: 8000, byteRate: 8000, blockAlign: 2, bits: 4, extra: Buffer.alloc(0) })],
      ['data', data],
    ]);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('real ffmpeg decodes the mono file and refuses the stereo one (the premise)', async () => {
    const args = ['-f', 'wav', '-i', 'pipe:0', '-c:a', 'pcm_s16le', '-f', 's16le', 'pipe:1'];
    expect((await ffmpegBytes(args, mono)).length).toBeGreaterThan(100_000);
    await expect(ffmpegBytes(args, stereo)).rejects.toThrow(/Not yet implemented|more than one channel/i);
  });

  it('the header decides: 415 media.unsupported_codec for every converted format, mono still goes to ffmpeg', () => {
    const s = sniff(stereo);
    expect(s).toMatchObject({ container: 'wav', codec: 'g726', channels: 2, bitsPerSample: 4 });
    for (const want of ['wav', 'mp3', 'opus'] as const) {
      expect(describeOutput(s, want), want).toMatchObject({ action: 'refuse', error: 'media.unsupported_codec', why: expect.stringMatching(/g726 with 2 channels/) });
    }
    expect(describeOutput(s, 'original')).toMatchObject({ action: 'passthrough', contentType: 'audio/wav' });
    expect(describeOutput(sniff(mono), 'wav')).toMatchObject({ action: 'ffmpeg', demux: { kind: 'container', format: 'wav' } });
  });

  it('is refused with 415 before ffmpeg is started, with or without the size known; original is served', async () => {
    for (const want of ['wav', 'mp3', 'opus'] as const) {
      for (const sourceSize of [stereo.length, undefined]) {
        // Without ffmpeg at all: a plan that reached the transcoder would be a 503.
        for (const t of [transcoder, noFfmpeg]) {
          const e = await appErrorOf(prepareBytes(stereo, want, { transcoder: t, sourceSize }));
          expect(e, `${want}, size ${sourceSize}`).toMatchObject({ code: 'media.unsupported_codec', status: 415, extra: { codec: 'g726' }, headers: { 'X-Audio-Codec': 'g726' } });
        }
      }
    }
    expect(transcoder.active).toBe(0);
    const original = await prepareBytes(stereo, 'original', { transcoder: noFfmpeg, sourceSize: stereo.length });
    expect((await collect(original.body)).equals(stereo)).toBe(true);
  });
});
