import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { openTestCatalog, type TestCatalog } from '../../test/support/catalogs.js';
import { plannedStatements, statementsLike } from '../../test/support/query-plans.js';
import { writeTransaction } from '../catalog/database.js';
import { type AuditQuery, AuditRepository } from './audit-repository.js';
import type { AuditEvent } from './event.js';

/**
 * Plans of the audit trail's reads by tenant on a catalog nobody has analyzed (every catalog
 * custodian creates). Ordered by seq, a page used to be searched by audit_tenant_time (tenant_id=?)
 * and sorted: every page of the audit query read all of the tenant's events (11 ms the first 100
 * of 100 000), and a tenant's export, 250 events a page, was quadratic.
 */
describe('audit plans (SQLite, no statistics)', () => {
  let cat: TestCatalog;
  let path: string;
  let head: number;
  beforeAll(async () => {
    cat = await openTestCatalog('sqlite');
    path = cat.catalogConfig.path as string;
    const audit = new AuditRepository(cat.db, 'sqlite');
    await writeTransaction(cat.db, async (trx) => {
      for (let i = 0; i < 2000; i++) {
        await audit.appendIn(trx, { tenantId: i % 4 ? 'acme' : 'other', principalId: `p${i % 7}`, principalKind: 'api_key', action: 'recording.retrieve', outcome: i % 10 ? 'completed' : 'denied', recordingPk: `rec-${i % 50}` });
      }
    });
    head = (await audit.head())!.seq;
  });
  afterAll(async () => cat?.dispose());

  const plans = (fn: (audit: AuditRepository) => Promise<unknown>) => plannedStatements(path, (db) => fn(new AuditRepository(db, 'sqlite')));
  const drain = async (it: AsyncIterable<unknown>) => {
    for await (const _ of it);
  };

  it.each([
    ['first page', { tenantId: 'acme', limit: 50 }],
    ['a later page', { tenantId: 'acme', limit: 50, afterSeq: 700 }],
    ['by outcome', { tenantId: 'acme', limit: 50, outcome: 'denied' }],
    ['by action', { tenantId: 'acme', limit: 50, action: 'recording.retrieve' }],
  ])('the audit query (%s) reads the tenant in seq order by audit_tenant_seq, no sort', async (_name, q) => {
    const [s] = statementsLike(await plans((a) => a.query(q)), /from "audit_events"/);
    expect(s!.plan.join('\n')).toMatch(/SEARCH audit_events USING INDEX audit_tenant_seq \(tenant_id=\?/);
    expect(s!.plan.filter((p) => /TEMP B-TREE|SCAN audit_events/.test(p))).toEqual([]);
  });

  it.each([
    ['by recording', { recordingPk: 'rec-3' }, 'audit_recording \\(recording_pk=\\?'],
    ['by recording, in a time window', { recordingPk: 'rec-3', from: '2000-01-01T00:00:00.000Z', to: '2999-01-01T00:00:00.000Z' }, 'audit_recording \\(recording_pk=\\?'],
    ['by recording, a later page', { recordingPk: 'rec-3', afterSeq: 700 }, 'audit_recording \\(recording_pk=\\? AND rowid>\\?\\)'],
    ['by principal, a later page', { principalId: 'p3', afterSeq: 700 }, 'audit_principal \\(principal_id=\\? AND rowid>\\?\\)'],
    ['by principal', { principalId: 'p3' }, 'audit_principal \\(principal_id=\\?'],
    ['by principal, in a time window, a later page', { principalId: 'p3', from: '2000-01-01T00:00:00.000Z', to: '2999-01-01T00:00:00.000Z', afterSeq: 700 }, 'audit_principal \\(principal_id=\\? AND rowid>\\?\\)'],
  ])("the audit query (%s) reads the recording's or principal's own events", async (_name, extra, index) => {
    const [s] = statementsLike(await plans((a) => a.query({ tenantId: 'acme', limit: 50, ...extra })), /from "audit_events"/);
    expect(s!.plan.join('\n')).toMatch(new RegExp(`SEARCH audit_events USING INDEX ${index}`));
    expect(s!.plan.filter((p) => /audit_tenant_(time|seq)|SCAN audit_events/.test(p))).toEqual([]);
  });

  it('a tenant export pages through audit_tenant_seq by seq range, no sort', async () => {
    const steps = statementsLike(await plans((a) => drain(a.exportEvents({ tenantId: 'acme', throughSeq: head }, 100))), /from "audit_events"/);
    expect(steps.length).toBeGreaterThan(10);
    for (const s of steps) {
      expect(s.plan.join('\n')).toMatch(/SEARCH audit_events USING INDEX audit_tenant_seq \(tenant_id=\? AND seq>\? AND seq<\?\)/);
      expect(s.plan.filter((p) => /TEMP B-TREE/.test(p))).toEqual([]);
    }
  });

  it('the pages are the same events as before, in order', async () => {
    const audit = new AuditRepository(cat.db, 'sqlite');
    const all: number[] = [];
    for (let after: number | null | undefined; after !== null; ) {
      const page = await audit.query({ tenantId: 'acme', limit: 97, ...(after !== undefined ? { afterSeq: after } : {}) });
      all.push(...page.items.map((e) => e.seq));
      after = page.next;
    }
    expect(all.length).toBe(1500);
    expect(all).toEqual([...all].sort((a, b) => a - b));
    const exported: number[] = [];
    for await (const e of audit.exportEvents({ tenantId: 'acme', throughSeq: head }, 100)) exported.push(e.seq);
    expect(exported).toEqual(all);
    const ofRecording = await audit.query({ tenantId: 'acme', recordingPk: 'rec-3', limit: 1000, from: '2000-01-01T00:00:00.000Z' });
    expect(ofRecording.items.map((e) => e.recordingPk)).toEqual(Array(40).fill('rec-3'));
    expect((await audit.query({ tenantId: 'nobody', recordingPk: 'rec-3', limit: 10 })).items).toEqual([]);
  });
});

const MINUTE = 60_000;
const BASE = Date.UTC(2024, 0, 1);
const at = (minutes: number) => new Date(BASE + minutes * MINUTE).toISOString();

/**
 * Event i of a trail written by three instances whose clocks differ (-150 s, 0, +90 s), one
 * event a minute, and one event in 97 from a clock six hours off: occurred_at is each instance's
 * clock, seq the commit order, so a window's events are not one run of seqs.
 */
function skewedClock(i: number): number {
  const skew = [-150_000, 0, 90_000][i % 3]!;
  const far = i % 97 === 13 ? (i % 2 ? 6 : -6) * 3_600_000 : 0;
  return BASE + i * MINUTE + skew + far;
}

/** What a query must answer, from every event written: the filters, in seq order. */
function bruteForce(all: AuditEvent[], q: Omit<AuditQuery, 'limit' | 'afterSeq'>): number[] {
  return all
    .filter((e) => e.tenantId === q.tenantId && (!q.from || e.occurredAt >= q.from) && (!q.to || e.occurredAt < q.to) && (!q.outcome || e.outcome === q.outcome))
    .map((e) => e.seq)
    .sort((a, b) => a - b);
}

/** Every page of a walk with `limit`: each at most limit long, `next` its last seq, until null. */
async function walk(audit: AuditRepository, q: Omit<AuditQuery, 'limit' | 'afterSeq'>, limit: number): Promise<number[]> {
  const seen: number[] = [];
  for (let after: number | undefined, pages = 0; ; pages++) {
    if (pages > 10_000) throw new Error('the walk does not end');
    const page = await audit.query({ ...q, limit, ...(after !== undefined ? { afterSeq: after } : {}) });
    expect(page.items.length).toBeLessThanOrEqual(limit);
    seen.push(...page.items.map((e) => e.seq));
    if (page.next === null) return seen;
    expect(page.next).toBe(page.items[page.items.length - 1]!.seq);
    after = page.next;
  }
}

/**
 * A time window's pages: the first reads the window by audit_tenant_time and sorts it (once a
 * walk), each later one reads on from its cursor by audit_tenant_seq. Known cost, kept: the last
 * page of a window far back reads every later event of the tenant to learn there are no more (an
 * hour 25 days back in a 300 000-event tenant: ~80 ms, once a walk) — exactly bounding it needs the
 * window's greatest seq, which costs a read of the window's seqs on every page (docs/AUDIT.md).
 */
describe('windowed audit pages (SQLite, no statistics, skewed clocks)', () => {
  const N = 3000;
  let cat: TestCatalog;
  let path: string;
  let all: AuditEvent[];
  beforeAll(async () => {
    cat = await openTestCatalog('sqlite');
    path = cat.catalogConfig.path as string;
    const audit = new AuditRepository(cat.db, 'sqlite');
    all = [];
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      await writeTransaction(cat.db, async (trx) => {
        for (let i = 0; i < N; i++) {
          vi.setSystemTime(skewedClock(i));
          all.push(await audit.appendIn(trx, { tenantId: i % 4 === 3 ? 'other' : 'acme', principalId: `p${i % 7}`, principalKind: 'api_key', action: 'recording.retrieve', outcome: i % 10 ? 'completed' : 'denied' }));
        }
      });
    } finally {
      vi.useRealTimers();
    }
  });
  afterAll(async () => cat?.dispose());

  const plans = (q: AuditQuery) => plannedStatements(path, (db) => new AuditRepository(db, 'sqlite').query(q));

  it('a later page inside a window reads audit_tenant_seq on from the cursor, the window only filtering: no sort of the window', async () => {
    const w = { tenantId: 'acme', from: at(1000), to: at(1600) };
    const steps = await plans({ ...w, limit: 50, afterSeq: bruteForce(all, w)[100]! });
    expect(steps).toHaveLength(1);
    expect(steps[0]!.plan.join('\n')).toMatch(/SEARCH audit_events USING INDEX audit_tenant_seq \(tenant_id=\? AND seq>\?\)/);
    expect(steps[0]!.plan.filter((p) => /TEMP B-TREE|audit_tenant_time|SCAN audit_events/.test(p))).toEqual([]);
  });

  it('a later page of a window with no end is one statement reading audit_tenant_seq on from the cursor, no sort', async () => {
    const w = { tenantId: 'acme', from: at(1000) };
    const steps = await plans({ ...w, limit: 50, afterSeq: bruteForce(all, w)[100]! });
    expect(steps).toHaveLength(1);
    expect(steps[0]!.plan.join('\n')).toMatch(/SEARCH audit_events USING INDEX audit_tenant_seq \(tenant_id=\? AND seq>\?\)/);
    expect(steps[0]!.plan.filter((p) => /TEMP B-TREE|audit_tenant_time|SCAN audit_events/.test(p))).toEqual([]);
  });

  it('the first page of a window reads the window by audit_tenant_time and sorts it', async () => {
    // Found in seq order, its first event may lie after all the tenant's earlier events: the
    // first page of an hour near the end of 300 000 events: 89 ms that way, 0.7 ms this way.
    const [s] = statementsLike(await plans({ tenantId: 'acme', from: at(1000), to: at(1060), limit: 50 }), /from "audit_events"/);
    expect(s!.plan.join('\n')).toMatch(/SEARCH audit_events USING INDEX audit_tenant_time \(tenant_id=\? AND occurred_at>\? AND occurred_at<\?\)/);
  });

  it('walking a window with small pages gives exactly the events a filter of all events gives, in seq order', async () => {
    const audit = new AuditRepository(cat.db, 'sqlite');
    const windows: [string, Omit<AuditQuery, 'limit' | 'afterSeq'>, number[]][] = [
      ['an hour at the start', { tenantId: 'acme', from: at(100), to: at(160) }, [1, 3, 10, 50]],
      ['ten hours in the middle', { tenantId: 'acme', from: at(1000), to: at(1600) }, [3, 10, 50]],
      ['before the first event: only six-hours-slow clocks', { tenantId: 'acme', from: at(-400), to: at(-10) }, [1, 3]],
      ['after the last event: only six-hours-fast clocks', { tenantId: 'acme', from: at(N + 10), to: at(N + 400) }, [1, 3]],
      ['to the end of the chain', { tenantId: 'acme', from: at(2800) }, [1, 7, 50]],
      ['everything before a time', { tenantId: 'acme', to: at(300) }, [1, 7]],
      ['denied events of a day', { tenantId: 'acme', from: at(100), to: at(1540), outcome: 'denied' }, [1, 4, 50]],
      ['all of it', { tenantId: 'acme', from: at(-1000), to: at(N + 1000) }, [7, 50]],
      ['another tenant', { tenantId: 'other', from: at(500), to: at(900) }, [3]],
      ['an empty window', { tenantId: 'acme', from: at(10 * N), to: at(20 * N) }, [1]],
    ];
    for (const [name, w, limits] of windows) {
      const expected = bruteForce(all, w);
      for (const limit of limits) expect({ name, limit, seqs: await walk(audit, w, limit) }).toEqual({ name, limit, seqs: expected });
    }
    // The trail does what it is meant to: windows whose events are far apart in seq.
    const hour = bruteForce(all, windows[0]![1]);
    expect(hour[hour.length - 1]! - hour[0]!).toBeGreaterThan(300);
    expect(bruteForce(all, windows[2]![1]).length).toBeGreaterThanOrEqual(2);
  });
});
