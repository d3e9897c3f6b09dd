import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CATALOGS, catalogForBlock, catalogsAvailable, openTestCatalog, type TestCatalog } from '../../test/support/catalogs.js';
import { plannedStatements, statementsLike } from '../../test/support/query-plans.js';
import { importFile } from './import.js';
import type { Copy } from './model.js';
import { type ExportedRecording, canonicalCodec, catalogRecord, toCatalogRecords } from './record.js';
import { RecordingRepository } from './recording-repository.js';

const AVAILABLE = await catalogsAvailable();

const dir = mkdtempSync(join(tmpdir(), 'custodian-export-refs-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let fileSeq = 0;
const jsonlFile = (rows: unknown[]): string => {
  const p = join(dir, `f${++fileSeq}.jsonl`);
  writeFileSync(p, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
  return p;
};
let tenantSeq = 0;
const newTenant = () => `x${++tenantSeq}-${Math.random().toString(36).slice(2, 8)}`;

const exportOf = async (repo: RecordingRepository, tenant: string, pageSize = 3): Promise<string[]> => {
  const out: string[] = [];
  for await (const rec of repo.iterate(tenant, pageSize)) for (const r of toCatalogRecords(rec)) out.push(JSON.stringify(r));
  return out;
};

describe.each(CATALOGS)('export of the cross-reference keys on %s', (kind) => {
  let repo: RecordingRepository;
  const { test } = catalogForBlock(kind, AVAILABLE, (c) => {
    repo = c.repo;
  });

  test('a recording linked from two systems (the sync, the crosswalk) re-imports with every tag and SIP Call-ID it had', async () => {
    const t = newTenant();
    // Written as the syncs write them: the cloud copy with Genesys' externalTag and SIP Call-ID, the
    // legacy one with the archive's own tag; then the same conversation again with a changed tag.
    const rows = [
      { tenant_id: t, call_id: 'CALL-1', source_system: 'genesys_cloud', recording_id: 'g-1', conversation_id: 'conv-1', external_tag: 'UCID-1', sip_call_id: 'sip-1@pbx' },
      { tenant_id: t, call_id: 'CALL-1', source_system: 'avaya_aura', legacy_archive_id: 'a-1', locator: 'a/1.wav', external_tag: 'stem-a-1' },
      { tenant_id: t, call_id: 'CALL-1', source_system: 'genesys_cloud', recording_id: 'g-1', conversation_id: 'conv-1', external_tag: 'UCID-1-retagged', sip_call_id: 'sip-1b@pbx' },
      ...Array.from({ length: 7 }, (_, i) => ({ tenant_id: t, source_system: 'nice', legacy_archive_id: `n-${i}`, ...(i % 2 ? { sip_call_id: `n-sip-${i}` } : {}) })),
    ];
    expect((await importFile(repo, jsonlFile(rows))).errors).toEqual([]);
    const exported = await exportOf(repo, t);
    // Three tags on a recording of two copies: one repeat line. Each key on exactly one line.
    expect(exported).toHaveLength(2 + 1 + 7);
    const lines = exported.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.map((l) => l.external_tag).filter(Boolean).sort()).toEqual(['UCID-1', 'UCID-1-retagged', 'stem-a-1']);
    expect(lines.map((l) => l.sip_call_id).filter(Boolean).sort()).toEqual(['n-sip-1', 'n-sip-3', 'n-sip-5', 'sip-1@pbx', 'sip-1b@pbx']);

    const fresh = await openTestCatalog(kind);
    try {
      const freshRepo = new RecordingRepository(fresh.db);
      // In reverse: the copies are created in another order than in the original catalog.
      expect((await importFile(freshRepo, jsonlFile([...lines].reverse()))).errors).toEqual([]);
      const call1 = (await freshRepo.findByRef(t, 'CALL-1'))!;
      expect(call1.copies).toHaveLength(2);
      for (const ref of ['UCID-1', 'UCID-1-retagged', 'stem-a-1', 'sip-1@pbx', 'sip-1b@pbx']) expect((await freshRepo.findByRef(t, ref))?.id, ref).toBe(call1.id);
      for (const i of [1, 3, 5]) expect((await freshRepo.findByRef(t, `n-sip-${i}`))?.id).toBe((await freshRepo.findByRef(t, `n-${i}`))!.id);
      expect(await freshRepo.count(t)).toBe(await repo.count(t));
      // The same lines again, whatever order the copies were created in; and idempotent both ways.
      expect((await exportOf(freshRepo, t)).sort()).toEqual([...exported].sort());
      expect((await importFile(freshRepo, jsonlFile(lines))).written).toMatchObject({ inserted: 0, updated: 0, unchanged: lines.length });
      expect((await importFile(repo, jsonlFile(lines))).written).toMatchObject({ inserted: 0, updated: 0, unchanged: lines.length });
    } finally {
      await fresh.dispose();
    }
  });

  test('an import files the codec under the media layer’s name; re-importing the other spelling changes nothing', async () => {
    const t = newTenant();
    const spellings: [string, string][] = [
      ['G729', 'g729'],
      ['G.729', 'g729'],
      ['g729a', 'g729'],
      ['G.711 u-law', 'mulaw'],
      ['PCMU', 'mulaw'],
      ['PCMA', 'alaw'],
      ['GSM 6.10', 'gsm_ms'],
      ['G.723.1', 'g723_1'],
      ['G.722', 'g722'],
      ['PCM_S16LE', 'pcm_s16le'],
      ['Opus', 'opus'],
      ['AMR-WB', 'amr-wb'],
    ];
    const rows = spellings.map(([codec], i) => ({ tenant_id: t, source_system: 'cisco_mediasense', legacy_archive_id: `ms-${i}`, codec }));
    expect((await importFile(repo, jsonlFile(rows))).errors).toEqual([]);
    for (const [i, [given, stored]] of spellings.entries()) expect((await repo.findByRef(t, `ms-${i}`))!.copies[0]!.codec, given).toBe(stored);
    const again = rows.map((r, i) => ({ ...r, codec: spellings[i]![1].toUpperCase() }));
    expect((await importFile(repo, jsonlFile(again))).written).toMatchObject({ inserted: 0, updated: 0, unchanged: rows.length });
  });
});

describe('the export read of the cross-reference keys (SQLite, no statistics)', () => {
  let cat: TestCatalog;
  beforeAll(async () => {
    cat = await openTestCatalog('sqlite');
    const rows = [];
    for (let i = 0; i < 300; i++) rows.push(catalogRecord.parse({ tenant_id: i % 3 ? 'acme' : 'other', source_system: 'genesys_cloud', recording_id: `g-${i}`, conversation_id: `c-${i}`, external_tag: `tag-${i}`, sip_call_id: `sip-${i}` }));
    await new RecordingRepository(cat.db).upsertAll(rows);
  });
  afterAll(async () => cat?.dispose());

  it('is one statement a page, searched by refs_recording for the page’s ids', async () => {
    let seen = 0;
    const planned = await plannedStatements(cat.catalogConfig.path as string, async (db) => {
      for await (const r of new RecordingRepository(db).iterate('acme', 50)) {
        seen++;
        expect(r.crossRefs.external_tag).toHaveLength(1);
      }
    });
    expect(seen).toBe(200);
    const reads = statementsLike(planned, /from "recording_refs"/);
    expect(reads).toHaveLength(4); // 200 recordings, pages of 50 (the last page knows it is the last)
    for (const s of reads) {
      expect(s.plan.join('\n')).toMatch(/SEARCH recording_refs USING (COVERING )?INDEX refs_recording \(recording_pk=\?\)/);
      expect(s.plan.filter((p) => /SCAN recording_refs/.test(p))).toEqual([]);
    }
  });
});

describe('toCatalogRecords', () => {
  const copy = (over: Partial<Copy>): Copy => ({
    id: 'x', recordingPk: 'r', tenantId: 't', sourceSystem: 'avaya_aura', origin: 'LEGACY_ARCHIVE', connector: null, storageLocation: null, locator: null,
    genesysRecordingId: null, legacyArchiveId: null, state: 'AVAILABLE', codec: null, sizeBytes: null, sha256: null, encryptionStatus: null, keyId: null, sourceRetentionExpiry: null,
    ...over,
  });
  const rec = (copies: Copy[], crossRefs?: ExportedRecording['crossRefs']): ExportedRecording => ({
    id: 'r', tenantId: 't', callId: 'CALL', customerRef: null, conversationId: 'conv', startedAt: null, retentionExpiry: null, legalHold: false,
    createdAt: '2024-01-01T00:00:00.000Z', updatedAt: '2024-01-01T00:00:00.000Z', copies, ...(crossRefs ? { crossRefs } : {}),
  });
  const cloud = copy({ id: 'c1', sourceSystem: 'genesys_cloud', origin: 'GENESYS_CLOUD', genesysRecordingId: 'g' });
  const legacy = copy({ id: 'c2', legacyArchiveId: 'a' });

  it('gives the keys to the copies in natural key order, whatever their creation order', () => {
    const refs = { external_tag: ['T1'], sip_call_id: ['S1', 'S2'] };
    const a = toCatalogRecords(rec([cloud, legacy], refs));
    const b = toCatalogRecords(rec([legacy, cloud], refs));
    expect(a.map((r) => [r.source_system, r.external_tag, r.sip_call_id])).toEqual([
      ['genesys_cloud', null, 'S2'],
      ['avaya_aura', 'T1', 'S1'],
    ]);
    expect(new Set(b.map((r) => JSON.stringify(r)))).toEqual(new Set(a.map((r) => JSON.stringify(r))));
  });

  it('writes keys beyond the copies on repeats of the first copy’s record, and nothing more without keys', () => {
    const out = toCatalogRecords(rec([cloud], { external_tag: ['T1', 'T2', 'T3'], sip_call_id: ['S1'] }));
    expect(out.map((r) => [r.recording_id, r.external_tag, r.sip_call_id])).toEqual([
      ['g', 'T1', 'S1'],
      ['g', 'T2', null],
      ['g', 'T3', null],
    ]);
    expect(toCatalogRecords(rec([cloud, legacy]))).toHaveLength(2);
    // Every line is a valid import record.
    for (const r of out) expect(catalogRecord.safeParse(r).success).toBe(true);
  });

  it('canonicalCodec keeps a codec the media layer does not know, lower-cased', () => {
    expect(canonicalCodec('AMR')).toBe('amr');
    expect(canonicalCodec('g723')).toBe('g723_1');
  });
});
