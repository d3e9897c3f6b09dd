import { createHash } from 'node:crypto';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Copy, Recording } from '../../catalog/model.js';
import { AppError, isAppError } from '../../errors.js';
import type { Transcoder } from '../../media/transcoder.js';
import { locationOf, type SourceRegistry } from '../../sources/registry.js';
import { canonicalPcm } from './canonical-pcm.js';
import { EnvelopeBuilder } from './fingerprint.js';

/** What the comparison keeps of one copy: never its audio, only a digest and an envelope. */
export interface CopyDigest {
  codec: string;
  /** SHA-256 of the canonical PCM (8 kHz mono s16le). */
  pcmSha256: string;
  durationMs: number;
  envelope: Float32Array;
}

export interface DigestDeps {
  sources: SourceRegistry;
  transcoder: Transcoder;
}

/**
 * Opens one copy through the tenant's own connector (the registry never lends another tenant's)
 * and streams it through the canonical decoder into a hash and an envelope. Every failure is an
 * AppError with the code the gateway would have answered with.
 */
export async function digestCopy(deps: DigestDeps, rec: Recording, copy: Copy, signal: AbortSignal): Promise<CopyDigest> {
  try {
    const connector = deps.sources.forCopy(rec.tenantId, copy);
    const media = await connector.open(locationOf(copy, rec.conversationId), { signal });
    const pcm = await canonicalPcm(media.body, {
      transcoder: deps.transcoder,
      signal,
      ...(media.totalSize !== undefined ? { sourceSize: media.totalSize } : {}),
      ...(copy.codec ? { rawCodecHint: copy.codec } : {}),
    });
    const hash = createHash('sha256');
    const env = new EnvelopeBuilder();
    await pipeline(
      pcm.body,
      new Writable({
        write(chunk: Buffer, _enc, cb) {
          hash.update(chunk);
          env.push(chunk);
          cb();
        },
      }),
      { signal },
    );
    if (env.samples === 0) throw new AppError('media.undecodable', 'the copy decodes to no audio at all');
    return { codec: pcm.codec, pcmSha256: hash.digest('hex'), durationMs: env.durationMs, envelope: env.finish() };
  } catch (e) {
    throw asAppError(e, signal);
  }
}

function asAppError(e: unknown, signal: AbortSignal): AppError {
  if (isAppError(e)) return e;
  if (signal.aborted) return new AppError('source.timeout', 'the comparison did not finish in time', { cause: e });
  return new AppError('source.unavailable', `the copy could not be read: ${(e as Error)?.message ?? String(e)}`, { cause: e });
}
