import { addAbortSignal, pipeline, type Readable } from 'node:stream';
import { AppError } from '../errors.js';
import { DataSlice } from './data-slice.js';
import { DeclaredLength } from './declared-length.js';
import { describeOutput, ffmpegInvocation, pcmLayout, type MediaPlan } from './describe-output.js';
import type { AudioFormat, ContentType } from './format.js';
import { FramedOutput } from './framed-output.js';
import { G711Decoder } from './g711.js';
import { peekHead } from './peek-head.js';
import { SNIFF_BYTES, sniff, type SniffResult } from './sniff.js';
import { FFMPEG_OUTPUT_BUFFER_BYTES, type Transcoder } from './transcoder.js';
import { WAV_HEADER_BYTES, wavHeader } from './wav-header.js';

export { describeOutput, type MediaPlan } from './describe-output.js';

export interface PrepareOptions {
  transcoder: Transcoder;
  /** Fires when the client goes away; stops reading, decoding and any ffmpeg child. */
  signal: AbortSignal;
  /** Size of the stored object when the source knows it (enables truncation checks, Content-Length). */
  sourceSize?: number | undefined;
  /**
   * What the catalog says about a file with no container. Only 'g729' is understood (`.g729`
   * files: bare 10-byte G.729 frames). It never overrides bytes that sniff as WAV, Ogg or MP3.
   */
  rawCodecHint?: string | undefined;
}

export interface PreparedMedia {
  /** Codec of the stored recording (stable name, for `X-Audio-Codec` and the audit trail). */
  codec: string;
  contentType: ContentType;
  transcoded: boolean;
  /**
   * The response body. It errors (never ends cleanly) when the source fails, ffmpeg fails, or
   * fewer bytes than promised arrive, so the HTTP layer can abort the connection.
   */
  body: Readable;
  /** Exact body length when known (for Content-Length). */
  length?: number;
  sniff: SniffResult;
  plan: MediaPlan;
}

function unsupported(codec: string, why: string, s: SniffResult): AppError {
  const extra: Record<string, unknown> = { codec };
  if (s.formatTag !== undefined) extra.formatTag = `0x${s.formatTag.toString(16).padStart(4, '0')}`;
  return new AppError('media.unsupported_codec', `The recording is ${codec === 'unknown' ? 'in a codec custodian does not know' : codec}: ${why}`, {
    extra,
    headers: { 'X-Audio-Codec': codec },
  });
}

function rawG729(totalSize: number | undefined): SniffResult {
  return {
    container: 'unknown',
    codec: 'g729',
    sampleRate: 8000,
    channels: 1,
    blockAlign: 10,
    dataOffset: 0,
    ...(totalSize === undefined ? {} : { dataLength: totalSize }),
    notes: ['declared raw G.729 frames (no container)'],
  };
}

/**
 * The one entry point of the HTTP layer: sniff the stored bytes, decide (describeOutput), and
 * return a body in the wanted format. Ownership of `input` passes to this function: on a thrown
 * error it is destroyed, on success it is consumed through `body`.
 *
 * Errors thrown (before any byte is sent): 'media.undecodable' (422; also ffmpeg failing before its
 * first output buffer), 'media.unsupported_codec'
 * (415, `extra.codec` + `X-Audio-Codec`), 'media.transcoder_busy' (503 + Retry-After),
 * 'media.transcoder_unavailable' (503), the source's own error, or the signal's reason.
 */
export async function prepareMedia(input: Readable, want: AudioFormat, opts: PrepareOptions): Promise<PreparedMedia> {
  const prepared = await prepare(input, want, opts);
  // A body can fail before its consumer is wired up (say, while the caller writes an audit
  // record); an 'error' with no listener would take the whole process down. Consumers still see
  // the error through pipeline()/for-await, which read the stream's errored state.
  prepared.body.on('error', () => {});
  return prepared;
}

/**
 * A WAV of known size whose fmt and data chunk headers have arrived is identified: a clean answer
 * for it depends on those header bytes and the size alone (a header that promises more than the
 * size is caught from them), so more of the file cannot change it, and the first byte need not
 * wait for the whole sniff window from a source that trickles (a slow WAN link to a legacy
 * recorder at 64 KiB/s made that a second). Everything else still gets the whole window: MP3
 * frame chains and Ogg pages, unknown bytes, a WAV with a problem, and a WAV of unknown size —
 * a short one is caught as truncated only by reading it to its end within the window.
 * The price: a source that breaks after its header but within what would have been the window
 * now fails the response mid-body instead of before it, so there is no falling back to another
 * copy for it (resolve/open-copy.ts) — as for any break later in the file.
 */
function identifiedEarly(head: Buffer, sourceSize: number | undefined): boolean {
  if (sourceSize === undefined) return false;
  const s = sniff(head, { totalSize: sourceSize });
  return s.container === 'wav' && s.codec !== 'unknown' && s.problem === undefined;
}

/**
 * The catalog's codec names G.729 (Annex A is the same bitstream), in any case or punctuation:
 * an import files it as `g729` (catalog/record.ts canonicalCodec), but rows stored before that,
 * and archives' own spellings ("G729", "G.729", "g729a"), must not make a raw file unplayable.
 */
export const isG729Hint = (hint: string): boolean => /^g729a?$/.test(hint.toLowerCase().replace(/[\s._-]/g, ''));

/**
 * Reads the head of `input` and sniffs it: the codec and layout, the size when known, and a
 * stream that replays every byte. On failure `input` is destroyed; afterwards the caller owns
 * `stream` (and destroys it on its own errors).
 */
export async function sniffStream(
  input: Readable,
  opts: Pick<PrepareOptions, 'signal' | 'sourceSize' | 'rawCodecHint'>,
): Promise<{ stream: Readable; sniff: SniffResult; totalSize: number | undefined }> {
  let peeked;
  try {
    opts.signal.throwIfAborted();
    peeked = await peekHead(input, SNIFF_BYTES, opts.signal, (h) => identifiedEarly(h, opts.sourceSize));
  } catch (err) {
    input.destroy();
    throw err;
  }
  const { head, stream, ended } = peeked;
  const totalSize = opts.sourceSize ?? (ended ? head.length : undefined);
  let s = sniff(head, totalSize === undefined ? {} : { totalSize });
  if (opts.rawCodecHint !== undefined && isG729Hint(opts.rawCodecHint) && s.container === 'unknown') s = rawG729(totalSize);
  return { stream, sniff: s, totalSize };
}

async function prepare(input: Readable, want: AudioFormat, opts: PrepareOptions): Promise<PreparedMedia> {
  const { signal } = opts;
  const { stream, sniff: s, totalSize } = await sniffStream(input, opts);
  try {
    const plan = describeOutput(s, want);
    const base = { codec: s.codec, contentType: plan.action === 'refuse' ? ('application/octet-stream' as const) : plan.contentType, sniff: s, plan };

    switch (plan.action) {
      case 'refuse':
        if (plan.error === 'media.unsupported_codec') throw unsupported(s.codec, plan.why, s);
        throw new AppError('media.undecodable', `The stored bytes are not a decodable recording: ${plan.why}`, { extra: { codec: s.codec } });

      case 'passthrough': {
        // A WAV asked for as WAV, from a source that does not say its size (a chunked answer),
        // can be cut short past the sniff window with nothing before its end to show it: its
        // length is checked against its header as it goes. 'original' is the stored bytes as
        // they are, short or not; with the size known, sniff has refused a short file already.
        if (want !== 'original' && s.container === 'wav' && s.dataLength !== undefined && totalSize === undefined) {
          const body = pipeline(stream, new DeclaredLength({ dataOffset: s.dataOffset ?? 0, dataLength: s.dataLength }), () => {});
          addAbortSignal(signal, body);
          return { ...base, transcoded: false, body };
        }
        return { ...base, transcoded: false, body: addAbortSignal(signal, stream), ...(totalSize === undefined ? {} : { length: totalSize }) };
      }

      case 'g711': {
        const layout = pcmLayout(s);
        const header = wavHeader({ sampleRate: layout.sampleRate, channels: layout.channels, bitsPerSample: 16, dataLength: layout.pcmBytes });
        const body = new FramedOutput({ prefix: header, expectedBytes: layout.pcmBytes });
        const slice = new DataSlice({ skip: s.dataOffset ?? 0, take: s.dataLength });
        pipeline(stream, slice, new G711Decoder(plan.law), body, () => {});
        addAbortSignal(signal, body);
        return { ...base, transcoded: true, body, ...(layout.pcmBytes === undefined ? {} : { length: WAV_HEADER_BYTES + layout.pcmBytes }) };
      }

      case 'ffmpeg': {
        const inv = ffmpegInvocation(s, plan.demux, plan.output);
        const fed = inv.slice ? pipeline(stream, new DataSlice(inv.slice), () => {}) : stream;
        const out = await opts.transcoder.transcode({ input: fed, inputArgs: inv.inputArgs, outputArgs: inv.outputArgs, signal, framing: inv.framing ?? {} });
        // ffmpeg refuses much of what it cannot decode only once it runs (a codec parameter it
        // rejects, a payload that is noise). Waiting for its first full output buffer, or its end,
        // makes such a failure this function's error, before any response has begun, so the
        // caller answers 422 or tries another copy (resolve/open-copy.ts). Not its first byte: a
        // run that decodes nothing still writes the container's header (ID3, Ogg pages) at its
        // end, just before it exits non-zero, and before a full buffer only Ogg pages come out
        // early. For WAV and MP3 the first byte waited for that buffer anyway (-flush_packets 0);
        // Opus now starts after it (~8 s of audio, encoded in ms) instead of its first page. The
        // peeked bytes are put back in front of the output: about one buffer is held, never the
        // whole. Failures after it still fail the body.
        // The output's 'error' can come a tick after the peek has rejected and let go of it; with
        // no listener left it would take the process down. The peek's rejection carries it.
        out.on('error', () => {});
        let first;
        try {
          first = await peekHead(out, (inv.framing?.prefix?.length ?? 0) + FFMPEG_OUTPUT_BUFFER_BYTES, signal);
        } catch (err) {
          out.destroy(); // kills ffmpeg (abort included) and releases its slot
          throw err;
        }
        return { ...base, transcoded: true, body: first.stream, ...(inv.length === undefined ? {} : { length: inv.length }) };
      }
    }
  } catch (err) {
    stream.destroy();
    throw err;
  }
}
