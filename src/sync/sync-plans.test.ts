import type { Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openTestCatalog, type TestCatalog } from '../../test/support/catalogs.js';
import { plannedStatements, statementsLike } from '../../test/support/query-plans.js';
import { AuditRepository } from '../audit/audit-repository.js';
import { catalogRecord } from '../catalog/record.js';
import { RecordingRepository } from '../catalog/recording-repository.js';
import type { Database } from '../catalog/tables.js';
import { HoldRepository } from '../holds/hold-repository.js';
import { type ApplyItem, applyRecords, type SyncContext } from './apply.js';
import { DEFAULT_SYNC_CONFIG } from './config.js';
import { runCrosswalk } from './crosswalk.js';
import { liveCloudCopiesQuery } from './genesys-sync.js';
import { SyncStore } from './store.js';
import { afterPrefix, copiesInLocatorRange, copiesStartedIn } from './vanish.js';

const T0 = Date.UTC(2024, 0, 1);
const at = (i: number) => new Date(T0 + i * 60_000).toISOString();

function ctxOf(db: Kysely<Database>, source = 'archive'): SyncContext {
  return {
    db,
    recordings: new RecordingRepository(db),
    audit: new AuditRepository(db, 'sqlite'),
    store: new SyncStore(db),
    metrics: undefined,
    tenantId: 'acme',
    source,
    kind: 'filesystem',
    runId: 'run-1',
    principalId: 'test',
    signal: new AbortController().signal,
  };
}

const legacyItem = (i: number): ApplyItem => ({
  origin: `f-${i}`,
  record: { source_system: 'verint', connector: 'archive', legacy_archive_id: `L-${i}`, call_id: `call-${i}`, locator: `2024/01/01/L-${i}.wav`, started_at: at(i) },
  facts: { startedAt: at(i), durationMs: 60_000, ani: '1', dnis: '2', archiveDate: null },
});

/**
 * Plans of the sync's per-page statements on a catalog nobody has analyzed (every catalog
 * custodian creates). Each used to narrow by the tenant alone and read all of its rows for every
 * page: the copies of a page by source_key (twice a page), their recordings by id, the stored
 * facts by source_key, and the Genesys copies of a page's conversations.
 */
describe('sync plans (SQLite, no statistics)', () => {
  let cat: TestCatalog;
  let path: string;
  beforeAll(async () => {
    cat = await openTestCatalog('sqlite');
    path = cat.catalogConfig.path as string;
    const rows = [];
    for (let i = 0; i < 800; i++) {
      rows.push(catalogRecord.parse({ tenant_id: 'acme', source_system: 'verint', connector: 'archive', legacy_archive_id: `L-${i}`, call_id: `call-${i}`, locator: `2024/01/01/L-${i}.wav`, started_at: at(i) }));
      if (i % 2 === 0) {
        // A few cloud copies of another connector, or already DELETED: not what a page of source "gc" may mark.
        const connector = i % 10 === 4 ? 'gc2' : 'gc';
        rows.push(catalogRecord.parse({ tenant_id: 'acme', source_system: 'genesys_cloud', connector, recording_id: `R-${i}`, conversation_id: `conv-${i}`, call_id: `call-${i}`, ...(i % 10 === 6 ? { state: 'DELETED' } : {}) }));
        rows.push(catalogRecord.parse({ tenant_id: 'other', source_system: 'genesys_cloud', connector: 'gc', recording_id: `R-${i}`, conversation_id: `conv-${i}` }));
      }
    }
    // A recording whose conversation id changed keeps its old id as a ref: it is no longer that conversation's.
    rows.push(catalogRecord.parse({ tenant_id: 'acme', source_system: 'genesys_cloud', connector: 'gc', recording_id: 'R-2', conversation_id: 'conv-2b', call_id: 'call-2' }));
    await new RecordingRepository(cat.db).upsertAll(rows);
    await new SyncStore(cat.db).putFacts(
      'acme',
      Array.from({ length: 800 }, (_, i) => ({ sourceSystem: 'verint', sourceKey: `L-${i}`, startedAt: at(i), durationMs: 60_000, ani: '1', dnis: '2', archiveDate: null })),
    );
  });
  afterAll(async () => cat?.dispose());

  it("a page's copies are read by the whole natural key and its recordings by primary key", async () => {
    const items = Array.from({ length: 200 }, (_, k) => legacyItem(100 + k));
    const steps = await plannedStatements(path, (db) => applyRecords(ctxOf(db), items));
    const copies = statementsLike(steps, /from "recording_copies" where "tenant_id" = \? and "source_system" in/);
    expect(copies.length).toBe(2);
    for (const s of copies) expect(s.plan).toEqual(['SEARCH recording_copies USING INDEX copies_natural_key (tenant_id=? AND source_system=? AND source_key=?)']);
    const [recs] = statementsLike(steps, /from "recordings" where \+"tenant_id" = \? and "id" in/);
    expect(recs!.plan).toEqual(['SEARCH recordings USING INDEX sqlite_autoindex_recordings_1 (id=?)']);
    const [facts] = statementsLike(steps, /from "sync_facts"/);
    expect(facts!.plan).toEqual(['SEARCH sync_facts USING INDEX sqlite_autoindex_sync_facts_1 (tenant_id=? AND source_system=? AND source_key=?)']);
  });

  it('a page changes nothing that did not change, and still finds a copy whose record changed', async () => {
    const ctx = ctxOf(cat.db);
    const items = Array.from({ length: 200 }, (_, k) => legacyItem(300 + k));
    const same = await applyRecords(ctx, items);
    expect([same.inserted, same.updated, same.changed, same.added, same.factsChanged]).toEqual([0, 0, 0, 0, 0]);
    (items[5]!.record as Record<string, unknown>).locator = '2024/01/02/moved.wav';
    items[6]!.facts = { ...items[6]!.facts!, durationMs: 61_000 };
    const moved = await applyRecords(ctx, items);
    expect([moved.changed, moved.added, moved.factsChanged]).toEqual([1, 0, 1]);
  });

  it("a page's conversations drive the search for their live Genesys copies (refs, then recordings and copies by key)", async () => {
    const ids = Array.from({ length: 100 }, (_, k) => `conv-${2 * k}`);
    const steps = await plannedStatements(path, (db) => liveCloudCopiesQuery({ db, tenantId: 'acme', source: 'gc' }, ids).execute());
    const [s] = statementsLike(steps, /from "recording_refs"/);
    expect(s!.plan).toEqual([
      'SEARCH f USING PRIMARY KEY (value=? AND tenant_id=? AND kind=?)',
      'SEARCH r USING INDEX sqlite_autoindex_recordings_1 (id=?)',
      'SEARCH c USING INDEX copies_recording (recording_pk=?)',
    ]);
  });

  it('finds the same copies the query by recordings.conversation_id found', async () => {
    const ids = [...Array.from({ length: 150 }, (_, k) => `conv-${2 * k}`), 'conv-2b', 'conv-none'];
    const before = await cat.db
      .selectFrom('recording_copies as c')
      .innerJoin('recordings as r', 'r.id', 'c.recording_pk')
      .select(['c.genesys_recording_id', 'r.conversation_id'])
      .where('c.tenant_id', '=', 'acme')
      .where('c.source_system', '=', 'genesys_cloud')
      .where('c.connector', '=', 'gc')
      .where('c.state', '!=', 'DELETED')
      .where('r.conversation_id', 'in', ids)
      .execute();
    const now = await liveCloudCopiesQuery({ db: cat.db, tenantId: 'acme', source: 'gc' }, ids).execute();
    const key = (r: { genesys_recording_id: string | null; conversation_id: string | null }) => `${r.conversation_id}/${r.genesys_recording_id}`;
    expect(before.length).toBe(90);
    expect(now.map(key).sort()).toEqual(before.map(key).sort());
    expect(now.map(key)).toContain('conv-2b/R-2');
    expect(now.map(key)).not.toContain('conv-2/R-2');
  });

  it("a legacy search window's copies are found by the facts' start times", async () => {
    const steps = await plannedStatements(path, (db) => copiesStartedIn(ctxOf(db), 'verint', at(100), at(160)));
    const [s] = statementsLike(steps, /from "recording_copies" as "c" inner join "sync_facts"/);
    expect(s!.plan).toEqual([
      'SEARCH f USING INDEX sync_facts_started (tenant_id=? AND source_system=? AND started_at>? AND started_at<?)',
      'SEARCH c USING INDEX copies_natural_key (tenant_id=? AND source_system=? AND source_key=?)',
    ]);
    expect((await copiesStartedIn(ctxOf(cat.db), 'verint', at(100), at(160))).length).toBe(60);
  });

  it("a legacy walk's batch reads the copies of its locator range by locator, not every copy of the source system", async () => {
    const L = (i: number) => `2024/01/01/L-${i}.wav`;
    // The walk's calls: the first batch (open below), a middle one, the last (open above), and a walk under a prefix.
    const ranges: [string, string | null, string | null][] = [
      ['', null, L(150)],
      ['', L(150), L(330)],
      ['', L(330), null],
      ['2024/01/01/L-2', null, L(250)],
      // The last call of a prefixed walk: bounded above by the prefix, not read to the end of the index.
      ['2024/01/01/L-2', L(250), null],
    ];
    const all = await cat.db.selectFrom('recording_copies').select(['source_key', 'locator']).where('tenant_id', '=', 'acme').where('source_system', '=', 'verint').where('locator', 'is not', null).execute();
    for (const [prefix, after, through] of ranges) {
      const steps = await plannedStatements(path, (db) => copiesInLocatorRange(ctxOf(db), 'verint', prefix, after, through));
      const [s] = statementsLike(steps, /from "recording_copies" as "c" where/);
      // Open below, SQLite still bounds the search by `locator is not null` (locator>NULL).
      expect(s!.plan).toEqual([`SEARCH c USING INDEX copies_locator (tenant_id=? AND source_system=? AND ${through === null && !prefix ? 'locator>?' : 'locator>? AND locator<?'})`]);
      const want = all
        .filter((r) => r.locator!.startsWith(prefix) && (after === null || r.locator! > after) && (through === null || r.locator! <= through))
        .map((r) => r.source_key)
        .sort();
      expect(want.length).toBeGreaterThan(0);
      expect((await copiesInLocatorRange(ctxOf(cat.db), 'verint', prefix, after, through)).map((g) => g.source_key).sort()).toEqual(want);
    }
  });

  it('bounds a prefix above by the least string past it, in UTF-8 byte order', () => {
    expect(afterPrefix('2024/01/')).toBe('2024/010');
    expect(afterPrefix('a\u{D7FF}')).toBe('a\u{E000}');
    expect(afterPrefix('a\u{FFFF}')).toBe('a\u{10000}');
    expect(afterPrefix('a\u{10FFFF}')).toBe('b');
    expect(afterPrefix('\u{10FFFF}')).toBeNull();
    // every string with the prefix sorts below the bound, in byte order
    const end = Buffer.from(afterPrefix('x/é')!);
    for (const s of ['x/é', 'x/é\u{10FFFF}\u{10FFFF}', 'x/éz']) expect(Buffer.compare(Buffer.from(s), end)).toBe(-1);
    expect(Buffer.compare(Buffer.from('x/ê'), end)).toBe(0);
  });

  it("a crosswalk merge moves the merged recording's holds and copies by that recording, not by the tenant", async () => {
    const repo = new RecordingRepository(cat.db);
    await repo.upsertAll([
      catalogRecord.parse({ tenant_id: 'acme', source_system: 'verint', connector: 'archive', legacy_archive_id: 'XW-1' }),
      catalogRecord.parse({ tenant_id: 'acme', source_system: 'genesys_cloud', connector: 'gc', recording_id: 'XW-R', conversation_id: 'XW-conv', external_tag: 'XW-1' }),
    ]);
    const cloud = (await repo.findByRef('acme', 'XW-R'))!;
    await new HoldRepository(cat.db).create({ tenantId: 'acme', recordingPk: cloud.id, matter: 'xw', reason: 'r', createdBy: 'u' });
    const steps = await plannedStatements(path, (db) => runCrosswalk(ctxOf(db, 'crosswalk'), { ...DEFAULT_SYNC_CONFIG, crosswalk: { ...DEFAULT_SYNC_CONFIG.crosswalk, keys: ['external_tag'] } }));
    const [holds] = statementsLike(steps, /^update "legal_holds"/);
    expect(holds!.plan).toEqual(['SEARCH legal_holds USING INDEX holds_recording (recording_pk=?)']);
    for (const s of statementsLike(steps, /^(select .* from|update) "recording_copies" .*where "tenant_id" = \? and "recording_pk" = \?/)) {
      expect(s.plan).toEqual(['SEARCH recording_copies USING INDEX copies_recording (recording_pk=?)']);
    }
    // The merge's re-read of both sides' copies (still legacy-only / cloud-only?) goes by recording too.
    const [kinds] = statementsLike(steps, /^select "recording_pk", "origin" from "recording_copies" where \+"tenant_id" = \? and "recording_pk" in/);
    expect(kinds!.plan).toEqual(['SEARCH recording_copies USING INDEX copies_recording (recording_pk=?)']);
    const merged = (await repo.findByRef('acme', 'XW-1'))!;
    expect(merged.copies.map((c) => c.origin).sort()).toEqual(['GENESYS_CLOUD', 'LEGACY_ARCHIVE']);
    expect(merged.activeHolds).toBe(1);
  });
});
