import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openTestCatalog, type TestCatalog, usableCatalogs } from '../../test/support/catalogs.js';
import { AppError } from '../errors.js';
import { type Job, JobRepository } from './job-repository.js';
import { abortForShutdown, stageOpened } from './run-job.js';
import { LocalStaging, type Staging } from './staging.js';

/**
 * Where an attempt's failure is put, and what is left of it:
 * - a source that fails mid-body (an AppError, a read errno, a body cut short) is the source's
 *   failure, never `staging.write_failed` — the pipeline destroys the write stream with the
 *   source's error, which once made every source failure read "disk full or unavailable";
 * - a write stream that fails by itself (ENOSPC) is `staging.write_failed`;
 * - an attempt aborted for shutdown hands its job back: queued, due now, the attempt refunded,
 *   no progress shown, its partial staging removed;
 * - bytes_done is the current attempt's progress: back to 0 whenever the job is queued again or
 *   claimed, kept by a job that failed for good.
 */
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, cond: () => boolean | Promise<boolean>, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

/** Until the attempt's pipeline reads the body (a failure before that is no failure mid-stream) and has taken what was pushed. */
const piped = (body: Readable) => until('the pipeline to read the body', () => body.readableFlowing === true && body.readableLength === 0);

function instance(cat: TestCatalog, staging: Staging) {
  const errors: unknown[] = [];
  const outcomes: string[] = [];
  return {
    instanceId: 'i1',
    config: { jobs: { lease_ms: 30_000, heartbeat_ms: 50, staging_ttl_ms: 600_000, restore_poll_ms: 1000, retry_base_ms: 1000 } },
    jobs: new JobRepository(cat.db, cat.dialect),
    keys: {
      async generateDataKey() {
        const plaintext = randomBytes(32);
        return { keyId: 'k1', plaintext, wrapped: Buffer.from(plaintext).toString('hex') };
      },
    },
    staging,
    metrics: { jobs: { inc: (l: { outcome: string }) => outcomes.push(l.outcome) } },
    logger: { warn: () => {}, info: () => {}, error: (...a: unknown[]) => errors.push(a) },
    errors,
    outcomes,
  };
}
type Instance = ReturnType<typeof instance>;

function opened() {
  const body = new Readable({ read() {} });
  const copy = { copy: { id: 'copy-1', origin: 'LEGACY_ARCHIVE' }, prepared: { body, contentType: 'audio/wav', codec: 'pcm_s16le', transcoded: false, length: 200_000 } };
  return { body, opening: Promise.resolve(copy as never) };
}

/** A staging whose write stream fails by itself after `afterBytes` (a disk that fills up). */
function fullDisk(inner: Staging, afterBytes: number): Staging {
  return {
    dir: inner.dir,
    open: (k) => inner.open(k),
    size: (k) => inner.size(k),
    delete: (k) => inner.delete(k),
    async writer() {
      let n = 0;
      let aborted = false;
      const stream = new Writable({
        write(chunk: Buffer, _e, cb) {
          n += chunk.length;
          if (n > afterBytes) return cb(Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', errno: -28, syscall: 'write' }));
          cb();
        },
      });
      return {
        stream,
        commit: async () => {
          throw new Error('not reached');
        },
        abort: async () => {
          aborted = true;
          stream.destroy();
        },
        get aborted() {
          return aborted;
        },
      };
    },
  };
}

let seq = 0;
const newJob = (maxAttempts = 3) => ({
  tenantId: 'acme',
  principalId: 'alice',
  callerId: null,
  requestId: `faults-${++seq}`,
  auditLogId: null,
  ref: 'r',
  recordingPk: 'rec-1',
  format: 'original',
  maxAttempts,
});

describe.each(await usableCatalogs())('a job attempt that fails or is stopped, on %s', (kind) => {
  let cat: TestCatalog;
  let dir: string;
  let repo: JobRepository;
  beforeAll(async () => {
    cat = await openTestCatalog(kind);
    repo = new JobRepository(cat.db, cat.dialect);
    dir = mkdtempSync(join(tmpdir(), 'custodian-faults-'));
  });
  afterAll(async () => {
    await cat?.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  /** A claimed attempt of a fresh job (the only one due: each test claims its own). */
  async function claimed(maxAttempts = 3): Promise<Job> {
    // Earlier tests' jobs left queued are retired first.
    await cat.db.updateTable('jobs').set({ status: 'failed', lease_owner: null }).where('status', 'in', ['queued', 'running']).execute();
    const { job } = await repo.create(newJob(maxAttempts));
    const c = await repo.claim('i1', 30_000);
    expect(c?.id).toBe(job.id);
    return c!;
  }

  async function run(inst: Instance, job: Job, drive: (body: Readable, ac: AbortController) => Promise<void>): Promise<Job> {
    const o = opened();
    const ac = new AbortController();
    const done = stageOpened(inst as never, job, o.opening, ac);
    await drive(o.body, ac);
    await done;
    expect(inst.errors).toEqual([]);
    return (await repo.get('acme', job.id))!;
  }

  const partials = (d: string) => readdirSync(d).filter((f) => f.startsWith('job_'));

  it('a source whose body fails mid-way with its own error is the source failing, not the staging disk', async () => {
    const staging = new LocalStaging(join(dir, 'a'));
    const inst = instance(cat, staging);
    const row = await run(inst, await claimed(), async (body) => {
      body.push(Buffer.alloc(50_000, 1));
      await piped(body);
      body.destroy(new AppError('source.unavailable', 'the source reset the connection'));
    });
    expect(row).toMatchObject({ status: 'queued', errorCode: 'source.unavailable', errorDetail: 'the source reset the connection', attempts: 1 });
    expect(partials(staging.dir)).toEqual([]);
  });

  it('a source read failing with an errno error (a filesystem source: EIO) is not staging.write_failed either', async () => {
    const staging = new LocalStaging(join(dir, 'b'));
    const inst = instance(cat, staging);
    const row = await run(inst, await claimed(1), async (body) => {
      body.push(Buffer.alloc(50_000, 1));
      await piped(body);
      body.destroy(Object.assign(new Error('EIO: i/o error, read'), { code: 'EIO', errno: -5, syscall: 'read' }));
    });
    expect(row.status).toBe('failed');
    expect(row.errorCode).toBe('source.unavailable');
    expect(row.errorDetail).toMatch(/EIO/);
  });

  it('a source body cut short (closed without an error) is not staging.write_failed', async () => {
    const staging = new LocalStaging(join(dir, 'c'));
    const inst = instance(cat, staging);
    const row = await run(inst, await claimed(1), async (body) => {
      body.push(Buffer.alloc(50_000, 1));
      await piped(body);
      body.destroy();
    });
    expect(row.status).toBe('failed');
    expect(row.errorCode).not.toBe('staging.write_failed');
  });

  it('a write stream that fails by itself (ENOSPC) is staging.write_failed, naming the errno', async () => {
    const inst = instance(cat, fullDisk(new LocalStaging(join(dir, 'd')), 20_000));
    const job = await claimed(1);
    const row = await run(inst, job, async (body) => {
      body.push(Buffer.alloc(300_000, 1));
      await until('the staging write to fail', async () => (await repo.get('acme', job.id))?.status !== 'running');
    });
    expect(row).toMatchObject({ status: 'failed', errorCode: 'staging.write_failed', errorDetail: 'staging could not be written (ENOSPC)' });
  });

  it('an attempt aborted for shutdown hands its job back: queued, due now, attempt refunded, progress 0, no partial left', async () => {
    const staging = new LocalStaging(join(dir, 'e'));
    const inst = instance(cat, staging);
    const job = await claimed();
    expect(job.attempts).toBe(1);
    const before = Date.now();
    const row = await run(inst, job, async (body, ac) => {
      body.push(Buffer.alloc(60_000, 1));
      // Progress reaches the row (heartbeat), and a partial file exists.
      await until('progress', async () => (await repo.get('acme', job.id))!.bytesDone > 0);
      expect(partials(staging.dir).length).toBe(1);
      abortForShutdown(ac);
    });
    expect(row).toMatchObject({ status: 'queued', attempts: 0, bytesDone: 0, leaseOwner: null, leaseUntil: null, errorCode: null });
    expect(Date.parse(row.runAfter)).toBeLessThanOrEqual(Date.now());
    expect(Date.parse(row.runAfter)).toBeGreaterThanOrEqual(before - 1000);
    expect(partials(staging.dir)).toEqual([]);
    expect(inst.outcomes).toEqual(['shutdown']);
    // Due at once: the next claim takes it, as its first attempt again.
    const again = await repo.claim('i2', 30_000);
    expect(again).toMatchObject({ id: job.id, attempts: 1, bytesDone: 0 });
    await repo.retryOrFail(job.id, again!.leaseOwner!, { code: 'x', detail: 'done' }, 0, true);
  });

  it('an attempt aborted for shutdown before its source opened hands its job back too', async () => {
    const inst = instance(cat, new LocalStaging(join(dir, 'f')));
    const job = await claimed();
    const ac = new AbortController();
    let reject!: (e: unknown) => void;
    const opening = new Promise<never>((_r, j) => (reject = j));
    ac.signal.addEventListener('abort', () => reject(ac.signal.reason));
    const done = stageOpened(inst as never, job, opening, ac);
    abortForShutdown(ac);
    await done;
    expect(await repo.get('acme', job.id)).toMatchObject({ status: 'queued', attempts: 0, errorCode: null });
  });

  it('bytes_done is the current attempt’s: 0 once queued again (retry, lapsed lease) and at a claim; a job failed for good keeps its last', async () => {
    const job = await claimed(3);
    expect(await repo.heartbeat(job.id, job.leaseOwner!, 30_000, 88_000, 135_110)).toBe(true);
    expect(await repo.retryOrFail(job.id, job.leaseOwner!, { code: 'source.unavailable', detail: 'reset' }, 0, false)).toBe(true);
    expect(await repo.get('acme', job.id)).toMatchObject({ status: 'queued', bytesDone: 0, bytesTotal: 135_110 });

    const second = (await repo.claim('i1', 30_000))!;
    expect(second).toMatchObject({ id: job.id, attempts: 2, bytesDone: 0 });
    expect(await repo.heartbeat(job.id, second.leaseOwner!, 30_000, 40_000, 135_110)).toBe(true);
    // The attempt's process dies: its lease lapses, the next claim queues the job again.
    await cat.db.updateTable('jobs').set({ lease_until: new Date(Date.now() - 1000).toISOString() }).where('id', '=', job.id).execute();
    const third = (await repo.claim('i1', 30_000))!;
    expect(third).toMatchObject({ id: job.id, attempts: 3, bytesDone: 0 });

    expect(await repo.heartbeat(job.id, third.leaseOwner!, 30_000, 12_000, 135_110)).toBe(true);
    expect(await repo.retryOrFail(job.id, third.leaseOwner!, { code: 'source.unavailable', detail: 'reset' }, 0, true)).toBe(true);
    expect(await repo.get('acme', job.id)).toMatchObject({ status: 'failed', bytesDone: 12_000 });
  });
});
