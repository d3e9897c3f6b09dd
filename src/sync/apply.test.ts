import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuditRepository } from '../audit/audit-repository.js';
import { type CatalogDb, openPostgres, writeTransaction } from '../catalog/database.js';
import { catalogRecord } from '../catalog/record.js';
import { RecordingRepository } from '../catalog/recording-repository.js';
import { openTestCatalog, type TestCatalog, usableCatalogs } from '../../test/support/catalogs.js';
import { type ApplyItem, applyRecords, type SyncContext } from './apply.js';
import { SyncStore } from './store.js';

const page = (ids: string[]): ApplyItem[] =>
  ids.map((id) => ({ origin: id, record: { source_system: 'verint', legacy_archive_id: id, call_id: `CALL-${id}`, connector: 'share', locator: `2026/01/01/00/${id}.wav` } }));

/**
 * A page and the audit events of its mapping changes commit together. Bug (docs/SYNC.md, "Not
 * done"): the events were appended after the page's transaction, so a failure between the two
 * left catalog changes no audit event describes.
 */
describe.each(await usableCatalogs())('applyRecords on %s', (kind) => {
  let cat: TestCatalog;
  let ctx: SyncContext;
  const copies = async () => (await cat.db.selectFrom('recording_copies').select('source_key').where('tenant_id', '=', 'acme').execute()).map((r) => r.source_key).sort();
  const events = async (action: string) => (await new AuditRepository(cat.db, cat.dialect).query({ tenantId: 'acme', action, limit: 100 })).items;

  beforeAll(async () => {
    cat = await openTestCatalog(kind);
    ctx = {
      db: cat.db,
      recordings: new RecordingRepository(cat.db),
      audit: new AuditRepository(cat.db, cat.dialect),
      store: new SyncStore(cat.db),
      metrics: undefined,
      tenantId: 'acme',
      source: 'share',
      kind: 'filesystem',
      runId: 'run-1',
      principalId: 'test',
      signal: new AbortController().signal,
    };
  });
  afterAll(() => cat.dispose());

  it('an audit failure rolls the page back: no mapping change without its event', async () => {
    const failing = Object.create(ctx.audit) as AuditRepository;
    failing.append = failing.appendIn = () => Promise.reject(new Error('audit store unavailable'));
    await expect(applyRecords({ ...ctx, audit: failing }, page(['a1', 'a2', 'a3']))).rejects.toThrow('audit store unavailable');
    expect(await copies()).toEqual([]);
    expect(await events('sync.mapping.added')).toEqual([]);
  });

  it('a page that commits has its events, and the chain listeners hear of them after the commit', async () => {
    const heard: string[] = [];
    const off = ctx.audit.onAppend((e) => heard.push(e.action));
    try {
      const r = await applyRecords(ctx, page(['a1', 'a2', 'a3']));
      expect(r.added).toBe(3);
    } finally {
      off();
    }
    expect(await copies()).toEqual(['a1', 'a2', 'a3']);
    const [added] = await events('sync.mapping.added');
    expect(added?.detail).toMatchObject({ count: 3 });
    expect(heard).toEqual(['sync.mapping.added']);
    expect((await ctx.audit.verify()).ok).toBe(true);
  });

  it('a legal hold a page places (a record saying legal_hold: true) is counted in an event of the page', async () => {
    // The hold records exist either way; without the event no trail entry said a sync placed them
    // (custodian import audits holds_placed; a sync page did not).
    const r = await applyRecords(ctx, [{ origin: 'h1', record: { source_system: 'verint', legacy_archive_id: 'h1', call_id: 'CALL-h1', connector: 'share', locator: '2026/01/01/00/h1.wav', legal_hold: true } }]);
    expect(r.added).toBe(1);
    const [placed] = await events('sync.holds.placed');
    expect(placed).toMatchObject({ outcome: 'completed', principalKind: 'system', detail: { run_id: 'run-1', source: 'share', count: 1 } });
    expect((await ctx.audit.verify()).ok).toBe(true);
  });

  it('diffs against the copy as it is when the page writes: a change committed meanwhile by another writer is the "old" value', async () => {
    const seedItem = (state?: string): ApplyItem => ({
      origin: 'race',
      record: { source_system: 'verint', legacy_archive_id: 'race-1', call_id: 'CALL-race-1', connector: 'share', locator: '2026/01/01/00/race-1.wav', ...(state ? { state } : {}) },
    });
    await applyRecords(ctx, [seedItem()]);
    // Another instance (a self-heal, an import) writes the same copy in a transaction of its own,
    // still open when the page starts: the page must see its commit, not the copy from before it.
    const other: CatalogDb = kind === 'postgres' ? openPostgres(String(cat.catalogConfig.url), 2) : cat;
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let written!: () => void;
    const wrote = new Promise<void>((r) => (written = r));
    const concurrent = writeTransaction(other.db, async (trx) => {
      await new RecordingRepository(other.db).upsertAllIn(trx, [catalogRecord.parse({ tenant_id: 'acme', ...seedItem('ARCHIVED').record })]);
      written();
      await gate;
    });
    try {
      await wrote;
      const page = applyRecords(ctx, [seedItem('DELETED')]);
      if (kind === 'postgres') {
        // The page is waiting on the other writer's locks (any statement of it: its read, or its write).
        for (let i = 0; i < 200; i++) {
          const { rows } = await sql<{ n: number }>`select count(*)::int as n from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'`.execute(cat.db);
          if (rows[0]!.n > 0) break;
          await new Promise((r) => setTimeout(r, 10));
        }
      } else await new Promise((r) => setTimeout(r, 50));
      release();
      await concurrent;
      expect(await page).toMatchObject({ changed: 1 });
    } finally {
      release();
      await concurrent.catch(() => {});
      if (other !== cat) await other.close();
    }
    const [changed] = (await events('sync.mapping.changed')).filter((e) => e.ref === 'race-1');
    expect(changed?.detail).toMatchObject({ old: { state: 'ARCHIVED' }, new: { state: 'DELETED' } });
  });
});
