import { CONTENT_TYPE_OF_FORMAT, type AudioFormat, type ContentType } from './format.js';
import type { FramedOutputOptions } from './framed-output.js';
import type { G711Law } from './g711.js';
import { PCM_CODECS, type SniffResult } from './sniff.js';
import { MAX_WAV_DATA_LENGTH, WAV_HEADER_BYTES, wavHeader } from './wav-header.js';

/**
 * What to do with a recording, decided from the sniffed format and the wanted one. Pure, so
 * the whole policy can be read (and is tested) as a table:
 *
 * | source (sniffed)                               | original    | wav                          | mp3 / opus                      |
 * |------------------------------------------------|-------------|------------------------------|---------------------------------|
 * | anything                                       | passthrough | (below)                      | (below)                         |
 * | WAV problem (truncated, no fmt/data), or bytes | passthrough | refuse 422 undecodable       | refuse 422 undecodable          |
 * | that are no known container                    |             |                              |                                 |
 * | WAV PCM (u8, s16/24/32, f32/64)                | passthrough | passthrough                  | ffmpeg, raw PCM fed             |
 * | WAV µ-law / A-law                              | passthrough | g711 (TypeScript, exact len) | ffmpeg, raw `-f mulaw/alaw` fed |
 * | WAV G.729 (0x0083, 0x729A, Sipro 0x0133/0x0134,| passthrough | ffmpeg `-f g729` on the data | same input                      |
 * |  Avaya oddities), mono                         |             | chunk, exact length          |                                 |
 * | WAV G.722 (0x028F, APICOM 0x0065), mono        | passthrough | ffmpeg `-f g722` on the data | same input                      |
 * |                                                |             | chunk, 16 kHz, exact length  |                                 |
 * | WAV GSM 6.10 / G.726 / G.723.1 / MP3-in-WAV    | passthrough | ffmpeg `-f wav` (whole file) | same input                      |
 * | raw G.729 frames (rawCodecHint 'g729')         | passthrough | ffmpeg `-f g729`             | same input                      |
 * | MP3                                            | passthrough | ffmpeg `-f mp3`              | mp3: passthrough; opus: ffmpeg  |
 * | Ogg Opus / Vorbis                              | passthrough | ffmpeg `-f ogg`              | opus from Opus: passthrough     |
 * | recognised container, codec we cannot decode   | passthrough | refuse 415 unsupported_codec | refuse 415 unsupported_codec    |
 * |  (unknown WAVE tag, Ogg Speex/FLAC, stereo     |             |                              |                                 |
 * |  G.729/G.722/G.726, odd PCM widths, G.726 not  |             |                              |                                 |
 * |  coded in 2..5 bits per sample)                |             |                              |                                 |
 *
 * Raw feeding ("the data chunk") is used wherever the WAV header is what confuses ffmpeg 5.1
 * (mislabelled tags, non-standard fmt values) or where we know the layout better than its
 * prober; ffmpeg parses the container itself only for codecs it reads reliably from WAV.
 */

export type RawFormat = 'g729' | 'g722' | 'mulaw' | 'alaw' | 'u8' | 's16le' | 's24le' | 's32le' | 'f32le' | 'f64le';

export type FfmpegDemux =
  /** ffmpeg reads the stored bytes as they are, with this demuxer. */
  | { kind: 'container'; format: 'wav' | 'ogg' | 'mp3' }
  /** ffmpeg gets only the codec payload (WAV `data` chunk, or the whole raw file). */
  | { kind: 'raw'; format: RawFormat };

export type MediaPlan =
  | { action: 'passthrough'; contentType: ContentType; why: string }
  | { action: 'g711'; law: G711Law; contentType: 'audio/wav'; why: string }
  | { action: 'ffmpeg'; demux: FfmpegDemux; output: Exclude<AudioFormat, 'original'>; contentType: ContentType; why: string }
  | { action: 'refuse'; error: 'media.undecodable' | 'media.unsupported_codec'; why: string };

const PCM_RAW: Record<string, RawFormat> = {
  pcm_u8: 'u8',
  pcm_s16le: 's16le',
  pcm_s24le: 's24le',
  pcm_s32le: 's32le',
  pcm_f32le: 'f32le',
  pcm_f64le: 'f64le',
};

/** `original` always answers with the stored bytes, labelled by what they really are. */
export function contentTypeOfContainer(s: SniffResult): ContentType {
  switch (s.container) {
    case 'wav':
      return 'audio/wav';
    case 'ogg':
      return 'audio/ogg';
    case 'mp3':
      return 'audio/mpeg';
    default:
      return 'application/octet-stream';
  }
}

/** How ffmpeg should read the source, or why it cannot. */
function demuxFor(s: SniffResult): FfmpegDemux | string {
  if (s.container === 'ogg') return s.codec === 'opus' || s.codec === 'vorbis' ? { kind: 'container', format: 'ogg' } : 'an Ogg stream in a codec other than Opus or Vorbis';
  if (s.container === 'mp3') return { kind: 'container', format: 'mp3' };
  if (s.container === 'unknown') return s.codec === 'g729' ? { kind: 'raw', format: 'g729' } : 'not a recognised recording format';
  const raw = PCM_RAW[s.codec];
  if (raw) return { kind: 'raw', format: raw };
  switch (s.codec) {
    case 'mulaw':
    case 'alaw':
      return { kind: 'raw', format: s.codec };
    case 'g729':
    case 'g722':
      // Raw G.729/G.722 demuxers are mono; multi-channel files of these codecs are not seen in practice.
      return s.channels === 1 ? { kind: 'raw', format: s.codec } : `${s.codec} with ${s.channels} channels`;
    case 'g726': {
      // G.726 codes 2..5 bits per sample (16..40 kbit/s), and ffmpeg's decoder is mono only ("Decoding
      // more than one channel is not implemented", ffmpeg 5.1). It refuses either when it opens the
      // decoder, before its first output byte — a 422 after a spawn; the fmt chunk says so already.
      const bits = s.bitsPerSample ?? 0;
      if (s.channels !== 1) return `g726 with ${s.channels} channels`;
      return bits >= 2 && bits <= 5 ? { kind: 'container', format: 'wav' } : `g726 with ${bits} bits per sample`;
    }
    case 'gsm_ms':
    case 'g723_1':
    case 'mp3':
      return { kind: 'container', format: 'wav' };
    default:
      return s.notes?.find((n) => n.startsWith('unrecognised') || n.includes('bits per sample')) ?? `codec ${s.codec}`;
  }
}

export function describeOutput(s: SniffResult, want: AudioFormat): MediaPlan {
  if (want === 'original') return { action: 'passthrough', contentType: contentTypeOfContainer(s), why: 'the stored bytes, untouched' };
  if (s.problem !== undefined) return { action: 'refuse', error: 'media.undecodable', why: s.problem };
  if (s.container === 'unknown' && s.codec === 'unknown') return { action: 'refuse', error: 'media.undecodable', why: 'the bytes are not a recognised recording format (RIFF/WAVE, RF64, Ogg or MP3)' };

  if (want === 'wav' && s.container === 'wav' && PCM_CODECS.has(s.codec)) return { action: 'passthrough', contentType: 'audio/wav', why: 'already PCM WAV' };
  if (want === 'wav' && s.container === 'wav' && (s.codec === 'mulaw' || s.codec === 'alaw')) {
    return { action: 'g711', law: s.codec, contentType: 'audio/wav', why: 'G.711 expanded in-process' };
  }
  if (want === 'mp3' && s.container === 'mp3') return { action: 'passthrough', contentType: 'audio/mpeg', why: 'already MP3' };
  if (want === 'opus' && s.container === 'ogg' && s.codec === 'opus') return { action: 'passthrough', contentType: 'audio/ogg', why: 'already Opus in Ogg' };

  const demux = demuxFor(s);
  if (typeof demux === 'string') return { action: 'refuse', error: 'media.unsupported_codec', why: `cannot convert ${demux} to ${want}` };
  return { action: 'ffmpeg', demux, output: want, contentType: CONTENT_TYPE_OF_FORMAT[want], why: `${s.codec} → ${want} via ffmpeg` };
}

// ---------------------------------------------------------------------------------------------
// The PCM that a WAV output will hold, and the ffmpeg invocation for a plan.

export interface PcmLayout {
  sampleRate: number;
  channels: number;
  /** s16le payload bytes when computable from the source header alone. */
  pcmBytes?: number;
  /** Tolerated miss in bytes (one codec frame), see FramedOutput. */
  tolerance: number;
}

/** Frame arithmetic per codec: compressed payload bytes → decoded 16-bit PCM bytes. */
export function pcmLayout(s: SniffResult): PcmLayout {
  const L = s.dataLength;
  const ch = s.channels ?? 2;
  const within = (n: number | undefined): number | undefined => (n !== undefined && n <= MAX_WAV_DATA_LENGTH ? n : undefined);
  const layout = (sampleRate: number, channels: number, pcmBytes: number | undefined, tolerance: number): PcmLayout => {
    const bytes = within(pcmBytes);
    return bytes === undefined ? { sampleRate, channels, tolerance } : { sampleRate, channels, pcmBytes: bytes, tolerance };
  };
  switch (s.codec) {
    case 'g729': // 10-byte frame = 10 ms = 80 samples; a partial last frame is dropped by the decoder
      return layout(8000, 1, L === undefined ? undefined : Math.floor(L / 10) * 160, 160);
    case 'g722': // 4 bits per sample at 16 kHz, whatever the fmt chunk claims
      return layout(16000, 1, L === undefined ? undefined : L * 4, 8);
    case 'mulaw':
    case 'alaw':
      return layout(s.sampleRate ?? 8000, ch, L === undefined ? undefined : L * 2, 0);
    case 'gsm_ms': // Microsoft GSM 6.10: 65-byte block = 2 frames = 320 samples
      return layout(s.sampleRate ?? 8000, ch, L !== undefined && ch === 1 && s.blockAlign === 65 ? Math.floor(L / 65) * 640 : undefined, 640);
    case 'g726': {
      // bitsPerSample 2..5 ↔ 16/24/32/40 kbit/s; samples = bits available / code size
      const bits = s.bitsPerSample ?? 0;
      const ok = L !== undefined && ch === 1 && bits >= 2 && bits <= 5;
      return layout(s.sampleRate ?? 8000, ch, ok ? Math.floor((L * 8) / bits) * 2 : undefined, 16);
    }
    case 'opus':
      return layout(48000, ch, undefined, 0);
    default:
      // G.723.1 (frame size varies per frame), MP3, Vorbis: length unknown until decoded. An
      // MP3 whose first frame we could not see: 48 kHz stereo loses nothing whatever it holds.
      return layout(s.sampleRate ?? 48000, s.channels ?? 2, undefined, 0);
  }
}

export interface FfmpegInvocation {
  inputArgs: string[];
  outputArgs: string[];
  /** Cut the WAV `data` payload out of the stored bytes before feeding ffmpeg. */
  slice?: { skip: number; take?: number };
  /** Header and promised payload length of a WAV output (we write the header, not ffmpeg). */
  framing?: FramedOutputOptions;
  /** Full response length when known. */
  length?: number;
}

const MP3_RATES = new Set([8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000]);
const OPUS_RATES = new Set([8000, 12000, 16000, 24000, 48000]);

export function ffmpegInvocation(s: SniffResult, demux: FfmpegDemux, output: Exclude<AudioFormat, 'original'>): FfmpegInvocation {
  const inv: FfmpegInvocation = { inputArgs: ['-f', demux.format], outputArgs: [] };
  if (demux.kind === 'raw') {
    if (s.container === 'wav') inv.slice = s.dataLength === undefined ? { skip: s.dataOffset ?? 0 } : { skip: s.dataOffset ?? 0, take: s.dataLength };
    // Raw PCM/G.711 carry no format of their own: tell the demuxer what the fmt chunk said.
    if (demux.format !== 'g729' && demux.format !== 'g722') inv.inputArgs.push('-ar', String(s.sampleRate), '-ac', String(s.channels));
  }
  const pcm = pcmLayout(s);
  if (output === 'wav') {
    // Raw s16le out, our header in front: ffmpeg cannot patch a WAV header on a pipe.
    // -ar/-ac are forced so the header is true whatever ffmpeg would have picked.
    inv.outputArgs.push('-c:a', 'pcm_s16le', '-ar', String(pcm.sampleRate), '-ac', String(pcm.channels), '-f', 's16le');
    inv.framing = {
      prefix: wavHeader({ sampleRate: pcm.sampleRate, channels: pcm.channels, bitsPerSample: 16, dataLength: pcm.pcmBytes }),
      expectedBytes: pcm.pcmBytes,
      tolerance: pcm.tolerance,
    };
    if (pcm.pcmBytes !== undefined) inv.length = WAV_HEADER_BYTES + pcm.pcmBytes;
    return inv;
  }
  // Stereo stays stereo; more channels (rare conference mixes) are folded to stereo.
  const channels = Math.min(pcm.channels, 2);
  if (channels !== pcm.channels) inv.outputArgs.push('-ac', '2');
  if (output === 'mp3') {
    // Speech bitrates per channel: 32 kbit/s at 8 kHz, 48 at wideband, 64 above (MPEG-2.5/2/1).
    const kbps = (pcm.sampleRate <= 12000 ? 32 : pcm.sampleRate <= 24000 ? 48 : 64) * channels;
    if (!MP3_RATES.has(pcm.sampleRate)) inv.outputArgs.push('-ar', '48000');
    inv.outputArgs.push('-c:a', 'libmp3lame', '-b:a', `${kbps}k`, '-f', 'mp3');
  } else {
    if (!OPUS_RATES.has(pcm.sampleRate)) inv.outputArgs.push('-ar', '48000');
    inv.outputArgs.push('-c:a', 'libopus', '-b:a', `${32 * channels}k`, '-f', 'ogg');
  }
  return inv;
}
