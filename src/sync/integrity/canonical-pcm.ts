import { pipeline, type Readable } from 'node:stream';
import { AppError } from '../../errors.js';
import { DataSlice } from '../../media/data-slice.js';
import { describeOutput, ffmpegInvocation } from '../../media/describe-output.js';
import { G711Decoder } from '../../media/g711.js';
import { sniffStream } from '../../media/prepare.js';
import type { Transcoder } from '../../media/transcoder.js';
import { SAMPLE_RATE } from './fingerprint.js';

/** Every copy is compared as this: 8 kHz, mono, signed 16-bit little-endian, no header. */
export const CANONICAL_OUTPUT_ARGS = ['-c:a', 'pcm_s16le', '-ar', String(SAMPLE_RATE), '-ac', '1', '-f', 's16le'] as const;

export interface CanonicalPcm {
  /** Codec of the stored copy, as sniffed from its bytes. */
  codec: string;
  /** Canonical PCM; errors (never ends cleanly) when the copy is cut short or ffmpeg fails. */
  body: Readable;
  /** Whether an ffmpeg slot was used (G.711 and 8 kHz mono PCM are decoded in-process). */
  ffmpeg: boolean;
}

export interface CanonicalOptions {
  transcoder: Transcoder;
  signal: AbortSignal;
  sourceSize?: number | undefined;
  /** The catalog's codec of a copy with no container ('g729': bare G.729 frames). */
  rawCodecHint?: string | undefined;
}

/**
 * Decodes a stored copy to canonical PCM with the gateway's own media pieces: the same sniffer,
 * the same decision table (what it refuses for `wav` is refused here, with the same codes), the
 * TypeScript G.711 expansion and the bounded ffmpeg pool. Only the output differs from
 * prepareMedia: always 8 kHz mono, so two copies in different codecs, rates or channel layouts
 * become comparable sample for sample, and a lossless re-wrap hashes the same.
 *
 * Ownership of `input` passes here: destroyed on a thrown error, consumed through `body` otherwise.
 * Throws 'media.undecodable' / 'media.unsupported_codec' (before decoding), the transcoder's
 * errors, or the source's own.
 */
export async function canonicalPcm(input: Readable, opts: CanonicalOptions): Promise<CanonicalPcm> {
  const { signal } = opts;
  const { stream, sniff: s } = await sniffStream(input, opts);
  try {
    const plan = describeOutput(s, 'wav');
    if (plan.action === 'refuse') {
      throw new AppError(plan.error, `The stored bytes cannot be decoded for comparison: ${plan.why}`, { extra: { codec: s.codec } });
    }
    const slice = () => new DataSlice({ skip: s.dataOffset ?? 0, take: s.dataLength });
    const native = s.container === 'wav' && s.sampleRate === SAMPLE_RATE && s.channels === 1;
    if (native && s.codec === 'pcm_s16le') return { codec: s.codec, body: pipeline(stream, slice(), noop), ffmpeg: false };
    if (native && (s.codec === 'mulaw' || s.codec === 'alaw')) {
      return { codec: s.codec, body: pipeline(stream, slice(), new G711Decoder(s.codec), noop), ffmpeg: false };
    }
    // The ffmpeg input side of the one decision table. PCM and G.711 that `wav` would pass
    // through or expand in-process (other rates, stereo) get theirs from the `opus` row, which
    // always feeds them to ffmpeg raw.
    const fed = plan.action === 'ffmpeg' ? plan : describeOutput(s, 'opus');
    if (fed.action !== 'ffmpeg') throw new AppError('media.unsupported_codec', `no decoder for ${s.codec} to compare`, { extra: { codec: s.codec } });
    const inv = ffmpegInvocation(s, fed.demux, 'wav');
    const feed = inv.slice ? pipeline(stream, new DataSlice(inv.slice), noop) : stream;
    const body = await opts.transcoder.transcode({ input: feed, inputArgs: inv.inputArgs, outputArgs: CANONICAL_OUTPUT_ARGS, signal, framing: {} });
    return { codec: s.codec, body, ffmpeg: true };
  } catch (err) {
    stream.destroy();
    throw err;
  }
}

function noop(): void {}
