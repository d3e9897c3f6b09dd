import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openTestCatalog, type TestCatalog } from '../../test/support/catalogs.js';
import { plannedStatements, statementsLike } from '../../test/support/query-plans.js';
import { catalogRecord } from './record.js';
import { RecordingRepository, type SearchQuery } from './recording-repository.js';

/**
 * Plans of the recording search (GET /api/v1/recordings, and `iterate`: export, migration report)
 * on a catalog nobody has analyzed (every catalog custodian creates). A page used to be read by
 * recordings_tenant_started (tenant_id=?) and sorted by id: every page read the whole tenant. Its
 * copies, `tenant_id = ? and recording_pk in (…)`, were searched by copies_natural_key
 * (tenant_id=?): every copy of the tenant, for each page. 130 ms a page at 100 000 recordings.
 */
const TIED = 400;

describe('recording search plans (SQLite, no statistics)', () => {
  let cat: TestCatalog;
  let path: string;
  beforeAll(async () => {
    cat = await openTestCatalog('sqlite');
    path = cat.catalogConfig.path as string;
    const rows = [];
    for (let i = 0; i < 1500; i++) {
      const started_at = new Date(Date.UTC(2024, 0, 1) + i * 60_000).toISOString();
      rows.push(catalogRecord.parse({ tenant_id: i % 5 ? 'acme' : 'other', source_system: 'avaya_aura', legacy_archive_id: `a-${i}`, call_id: `call-${i}`, started_at }));
      if (i % 2) rows.push(catalogRecord.parse({ tenant_id: i % 5 ? 'acme' : 'other', source_system: 'genesys_cloud', recording_id: `g-${i}`, conversation_id: `conv-${i}`, call_id: `call-${i}` }));
    }
    // Tenant 'tied': recordings sharing a start time, in groups of 1 to 12 (a group longer than a
    // page spans pages, so the id decides where a page ends), and some with no start time at all.
    for (let i = 0, group = 0; i < TIED; group++) {
      const started_at = new Date(Date.UTC(2024, 2, 1) + group * 60_000).toISOString();
      for (let k = 0; k <= group % 12 && i < TIED; k++, i++) rows.push(catalogRecord.parse({ tenant_id: 'tied', source_system: 'avaya_aura', legacy_archive_id: `t-${i}`, started_at }));
    }
    for (let i = 0; i < 5; i++) rows.push(catalogRecord.parse({ tenant_id: 'tied', source_system: 'avaya_aura', legacy_archive_id: `no-start-${i}` }));
    await new RecordingRepository(cat.db).upsertAll(rows);
  });
  afterAll(async () => cat?.dispose());

  const plans = (q: SearchQuery) => plannedStatements(path, (db) => new RecordingRepository(db).search(q));

  it.each([
    ['first page', { tenantId: 'acme', limit: 50 }],
    ['a later page', { tenantId: 'acme', limit: 50, after: '0' }],
    ['by origin', { tenantId: 'acme', limit: 50, origin: 'GENESYS_CLOUD' }],
    ['by source system and state', { tenantId: 'acme', limit: 50, sourceSystem: 'avaya_aura', state: 'AVAILABLE' }],
  ])('a page (%s) reads the tenant in id order by recordings_tenant_id, no sort', async (_name, q) => {
    const [s] = statementsLike(await plans(q as SearchQuery), /from "recordings"/);
    expect(s!.plan.join('\n')).toMatch(/SEARCH recordings USING INDEX recordings_tenant_id \(tenant_id=\?/);
    expect(s!.plan.filter((p) => /TEMP B-TREE|recordings_tenant_started|SCAN recordings/.test(p))).toEqual([]);
  });

  it.each([
    ['first page', { tenantId: 'acme', limit: 50, from: '2024-01-01T05:00:00.000Z', to: '2024-01-01T20:00:00.000Z' }],
    ['a later page', { tenantId: 'acme', limit: 50, from: '2024-01-01T05:00:00.000Z', to: '2024-01-01T20:00:00.000Z', after: { startedAt: '2024-01-01T06:00:00.000Z', id: '0' } }],
    ['from only, a later page', { tenantId: 'acme', limit: 50, from: '2024-01-01T05:00:00.000Z', after: { startedAt: '2024-01-01T06:00:00.000Z', id: '0' } }],
    ['to only, first page', { tenantId: 'acme', limit: 50, to: '2024-01-01T20:00:00.000Z' }],
    ['to only, a later page', { tenantId: 'acme', limit: 50, to: '2024-01-01T20:00:00.000Z', after: { startedAt: '2024-01-01T06:00:00.000Z', id: '0' } }],
    ['by origin, a later page', { tenantId: 'acme', limit: 50, from: '2024-01-01T05:00:00.000Z', origin: 'GENESYS_CLOUD', after: { startedAt: '2024-01-01T06:00:00.000Z', id: '0' } }],
  ])('a windowed page (%s) seeks recordings_tenant_started by start time, no sort of the window', async (_name, q) => {
    const [s] = statementsLike(await plans(q as SearchQuery), /from "recordings"/);
    const plan = s!.plan.join('\n');
    // A later page's keyset starts the range at its start time, so a page deep in the window
    // reads only its own rows; a first page starts at `from` (or at the tenant's first start time).
    expect(plan).toMatch(/SEARCH recordings USING INDEX recordings_tenant_started \(tenant_id=\? AND started_at[<>]\?/);
    if ('after' in q || 'from' in q) expect(plan).toMatch(/recordings_tenant_started \(tenant_id=\? AND started_at>\?/);
    // One lower bound (the later of `from` and the cursor's): of two, SQLite seeks by one and
    // only filters by the other, and the plan would read the same whichever it took.
    expect(s!.sql.match(/"started_at" >= /g)?.length ?? 0).toBeLessThanOrEqual(1);
    // Only runs of equal start times are sorted by id ("RIGHT PART" / "LAST TERM OF ORDER BY", as
    // SQLite versions word it), never the window.
    expect(s!.plan.filter((p) => /TEMP B-TREE/.test(p) && !/(RIGHT PART|LAST TERM) OF ORDER BY/.test(p))).toEqual([]);
    expect(s!.plan.filter((p) => /recordings_tenant_id|SCAN recordings/.test(p))).toEqual([]);
  });

  it('windowed pages hold every recording of the window once, in (started_at, id) order, ties included', async () => {
    const repo = new RecordingRepository(cat.db);
    const walk = async (q: Omit<SearchQuery, 'after' | 'limit'>) => {
      const seen: { startedAt: string; id: string }[] = [];
      let after: SearchQuery['after'];
      for (;;) {
        const page = await repo.search({ ...q, limit: 7, ...(after ? { after } : {}) });
        expect(page.items.length).toBeLessThanOrEqual(7);
        seen.push(...page.items.map((r) => ({ startedAt: r.startedAt!, id: r.id })));
        if (!page.next) break;
        const last = page.items[page.items.length - 1]!;
        expect(page.next).toEqual({ startedAt: last.startedAt, id: last.id });
        after = page.next;
      }
      return seen;
    };
    const byStartThenId = (a: { startedAt: string; id: string }, b: { startedAt: string; id: string }) => (a.startedAt < b.startedAt ? -1 : a.startedAt > b.startedAt ? 1 : a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
    const all = (await cat.db.selectFrom('recordings').select(['id', 'started_at']).where('tenant_id', '=', 'tied').execute())
      .filter((r) => r.started_at !== null)
      .map((r) => ({ startedAt: r.started_at!, id: r.id }))
      .sort(byStartThenId);
    expect(all).toHaveLength(TIED);
    for (const [from, to] of [
      ['2024-03-01T00:00:00.000Z', '2024-04-01T00:00:00.000Z'],
      ['2024-03-01T00:05:00.000Z', '2024-03-01T00:31:00.000Z'],
      [undefined, '2024-03-01T00:20:00.000Z'],
      ['2024-03-01T00:11:00.000Z', undefined],
    ] as const) {
      const want = all.filter((r) => (!from || r.startedAt >= from) && (!to || r.startedAt < to));
      expect(await walk({ tenantId: 'tied', ...(from ? { from } : {}), ...(to ? { to } : {}) })).toEqual(want);
    }
  });

  it("a page's copies are searched by its recording ids, not by the tenant", async () => {
    const [s] = statementsLike(await plans({ tenantId: 'acme', limit: 200 }), /from "recording_copies"/);
    expect(s!.plan.join('\n')).toMatch(/SEARCH recording_copies USING INDEX copies_recording \(recording_pk=\?\)/);
    expect(s!.plan.filter((p) => /copies_natural_key|SCAN recording_copies/.test(p))).toEqual([]);
  });

  it('pages still hold every recording of the tenant once, in id order, with its copies', async () => {
    const repo = new RecordingRepository(cat.db);
    const seen: string[] = [];
    let copies = 0;
    for await (const r of repo.iterate('acme', 97)) {
      seen.push(r.id);
      copies += r.copies.length;
      expect(r.tenantId).toBe('acme');
    }
    expect(seen.length).toBe(1200);
    expect(seen).toEqual([...seen].sort());
    expect(copies).toBe(1800);
  });
});
