import { createReadStream, statSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { fixturePath } from '../../test/support/audio.js';
import { canonicalCodec } from '../catalog/record.js';
import { isG729Hint, sniffStream } from './prepare.js';

/**
 * A bare .g729 file (frames, no header: MediaSense/UCCX downloads kept in an archive) is decoded
 * only on the catalog's word. The word is what an import stored: Cisco writes "G729", others
 * "G.729" or "g729a". Only lower-case `g729` played; anything else was a 422.
 */
describe('the catalog codec of a raw G.729 file', () => {
  const raw = fixturePath('call_mono_g729_8k.g729');
  const sniffWith = async (rawCodecHint: string) => {
    const { stream, sniff } = await sniffStream(createReadStream(raw), { signal: new AbortController().signal, sourceSize: statSync(raw).size, rawCodecHint });
    stream.destroy();
    return sniff;
  };

  it.each(['g729', 'G729', 'G.729', 'g.729a', 'G729A', 'g-729', ' G 729 '])('%j (a row stored before imports filed it canonical) reads the file as G.729 frames', async (hint) => {
    expect(await sniffWith(hint)).toMatchObject({ container: 'unknown', codec: 'g729' });
  });

  it.each(['g729b', 'g722', 'G.723.1', 'pcmu', 'unknown'])('%j is no G.729 hint: the bytes stay unrecognised', async (hint) => {
    expect(await sniffWith(hint)).toMatchObject({ container: 'unknown', codec: 'unknown' });
  });

  it('every spelling an import files as g729 is one the hint takes', () => {
    for (const s of ['G729', 'G.729', 'g729a', 'G.729A', 'G-729', 'g_729']) {
      expect(canonicalCodec(s), s).toBe('g729');
      expect(isG729Hint(s), s).toBe(true);
    }
    expect(canonicalCodec('G.729B')).toBe('g.729b'); // not one of the media layer's: lower-cased only
    expect(isG729Hint('G.729B')).toBe(false);
  });
});
