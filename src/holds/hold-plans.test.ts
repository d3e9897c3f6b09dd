import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openTestCatalog, type TestCatalog } from '../../test/support/catalogs.js';
import { plannedStatements, statementsLike } from '../../test/support/query-plans.js';
import { catalogRecord } from '../catalog/record.js';
import { RecordingRepository } from '../catalog/recording-repository.js';
import { HoldRepository } from './hold-repository.js';

/**
 * Plans of the legal-hold reads on a catalog nobody has analyzed (every catalog custodian
 * creates). The holds of one recording (GET /api/v1/holds?recording=) were read by
 * holds_tenant_created (tenant_id=?): every hold of the tenant, for one recording's few.
 */
describe('legal hold plans (SQLite, no statistics)', () => {
  let cat: TestCatalog;
  let path: string;
  let pks: string[];
  beforeAll(async () => {
    cat = await openTestCatalog('sqlite');
    path = cat.catalogConfig.path as string;
    const rows = [];
    for (let i = 0; i < 300; i++) rows.push(catalogRecord.parse({ tenant_id: 'acme', source_system: 'avaya_aura', legacy_archive_id: `a-${i}`, call_id: `call-${i}` }));
    await new RecordingRepository(cat.db).upsertAll(rows);
    pks = (await cat.db.selectFrom('recordings').select('id').orderBy('id').execute()).map((r) => r.id);
    const holds = new HoldRepository(cat.db);
    for (const pk of pks) await holds.create({ tenantId: 'acme', recordingPk: pk, matter: 'm', reason: 'r', createdBy: 'u' });
    await holds.create({ tenantId: 'acme', recordingPk: pks[7]!, matter: 'm2', reason: 'r', createdBy: 'u' });
  });
  afterAll(async () => cat?.dispose());

  it.each([['any status', {}], ['active', { status: 'active' as const }], ['released', { status: 'released' as const }]])(
    "one recording's holds (%s) are searched by holds_recording, not the tenant's",
    async (_name, extra) => {
      const steps = await plannedStatements(path, (db) => new HoldRepository(db).list({ tenantId: 'acme', recordingPk: pks[7]!, limit: 20, ...extra }));
      const [s] = statementsLike(steps, /from "legal_holds"/);
      expect(s!.plan.join('\n')).toMatch(/SEARCH legal_holds USING INDEX holds_recording \(recording_pk=\?/);
      expect(s!.plan.filter((p) => /holds_tenant_created|SCAN legal_holds/.test(p))).toEqual([]);
    },
  );

  it("a tenant's holds still page in (created_at, id) order by holds_tenant_created", async () => {
    const [s] = statementsLike(await plannedStatements(path, (db) => new HoldRepository(db).list({ tenantId: 'acme', limit: 20 })), /from "legal_holds"/);
    expect(s!.plan).toEqual(['SEARCH legal_holds USING INDEX holds_tenant_created (tenant_id=?)']);
  });

  it("a recording's holds are the same, and none for another tenant", async () => {
    const holds = new HoldRepository(cat.db);
    const page = await holds.list({ tenantId: 'acme', recordingPk: pks[7]!, limit: 20 });
    expect(page.items.map((h) => h.matter)).toEqual(['m', 'm2']);
    expect((await holds.list({ tenantId: 'other', recordingPk: pks[7]!, limit: 20 })).items).toEqual([]);
  });
  it("a moved copy's holds (followCopy) are read by holds_recording, not the tenant's", async () => {
    const steps = await plannedStatements(path, (db) => HoldRepository.followCopy(db, 'acme', 'copy-x', pks[7]!, pks[8]!, new Date().toISOString()));
    const reads = statementsLike(steps, /^select .* from "legal_holds"/);
    expect(reads).toHaveLength(2);
    for (const s of reads) {
      expect(s.plan.join('\n')).toMatch(/SEARCH legal_holds USING INDEX holds_recording \(recording_pk=\? AND released_at=\?\)/);
      expect(s.plan.filter((p) => /holds_tenant_created|SCAN legal_holds/.test(p))).toEqual([]);
    }
  });
});
