import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { openTestCatalog, type TestCatalog, usableCatalogs } from '../../test/support/catalogs.js';
import { JobRepository } from './job-repository.js';

/**
 * An attempt that dies with its process (a crash, the OOM killer) never settles its job: only its
 * lease lapses. Such a lapse counts as a failed attempt — the job is taken up again only while
 * attempts remain, after the same backoff as a failed attempt, and fails for good after the last.
 */
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const newJob = (requestId: string, maxAttempts: number) => ({
  tenantId: 'acme',
  principalId: 'alice',
  callerId: null,
  requestId,
  auditLogId: null,
  ref: 'r',
  recordingPk: 'rec-1',
  format: 'original',
  maxAttempts,
});

describe.each(await usableCatalogs())('attempts that die on %s', (kind) => {
  let cat: TestCatalog;
  let repo: JobRepository;
  beforeAll(async () => {
    cat = await openTestCatalog(kind);
    repo = new JobRepository(cat.db, cat.dialect);
  });
  afterAll(async () => {
    await cat?.dispose();
  });
  beforeEach(async () => {
    await cat.db.deleteFrom('jobs').execute();
  });

  it('a job whose every attempt dies is claimed max_attempts times, then failed with a stable code', async () => {
    const { job } = await repo.create(newJob('dies-1', 3));
    const gaveUp: string[] = [];
    const seen: number[] = [];
    for (let i = 0; i < 8; i++) {
      // The attempt claims and dies: it never heartbeats, finishes or fails the job.
      const claimed = await repo.claim('inst', 20, { onGaveUp: (j) => void gaveUp.push(j.id) });
      if (claimed) seen.push(claimed.attempts);
      await sleep(40);
    }
    expect(seen).toEqual([1, 2, 3]);
    // The claim after the third lapse fails the job rather than taking it again.
    const row = (await repo.get('acme', job.id))!;
    expect(row).toMatchObject({ status: 'failed', attempts: 3, leaseOwner: null, leaseUntil: null, errorCode: 'job.failed' });
    expect(row.errorDetail).toMatch(/3 attempts/);
    expect(gaveUp).toEqual([job.id]);
    expect(await repo.claim('inst', 20)).toBeNull();
  });

  it('a lapsed lease is taken up again only after the backoff of a failed attempt', async () => {
    const { job } = await repo.create(newJob('dies-2', 5));
    const first = (await repo.claim('inst', 20, { retryBaseMs: 400 }))!;
    expect(first).toMatchObject({ id: job.id, attempts: 1 });
    await sleep(60);
    // Lapsed 40 ms ago; the backoff after attempt 1 is 400 ms from the lapse.
    expect(await repo.claim('inst', 20, { retryBaseMs: 400 })).toBeNull();
    expect(await repo.get('acme', job.id)).toMatchObject({ status: 'queued', attempts: 1, leaseOwner: null });
    await sleep(450);
    expect(await repo.claim('inst', 20, { retryBaseMs: 400 })).toMatchObject({ id: job.id, attempts: 2 });
  });

  it('a lease renewed in time is not taken over, and a 202 hand-off whose instance died is taken up while attempts remain', async () => {
    const { job } = await repo.create({ ...newJob('handoff-1', 2), leaseOwner: 'dead-instance', leaseMs: 30 });
    expect(await repo.claim('inst', 1000)).toBeNull();
    await sleep(50);
    const second = (await repo.claim('inst', 1000))!;
    expect(second).toMatchObject({ id: job.id, attempts: 2, status: 'running' });
    // Live: its lease holds, nobody takes it.
    expect(await repo.claim('other', 1000)).toBeNull();
    expect(await repo.heartbeat(job.id, second.leaseOwner!, 1000)).toBe(true);
  });

  it('a failed attempt that was settled is not affected: attempts left, it is queued as before', async () => {
    const { job } = await repo.create(newJob('settled-1', 1));
    const a = (await repo.claim('inst', 30_000))!;
    expect(await repo.retryOrFail(job.id, a.leaseOwner!, { code: 'source.unavailable', detail: 'down' }, 0, true)).toBe(true);
    expect(await repo.get('acme', job.id)).toMatchObject({ status: 'failed', errorCode: 'source.unavailable' });
  });
});
