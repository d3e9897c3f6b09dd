import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openTestCatalog, type TestCatalog } from '../../test/support/catalogs.js';
import { plannedStatements, statementsLike } from '../../test/support/query-plans.js';
import { writeTransaction } from '../catalog/database.js';
import { AuditRepository } from './audit-repository.js';

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
