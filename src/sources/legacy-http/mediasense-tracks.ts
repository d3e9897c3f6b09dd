import { pipeline, type Readable } from 'node:stream';
import { AppError, type ErrorCode } from '../../errors.js';
import { DataSlice } from '../../media/data-slice.js';
import { describeOutput, ffmpegInvocation, pcmLayout } from '../../media/describe-output.js';
import { sniffStream } from '../../media/prepare.js';
import { PCM_CODECS, type SniffResult } from '../../media/sniff.js';
import { Transcoder, type TranscodeInput } from '../../media/transcoder.js';
import { MAX_WAV_DATA_LENGTH, WAV_UNKNOWN_SIZE, wavHeader } from '../../media/wav-header.js';

/**
 * One MediaSense session of several audio tracks as one WAV, a channel per track. Cisco's
 * network-based (built-in-bridge) recording stores the near end and the far end of a call as two
 * tracks; either alone is half the conversation, so a compliance retrieval gets both:
 *
 * - channel n is the n-th audio track in trackNumber order (2 tracks: left = the lower number);
 *   which party is which is written into the file (a LIST/INFO comment) and handed to the audit
 *   (`auditDetail`) from each track's `participants`;
 * - every track is sniffed and decoded with the gateway's own decision table (describe-output.ts:
 *   a track that `format=wav` would refuse is refused here, with the same code, naming the track),
 *   resampled to the highest sample rate among the tracks (8 kHz G.711/G.729 with 16 kHz G.722 →
 *   16 kHz: no track loses bandwidth), and written as 16-bit PCM;
 * - one ffmpeg run of the shared bounded pool (transcoder.ts transcodeMany): each track on its own
 *   pipe, fed from its own upstream answer with backpressure, nothing held whole;
 * - a track shorter than another is padded with silence to the longest (`amix` of channel-panned
 *   inputs with `duration=longest`, not `amerge`, which stops at the shortest and would drop the
 *   end of the longer party);
 * - a track that fails or ends short fails the whole output: never half a call that ends cleanly.
 *
 * With every track's length known from its header and size, the output length is known before
 * the first byte (Content-Length; a Range is cut from the whole, as for any transcoded output);
 * otherwise the header leaves its sizes open and no length is promised.
 */

/** More audio tracks than this is not a two-party call: refused rather than 30 parallel downloads. */
export const MAX_MERGED_TRACKS = 8;

/** Samples the resampler may miss per track (its filter's rounding at the end), beyond the codec's own. */
const RESAMPLE_SLACK_SAMPLES = 16;

/** A MediaSense audio track, as the session query describes it. */
export interface TrackInfo {
  trackNumber: number;
  /** `codec` of the track (a hint for a track with no container: only G.729 is understood). */
  codec: string | undefined;
  /** The participants' refs (deviceRef), as MediaSense lists them. */
  participants: string[];
}

/** A track opened for merging: its bytes (replaying the sniffed head) and what they are. */
export interface OpenedTrack extends TrackInfo {
  stream: Readable;
  sniff: SniffResult;
}

interface TrackFeed {
  input: TranscodeInput;
  sampleRate: number;
  /** Decoded samples per channel, when the header and size tell. */
  samples: number | undefined;
  toleranceSamples: number;
}

export function trackError(code: ErrorCode, t: TrackInfo, channel: number, why: string, extra: Record<string, unknown> = {}): AppError {
  return new AppError(code, `MediaSense session: track ${t.trackNumber} (channel ${channel} of the merged call) ${why}; the call cannot be served whole (profile.track names one track to serve alone)`, {
    extra: { track: t.trackNumber, ...extra },
  });
}

/** Opens and sniffs a track's bytes: what they are decides how ffmpeg reads them. Ownership of `body` passes here. */
export async function sniffTrack(info: TrackInfo, body: Readable, totalSize: number | undefined, signal: AbortSignal): Promise<OpenedTrack> {
  const { stream, sniff } = await sniffStream(body, { signal, sourceSize: totalSize, rawCodecHint: info.codec });
  return { ...info, stream, sniff };
}

/** How ffmpeg reads one track: the same input side `format=wav` would use (canonical-pcm.ts does the same). */
function feedOf(t: OpenedTrack, channel: number): TrackFeed {
  const s = t.sniff;
  const wav = describeOutput(s, 'wav');
  if (wav.action === 'refuse') throw trackError(wav.error, t, channel, `cannot be decoded: ${wav.why}`, { codec: s.codec });
  // PCM and G.711 that `wav` passes through or expands in-process get their raw ffmpeg input from the `opus` row.
  const fed = wav.action === 'ffmpeg' ? wav : describeOutput(s, 'opus');
  if (fed.action !== 'ffmpeg') throw trackError('media.unsupported_codec', t, channel, `is ${s.codec}, which ffmpeg is not given to decode`, { codec: s.codec });
  const inv = ffmpegInvocation(s, fed.demux, 'wav');
  const pcm = pcmLayout(s);
  const bytesPerFrame = 2 * pcm.channels;
  const input = inv.slice ? pipeline(t.stream, new DataSlice(inv.slice), () => {}) : t.stream;
  // PCM is fed raw: its sample count is the data length over the block size (pcmLayout counts decoded codecs only).
  const pcmFrames = PCM_CODECS.has(s.codec) && s.dataLength !== undefined && s.blockAlign ? Math.floor(s.dataLength / s.blockAlign) : undefined;
  return {
    input: { input, inputArgs: inv.inputArgs },
    sampleRate: pcm.sampleRate,
    samples: pcmFrames ?? (pcm.pcmBytes === undefined ? undefined : Math.floor(pcm.pcmBytes / bytesPerFrame)),
    toleranceSamples: Math.ceil(pcm.tolerance / bytesPerFrame),
  };
}

/** The filter graph: each track resampled to `rate`, made mono, panned to its own channel, summed (silence elsewhere). */
export function mergeGraph(rates: readonly number[], rate: number): string {
  const n = rates.length;
  const parts = rates.map((_, i) => `[${i}:a]aresample=${rate},aformat=sample_fmts=flt:channel_layouts=mono,pan=${n}c|c${i}=c0[t${i}]`);
  const labels = rates.map((_, i) => `[t${i}]`).join('');
  // normalize=0: plain sums, no 1/n scaling (and no level change when the shorter track ends).
  return `${parts.join(';')};${labels}amix=inputs=${n}:duration=longest:normalize=0[out]`;
}

/** Printable ASCII of a participant ref, bounded: it goes into a RIFF INFO string and an audit field. */
const clean = (s: string): string => s.replace(/[^\x20-\x7e]/g, '?').slice(0, 64);

/** "channel 1 = track 0 (1000); channel 2 = track 1 (+15551230000)". */
export function channelMap(tracks: readonly TrackInfo[]): string {
  return tracks
    .map((t, i) => {
      const who = t.participants.slice(0, 4).map(clean).join(', ');
      return `channel ${i + 1} = track ${t.trackNumber}${who ? ` (${who})` : ''}`;
    })
    .join('; ');
}

/** Our 44-byte PCM header with a LIST/INFO chunk (ICMT: the channel map) before `data`. */
export function mergedHeader(sampleRate: number, channels: number, dataLength: number | undefined, comment: string): Buffer {
  const base = wavHeader({ sampleRate, channels, bitsPerSample: 16, dataLength });
  const text = Buffer.from(`${comment}\0`, 'latin1');
  const textPad = text.length & 1;
  const list = Buffer.alloc(8 + 4 + 8 + text.length + textPad);
  list.write('LIST', 0, 'latin1');
  list.writeUInt32LE(list.length - 8, 4);
  list.write('INFO', 8, 'latin1');
  list.write('ICMT', 12, 'latin1');
  list.writeUInt32LE(text.length, 16);
  text.copy(list, 20);
  const h = Buffer.concat([base.subarray(0, 36), list, base.subarray(36)]);
  if (dataLength !== undefined) h.writeUInt32LE(h.length - 8 + dataLength, 4);
  else h.writeUInt32LE(WAV_UNKNOWN_SIZE, 4);
  return h;
}

export interface MergedCall {
  /** The WAV: our header, then ffmpeg's interleaved PCM; errors if any track or ffmpeg fails. */
  body: Readable;
  /** Whole length in bytes, when every track's length is known. */
  length: number | undefined;
  sampleRate: number;
  channels: number;
  /** For the retrieval's audit event (SourceMedia.auditDetail). */
  auditDetail: Record<string, string | number>;
}

/**
 * Starts the merge of the opened tracks (2 or more, in channel order). Ownership of every track's
 * stream passes here: on a thrown error they are destroyed, else ffmpeg consumes them.
 * Throws the track's media refusal, or the pool's 'media.transcoder_busy' / 'media.transcoder_unavailable'.
 */
export async function mergeTracks(transcoder: Transcoder, tracks: readonly OpenedTrack[], signal: AbortSignal): Promise<MergedCall> {
  try {
    const feeds = tracks.map((t, i) => feedOf(t, i + 1));
    const channels = tracks.length;
    const rate = Math.max(...feeds.map((f) => f.sampleRate));
    const scaled = (samples: number, from: number) => Math.round((samples * rate) / from);
    const known = feeds.every((f) => f.samples !== undefined);
    const frames = known ? Math.max(...feeds.map((f) => scaled(f.samples ?? 0, f.sampleRate))) : undefined;
    const dataLength = frames !== undefined && frames * channels * 2 <= MAX_WAV_DATA_LENGTH ? frames * channels * 2 : undefined;
    const toleranceFrames = Math.max(...feeds.map((f) => Math.ceil((f.toleranceSamples * rate) / f.sampleRate) + (f.sampleRate === rate ? 0 : RESAMPLE_SLACK_SAMPLES)));
    const map = channelMap(tracks);
    const prefix = mergedHeader(rate, channels, dataLength, `custodian: MediaSense tracks merged, ${map}`);
    const body = await transcoder.transcodeMany({
      inputs: feeds.map((f) => f.input),
      filterComplex: mergeGraph(
        feeds.map((f) => f.sampleRate),
        rate,
      ),
      outputArgs: ['-c:a', 'pcm_s16le', '-ar', String(rate), '-ac', String(channels), '-f', 's16le'],
      signal,
      framing: { prefix, expectedBytes: dataLength, tolerance: toleranceFrames * channels * 2 },
    });
    return {
      body,
      length: dataLength === undefined ? undefined : prefix.length + dataLength,
      sampleRate: rate,
      channels,
      auditDetail: {
        merged_tracks: channels,
        track_channels: map,
        track_codecs: tracks.map((t) => t.sniff.codec).join(', '),
        merged_sample_rate: rate,
      },
    };
  } catch (e) {
    for (const t of tracks) t.stream.destroy();
    throw e;
  }
}

let shared: Transcoder | undefined;

/**
 * The pool merges run in when the connector is given none: one per process, so every MediaSense
 * source together runs at most this many ffmpeg merges (ffmpeg from PATH, as media.ffmpeg_path's default).
 */
export function defaultMergePool(): Transcoder {
  shared ??= new Transcoder({ ffmpegPath: 'ffmpeg', maxConcurrent: 2, maxQueued: 8, timeoutMs: 600_000 });
  return shared;
}
