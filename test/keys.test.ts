/**
 * The brief's edge case 3: encryption keys. The gateway runs with the AWS KMS key service;
 * KMS cannot run here, so @aws-sdk/client-kms is stubbed with aws-sdk-client-mock
 * (test/support/kms.ts) — every other part is real: the gateway, the catalog, the Genesys
 * simulator, the filesystem archive.
 */
import { join } from 'node:path';
import { DescribeKeyCommand } from '@aws-sdk/client-kms';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type GenesysSimulator, startGenesysSimulator } from '../src/sources/genesys/simulator.js';
import { usableCatalogs } from './support/catalogs.js';
import { AUDIO, KEYS, bearer, startTestGateway, type TestGateway } from './support/gateway.js';
import { genesysSource } from './support/genesys-source.js';
import { raw } from './support/http.js';
import { unzip } from './console/support.js';
import { ARN, KMS_REGION, SIGNING_KEY_ARN, fakeKms } from './support/kms.js';

const WAV = 'call_mono_pcm16_8k.wav';
const ENABLED = ARN('customer-enabled');
const DISABLED = ARN('customer-disabled');
const DOOMED = ARN('customer-doomed');

describe.each(await usableCatalogs())('encryption keys through the key service (KMS) on %s', (kind) => {
  let kms: ReturnType<typeof fakeKms>;
  let sim: GenesysSimulator;
  let gw: TestGateway;
  const media = (ref: string) => raw(`${gw.url}/api/v1/recordings/${ref}/media?format=original`, { headers: bearer(KEYS.acme) });
  const problem = (r: { body: Buffer }) => JSON.parse(r.body.toString());
  const eventOf = async (r: { headers: Record<string, unknown> }) => {
    const id = r.headers['x-request-id'] as string;
    return (await gw.deps.auditRepo.query({ tenantId: 'acme', limit: 1000 })).items.filter((e) => e.httpRequestId === id);
  };

  beforeAll(async () => {
    kms = fakeKms({ [ENABLED]: 'Enabled', [DISABLED]: 'Disabled', [DOOMED]: 'PendingDeletion' });
    sim = await startGenesysSimulator();
    const path = join(AUDIO, WAV);
    sim.addRecording({ conversationId: 'conv-403', recordingId: 'rec-403', path });
    sim.addRecording({ conversationId: 'conv-err', recordingId: 'rec-err', path, fileState: 'ERROR' });
    sim.addRecording({ conversationId: 'conv-two', recordingId: 'rec-two', path });
    gw = await startTestGateway({
      catalog: kind,
      sources: { acme: [genesysSource(sim)] },
      config: (doc) => {
        doc.keys = {
          provider: 'aws_kms',
          aws_kms: { region: KMS_REGION, data_key_id: 'alias/custodian-staging', signing_key_id: 'alias/custodian-audit', access_key_id: 'AKIATEST', secret_access_key: 'test-secret', check_cache_ms: 0 },
        };
      },
    });
    const g = (ref: string, conv: string, key: string | null, extra: Record<string, unknown> = {}) => ({ call_id: `call-${ref}`, source_system: 'genesys_cloud', recording_id: ref, conversation_id: conv, key_id: key, encryption_status: 'CUSTOMER_KMS', ...extra });
    await gw.seed([
      { call_id: 'c-locked', legacy_archive_id: 'locked_1', locator: WAV, key_id: DISABLED, encryption_status: 'AES_256' },
      { call_id: 'c-doomed', legacy_archive_id: 'doomed_1', locator: WAV, key_id: DOOMED, encryption_status: 'AES_256' },
      { call_id: 'c-unknown', legacy_archive_id: 'unknown_1', locator: WAV, key_id: ARN('never-created'), encryption_status: 'AES_256' },
      { call_id: 'c-fine', legacy_archive_id: 'fine_1', locator: WAV, key_id: ENABLED, encryption_status: 'AES_256' },
      // No key_id: the source encrypts with its own keys; nothing for us to check.
      { call_id: 'c-plain', legacy_archive_id: 'plain_1', locator: WAV, encryption_status: 'AES_256' },
      // Cloud copy locked by its key, legacy copy of the same call fine: the legacy copy serves.
      g('rec-two', 'conv-two', DISABLED),
      { call_id: 'call-rec-two', legacy_archive_id: 'two_legacy', locator: WAV, key_id: ENABLED },
      g('rec-403', 'conv-403', ENABLED),
      g('rec-err', 'conv-err', ENABLED),
    ]);
  });
  afterAll(async () => {
    await gw?.stop();
    await sim?.close();
    kms?.restore();
  });

  it('serves a copy whose key is enabled, and one that names no key', async () => {
    expect((await media('fine_1')).status).toBe(200);
    expect((await media('plain_1')).status).toBe(200);
    expect(kms.mock.commandCalls(DescribeKeyCommand).map((c) => c.args[0].input.KeyId)).toContain(ENABLED);
  });

  it.each([
    ['locked_1', 'disabled', 422, 'key.disabled'],
    ['doomed_1', 'pending_deletion', 422, 'key.disabled'],
    ['unknown_1', 'unknown', 422, 'key.unknown'],
  ])('refuses %s (key %s) with %i %s, audited with the key it refused', async (ref, state, status, code) => {
    const r = await media(ref);
    expect(r.status).toBe(status);
    expect(problem(r)).toMatchObject({ code, key_state: state });
    // The key id is evidence for the auditor, not information for the client.
    expect(r.body.toString()).not.toContain('arn:aws:kms');
    const [ev] = await eventOf(r);
    expect(ev).toMatchObject({ action: 'recording.media', outcome: 'failed', errorCode: code, detail: { key_refused: [expect.objectContaining({ state })] } });
    expect(JSON.stringify(ev!.detail)).toContain('arn:aws:kms');
  });

  it('a key disabled in KMS now is refused on the next request', async () => {
    expect((await media('fine_1')).status).toBe(200);
    kms.setState(ENABLED, 'Disabled');
    try {
      const r = await media('fine_1');
      expect(r.status).toBe(422);
      expect(problem(r).code).toBe('key.disabled');
    } finally {
      kms.setState(ENABLED, 'Enabled');
    }
  });

  it('a queued job checks the key again when a worker runs it: a key disabled since the 202 fails the job, nothing is staged', async () => {
    const rec = (await gw.deps.recordings.findByRef('acme', 'fine_1'))!;
    kms.setState(ENABLED, 'Disabled');
    try {
      const { job } = await gw.deps.jobs.create({ tenantId: 'acme', principalId: 'alice', callerId: null, requestId: null, auditLogId: null, ref: 'fine_1', recordingPk: rec.id, format: 'original', maxAttempts: 3 });
      gw.deps.worker?.poke();
      let now = job;
      for (let i = 0; i < 200 && (now.status === 'queued' || now.status === 'running'); i++) {
        await new Promise((r) => setTimeout(r, 25));
        now = (await gw.deps.jobs.get('acme', job.id))!;
      }
      expect(now).toMatchObject({ status: 'failed', errorCode: 'key.disabled', stagingKey: null });
    } finally {
      kms.setState(ENABLED, 'Enabled');
    }
  });

  it('a ready job is not served from staging once the key of the copy it staged is disabled (crypto-shredding holds there too)', async () => {
    const rec = (await gw.deps.recordings.findByRef('acme', 'fine_1'))!;
    const { job } = await gw.deps.jobs.create({ tenantId: 'acme', principalId: 'alice', callerId: null, requestId: null, auditLogId: null, ref: 'fine_1', recordingPk: rec.id, format: 'original', maxAttempts: 3 });
    gw.deps.worker?.poke();
    let now = job;
    for (let i = 0; i < 200 && now.status !== 'ready' && now.status !== 'failed'; i++) {
      await new Promise((r) => setTimeout(r, 25));
      now = (await gw.deps.jobs.get('acme', job.id))!;
    }
    expect(now.status).toBe('ready');
    const content = () => raw(`${gw.url}/api/v1/recordings/jobs/${job.id}/content`, { headers: bearer(KEYS.acme) });
    expect((await content()).status).toBe(200);
    kms.setState(ENABLED, 'Disabled');
    try {
      const r = await content();
      expect(r.status).toBe(422);
      expect(problem(r)).toMatchObject({ code: 'key.disabled', key_state: 'disabled' });
      const [ev] = await eventOf(r);
      expect(ev).toMatchObject({ action: 'job.content', outcome: 'failed', errorCode: 'key.disabled', detail: { key_refused: [expect.objectContaining({ state: 'disabled' })] } });
    } finally {
      kms.setState(ENABLED, 'Enabled');
    }
    expect((await content()).status).toBe(200);
  });

  it('a ready evidence package is not downloaded once the key of a recording in it is disabled', async () => {
    const call = (path: string, body?: unknown) =>
      raw(gw.url + path, { method: body ? 'POST' : 'GET', headers: { ...bearer(KEYS.acmeAdmin), ...(body ? { 'content-type': 'application/json' } : {}) }, ...(body ? { body: JSON.stringify(body) } : {}) });
    const started = await call('/api/v1/evidence', { refs: ['fine_1', 'plain_1'], purpose: 'Case 93', mode: 'job' });
    expect(started.status, started.body.toString()).toBe(202);
    let s: { status: string; content_endpoint?: string } = { status: 'queued' };
    for (let i = 0; i < 200 && s.status !== 'ready' && s.status !== 'failed'; i++) {
      await new Promise((r) => setTimeout(r, 50));
      s = JSON.parse((await call(problem(started).poll_endpoint)).body.toString());
    }
    expect(s.status).toBe('ready');
    expect((await call(s.content_endpoint!)).status).toBe(200);
    kms.setState(ENABLED, 'Disabled');
    try {
      const r = await call(s.content_endpoint!);
      expect(r.status, r.body.toString().slice(0, 300)).toBe(422);
      expect(problem(r)).toMatchObject({ code: 'key.disabled', key_state: 'disabled', ref: 'fine_1' });
      const [ev] = await eventOf(r);
      expect(ev).toMatchObject({ outcome: 'failed', errorCode: 'key.disabled', detail: expect.objectContaining({ key_refused: [expect.objectContaining({ state: 'disabled' })] }) });
    } finally {
      kms.setState(ENABLED, 'Enabled');
    }
    expect((await call(s.content_endpoint!)).status).toBe(200);
  });

  it("skips a copy whose key is refused when another copy's is fine", async () => {
    const r = await media('rec-two');
    expect(r.status).toBe(200);
    expect(r.headers['x-recording-origin']).toBe('LEGACY_ARCHIVE');
    const [allowed] = await eventOf(r);
    expect(allowed!.detail).toMatchObject({ key_refused: [expect.objectContaining({ state: 'disabled' })] });
  });

  it('a key refusal by the source (403) gets one metadata refresh and retry', async () => {
    sim.clearLog();
    sim.failNext(1, { status: 403 });
    const r = await media('rec-403');
    expect(r.status, r.body.toString()).toBe(200);
    expect(r.headers['x-recording-origin']).toBe('GENESYS_CLOUD');
    const [allowed] = await eventOf(r);
    expect(allowed!.detail).toMatchObject({ key_retry: { code: 'source.auth_failed' } });
    // Two metadata reads: the refused one and the fresh one.
    expect(sim.requests.filter((q) => q.path.endsWith('/recordingmetadata/rec-403')).length).toBe(2);
  });

  it('a source that still cannot decrypt (Genesys fileState ERROR) is answered source.key_refused after one retry, and audited', async () => {
    sim.clearLog();
    const r = await media('rec-err');
    expect(r.status).toBe(502);
    expect(problem(r)).toMatchObject({ code: 'source.key_refused' });
    expect(sim.requests.filter((q) => q.path.endsWith('/recordingmetadata/rec-err')).length).toBe(2);
    const [ev] = await eventOf(r);
    expect(ev).toMatchObject({ outcome: 'failed', status: 502, errorCode: 'source.key_refused', detail: { key_retry: { code: 'source.bad_gateway' } } });
  });

  it('the console reads the same way: a waveform or an evidence package of a copy whose key is disabled is refused; a locked cloud copy leaves the legacy copy to read', async () => {
    const consoleCall = (path: string, body?: unknown) =>
      raw(gw.url + path, { method: body ? 'POST' : 'GET', headers: { ...bearer(KEYS.acmeAdmin), ...(body ? { 'content-type': 'application/json' } : {}) }, ...(body ? { body: JSON.stringify(body) } : {}) });
    const locked = await consoleCall('/api/v1/recordings/locked_1/waveform?points=100');
    expect(locked.status, locked.body.toString()).toBe(422);
    expect(problem(locked)).toMatchObject({ code: 'key.disabled', key_state: 'disabled' });
    const [ev] = await eventOf(locked);
    expect(ev).toMatchObject({ action: 'recording.waveform', outcome: 'failed', errorCode: 'key.disabled', detail: { key_refused: [expect.objectContaining({ state: 'disabled' })] } });

    const two = await consoleCall('/api/v1/recordings/rec-two/waveform?points=100');
    expect(two.status, two.body.toString()).toBe(200);
    expect(two.headers['x-recording-origin']).toBe('LEGACY_ARCHIVE');

    const pkg = await consoleCall('/api/v1/evidence', { refs: ['locked_1', 'rec-two'], purpose: 'Case 91' });
    expect(pkg.status, pkg.body.toString().slice(0, 300)).toBe(200);
    const files = await unzip(pkg.body);
    const manifest = JSON.parse(files.get('manifest.json')!.toString());
    const [lockedEntry, twoEntry] = manifest.recordings;
    expect(manifest.complete).toBe(false);
    expect(lockedEntry.original).toEqual({ error: expect.objectContaining({ code: 'key.disabled' }) });
    expect(lockedEntry.playable).toEqual({ error: expect.objectContaining({ code: 'key.disabled' }) });
    expect([...files.keys()].some((f) => f.startsWith(`recordings/${lockedEntry.id}/original`))).toBe(false);
    expect(twoEntry.original).toMatchObject({ origin: 'LEGACY_ARCHIVE' });
    expect(twoEntry.key_refused).toEqual([expect.objectContaining({ state: 'disabled' })]);
  });

  it('signs checkpoints and export manifests with the KMS key; verify checks them through KMS', async () => {
    const key = JSON.parse((await raw(`${gw.url}/api/v1/audit/signing-key`, { headers: bearer(KEYS.acmeAuditor) })).body.toString());
    expect(key).toMatchObject({ key_id: SIGNING_KEY_ARN, algorithm: 'Ed25519' });
    const cp = await gw.deps.checkpointer!.checkpoint();
    expect(cp).toMatchObject({ keyId: SIGNING_KEY_ARN });
    const v = JSON.parse((await raw(`${gw.url}/api/v1/audit/verify`, { headers: bearer(KEYS.acmeAuditor) })).body.toString());
    // A tenant's auditor learns that a signed checkpoint was confirmed, not how many (docs/AUDIT.md).
    expect(v).toEqual({ ok: true, checkpointed: true });
  });
});
