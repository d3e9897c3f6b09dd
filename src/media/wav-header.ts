/**
 * The canonical 44-byte PCM WAV header (RIFF, `fmt ` of 16 bytes, `data`). We write it ourselves
 * in front of ffmpeg's raw output because ffmpeg writing WAV to a pipe cannot seek back to patch
 * the sizes; with our own header the sizes are right whenever the output length is computable,
 * and the HTTP layer can send Content-Length and serve ranges.
 */

export const WAV_HEADER_BYTES = 44;

/**
 * RIFF sizes are 32-bit: the RIFF chunk size (36 + data + pad byte) must fit in 0xFFFFFFFF, so
 * the largest data payload is 0xFFFFFFFF − 36, rounded down to even: 0xFFFFFFDA (~4 GiB, about
 * 74 hours of 8 kHz mono 16-bit). Longer outputs must be written with an unknown length.
 */
export const MAX_WAV_DATA_LENGTH = 0xffffffda;

/** Size value meaning "unknown, read to end of stream" (what ffmpeg and sox write to pipes). */
export const WAV_UNKNOWN_SIZE = 0xffffffff;

export interface WavHeaderParams {
  sampleRate: number;
  channels: number;
  bitsPerSample: number;
  /**
   * Payload bytes that will follow. `undefined` writes 0xFFFFFFFF in both size fields: the
   * streaming convention players accept as "until end of file". Must be ≤ MAX_WAV_DATA_LENGTH.
   * An odd length needs a pad byte after the data (counted in the RIFF size); the writer adds it.
   */
  dataLength: number | undefined;
}

export function wavHeader({ sampleRate, channels, bitsPerSample, dataLength }: WavHeaderParams): Buffer {
  const bytesPerSample = Math.ceil(bitsPerSample / 8);
  const blockAlign = channels * bytesPerSample;
  const byteRate = sampleRate * blockAlign;
  if (!Number.isInteger(sampleRate) || sampleRate < 1 || !Number.isInteger(channels) || channels < 1 || channels > 0xffff) {
    throw new RangeError(`invalid WAV format: ${sampleRate} Hz, ${channels} channels`);
  }
  if (![8, 16, 24, 32].includes(bitsPerSample) || blockAlign > 0xffff || byteRate > 0xffffffff) {
    throw new RangeError(`invalid WAV format: ${bitsPerSample} bits × ${channels} channels at ${sampleRate} Hz`);
  }
  if (dataLength !== undefined && (!Number.isInteger(dataLength) || dataLength < 0 || dataLength > MAX_WAV_DATA_LENGTH)) {
    throw new RangeError(`WAV data length ${dataLength} does not fit a RIFF header (max ${MAX_WAV_DATA_LENGTH})`);
  }
  const h = Buffer.alloc(WAV_HEADER_BYTES);
  h.write('RIFF', 0, 'latin1');
  h.writeUInt32LE(dataLength === undefined ? WAV_UNKNOWN_SIZE : 36 + dataLength + (dataLength & 1), 4);
  h.write('WAVE', 8, 'latin1');
  h.write('fmt ', 12, 'latin1');
  h.writeUInt32LE(16, 16);
  h.writeUInt16LE(1, 20); // WAVE_FORMAT_PCM
  h.writeUInt16LE(channels, 22);
  h.writeUInt32LE(sampleRate, 24);
  h.writeUInt32LE(byteRate, 28);
  h.writeUInt16LE(blockAlign, 32);
  h.writeUInt16LE(bitsPerSample, 34);
  h.write('data', 36, 'latin1');
  h.writeUInt32LE(dataLength ?? WAV_UNKNOWN_SIZE, 40);
  return h;
}
