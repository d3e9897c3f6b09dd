import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FileState } from '../src/sources/genesys/models.js';
import { type GenesysSimulator, startGenesysSimulator } from '../src/sources/genesys/simulator.js';
import { AUDIO, KEYS, bearer, retrieveBody, startTestGateway, type TestGateway } from './support/gateway.js';
import { genesysSource } from './support/genesys-source.js';
import { type RawResponse, post, raw } from './support/http.js';

/**
 * product.md: Retry-After "where a retry can help". A source.bad_gateway that is an answer about
 * one recording (circuit.ts notAnOutage: an unknown fileState, no media link) will not change when asked
 * again, so it carries no Retry-After; a source's error answer that may pass (malformed JSON) keeps it.
 */
const SMALL = readFileSync(join(AUDIO, 'call_mono_pcm16_8k.wav'));
const conv = (n: number) => `fb000000-0000-4000-8000-${String(n).padStart(12, '0')}`;

describe('Retry-After on a source.bad_gateway about one recording', () => {
  let sim: GenesysSimulator;
  let gw: TestGateway;

  beforeAll(async () => {
    sim = await startGenesysSimulator();
    sim.addRecording({ conversationId: conv(1), recordingId: 'rec-error', fileState: 'ERROR' });
    sim.addRecording({ conversationId: conv(2), recordingId: 'rec-ok', bytes: SMALL, contentType: 'audio/wav' });
    sim.addRecording({ conversationId: conv(3), recordingId: 'rec-odd', bytes: SMALL });
    sim.setFileState(conv(3), 'rec-odd', 'FROZEN' as FileState);
    gw = await startTestGateway({
      sources: {
        acme: [
          genesysSource(sim, {
            source_systems: [],
            mode: 'sync',
            timeout_ms: 2_000,
            max_resumes: 0,
            fallback_lookup: false,
            circuit_breaker: { failures: 1_000, half_open_after_ms: 60_000 },
          }),
        ],
      },
    });
    const cloud = (ref: string, c: string, r: string) => ({
      call_id: `2026-01-01T00:00:00Z-${ref}`,
      legacy_archive_id: ref,
      source_system: 'genesys_cloud',
      connector: 'genesys',
      conversation_id: c,
      recording_id: r,
      storage_location: 'GENESYS_CLOUD_ARCHIVE' as const,
    });
    await gw.seed([cloud('ra_error', conv(1), 'rec-error'), cloud('ra_ok', conv(2), 'rec-ok'), cloud('ra_odd', conv(3), 'rec-odd')]);
  });

  afterAll(async () => {
    await gw?.stop();
    await sim?.close();
  });

  function problem(r: RawResponse, code: string): Record<string, unknown> {
    expect(r.status, r.body.toString()).toBe(502);
    expect(r.headers['content-type']).toBe('application/problem+json');
    const body = JSON.parse(r.body.toString()) as Record<string, unknown>;
    expect(body.code).toBe(code);
    return body;
  }

  it('an unknown fileState: 502 source.bad_gateway without Retry-After (retrieve and player)', async () => {
    const r = await post(gw, retrieveBody({ target_recording_ref: 'ra_odd', format_preference: 'original' }));
    expect(problem(r, 'source.bad_gateway').file_state).toBe('FROZEN');
    expect(r.headers['retry-after']).toBeUndefined();
    const p = await raw(`${gw.url}/api/v1/recordings/ra_odd/media`, { headers: bearer(KEYS.acme) });
    problem(p, 'source.bad_gateway');
    expect(p.headers['retry-after']).toBeUndefined();
  });

  it('fileState ERROR: the gateway answers source.key_refused (key-guard.ts: it may be a revoked key), no Retry-After', async () => {
    const r = await post(gw, retrieveBody({ target_recording_ref: 'ra_error', format_preference: 'original' }));
    problem(r, 'source.key_refused');
    expect(r.headers['retry-after']).toBeUndefined();
  });

  it('a 200 without a media link: no Retry-After either', async () => {
    sim.omitMediaUrisNext(1);
    const r = await post(gw, retrieveBody({ target_recording_ref: 'ra_ok', format_preference: 'original' }));
    problem(r, 'source.bad_gateway');
    expect(r.headers['retry-after']).toBeUndefined();
  });

  it('a source error answer that may pass (malformed JSON) keeps Retry-After', async () => {
    sim.malformedJsonNext(1);
    const r = await post(gw, retrieveBody({ target_recording_ref: 'ra_ok', format_preference: 'original' }));
    problem(r, 'source.bad_gateway');
    expect(r.headers['retry-after']).toBe('5');
  });
});
