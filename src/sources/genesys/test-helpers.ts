import { AppError } from '../../errors.js';
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { withSecretContext } from '../../config/secret.js';
import type { CopyLocation } from '../port.js';
import { genesysSourceConfig, type GenesysSourceConfig } from './config.js';
import type { GenesysSimulator } from './simulator.js';

/** A parsed config pointing at a running simulator (inline secret: tests only). */
export function configFor(sim: GenesysSimulator, over: Record<string, unknown> = {}): GenesysSourceConfig {
  return withSecretContext({ env: {}, allowInline: true }, () =>
    genesysSourceConfig.parse({
      name: 'genesys-test',
      type: 'genesys',
      environment: 'mypurecloud.ie',
      login_base_url: sim.loginBaseUrl,
      api_base_url: sim.apiBaseUrl,
      client_id: 'custodian-sim',
      client_secret: 'custodian-sim-secret',
      timeout_ms: 5_000,
      transcode_poll: { initial_ms: 10, max_ms: 40, budget_ms: 2_000 },
      ...over,
    }),
  );
}

export function copyOf(conversationId: string | null, recordingId: string | null): CopyLocation {
  return {
    copyId: `copy-${conversationId}-${recordingId}`,
    locator: null,
    sourceSystem: 'genesys_cloud',
    genesysRecordingId: recordingId,
    conversationId,
    legacyArchiveId: null,
    sizeBytes: null,
  };
}

export async function drain(body: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of body) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

export function sha256(b: Uint8Array): string {
  return createHash('sha256').update(b).digest('hex');
}

/** Deterministic pseudo-random bytes (xorshift), so failures are reproducible. */
export function bytesOf(n: number, seed = 1): Buffer {
  const b = Buffer.alloc(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    b[i] = x & 0xff;
  }
  return b;
}

/** The catalogue code of a failure, or undefined for anything that is not an AppError. */
export function errorCodeOf(e: unknown): string | undefined {
  return e instanceof AppError ? e.code : undefined;
}
