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
