import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Readable } from 'node:stream';
import { expect } from 'vitest';
import { withSecretContext } from '../../config/secret.js';
import { AppError } from '../../errors.js';
import type { CopyLocation } from '../port.js';
import { legacyHttpSourceConfig, type LegacyHttpSourceConfig } from './config.js';
import { DEFAULT_SIM_USER, type LegacySimulator } from './simulator.js';

/** Demo fixture (a G.729 WAV, as Avaya and UCCX store them). */
export const FIXTURE_PATH = fileURLToPath(new URL('../../../demo/audio/call_mono_g729_8k.wav', import.meta.url));
export const FIXTURE = readFileSync(FIXTURE_PATH);
export const FIXTURE_2_PATH = fileURLToPath(new URL('../../../demo/audio/call_mono_mulaw_8k.wav', import.meta.url));
export const FIXTURE_2 = readFileSync(FIXTURE_2_PATH);

/** Parses an entry (inline secrets allowed: tests only). */
export function parseConfig(raw: Record<string, unknown>): LegacyHttpSourceConfig {
  return withSecretContext({ env: {}, allowInline: true }, () => legacyHttpSourceConfig.parse(raw));
}

/** A parsed entry pointing at a running simulator, with fast backoff for tests. */
export function configFor(sim: LegacySimulator, over: Record<string, unknown> = {}): LegacyHttpSourceConfig {
  const auth = sim.provider === 'cisco_mediasense' ? 'session' : 'basic';
  return parseConfig({
    name: 'legacy-test',
    type: 'legacy-http',
    provider: sim.provider,
    api_endpoint: sim.endpoint,
    auth_type: auth,
    username: DEFAULT_SIM_USER.username,
    password: DEFAULT_SIM_USER.password,
    timeout_ms: 3_000,
    max_retries: 3,
    backoff: { initial_ms: 5, max_ms: 20 },
    ...over,
  });
}

export function copyOf(legacyArchiveId: string | null, locator: string | null = null): CopyLocation {
  return {
    copyId: `copy-${legacyArchiveId ?? locator}`,
    locator,
    sourceSystem: 'legacy',
    genesysRecordingId: null,
    conversationId: null,
    legacyArchiveId,
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

export const signal = (): AbortSignal => new AbortController().signal;

export async function failure(p: Promise<unknown>): Promise<AppError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(AppError);
    return e as AppError;
  }
  throw new Error('expected a failure');
}

export function basicOf(username: string, password: string): string {
  return `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
}
