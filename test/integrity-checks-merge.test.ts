import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Recording } from '../src/catalog/model.js';
import { catalogRecord } from '../src/catalog/record.js';
import { type IntegrityCheck, IntegrityRepository, type Verdict } from '../src/sync/integrity/integrity-repository.js';
import { migrationReport } from '../src/sync/report.js';
import { runSync } from '../src/sync/runner.js';
import { syncDepsFor } from '../src/sync/test-helpers.js';
import { type CatalogKind, openTestCatalog, type TestCatalog, usableCatalogs } from './support/catalogs.js';

/**
 * A recording merged away (by the crosswalk, or by an import that files its lone copy under the
 * recording of its call) takes its integrity checks to the survivor in the merge's transaction, as
 * its holds and jobs go: the report reads the latest check by the ids of recordings that exist, so
 * a check left on the deleted id would count a pair the merge brings back together as never
 * checked. A moved check of copies the survivor does not both hold still speaks for nothing.
 */
describe.each(await usableCatalogs())('integrity checks follow a merged recording, on %s', (kind: CatalogKind) => {
  let cat: TestCatalog;
  beforeEach(async () => {
    cat = await openTestCatalog(kind);
  });
  afterEach(async () => cat.dispose());

  let n = 0;
  const check = (tenantId: string, recordingPk: string, verdict: Verdict, legacyCopyId: string, cloudCopyId: string, checkedAt = '2024-03-01T10:00:00.000Z'): IntegrityCheck => ({
    id: `chk-${++n}`,
    tenantId,
    recordingPk,
    verdict,
    similarity: 0.99,
    offsetMs: 0,
    legacy: { copyId: legacyCopyId, durationMs: 60_000, pcmSha256: null },
    cloud: { copyId: cloudCopyId, durationMs: 60_000, pcmSha256: null },
    errorCode: null,
    detail: { reason: 'test' },
    trigger: 'on_demand',
    checkedBy: 'alice',
    checkedAt,
  });
  const copyOf = (rec: Recording, origin: string) => rec.copies.find((c) => c.origin === origin)!.id;
  const pkOf = async (id: string) => (await cat.db.selectFrom('integrity_checks').select('recording_pk').where('id', '=', id).executeTakeFirstOrThrow()).recording_pk;

  it('the crosswalk: a check of the reunited pair counts again; one of another pair stays ignored; another tenant untouched', async () => {
    const deps = syncDepsFor(cat, { sources: [] });
    await deps.recordings.upsertAll([
      catalogRecord.parse({ tenant_id: 'acme', source_system: 'avaya_aura', legacy_archive_id: 'L-0', locator: 'l/0.wav', call_id: 'CALL-0' }),
      catalogRecord.parse({ tenant_id: 'acme', source_system: 'genesys_cloud', recording_id: 'G-0', conversation_id: 'conv-0', external_tag: 'CALL-0' }),
      catalogRecord.parse({ tenant_id: 'acme', source_system: 'avaya_aura', legacy_archive_id: 'L-1', locator: 'l/1.wav', call_id: 'CALL-1' }),
      catalogRecord.parse({ tenant_id: 'acme', source_system: 'genesys_cloud', recording_id: 'G-1', conversation_id: 'conv-1', external_tag: 'CALL-1' }),
    ]);
    const [l0, g0, l1, g1] = await Promise.all(['L-0', 'G-0', 'L-1', 'G-1'].map(async (ref) => (await deps.recordings.findByRef('acme', ref))!));
    expect(g0!.id).not.toBe(l0!.id);
    expect(g1!.id).not.toBe(l1!.id);

    const integrity = new IntegrityRepository(cat.db);
    // Recorded while the cloud recording held both compared copies (the legacy one since moved away).
    const reunited = check('acme', g0!.id, 'mismatch', copyOf(l0!, 'LEGACY_ARCHIVE'), copyOf(g0!, 'GENESYS_CLOUD'));
    // A check on G-1's recording of a legacy copy that is not L-1's: no check of the pair L-1 / G-1.
    const stale = check('acme', g1!.id, 'identical', copyOf(l0!, 'LEGACY_ARCHIVE'), copyOf(g1!, 'GENESYS_CLOUD'));
    const foreign = check('globex', g0!.id, 'identical', copyOf(l0!, 'LEGACY_ARCHIVE'), copyOf(g0!, 'GENESYS_CLOUD'));
    for (const c of [reunited, stale, foreign]) await integrity.insert(c);

    const out = await runSync(deps, { tenantId: 'acme' });
    expect(out.crosswalk).toMatchObject([{ status: 'succeeded', stats: { linked: 2 } }]);
    expect(await deps.recordings.get('acme', g0!.id)).toBeNull();
    expect(await deps.recordings.get('acme', g1!.id)).toBeNull();

    expect({ reunited: await pkOf(reunited.id), stale: await pkOf(stale.id), foreign: await pkOf(foreign.id) }).toEqual({ reunited: l0!.id, stale: l1!.id, foreign: g0!.id });
    const latest = await integrity.latest('acme');
    expect([...latest.keys()].sort()).toEqual([l0!.id, l1!.id].sort());
    expect(latest.get(l0!.id)!.id).toBe(reunited.id);

    const report = await migrationReport(cat.db, 'acme');
    expect(report.integrity).toEqual({ pairs: 2, never_checked: 1, latest: { identical: 0, match: 0, mismatch: 1, unreadable: 0 } });
    await deps.close();
  });

  it('an import that absorbs a lone recording into the recording of its call', async () => {
    const deps = syncDepsFor(cat, { sources: [] });
    await deps.recordings.upsertAll([
      catalogRecord.parse({ tenant_id: 'acme', source_system: 'genesys_cloud', recording_id: 'G-9', conversation_id: 'conv-9', call_id: 'CALL-9' }),
      // Known by its archive id alone: filed on a recording of its own.
      catalogRecord.parse({ tenant_id: 'acme', source_system: 'verint', legacy_archive_id: 'V-9', locator: 'v/9.wav' }),
    ]);
    const survivor = (await deps.recordings.findByRef('acme', 'G-9'))!;
    const lone = (await deps.recordings.findByRef('acme', 'V-9'))!;
    expect(lone.id).not.toBe(survivor.id);
    const integrity = new IntegrityRepository(cat.db);
    const c = check('acme', lone.id, 'match', copyOf(lone, 'LEGACY_ARCHIVE'), copyOf(survivor, 'GENESYS_CLOUD'));
    await integrity.insert(c);

    // The import learns the copy's call id: it joins CALL-9, its lone recording is absorbed.
    await deps.recordings.upsertAll([catalogRecord.parse({ tenant_id: 'acme', source_system: 'verint', legacy_archive_id: 'V-9', locator: 'v/9.wav', call_id: 'CALL-9' })]);
    expect(await deps.recordings.get('acme', lone.id)).toBeNull();

    expect(await pkOf(c.id)).toBe(survivor.id);
    expect([...(await integrity.latest('acme')).keys()]).toEqual([survivor.id]);
    const report = await migrationReport(cat.db, 'acme');
    expect(report.integrity).toEqual({ pairs: 1, never_checked: 0, latest: { identical: 0, match: 1, mismatch: 0, unreadable: 0 } });
    await deps.close();
  });
});
