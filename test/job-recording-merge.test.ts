import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { catalogRecord } from '../src/catalog/record.js';
import { JobRepository } from '../src/jobs/job-repository.js';
import { runSync } from '../src/sync/runner.js';
import { syncDepsFor } from '../src/sync/test-helpers.js';
import { type CatalogKind, openTestCatalog, type TestCatalog, usableCatalogs } from './support/catalogs.js';

/**
 * The crosswalk merges a cloud-only recording into the legacy one of the same call and deletes it:
 * the absorbed recording's retrieval jobs that can still run or be downloaded follow it to the
 * survivor in the merge's transaction (as its refs and holds do), or a queued job would fail for
 * good with recording.not_found. (An import's merge: test/job-content-moved.test.ts.)
 */
describe.each(await usableCatalogs())('jobs follow a recording the crosswalk merges away, on %s', (kind: CatalogKind) => {
  let cat: TestCatalog;
  beforeEach(async () => {
    cat = await openTestCatalog(kind);
  });
  afterEach(async () => cat.dispose());

  it('queued, running and ready jobs move to the survivor; failed and expired ones keep the id they were started on', async () => {
    const deps = syncDepsFor(cat, { sources: [] });
    await deps.recordings.upsertAll([
      catalogRecord.parse({ tenant_id: 'acme', source_system: 'avaya_aura', legacy_archive_id: 'L-0', locator: 'l/0.wav', call_id: 'CALL-0' }),
      catalogRecord.parse({ tenant_id: 'acme', source_system: 'genesys_cloud', recording_id: 'G-0', conversation_id: 'conv-0', external_tag: 'CALL-0' }),
    ]);
    const legacy = (await deps.recordings.findByRef('acme', 'L-0'))!;
    const cloud = (await deps.recordings.findByRef('acme', 'G-0'))!;
    expect(cloud.id).not.toBe(legacy.id);

    const jobs = new JobRepository(cat.db, cat.dialect);
    const make = async (status: string, tenantId = 'acme') => {
      const { job } = await jobs.create({ tenantId, principalId: 'alice', callerId: null, requestId: null, auditLogId: null, ref: 'G-0', recordingPk: cloud.id, format: 'original', maxAttempts: 3 });
      if (status !== 'queued') await cat.db.updateTable('jobs').set({ status }).where('id', '=', job.id).execute();
      return job.id;
    };
    const ids = { queued: await make('queued'), running: await make('running'), ready: await make('ready'), failed: await make('failed'), expired: await make('expired'), otherTenant: await make('queued', 'globex') };

    const out = await runSync(deps, { tenantId: 'acme' });
    expect(out.crosswalk).toMatchObject([{ status: 'succeeded', stats: { linked: 1 } }]);
    expect(await deps.recordings.get('acme', cloud.id)).toBeNull();

    const pkOf = async (id: string) => (await cat.db.selectFrom('jobs').select('recording_pk').where('id', '=', id).executeTakeFirstOrThrow()).recording_pk;
    expect({
      queued: await pkOf(ids.queued),
      running: await pkOf(ids.running),
      ready: await pkOf(ids.ready),
      failed: await pkOf(ids.failed),
      expired: await pkOf(ids.expired),
      otherTenant: await pkOf(ids.otherTenant),
    }).toEqual({ queued: legacy.id, running: legacy.id, ready: legacy.id, failed: cloud.id, expired: cloud.id, otherTenant: cloud.id });
    await deps.close();
  });
});
