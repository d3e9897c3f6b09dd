import { Readable } from 'node:stream';
import { AppError } from '../../errors.js';
import { WAV_UNKNOWN_SIZE } from '../../media/wav-header.js';

/**
 * One Avaya call as one WAV. ACR stores a call that was held or transferred as several segment
 * WAVs (one inum each); an auditor asking for the call wants them as one recording, in order.
 * Joining is done on the wire, never in memory: each segment's header is read first (a ranged
 * GET of its head), the segments must share one `fmt` chunk byte for byte (Avaya's G.729 files
 * carry non-standard fmt values, so fields are not reinterpreted, only compared), and the joined
 * file is one RIFF header followed by each segment's data bytes fetched in turn. Its length is
 * known before the first byte, so a Range on it maps onto ranged requests of the segments it
 * touches.
 *
 * Every refusal is `source.bad_gateway` naming the segment (`extra.segment`, 1-based in call
 * order, and `extra.inum`): what the recorder holds cannot be served as one honest file.
 */

/** What is read of each segment before anything is sent: its header must lie within it. */
export const SEGMENT_HEAD_BYTES = 8 * 1024;

/** A segment's place in the call, for messages. */
export interface SegmentPosition {
  /** 1-based, in call order. */
  n: number;
  of: number;
  inum: string;
}

export interface SegmentHead extends SegmentPosition {
  /** Body of the `fmt ` chunk, compared byte for byte across segments. */
  fmt: Buffer;
  /** Sample count of the `fact` chunk, when the segment has one. */
  factSamples: number | undefined;
  /** First byte of the `data` payload in the segment file. */
  dataOffset: number;
  dataLength: number;
  /** Size of the whole segment file, when the recorder said (Content-Range or Content-Length). */
  totalSize: number | undefined;
}

export function segmentError(pos: SegmentPosition, what: string): AppError {
  return new AppError('source.bad_gateway', `Avaya call: segment ${pos.n} of ${pos.of} (inum ${pos.inum}) ${what}`, { extra: { segment: pos.n, inum: pos.inum } });
}

/**
 * Reads a segment's header from its first bytes. The data length is the `data` chunk's size;
 * a size left open (0xFFFFFFFF, or 0 as unpatched writers leave it) is taken from the file size,
 * and without a file size the segment cannot be placed in the joined file: refused, not guessed.
 */
export function parseSegmentHead(head: Buffer, totalSize: number | undefined, pos: SegmentPosition): SegmentHead {
  const fail = (what: string) => segmentError(pos, what);
  if (head.length < 12 || head.toString('latin1', 0, 4) !== 'RIFF' || head.toString('latin1', 8, 12) !== 'WAVE') {
    throw fail('is not a RIFF/WAVE file, so it cannot be joined with the others');
  }
  let fmt: Buffer | undefined;
  let factSamples: number | undefined;
  let off = 12;
  for (;;) {
    if (off + 8 > head.length) {
      const ended = totalSize !== undefined ? off + 8 > totalSize : head.length < SEGMENT_HEAD_BYTES;
      throw fail(ended ? 'has no data chunk' : `has no data chunk within its first ${head.length} bytes`);
    }
    const id = head.toString('latin1', off, off + 4);
    const size = head.readUInt32LE(off + 4);
    const body = off + 8;
    if (id === 'data') {
      if (!fmt) throw fail('has a data chunk before any fmt chunk');
      let dataLength = size;
      if (size === WAV_UNKNOWN_SIZE || size === 0) {
        if (totalSize === undefined) throw fail('leaves its data size open and the recorder gave no file size: its length cannot be known');
        dataLength = totalSize - body;
      } else if (totalSize !== undefined && body + size > totalSize) {
        throw fail(`is truncated: its header declares ${size} data bytes, the file holds ${Math.max(0, totalSize - body)}`);
      }
      return { ...pos, fmt, factSamples, dataOffset: body, dataLength: Math.max(0, dataLength), totalSize };
    }
    if ((id === 'fmt ' || id === 'fact') && body + size > head.length) throw fail(`has a ${id.trim()} chunk cut off at ${head.length} bytes`);
    if (id === 'fmt ') {
      if (size < 14) throw fail(`has a fmt chunk of ${size} bytes, too short to be one`);
      fmt = Buffer.from(head.subarray(body, body + size));
    } else if (id === 'fact' && size >= 4) {
      factSamples = head.readUInt32LE(body);
    }
    off = body + size + (size & 1);
  }
}

/** The joined file: its header, then each segment's data, then a pad byte when the data is odd. */
export interface JoinPlan {
  header: Buffer;
  segments: readonly SegmentHead[];
  /** Data bytes of all segments. */
  dataLength: number;
  /** Size of the joined file. */
  size: number;
}

const describeFmt = (f: Buffer): string =>
  `format tag 0x${f.readUInt16LE(0).toString(16).padStart(4, '0')}, ${f.readUInt32LE(4)} Hz, ${f.readUInt16LE(2)} channel(s), block align ${f.readUInt16LE(12)}`;

/** Largest RIFF chunk size: the joined file must fit a 32-bit RIFF header. */
const MAX_RIFF_SIZE = 0xffffffff;

export function planJoin(segments: readonly SegmentHead[]): JoinPlan {
  const first = segments[0];
  if (!first) throw new AppError('source.object_missing', 'Avaya call: no segment to join');
  for (const s of segments.slice(1)) {
    if (!s.fmt.equals(first.fmt)) {
      const detail = s.fmt.length >= 14 && !s.fmt.subarray(0, 14).equals(first.fmt.subarray(0, 14)) ? `${describeFmt(s.fmt)} vs ${describeFmt(first.fmt)}` : 'same fields, different fmt bytes';
      throw segmentError(s, `has another audio format than segment 1 (${detail}); the call cannot be served as one WAV (ask for its segments one by one: ucid:<ucid>#<n>)`);
    }
  }
  const dataLength = segments.reduce((sum, s) => sum + s.dataLength, 0);
  // A fact chunk only when every segment has one: a sum over some segments would be a wrong count.
  const facts = segments.map((s) => s.factSamples);
  const factSum = facts.every((f) => f !== undefined) ? facts.reduce((a, f) => a + (f ?? 0), 0) : undefined;
  const withFact = factSum !== undefined && factSum <= 0xffffffff;
  const fmtPad = first.fmt.length & 1;
  const headerLength = 12 + 8 + first.fmt.length + fmtPad + (withFact ? 12 : 0) + 8;
  const pad = dataLength & 1;
  const riffSize = headerLength - 8 + dataLength + pad;
  if (riffSize > MAX_RIFF_SIZE) {
    throw new AppError('source.bad_gateway', `Avaya call: its ${segments.length} segments hold ${dataLength} data bytes together, more than one RIFF WAV can describe`, {
      extra: { segments: segments.length },
    });
  }
  const h = Buffer.alloc(headerLength);
  let o = h.write('RIFF', 0, 'latin1');
  o = h.writeUInt32LE(riffSize, o);
  o += h.write('WAVE', o, 'latin1');
  o += h.write('fmt ', o, 'latin1');
  o = h.writeUInt32LE(first.fmt.length, o);
  o += first.fmt.copy(h, o) + fmtPad;
  if (withFact) {
    o += h.write('fact', o, 'latin1');
    o = h.writeUInt32LE(4, o);
    o = h.writeUInt32LE(factSum, o);
  }
  o += h.write('data', o, 'latin1');
  h.writeUInt32LE(dataLength, o);
  return { header: h, segments, dataLength, size: headerLength + dataLength + pad };
}

/** A stretch of the joined file: literal bytes (header, pad) or an inclusive range of one segment's data. */
export type Piece = { kind: 'bytes'; bytes: Buffer } | { kind: 'segment'; segment: SegmentHead; from: number; to: number };

/** The pieces covering bytes `start..end` (inclusive) of the joined file, in order; only segments the range touches appear. */
export function piecesFor(plan: JoinPlan, start: number, end: number): Piece[] {
  const pieces: Piece[] = [];
  const take = (at: number, length: number, piece: (from: number, to: number) => Piece) => {
    const from = Math.max(start, at);
    const to = Math.min(end, at + length - 1);
    if (from <= to) pieces.push(piece(from - at, to - at));
  };
  let at = 0;
  take(at, plan.header.length, (from, to) => ({ kind: 'bytes', bytes: plan.header.subarray(from, to + 1) }));
  at += plan.header.length;
  for (const segment of plan.segments) {
    take(at, segment.dataLength, (from, to) => ({ kind: 'segment', segment, from, to }));
    at += segment.dataLength;
  }
  if (plan.dataLength & 1) take(at, 1, () => ({ kind: 'bytes', bytes: Buffer.alloc(1) }));
  return pieces;
}

/** Opens one segment's data bytes `from..to` (offsets in its data chunk); the stream must deliver exactly those or error. */
export type OpenSegmentData = (segment: SegmentHead, from: number, to: number) => Promise<Readable>;

/**
 * The joined bytes: one upstream request at a time, streamed through (memory stays flat). A
 * segment failing or breaking errors the whole body, so the client can never take a cut file
 * for a whole one. Destroying the body stops the segment being read.
 */
export function joinedBody(pieces: readonly Piece[], open: OpenSegmentData): Readable {
  async function* bytes(): AsyncGenerator<Buffer> {
    for (const p of pieces) {
      if (p.kind === 'bytes') {
        yield p.bytes;
        continue;
      }
      const body = await open(p.segment, p.from, p.to);
      try {
        for await (const chunk of body) yield chunk as Buffer;
      } finally {
        body.destroy();
      }
    }
  }
  return Readable.from(bytes(), { objectMode: false, highWaterMark: 64 * 1024 });
}
