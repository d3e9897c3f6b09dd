import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { catalogAvailable, openTestCatalog, type TestCatalog } from '../../test/support/catalogs.js';
import { importFile } from './import.js';
import { RecordingRepository } from './recording-repository.js';

/**
 * An import leaves PostgreSQL with statistics of what it wrote: until autovacuum's next nap (and
 * only past its threshold) the planner estimated the tables as never analyzed.
 */
describe.runIf(await catalogAvailable('postgres'))('import refreshes PostgreSQL statistics', () => {
  let cat: TestCatalog;
  const dir = mkdtempSync(join(tmpdir(), 'custodian-import-stats-'));
  beforeAll(async () => {
    cat = await openTestCatalog('postgres');
  });
  afterAll(async () => {
    await cat?.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  const reltuples = async (table: string) => Number((await sql<{ n: number }>`select reltuples as n from pg_class where relname = ${table}`.execute(cat.db)).rows[0]!.n);

  it('after an import the catalog tables are analyzed (reltuples is the row count, not -1)', async () => {
    // Fewer rows than autovacuum's analyze threshold (50): it would never analyze these by itself.
    const lines = Array.from({ length: 20 }, (_, i) => JSON.stringify({ tenant_id: 'acme', source_system: 'avaya_aura', legacy_archive_id: `s-${i}`, call_id: `c-${i}` }));
    const path = join(dir, 'r.jsonl');
    writeFileSync(path, lines.join('\n'));
    expect(await reltuples('recordings')).toBe(-1);
    const report = await importFile(new RecordingRepository(cat.db), path);
    expect(report.errors).toEqual([]);
    expect(await reltuples('recordings')).toBe(20);
    expect(await reltuples('recording_copies')).toBe(20);
    expect(await reltuples('recording_refs')).toBeGreaterThanOrEqual(40);
  });
});
