/**
 * Content sniffing: what the stored bytes really are, whatever the catalog, the file name or the
 * source's Content-Type claim. Legacy recorders mislabel a lot (see
 * ../shared/docs/legacy-and-compliance.md), so the decision of how to decode is made from the
 * first bytes only, and the result goes into the audit trail and the `X-Audio-Codec` header.
 *
 * Pure and synchronous: it never throws on any input (a property test feeds it random bytes).
 */
export { peekHead, type PeekedStream } from './peek-head.js';

/** How many leading bytes the sniffer wants; everything it needs sits well inside this. */
export const SNIFF_BYTES = 65536;

export type Container = 'wav' | 'ogg' | 'mp3' | 'unknown';

/**
 * Stable codec names (they reach clients in `X-Audio-Codec` and auditors in the trail: never
 * rename). PCM widths follow ffmpeg's names so operators can paste them into an ffmpeg command.
 */
export const CODECS = [
  'pcm_u8',
  'pcm_s16le',
  'pcm_s24le',
  'pcm_s32le',
  'pcm_f32le',
  'pcm_f64le',
  'mulaw',
  'alaw',
  'gsm_ms',
  'g729',
  'g722',
  'g726',
  'g723_1',
  'mp3',
  'opus',
  'vorbis',
  'unknown',
] as const;
export type Codec = (typeof CODECS)[number];

export const PCM_CODECS: ReadonlySet<string> = new Set(['pcm_u8', 'pcm_s16le', 'pcm_s24le', 'pcm_s32le', 'pcm_f32le', 'pcm_f64le']);

export interface SniffResult {
  container: Container;
  codec: Codec;
  /** WAVE format tag (for WAVE_FORMAT_EXTENSIBLE: the sub-format's tag; `extensible` is then set). */
  formatTag?: number;
  extensible?: boolean;
  /** As declared by the container (for Opus: 48000, the rate every Opus decoder produces). */
  sampleRate?: number;
  channels?: number;
  bitsPerSample?: number;
  blockAlign?: number;
  /** WAV only: offset of the first byte of the `data` chunk's payload. */
  dataOffset?: number;
  /** WAV only: payload bytes of `data`; absent when the header leaves it open (0xFFFFFFFF, streamed WAV). */
  dataLength?: number;
  /** Why the bytes cannot be decoded although the container was recognised (truncated, no fmt, ...). */
  problem?: string;
  /** Facts worth auditing that are not failures (mislabel handled, RF64, non-standard fmt values). */
  notes?: string[];
}

export interface SniffOptions {
  /**
   * Total size of the stored object when known (catalog size, Content-Length, or `head` is the
   * whole file). Enables truncation detection: a header that promises more data than exists.
   */
  totalSize?: number;
}

export function sniff(head: Buffer, opts: SniffOptions = {}): SniffResult {
  if (head.length >= 4) {
    const magic = head.toString('latin1', 0, 4);
    if (magic === 'RIFF' || magic === 'RF64' || magic === 'BW64') {
      if (head.length < 12) return { container: 'wav', codec: 'unknown', problem: 'truncated RIFF header' };
      if (head.toString('latin1', 8, 12) === 'WAVE') return sniffWave(head, magic !== 'RIFF', opts.totalSize);
      // RIFF/AVI, RIFF/RMID...: a RIFF, but not audio we know.
      return { container: 'unknown', codec: 'unknown' };
    }
    if (magic === 'OggS') return sniffOgg(head);
  }
  return sniffMp3(head) ?? { container: 'unknown', codec: 'unknown' };
}

// ---------------------------------------------------------------------------------------------
// RIFF/WAVE and RF64

/** GUID bytes 2..15 of KSDATAFORMAT_SUBTYPE_* {0000xxxx-0000-0010-8000-00AA00389B71}; bytes 0..1 are the tag. */
const KSDATAFORMAT_TAIL = Buffer.from('000000001000800000aa00389b71', 'hex');
const WAVE_FORMAT_EXTENSIBLE = 0xfffe;
const UNKNOWN_SIZE = 0xffffffff;

/** Format tag → codec. The mislabels from the compliance doc's codec table are resolved here. */
const TAG_CODEC: ReadonlyMap<number, Codec | 'pcm' | 'float'> = new Map([
  [0x0001, 'pcm'],
  [0x0003, 'float'],
  [0x0006, 'alaw'],
  [0x0007, 'mulaw'],
  [0x0031, 'gsm_ms'],
  [0x0042, 'g723_1'],
  [0x0111, 'g723_1'],
  [0xa100, 'g723_1'],
  [0x0045, 'g726'],
  [0x0064, 'g726'],
  [0x0065, 'g722'], // APICOM G.722: ffmpeg 5.1 takes it for G.726
  [0x028f, 'g722'],
  [0x0083, 'g729'],
  [0x729a, 'g729'],
  [0x0133, 'g729'], // Sipro Lab G.729: unknown to ffmpeg 5.1, payload is plain G.729 frames
  [0x0134, 'g729'], // Sipro Lab G.729A
  [0x0055, 'mp3'],
] as [number, Codec | 'pcm' | 'float'][]);

interface Fmt {
  tag: number;
  extensible: boolean;
  channels: number;
  sampleRate: number;
  byteRate: number;
  blockAlign: number;
  bitsPerSample: number;
}

function isChunkId(buf: Buffer, off: number): boolean {
  for (let i = off; i < off + 4; i++) {
    const c = buf.readUInt8(i);
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

function sniffWave(head: Buffer, rf64: boolean, totalSize: number | undefined): SniffResult {
  const notes: string[] = rf64 ? ['RF64 container (64-bit sizes in ds64)'] : [];
  // What the sniffer can see: the head, or less when the whole file is shorter.
  const visible = totalSize === undefined ? head.length : Math.min(head.length, totalSize);
  const complete = totalSize !== undefined && head.length >= totalSize;
  let fmt: Fmt | undefined;
  let ds64DataSize: number | undefined;
  let off = 12;
  const bad = (problem: string): SniffResult => ({ ...(fmt ? describeFmt(fmt, notes) : { codec: 'unknown' as const }), container: 'wav', codec: 'unknown', problem, ...(notes.length ? { notes } : {}) });

  for (;;) {
    if (off + 8 > visible) {
      if (complete || (totalSize !== undefined && off + 8 > totalSize)) return bad(fmt ? 'no data chunk (file ends first)' : 'no fmt chunk (file ends first)');
      return bad(`no ${fmt ? 'data' : 'fmt'} chunk within the first ${visible} bytes`);
    }
    if (!isChunkId(head, off)) return bad(`malformed chunk id at offset ${off}`);
    const id = head.toString('latin1', off, off + 4);
    const size = head.readUInt32LE(off + 4);
    const body = off + 8;

    if (id === 'data') {
      if (!fmt) return bad('data chunk before fmt chunk');
      let dataLength: number | undefined = size;
      if (rf64 && size === UNKNOWN_SIZE) {
        if (ds64DataSize === undefined) return bad('RF64 data chunk without a ds64 size');
        dataLength = ds64DataSize;
      } else if (size === UNKNOWN_SIZE) {
        // Written to a pipe (ffmpeg, sox): the length was never patched. Data runs to end of file.
        dataLength = undefined;
        notes.push('data size left open (0xFFFFFFFF): data runs to end of file');
      }
      if (dataLength !== undefined && totalSize !== undefined && body + dataLength > totalSize) {
        return {
          ...bad(`truncated: the header declares ${dataLength} data bytes, the file holds ${Math.max(0, totalSize - body)}`),
          dataOffset: body,
          dataLength,
        };
      }
      return {
        container: 'wav',
        ...describeFmt(fmt, notes),
        dataOffset: body,
        ...(dataLength === undefined ? {} : { dataLength }),
        ...(notes.length ? { notes } : {}),
      };
    }

    // Every chunk we need to read must be fully visible; others are skipped by size.
    const needBody = id === 'fmt ' || (id === 'ds64' && rf64);
    const pastEnd = totalSize !== undefined && body + size > totalSize;
    if (needBody && body + size > visible) return bad(pastEnd ? `${id.trim()} chunk truncated` : `${id.trim()} chunk larger than the sniff window`);
    // A chunk before `data` that claims more bytes than the file has: data can never follow.
    if (pastEnd) return bad(`chunk '${id}' at offset ${off} claims ${size} bytes, past the end of the file`);
    if (id === 'fmt ') {
      const parsed = parseFmt(head, body, size);
      if (typeof parsed === 'string') return bad(parsed);
      fmt = parsed;
    } else if (id === 'ds64' && rf64) {
      if (size < 28) return bad('ds64 chunk too short');
      const big = head.readBigUInt64LE(body + 8);
      if (big > BigInt(Number.MAX_SAFE_INTEGER)) return bad('ds64 data size out of range');
      ds64DataSize = Number(big);
    }
    // RIFF pads odd-sized chunks to an even boundary; the pad byte is not counted in `size`.
    off = body + size + (size & 1);
  }
}

function parseFmt(buf: Buffer, body: number, size: number): Fmt | string {
  if (size < 14) return `fmt chunk too short (${size} bytes)`;
  let tag = buf.readUInt16LE(body);
  const channels = buf.readUInt16LE(body + 2);
  const sampleRate = buf.readUInt32LE(body + 4);
  const byteRate = buf.readUInt32LE(body + 8);
  const blockAlign = buf.readUInt16LE(body + 12);
  const bitsPerSample = size >= 16 ? buf.readUInt16LE(body + 14) : 0;
  let extensible = false;
  if (tag === WAVE_FORMAT_EXTENSIBLE) {
    if (size < 40) return 'WAVE_FORMAT_EXTENSIBLE fmt chunk too short';
    // SubFormat GUID at +24: KSDATAFORMAT_SUBTYPE_xxx carries an ordinary format tag in its first
    // two bytes; any other GUID (vendor, ambisonic) is a format we do not know.
    const guid = buf.subarray(body + 24, body + 40);
    if (!guid.subarray(2).equals(KSDATAFORMAT_TAIL)) return { tag: -1, extensible: true, channels, sampleRate, byteRate, blockAlign, bitsPerSample };
    tag = guid.readUInt16LE(0);
    extensible = true;
  }
  // Bounds that keep every derived number (byte rates, header fields) inside 32 bits.
  if (channels < 1 || channels > 64) return `implausible channel count ${channels}`;
  if (sampleRate < 1 || sampleRate > 768_000) return `implausible sample rate ${sampleRate}`;
  return { tag, extensible, channels, sampleRate, byteRate, blockAlign, bitsPerSample };
}

function describeFmt(fmt: Fmt, notes: string[]): Omit<SniffResult, 'container'> {
  const base = {
    ...(fmt.tag >= 0 ? { formatTag: fmt.tag } : {}),
    ...(fmt.extensible ? { extensible: true } : {}),
    sampleRate: fmt.sampleRate,
    channels: fmt.channels,
    bitsPerSample: fmt.bitsPerSample,
    blockAlign: fmt.blockAlign,
  };
  const kind = TAG_CODEC.get(fmt.tag);
  let codec: Codec = 'unknown';
  if (kind === 'pcm') {
    const widths: Partial<Record<number, Codec>> = { 8: 'pcm_u8', 16: 'pcm_s16le', 24: 'pcm_s24le', 32: 'pcm_s32le' };
    codec = widths[fmt.bitsPerSample] ?? 'unknown';
    if (codec === 'unknown') notes.push(`PCM with ${fmt.bitsPerSample} bits per sample`);
  } else if (kind === 'float') {
    const widths: Partial<Record<number, Codec>> = { 32: 'pcm_f32le', 64: 'pcm_f64le' };
    codec = widths[fmt.bitsPerSample] ?? 'unknown';
    if (codec === 'unknown') notes.push(`IEEE float with ${fmt.bitsPerSample} bits per sample`);
  } else if (kind !== undefined) {
    codec = kind;
  } else {
    notes.push(fmt.tag >= 0 ? `unrecognised WAVE format tag 0x${fmt.tag.toString(16).padStart(4, '0')}` : 'unrecognised WAVE_FORMAT_EXTENSIBLE sub-format GUID');
  }
  if (fmt.tag === 0x0133 || fmt.tag === 0x0134) {
    notes.push(`Sipro Lab G.729 tag 0x${fmt.tag.toString(16).padStart(4, '0')} (unknown to ffmpeg): payload read as raw G.729 frames`);
  } else if (fmt.tag === 0x0065) {
    notes.push('APICOM G.722 tag 0x0065 (ffmpeg 5.1 mistakes it for G.726): payload read as raw G.722');
  } else if (codec === 'g729' && (fmt.blockAlign !== 10 * fmt.channels || fmt.byteRate !== 1000 * fmt.channels)) {
    notes.push(`non-standard G.729 fmt values (blockAlign ${fmt.blockAlign}, bytesPerSec ${fmt.byteRate}, Avaya-style): payload read as raw G.729 frames`);
  }
  return { ...base, codec };
}

// ---------------------------------------------------------------------------------------------
// Ogg: the codec is named by the first packet of the first page (the identification header).

function sniffOgg(head: Buffer): SniffResult {
  if (head.length < 27) return { container: 'ogg', codec: 'unknown', problem: 'truncated Ogg page header' };
  const segments = head.readUInt8(26);
  const tableEnd = 27 + segments;
  if (head.length < tableEnd) return { container: 'ogg', codec: 'unknown', problem: 'truncated Ogg page header' };
  let len = 0;
  for (let i = 27; i < tableEnd; i++) {
    const lace = head.readUInt8(i);
    len += lace;
    if (lace < 255) break;
  }
  const packet = head.subarray(tableEnd, Math.min(head.length, tableEnd + len));
  if (packet.length >= 19 && packet.toString('latin1', 0, 8) === 'OpusHead') {
    // Opus always decodes at 48 kHz; the "input sample rate" field is informational only.
    return { container: 'ogg', codec: 'opus', sampleRate: 48000, channels: packet.readUInt8(9) || 1 };
  }
  if (packet.length >= 30 && packet.readUInt8(0) === 1 && packet.toString('latin1', 1, 7) === 'vorbis') {
    const channels = packet.readUInt8(11);
    const sampleRate = packet.readUInt32LE(12);
    if (channels < 1 || sampleRate < 1 || sampleRate > 768_000) return { container: 'ogg', codec: 'unknown', problem: 'implausible Vorbis identification header' };
    return { container: 'ogg', codec: 'vorbis', sampleRate, channels };
  }
  if (packet.length < 8) return { container: 'ogg', codec: 'unknown', problem: 'truncated first Ogg packet' };
  return { container: 'ogg', codec: 'unknown', notes: ['Ogg stream with a codec other than Opus or Vorbis'] };
}

// ---------------------------------------------------------------------------------------------
// MP3: an ID3v2 tag, or MPEG audio frame sync. Raw frame sync is weak evidence (random bytes
// match 0xFFE now and then), so without ID3 two consecutive valid frames are required.

const MP3_RATES: Record<number, readonly number[]> = { 3: [44100, 48000, 32000], 2: [22050, 24000, 16000], 0: [11025, 12000, 8000] };
const MP3_KBPS_V1 = [0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320];
const MP3_KBPS_V2 = [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160];

interface Mp3Frame {
  length: number;
  sampleRate: number;
  channels: number;
}

/** A Layer III frame header at `off`, or undefined. */
function mp3Frame(buf: Buffer, off: number): Mp3Frame | undefined {
  if (off + 4 > buf.length) return undefined;
  const b1 = buf.readUInt8(off + 1);
  if (buf.readUInt8(off) !== 0xff || (b1 & 0xe0) !== 0xe0) return undefined;
  const version = (b1 >> 3) & 3; // 3 = MPEG-1, 2 = MPEG-2, 0 = MPEG-2.5, 1 reserved
  const layer = (b1 >> 1) & 3; // 1 = Layer III
  if (version === 1 || layer !== 1) return undefined;
  const b2 = buf.readUInt8(off + 2);
  const rateIdx = (b2 >> 2) & 3;
  const brIdx = b2 >> 4;
  if (rateIdx === 3 || brIdx === 0 || brIdx === 15) return undefined;
  const sampleRate = MP3_RATES[version]![rateIdx]!;
  const kbps = (version === 3 ? MP3_KBPS_V1 : MP3_KBPS_V2)[brIdx]!;
  const padding = (b2 >> 1) & 1;
  const length = Math.floor(((version === 3 ? 144 : 72) * kbps * 1000) / sampleRate) + padding;
  const channels = buf.readUInt8(off + 3) >> 6 === 3 ? 1 : 2;
  return { length, sampleRate, channels };
}

function sniffMp3(head: Buffer): SniffResult | undefined {
  let off = 0;
  let id3 = false;
  if (head.length >= 10 && head.toString('latin1', 0, 3) === 'ID3') {
    id3 = true;
    // Syncsafe size: 4 × 7 bits; footer present when flag 0x10 is set.
    const size = ((head.readUInt8(6) & 0x7f) << 21) | ((head.readUInt8(7) & 0x7f) << 14) | ((head.readUInt8(8) & 0x7f) << 7) | (head.readUInt8(9) & 0x7f);
    off = 10 + size + (head.readUInt8(5) & 0x10 ? 10 : 0);
    if (off + 4 > head.length) {
      // A large tag (cover art) hides the first frame from us; ID3 is strong enough evidence.
      return { container: 'mp3', codec: 'mp3', notes: ['first MPEG frame lies beyond the sniff window'] };
    }
  }
  // After an ID3 tag some writers leave padding; look a little further for the first frame.
  const searchEnd = id3 ? Math.min(head.length - 4, off + 4096) : 0;
  for (let o = off; o <= searchEnd; o++) {
    const f = mp3Frame(head, o);
    if (!f) continue;
    const next = o + f.length;
    if (next + 4 <= head.length && !mp3Frame(head, next)) continue;
    if (!id3 && next + 4 > head.length && next !== head.length) return undefined;
    return { container: 'mp3', codec: 'mp3', sampleRate: f.sampleRate, channels: f.channels };
  }
  return id3 ? { container: 'unknown', codec: 'unknown', problem: 'ID3 tag not followed by MPEG Layer III frames' } : undefined;
}
