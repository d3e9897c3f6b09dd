import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openTestCatalog, type TestCatalog, usableCatalogs } from '../../../test/support/catalogs.js';
import { FFMPEG } from '../../../test/support/audio.js';
import type { CatalogRecord } from '../../catalog/record.js';
import { Transcoder } from '../../media/transcoder.js';
import { migrationReport } from '../report.js';
import { syncDepsFor, tempDir } from '../test-helpers.js';
import type { IntegrityDeps } from './check.js';
import { IntegrityRepository } from './integrity-repository.js';
import { sampleIntegrity } from './sampler.js';

/**
 * A pair is a recording with a legacy copy and a cloud copy that both exist. Bug: the sampler's
 * pairs counted copies in any state, so a recording whose cloud (or legacy) copy the source had
 * deleted (kept as DELETED) was counted and sampled — a verdict `unreadable` on a copy that is
 * gone, and a pair count the migration report (existing copies only) disagreed with.
 */
describe.each(await usableCatalogs())('integrity sampler pairs on %s', (kind) => {
  let cat: TestCatalog;
  let archive: ReturnType<typeof tempDir>;
  let deps: ReturnType<typeof syncDepsFor> & IntegrityDeps;
  let transcoder: Transcoder;

  beforeAll(async () => {
    cat = await openTestCatalog(kind);
    archive = tempDir('custodian-sampler-');
    transcoder = new Transcoder({ ffmpegPath: FFMPEG, maxConcurrent: 4, maxQueued: 16, timeoutMs: 60_000 });
    deps = { ...syncDepsFor(cat, { sources: [{ name: 'archive', type: 'filesystem', root: archive.dir }] }), transcoder };
    const pair = (name: string, legacyState: string, cloudState: string): CatalogRecord[] => {
      const common = { tenant_id: 'acme', call_id: `CALL-${name}`, legal_hold: false };
      return [
        { ...common, source_system: 'avaya_aura', connector: 'archive', locator: `${name}.wav`, legacy_archive_id: `av-${name}`, state: legacyState },
        { ...common, source_system: 'genesys_cloud', connector: 'genesys', recording_id: `rec-${name}`, conversation_id: `conv-${name}`, state: cloudState },
      ] as CatalogRecord[];
    };
    await deps.recordings.upsertAll([
      ...pair('live', 'AVAILABLE', 'AVAILABLE'),
      ...pair('cloud-deleted', 'AVAILABLE', 'DELETED'),
      ...pair('legacy-deleted', 'DELETED', 'ARCHIVED'),
    ]);
  });
  afterAll(async () => {
    await deps?.close();
    await cat?.dispose();
    archive?.dispose();
  });

  it('neither counts nor samples a recording whose legacy or cloud copy is DELETED', async () => {
    const repo = new IntegrityRepository(cat.db);
    const live = (await deps.recordings.findByRef('acme', 'CALL-live'))!.id;
    expect(await repo.pairCounts('acme')).toEqual({ pairs: 1, neverChecked: 1 });
    expect(await repo.samplePairs('acme', 10)).toEqual([live]);
    // The report counts the same pairs.
    expect((await migrationReport(cat.db, 'acme')).integrity.pairs).toBe(1);
    // All of them: the one live pair, checked once (its legacy file is not there: unreadable, but a verdict on a pair that exists).
    const r = await sampleIntegrity(deps, { tenantId: 'acme', fraction: 1, principalId: 'sampler' });
    expect(r).toMatchObject({ pairs: 1, sampled: 1 });
    expect(r.checks.map((c) => c.recordingPk)).toEqual([live]);
    const rows = await cat.db.selectFrom('integrity_checks').select('recording_pk').where('tenant_id', '=', 'acme').execute();
    expect(rows.map((x) => x.recording_pk)).toEqual([live]);
  });
});
