import { describe, expect, it } from 'vitest';
import { describeOutput, ffmpegInvocation, pcmLayout } from './describe-output.js';
import type { AudioFormat } from './format.js';
import type { SniffResult } from './sniff.js';

const wav = (codec: SniffResult['codec'], extra: Partial<SniffResult> = {}): SniffResult => ({
  container: 'wav',
  codec,
  sampleRate: 8000,
  channels: 1,
  dataOffset: 46,
  dataLength: 8450,
  ...extra,
});
const PCM = wav('pcm_s16le', { dataOffset: 44, dataLength: 16000 });
const ULAW = wav('mulaw');
const G729 = wav('g729', { formatTag: 0x0133 });
const G722 = wav('g722', { sampleRate: 16000, formatTag: 0x0065 });
const GSM = wav('gsm_ms', { blockAlign: 65, dataLength: 13780 });
const G723 = wav('g723_1');
const MP3 = { container: 'mp3', codec: 'mp3', sampleRate: 8000, channels: 1 } as const satisfies SniffResult;
const OPUS = { container: 'ogg', codec: 'opus', sampleRate: 48000, channels: 1 } as const satisfies SniffResult;
const VORBIS = { container: 'ogg', codec: 'vorbis', sampleRate: 16000, channels: 2 } as const satisfies SniffResult;
const SPEEX = { container: 'ogg', codec: 'unknown' } as const satisfies SniffResult;
const RAW729 = { container: 'unknown', codec: 'g729', dataOffset: 0, dataLength: 8450 } as const satisfies SniffResult;
const TRUNC = wav('unknown', { problem: 'truncated: ...' });
const TAG = wav('unknown', { formatTag: 0x1234, notes: ['unrecognised WAVE format tag 0x1234'] });
const STEREO729 = wav('g729', { channels: 2 });
const G726_8BIT = wav('g726', { bitsPerSample: 8 });
const JUNK = { container: 'unknown', codec: 'unknown' } as const satisfies SniffResult;

type Row = [string, SniffResult, AudioFormat, string];
/** The policy table (see describe-output.ts). Action strings: action[:detail]. */
const TABLE: Row[] = [
  ['PCM', PCM, 'original', 'passthrough:audio/wav'],
  ['PCM', PCM, 'wav', 'passthrough:audio/wav'],
  ['PCM', PCM, 'mp3', 'ffmpeg:raw/s16le→mp3'],
  ['PCM', PCM, 'opus', 'ffmpeg:raw/s16le→opus'],
  ['µ-law', ULAW, 'wav', 'g711:mulaw'],
  ['µ-law', ULAW, 'mp3', 'ffmpeg:raw/mulaw→mp3'],
  ['Sipro G.729', G729, 'wav', 'ffmpeg:raw/g729→wav'],
  ['Sipro G.729', G729, 'original', 'passthrough:audio/wav'],
  ['APICOM G.722', G722, 'wav', 'ffmpeg:raw/g722→wav'],
  ['GSM', GSM, 'wav', 'ffmpeg:container/wav→wav'],
  ['G.723.1', G723, 'opus', 'ffmpeg:container/wav→opus'],
  ['MP3', MP3, 'mp3', 'passthrough:audio/mpeg'],
  ['MP3', MP3, 'wav', 'ffmpeg:container/mp3→wav'],
  ['MP3', MP3, 'opus', 'ffmpeg:container/mp3→opus'],
  ['Opus', OPUS, 'opus', 'passthrough:audio/ogg'],
  ['Opus', OPUS, 'mp3', 'ffmpeg:container/ogg→mp3'],
  ['Vorbis', VORBIS, 'opus', 'ffmpeg:container/ogg→opus'],
  ['Vorbis', VORBIS, 'original', 'passthrough:audio/ogg'],
  ['raw G.729', RAW729, 'wav', 'ffmpeg:raw/g729→wav'],
  ['raw G.729', RAW729, 'original', 'passthrough:application/octet-stream'],
  ['truncated', TRUNC, 'wav', 'refuse:media.undecodable'],
  ['truncated', TRUNC, 'original', 'passthrough:audio/wav'],
  ['junk', JUNK, 'mp3', 'refuse:media.undecodable'],
  ['junk', JUNK, 'original', 'passthrough:application/octet-stream'],
  ['unknown tag', TAG, 'wav', 'refuse:media.unsupported_codec'],
  ['Ogg Speex', SPEEX, 'wav', 'refuse:media.unsupported_codec'],
  ['stereo G.729', STEREO729, 'wav', 'refuse:media.unsupported_codec'],
  ['G.726, 4 bits', wav('g726', { bitsPerSample: 4 }), 'wav', 'ffmpeg:container/wav→wav'],
  ['G.726, 8 bits', G726_8BIT, 'wav', 'refuse:media.unsupported_codec'],
  ['G.726, 8 bits', G726_8BIT, 'original', 'passthrough:audio/wav'],
  ['G.726, 1 bit', wav('g726', { bitsPerSample: 1 }), 'mp3', 'refuse:media.unsupported_codec'],
  // ffmpeg's G.726 decoder is mono only: known from the header, refused before ffmpeg runs.
  ['G.726, 4 bits, stereo', wav('g726', { bitsPerSample: 4, channels: 2 }), 'wav', 'refuse:media.unsupported_codec'],
  ['G.726, 4 bits, stereo', wav('g726', { bitsPerSample: 4, channels: 2 }), 'opus', 'refuse:media.unsupported_codec'],
  ['G.726, 4 bits, stereo', wav('g726', { bitsPerSample: 4, channels: 2 }), 'original', 'passthrough:audio/wav'],
];

describe('describeOutput (the policy table)', () => {
  it.each(TABLE)('%s → %s: %s', (_name, s, want, expected) => {
    const plan = describeOutput(s, want);
    const got =
      plan.action === 'passthrough'
        ? `passthrough:${plan.contentType}`
        : plan.action === 'g711'
          ? `g711:${plan.law}`
          : plan.action === 'refuse'
            ? `refuse:${plan.error}`
            : `ffmpeg:${plan.demux.kind}/${plan.demux.format}→${plan.output}`;
    expect(got).toBe(expected);
  });
});

describe('pcmLayout: output length from frame arithmetic', () => {
  it.each([
    ['G.729: 10 bytes → 80 samples', G729, 8000, 1, 845 * 160],
    ['G.729: a partial last frame is dropped', wav('g729', { dataLength: 8455 }), 8000, 1, 845 * 160],
    ['G.722: 1 byte → 2 samples at 16 kHz (whatever fmt says)', wav('g722', { sampleRate: 8000, dataLength: 67533 }), 16000, 1, 67533 * 4],
    ['GSM 6.10: 65 bytes → 320 samples', GSM, 8000, 1, 212 * 640],
    ['G.711: 1 byte → 1 sample', ULAW, 8000, 1, 8450 * 2],
    ['G.726 32k: 4 bits per sample', wav('g726', { bitsPerSample: 4, dataLength: 1000 }), 8000, 1, 2000 * 2],
    ['G.726 24k: 3 bits per sample', wav('g726', { bitsPerSample: 3, dataLength: 25325 }), 8000, 1, 67533 * 2],
    ['G.723.1: frame sizes vary', G723, 8000, 1, undefined],
    ['Opus: 48 kHz, unknown length', OPUS, 48000, 1, undefined],
    ['streamed WAV: unknown length', wav('g729', { dataLength: undefined }), 8000, 1, undefined],
    ['MP3 with unseen first frame: 48 kHz stereo', { container: 'mp3', codec: 'mp3' } as SniffResult, 48000, 2, undefined],
    ['beyond 4 GiB of PCM: unknown length', wav('mulaw', { dataLength: 3e9 }), 8000, 1, undefined],
  ] as const)('%s', (_name, s, rate, channels, bytes) => {
    const l = pcmLayout(s);
    expect(l.sampleRate).toBe(rate);
    expect(l.channels).toBe(channels);
    expect(l.pcmBytes).toBe(bytes);
  });
});

describe('ffmpegInvocation', () => {
  it('Sipro G.729 → WAV: data chunk fed to -f g729, raw s16le out, our header, exact length', () => {
    const inv = ffmpegInvocation(G729, { kind: 'raw', format: 'g729' }, 'wav');
    expect(inv.inputArgs).toEqual(['-f', 'g729']);
    expect(inv.slice).toEqual({ skip: 46, take: 8450 });
    expect(inv.outputArgs).toEqual(['-c:a', 'pcm_s16le', '-ar', '8000', '-ac', '1', '-f', 's16le']);
    expect(inv.length).toBe(44 + 845 * 160);
    expect(inv.framing?.prefix?.readUInt32LE(40)).toBe(845 * 160);
    expect(inv.framing?.expectedBytes).toBe(845 * 160);
  });

  it('PCM → MP3: raw PCM described by the fmt chunk; libmp3lame', () => {
    const inv = ffmpegInvocation(PCM, { kind: 'raw', format: 's16le' }, 'mp3');
    expect(inv.inputArgs).toEqual(['-f', 's16le', '-ar', '8000', '-ac', '1']);
    expect(inv.outputArgs).toEqual(['-c:a', 'libmp3lame', '-b:a', '32k', '-f', 'mp3']);
    expect(inv.length).toBeUndefined();
  });

  it('stereo stays stereo; 44.1 kHz Vorbis → Opus resamples to 48 kHz', () => {
    expect(ffmpegInvocation(VORBIS, { kind: 'container', format: 'ogg' }, 'opus').outputArgs).toEqual(['-c:a', 'libopus', '-b:a', '64k', '-f', 'ogg']);
    const v44 = { ...VORBIS, sampleRate: 44100 };
    expect(ffmpegInvocation(v44, { kind: 'container', format: 'ogg' }, 'opus').outputArgs).toEqual(['-ar', '48000', '-c:a', 'libopus', '-b:a', '64k', '-f', 'ogg']);
    expect(ffmpegInvocation(VORBIS, { kind: 'container', format: 'ogg' }, 'wav').outputArgs).toContain('2');
  });

  it('whole-file WAV demuxing takes no slice', () => {
    expect(ffmpegInvocation(GSM, { kind: 'container', format: 'wav' }, 'wav').slice).toBeUndefined();
  });
});
