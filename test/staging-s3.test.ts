import { createHash, randomBytes } from 'node:crypto';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Gateway, startGateway } from '../src/main.js';
import { type LegacySimulator, startLegacySimulator } from '../src/sources/legacy-http/simulator.js';
import { startS3Simulator, type S3Simulator } from '../src/sources/s3/simulator.js';
import { postgresAvailable } from './support/postgres.js';
import { AUDIO, KEYS, bearer, retrieveBody, startTestGateway, type TestGateway } from './support/gateway.js';
import { post, raw } from './support/http.js';

const BUCKET = 'shared-staging';
const PREFIX = 'custodian/staging/';
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const MULAW = readFileSync(join(AUDIO, 'call_mono_mulaw_8k.wav'));

/** A 16-bit 8 kHz mono WAV of `dataBytes` noise: big enough to be staged in several multipart parts. */
function bigWav(dataBytes: number): Buffer {
  const h = Buffer.alloc(44);
  h.write('RIFF', 0);
  h.writeUInt32LE(36 + dataBytes, 4);
  h.write('WAVEfmt ', 8);
  h.writeUInt32LE(16, 16);
  h.writeUInt16LE(1, 20);
  h.writeUInt16LE(1, 22);
  h.writeUInt32LE(8000, 24);
  h.writeUInt32LE(16000, 28);
  h.writeUInt16LE(2, 32);
  h.writeUInt16LE(16, 34);
  h.write('data', 36);
  h.writeUInt32LE(dataBytes, 40);
  return Buffer.concat([h, randomBytes(dataBytes)]);
}
const BIG = bigWav(11 * 1024 * 1024 + 4321);

async function pollUntil(url: string, poll: string, want: string[], timeoutMs = 30_000) {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const res = await raw(`${url}${poll}`, { headers: bearer(KEYS.acme) });
    const body = JSON.parse(res.body.toString());
    if (want.includes(body.status)) return body;
    if (Date.now() > until) throw new Error(`job still ${body.status}: ${res.body.toString()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

let s3: S3Simulator;
let wan: LegacySimulator;
let client: S3Client;

/** The staged objects in the bucket (through the S3 API, not s3rver's disk). */
async function stagedKeys(): Promise<string[]> {
  const out = await client.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: PREFIX }));
  return (out.Contents ?? []).map((o) => o.Key!);
}

async function stagedObject(key: string): Promise<Buffer> {
  const out = await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: PREFIX + key }));
  return Buffer.from(await out.Body!.transformToByteArray());
}

/** Config of gateways staging in the shared bucket, with a slow WAN archive in `auto` mode. */
function configure(doc: Record<string, any>): void {
  doc.jobs = {
    poll_interval_ms: 50,
    staging: { type: 's3', bucket: BUCKET, prefix: PREFIX, endpoint: s3.endpoint, force_path_style: true, access_key_id: s3.accessKeyId, secret_access_key: s3.secretAccessKey, part_size_mib: 5 },
  };
  doc.tenants[0].sources.push({ name: 'wan', type: 'legacy-http', provider: 'generic_http', api_endpoint: wan.endpoint, auth_type: 'none', first_byte_budget_ms: 100, source_systems: ['wan'] });
}

beforeAll(async () => {
  s3 = await startS3Simulator({ buckets: [BUCKET] });
  // Answers after the 100 ms budget (so the retrieve becomes a 202 and the same fetch goes on into staging).
  wan = await startLegacySimulator({
    provider: 'generic_http',
    recordings: [
      { id: 'wan-big', bytes: BIG },
      { id: 'wan-small', path: join(AUDIO, 'call_mono_mulaw_8k.wav') },
    ],
    knobs: { latencyMs: 400, auth: 'none' },
  });
  client = new S3Client({
    region: 'us-east-1',
    endpoint: s3.endpoint,
    forcePathStyle: true,
    credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
});
afterAll(async () => {
  client?.destroy();
  await wan?.close();
  await s3?.stop();
});

/**
 * Issue 8: staging in S3, so the instance that staged a 202 job need not be the one that serves it.
 * Instance A answers 202 and stages (multipart) into the bucket; instance B — its own data_dir
 * holding only a copy of the keyring, no job worker — serves the content, whole and ranged.
 */
describe.runIf(await postgresAvailable())('S3 staging shared by two instances on one PostgreSQL', () => {
  let a: TestGateway;
  let b: Gateway;
  let bDir: string;

  beforeAll(async () => {
    a = await startTestGateway({ catalog: 'postgres', config: configure });
    await a.seed([{ call_id: 'c-big', source_system: 'wan', legacy_archive_id: 'wan-big' }]);
  });
  afterAll(async () => {
    await b?.close();
    await a?.stop();
    if (bDir) rmSync(bDir, { recursive: true, force: true });
  });

  it('A stages into the bucket; B, on the same catalog, serves it whole and with a Range', async () => {
    const res = await post(a, retrieveBody({ target_recording_ref: 'c-big', format_preference: 'original' }));
    expect(res.status, res.body.toString()).toBe(202);
    const { job_id: jobId, poll_endpoint: poll } = JSON.parse(res.body.toString());
    const done = await pollUntil(a.url, poll, ['ready', 'failed']);
    expect(done).toMatchObject({ status: 'ready', bytes_done: BIG.length, sha256: sha256(BIG) });

    // Staged in the bucket under the key of the attempt that made it ready, encrypted (no run of the plaintext in it), nothing on A's disk.
    const key = (await a.deps.jobs.get('acme', jobId))!.stagingKey!;
    expect(key.startsWith(`${jobId}_`)).toBe(true);
    expect(await stagedKeys()).toEqual([PREFIX + key]);
    const sealed = await stagedObject(key);
    expect(sealed.length).toBeGreaterThan(BIG.length);
    expect(sealed.includes(BIG.subarray(5_000_000, 5_000_064))).toBe(false);
    expect(existsSync(join(a.dir, 'staging'))).toBe(false);

    // B: another process's view — its own catalog pool and data_dir, only the keyring shared.
    bDir = mkdtempSync(join(tmpdir(), 'custodian-gw-b-'));
    cpSync(join(a.dir, 'keys'), join(bDir, 'keys'), { recursive: true });
    b = await startGateway(
      { ...a.config, data_dir: bDir, jobs: { ...a.config.jobs, concurrency: 0 } },
      { logger: pino({ level: 'silent' }) },
    );
    const status = await pollUntil(b.url, poll, ['ready']);
    expect(status.content_endpoint).toBe(`/api/v1/recordings/jobs/${jobId}/content`);

    const whole = await raw(`${b.url}${status.content_endpoint}`, { headers: bearer(KEYS.acme) });
    expect(whole.status).toBe(200);
    expect(whole.headers['content-length']).toBe(String(BIG.length));
    expect(whole.headers['x-content-sha256']).toBe(sha256(BIG));
    expect(sha256(whole.body)).toBe(sha256(BIG));

    // A range across a record boundary and a multipart part boundary (5 MiB of sealed bytes).
    const [from, to] = [5_100_000, 5_400_000];
    const part = await raw(`${b.url}${status.content_endpoint}`, { headers: { ...bearer(KEYS.acme), range: `bytes=${from}-${to}` } });
    expect(part.status).toBe(206);
    expect(part.headers['content-range']).toBe(`bytes ${from}-${to}/${BIG.length}`);
    expect(part.body.equals(BIG.subarray(from, to + 1))).toBe(true);
    const tail = await raw(`${b.url}${status.content_endpoint}`, { headers: { ...bearer(KEYS.acme), range: 'bytes=-1000' } });
    expect(tail.status).toBe(206);
    expect(tail.body.equals(BIG.subarray(BIG.length - 1000))).toBe(true);

    expect(existsSync(join(bDir, 'staging'))).toBe(false);
    // B's downloads are in the one audit trail.
    const events = (await a.deps.auditRepo.query({ tenantId: 'acme', action: 'job.content', limit: 10 })).items;
    expect(events.filter((e) => e.outcome === 'allowed')).toHaveLength(3);
  }, 60_000);
});

describe('S3 staging on SQLite, one instance', () => {
  let gw: TestGateway;

  beforeAll(async () => {
    gw = await startTestGateway({ config: configure });
    await gw.seed([{ call_id: 'c-small', source_system: 'wan', legacy_archive_id: 'wan-small' }]);
  });
  afterAll(async () => {
    await gw?.stop();
  });

  it('stages, serves, and purges the object when the job expires', async () => {
    const res = await post(gw, retrieveBody({ target_recording_ref: 'c-small', format_preference: 'original' }));
    expect(res.status, res.body.toString()).toBe(202);
    const { job_id: jobId, poll_endpoint: poll } = JSON.parse(res.body.toString());
    const done = await pollUntil(gw.url, poll, ['ready', 'failed']);
    expect(done).toMatchObject({ status: 'ready', bytes_done: MULAW.length });
    const key = (await gw.deps.jobs.get('acme', jobId))!.stagingKey!;
    expect(await stagedKeys()).toContain(PREFIX + key);
    expect(existsSync(join(gw.dir, 'staging'))).toBe(false);

    const whole = await raw(`${gw.url}${done.content_endpoint}`, { headers: bearer(KEYS.acme) });
    expect(whole.status).toBe(200);
    expect(whole.body.equals(MULAW)).toBe(true);
    const part = await raw(`${gw.url}${done.content_endpoint}`, { headers: { ...bearer(KEYS.acme), range: 'bytes=60000-70000' } });
    expect(part.status).toBe(206);
    expect(part.body.equals(MULAW.subarray(60000, 70001))).toBe(true);

    // Past its TTL the sweep deletes the object and the content is gone (410).
    await gw.catalogDb.db.updateTable('jobs').set({ expires_at: new Date(Date.now() - 1000).toISOString() }).where('id', '=', jobId).execute();
    const { JobWorker } = await import('../src/jobs/worker.js');
    expect(await new JobWorker(gw.deps).sweep()).toBeGreaterThanOrEqual(1);
    expect(await stagedKeys()).not.toContain(PREFIX + key);
    const gone = await raw(`${gw.url}${done.content_endpoint}`, { headers: bearer(KEYS.acme) });
    expect(gone.status).toBe(410);
  }, 30_000);

  it('a staging store that cannot be reached is 503 staging.unavailable, not 410: an outage is not an expiry', async () => {
    const dead = await startTestGateway({
      config: (doc) => {
        doc.jobs = { staging: { type: 's3', bucket: BUCKET, prefix: PREFIX, endpoint: 'http://127.0.0.1:9', force_path_style: true, access_key_id: 'AKIDEAD', secret_access_key: 'dead-secret', part_size_mib: 5 } };
      },
    });
    try {
      await dead.seed([{ call_id: 'c-outage', legacy_archive_id: 'outage_1', locator: 'call_mono_mulaw_8k.wav' }]);
      const rec = (await dead.deps.recordings.findByRef('acme', 'c-outage'))!;
      const { job } = await dead.deps.jobs.create({ tenantId: 'acme', principalId: 'alice', callerId: null, requestId: null, auditLogId: null, ref: 'c-outage', recordingPk: rec.id, format: 'original', maxAttempts: 1, leaseOwner: 'test', leaseMs: 60_000 });
      const dek = await dead.deps.keys.generateDataKey();
      const ok = await dead.deps.jobs.markReady(job.id, 'test', {
        stagingKey: job.id, dekKeyId: dek.keyId, dekWrapped: dek.wrapped, size: 1000, sha256: 'ab'.repeat(32), contentType: 'audio/wav', codec: 'mulaw', transcoded: false, origin: 'LEGACY_ARCHIVE', copyId: rec.copies[0]!.id, expiresAt: new Date(Date.now() + 60_000).toISOString(),
      });
      expect(ok).toBe(true);
      const res = await raw(`${dead.url}/api/v1/recordings/jobs/${job.id}/content`, { headers: bearer(KEYS.acme) });
      expect(res.status, res.body.toString()).toBe(503);
      expect(JSON.parse(res.body.toString())).toMatchObject({ code: 'staging.unavailable' });
    } finally {
      await dead.stop();
    }
  }, 60_000);
});
