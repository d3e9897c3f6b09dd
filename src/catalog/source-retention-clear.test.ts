import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect } from 'vitest';
import { CATALOGS, catalogForBlock, catalogsAvailable } from '../../test/support/catalogs.js';
import { importFile } from './import.js';
import { type CatalogRecord, catalogRecord } from './record.js';
import { RecordingRepository } from './recording-repository.js';

/**
 * A copy's source delete date (`source_retention_expiry`, Genesys deleteDate) is the one field an
 * explicit null clears: a source lifts its date (the Genesys recording PUT removes delete dates),
 * and the Genesys sync and finder say so with null. Absent keeps it, as for every field; an import
 * file's null keeps it too (docs/CONFIG.md, the catalog record).
 */
const AVAILABLE = await catalogsAvailable();

const dir = mkdtempSync(join(tmpdir(), 'custodian-srcret-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let seq = 0;
const newTenant = () => `s${++seq}-${Math.random().toString(36).slice(2, 8)}`;
const DATE = '2026-01-01T00:00:00.000Z';

describe.each(CATALOGS)('source_retention_expiry: null clears, absent keeps, on %s', (kind) => {
  let repo: RecordingRepository;
  const { test } = catalogForBlock(kind, AVAILABLE, (c) => {
    repo = c.repo;
  });
  const genesys = (t: string, extra: Record<string, unknown>): CatalogRecord =>
    catalogRecord.parse({ tenant_id: t, source_system: 'genesys_cloud', recording_id: 'rec-1', conversation_id: 'conv-1', ...extra });
  const date = async (t: string) => (await repo.findByRef(t, 'rec-1'))?.copies[0]?.sourceRetentionExpiry;

  test('an upsert without the field keeps the date; one with null clears it', async () => {
    const t = newTenant();
    await repo.upsertAll([genesys(t, { source_retention_expiry: DATE })]);
    expect(await date(t)).toBe(DATE);
    expect(await repo.upsertAll([genesys(t, { state: 'ARCHIVED' })])).toMatchObject({ updated: 1 });
    expect(await date(t)).toBe(DATE);
    expect(await repo.upsertAll([genesys(t, { source_retention_expiry: null })])).toMatchObject({ updated: 1 });
    expect(await date(t)).toBeNull();
    expect(await repo.upsertAll([genesys(t, { source_retention_expiry: null })])).toMatchObject({ unchanged: 1 });
  });

  test('an import file never clears it: neither a JSONL null (as an export writes) nor an empty CSV cell', async () => {
    const t = newTenant();
    await repo.upsertAll([genesys(t, { source_retention_expiry: DATE })]);
    const jsonl = join(dir, `${t}.jsonl`);
    writeFileSync(jsonl, JSON.stringify({ tenant_id: t, source_system: 'genesys_cloud', recording_id: 'rec-1', conversation_id: 'conv-1', source_retention_expiry: null, locator: null }) + '\n');
    expect((await importFile(repo, jsonl)).errors).toEqual([]);
    expect(await date(t)).toBe(DATE);
    const csv = join(dir, `${t}.csv`);
    writeFileSync(csv, `tenant_id,source_system,recording_id,conversation_id,source_retention_expiry\n${t},genesys_cloud,rec-1,conv-1,\n`);
    expect((await importFile(repo, csv)).errors).toEqual([]);
    expect(await date(t)).toBe(DATE);
    // A date in the file is written, as before.
    writeFileSync(jsonl, JSON.stringify({ tenant_id: t, source_system: 'genesys_cloud', recording_id: 'rec-1', conversation_id: 'conv-1', source_retention_expiry: '2027-01-01T00:00:00Z' }) + '\n');
    expect((await importFile(repo, jsonl)).errors).toEqual([]);
    expect(await date(t)).toBe('2027-01-01T00:00:00.000Z');
  });
});
