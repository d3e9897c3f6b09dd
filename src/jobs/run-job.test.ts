import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { openTestCatalog, type TestCatalog, usableCatalogs } from '../../test/support/catalogs.js';
import { s3StagingConfig } from '../../test/support/s3-staging.js';
import { decryptRange } from '../keys/chunked-cipher.js';
import { startS3Simulator, type S3Simulator } from '../sources/s3/simulator.js';
import { type Job, JobRepository } from './job-repository.js';
import { stageOpened } from './run-job.js';
import { S3Staging } from './s3-staging.js';
import { LocalStaging, type Staging } from './staging.js';

/**
 * Attempts of one job racing each other: an attempt whose lease lapsed while it was still alive
 * (a stalled event loop, a database it could not reach, clocks of two hosts apart) must neither
 * destroy nor corrupt what the attempt that took the job over staged, and must stop once it can no
 * longer hold its lease. Both catalogs; local staging and S3 staging (s3rver).
 */
const BUCKET = 'attempts';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let sim: S3Simulator;
const cleanups: (() => Promise<void> | void)[] = [];

beforeAll(async () => {
  sim = await startS3Simulator({ buckets: [BUCKET] });
});
afterAll(async () => {
  await sim?.stop();
});
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function s3Staging(): Staging {
  const s = new S3Staging(s3StagingConfig(sim, BUCKET, { prefix: `t${randomBytes(4).toString('hex')}/` }));
  cleanups.push(() => s.close());
  return s;
}

function localStaging(): Staging & { dir: string } {
  const dir = mkdtempSync(join(tmpdir(), 'custodian-attempts-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return new LocalStaging(dir);
}

const STAGINGS = [
  ['local', localStaging],
  ['s3', s3Staging],
] as const;

/** The slice of AppDeps an attempt uses, for one "instance" on the shared catalog and staging. */
function instance(cat: TestCatalog, instanceId: string, staging: Staging, jobs: { lease_ms: number; heartbeat_ms: number }, repo = new JobRepository(cat.db, cat.dialect)) {
  const errors: unknown[] = [];
  return {
    instanceId,
    config: { jobs: { ...jobs, staging_ttl_ms: 600_000, restore_poll_ms: 1000, retry_base_ms: 50 } },
    jobs: repo,
    keys: {
      async generateDataKey() {
        const plaintext = randomBytes(32);
        return { keyId: 'k1', plaintext, wrapped: Buffer.from(plaintext).toString('hex') };
      },
    },
    staging,
    metrics: { jobs: { inc: () => {} } },
    logger: { warn: () => {}, info: () => {}, error: (...a: unknown[]) => errors.push(a) },
    errors,
  };
}
type Instance = ReturnType<typeof instance>;

/** An opened copy whose body the test drives. */
function opened() {
  const body = new Readable({ read() {} });
  const copy = { copy: { id: 'copy-1', origin: 'LEGACY_ARCHIVE' }, prepared: { body, contentType: 'audio/wav', codec: 'pcm_s16le', transcoded: false, length: undefined } };
  return { opening: Promise.resolve(copy as never), push: (b: Buffer) => body.push(b), end: () => body.push(null) };
}

/** Runs one attempt of `job` on `inst` with a body the test drives. */
function attempt(inst: Instance, job: Job) {
  const o = opened();
  let settledAt: number | undefined;
  const done = stageOpened(inst as never, job, o.opening, new AbortController()).finally(() => (settledAt = Date.now()));
  return { ...o, done, settled: () => settledAt !== undefined, settledAt: () => settledAt };
}

/** What GET /jobs/:id/content serves from the row as stored: the plaintext, or why not. */
async function content(staging: Staging, row: Job): Promise<Buffer | string> {
  try {
    const fh = await staging.open(row.stagingKey!);
    const chunks: Buffer[] = [];
    for await (const c of decryptRange(fh, Buffer.from(row.dekWrapped!, 'hex'), row.bytesTotal!, 0, row.bytesTotal! - 1)) chunks.push(c as Buffer);
    return Buffer.concat(chunks);
  } catch (e) {
    return `${(e as { code?: string }).code ?? ''} ${(e as Error).message}`;
  }
}

/** The attempt holding `id` stalls past its lease (event loop, a database it cannot reach): the lease lapses in the row. */
async function lapse(cat: TestCatalog, id: string): Promise<void> {
  await cat.db.updateTable('jobs').set({ lease_until: new Date(Date.now() - 1000).toISOString() }).where('id', '=', id).execute();
}

async function until(what: string, cond: () => boolean | Promise<boolean>, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

const newJob = (requestId: string, leaseOwner?: string, leaseMs?: number) => ({
  tenantId: 'acme',
  principalId: 'alice',
  callerId: null,
  requestId,
  auditLogId: null,
  ref: 'r',
  recordingPk: 'rec-1',
  format: 'original',
  maxAttempts: 3,
  ...(leaseOwner ? { leaseOwner, leaseMs } : {}),
});

const A_BYTES = Buffer.alloc(150_000, 1);
const B_BYTES = Buffer.alloc(100_000, 2);

describe.each(await usableCatalogs())('job attempts on %s', (kind) => {
  let cat: TestCatalog;
  beforeAll(async () => {
    cat = await openTestCatalog(kind);
  });
  afterAll(async () => {
    await cat?.dispose();
  });
  // Each test claims from an empty queue.
  beforeEach(async () => {
    await cat.db.deleteFrom('jobs').execute();
  });

  describe.each(STAGINGS)('%s staging', (stagingKind, makeStaging) => {
    it('a stale attempt that finishes after its replacement made the job ready leaves the replacement\'s content intact', async () => {
      const staging = makeStaging();
      // A's heartbeats do not come in time (none within the test): its lease lapses while it fetches.
      const A = instance(cat, 'host-a:1:aaaaaa', staging, { lease_ms: 30_000, heartbeat_ms: 60_000 });
      const B = instance(cat, 'host-b:2:bbbbbb', staging, { lease_ms: 30_000, heartbeat_ms: 100 });
      const { job } = await A.jobs.create(newJob(`stale-other-${stagingKind}`, A.instanceId, 30_000));
      const a = attempt(A, job);
      a.push(A_BYTES.subarray(0, 70_000));
      await sleep(100);
      await lapse(cat, job.id);
      const claimed = await B.jobs.claim(B.instanceId, 30_000);
      expect(claimed?.id).toBe(job.id);
      const b = attempt(B, claimed!);
      b.push(B_BYTES);
      b.end();
      await b.done;
      const ready = (await B.jobs.get('acme', job.id))!;
      expect(ready.status).toBe('ready');
      expect(await content(staging, ready)).toEqual(B_BYTES);

      // A's fetch ends now: its result does not count, and it must not touch B's.
      a.push(A_BYTES.subarray(70_000));
      a.end();
      await a.done;
      const row = (await B.jobs.get('acme', job.id))!;
      expect(row).toMatchObject({ status: 'ready', attempts: 2, stagingKey: ready.stagingKey, sha256: ready.sha256 });
      expect(await content(staging, row)).toEqual(B_BYTES);
      // A staged under a key of its own and removed it: only B's object is left.
      if (staging instanceof LocalStaging) expect(readdirSync(staging.dir)).toEqual([row.stagingKey]);
      else expect(await staging.size(job.id)).toBeNull();
    });

    it('a stale attempt of the same instance loses its lease when another loop of that instance re-claims the job, and stops', async () => {
      const staging = makeStaging();
      // Heartbeats wait at this gate while the test holds it: the attempt stalls.
      const repo = new JobRepository(cat.db, cat.dialect);
      const beat = repo.heartbeat.bind(repo);
      let gate: Promise<void> | undefined;
      repo.heartbeat = async (...args) => {
        await gate;
        return beat(...args);
      };
      const X = instance(cat, 'host-x:3:cccccc', staging, { lease_ms: 30_000, heartbeat_ms: 50 }, repo);
      // The 202 hand-off: the request's own fetch runs under the instance's lease.
      const { job } = await X.jobs.create(newJob(`stale-same-${stagingKind}`, X.instanceId, 30_000));
      const a = attempt(X, job);
      a.push(A_BYTES.subarray(0, 70_000));
      await sleep(150);
      let open!: () => void;
      gate = new Promise((r) => (open = r));
      await sleep(150); // a heartbeat already sent has landed
      await lapse(cat, job.id);
      // Another claim loop of the same instance re-claims it.
      const claimed = await X.jobs.claim(X.instanceId, 30_000);
      expect(claimed).toMatchObject({ id: job.id, attempts: 2 });
      gate = undefined;
      open();
      // The first attempt's next heartbeat finds its lease gone: it stops.
      await until('the stale attempt to stop', a.settled, 5000);
      const b = attempt(X, claimed!);
      b.push(B_BYTES);
      b.end();
      await b.done;
      a.end();
      await a.done;
      const row = (await X.jobs.get('acme', job.id))!;
      expect(row).toMatchObject({ status: 'ready', attempts: 2 });
      expect(await content(staging, row)).toEqual(B_BYTES);
    });

    it('an attempt whose heartbeats fail stops before its lease lapses, stages nothing, and gives the job back', async () => {
      const staging = makeStaging();
      const repo = new JobRepository(cat.db, cat.dialect);
      repo.heartbeat = () => Promise.reject(new Error('connection terminated unexpectedly'));
      const X = instance(cat, 'host-y:4:dddddd', staging, { lease_ms: 2500, heartbeat_ms: 500 }, repo);
      await X.jobs.create(newJob(`hb-error-${stagingKind}`));
      const claimed = (await X.jobs.claim(X.instanceId, 2500))!;
      expect(claimed.status).toBe('running');
      const a = attempt(X, claimed);
      a.push(A_BYTES.subarray(0, 70_000));
      await until('the attempt to stop', a.settled, 5000);
      // It stopped while its lease still held: nobody could have taken the job over yet.
      expect(a.settledAt()!).toBeLessThan(Date.parse(claimed.leaseUntil!));
      const row = (await X.jobs.get('acme', claimed.id))!;
      expect(row).toMatchObject({ status: 'queued', leaseOwner: null, stagingKey: null });
      if (staging instanceof LocalStaging) expect(readdirSync(staging.dir).filter((f) => f.startsWith(claimed.id))).toEqual([]);
    });
  });

  it('the lease belongs to one attempt: a stale attempt of the same instance can neither renew, finish nor requeue the job', async () => {
    const repo = new JobRepository(cat.db, cat.dialect);
    const me = 'host-z:5:eeeeee';
    const { job } = await repo.create(newJob('owner-1'));
    const first = (await repo.claim(me, 30_000))!;
    expect(first.id).toBe(job.id);
    await lapse(cat, job.id);
    const second = (await repo.claim(me, 30_000))!;
    expect(second).toMatchObject({ id: job.id, attempts: 2 });
    expect(second.leaseOwner).not.toBe(first.leaseOwner);
    expect(second.leaseOwner?.startsWith(`${me}:`)).toBe(true);

    expect(await repo.heartbeat(job.id, first.leaseOwner!, 30_000)).toBe(false);
    expect(await repo.heartbeat(job.id, me, 30_000)).toBe(false);
    expect(await repo.retryOrFail(job.id, first.leaseOwner!, { code: 'source.unavailable', detail: 'stale' }, 0, true)).toBe(false);
    const staged = { stagingKey: `${job.id}_stale`, dekKeyId: 'k', dekWrapped: 'w', size: 1, sha256: 'ab'.repeat(32), contentType: 'audio/wav', codec: 'pcm', transcoded: false, origin: 'LEGACY_ARCHIVE', copyId: 'c', expiresAt: new Date(Date.now() + 60_000).toISOString() };
    expect(await repo.markReady(job.id, first.leaseOwner!, staged)).toBe(false);
    expect(await repo.get('acme', job.id)).toMatchObject({ status: 'running', leaseOwner: second.leaseOwner, attempts: 2, errorCode: null });

    expect(await repo.heartbeat(job.id, second.leaseOwner!, 30_000)).toBe(true);
    expect(await repo.markReady(job.id, second.leaseOwner!, { ...staged, stagingKey: `${job.id}_live` })).toBe(true);
    // A job no longer running is not put back in the queue by anyone.
    expect(await repo.retryOrFail(job.id, second.leaseOwner!, { code: 'source.unavailable', detail: 'late' }, 0, false)).toBe(false);
    expect(await repo.get('acme', job.id)).toMatchObject({ status: 'ready', stagingKey: `${job.id}_live` });
  });
});
