import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { CATALOGS, catalogForBlock, catalogsAvailable, type TestCatalog } from '../../test/support/catalogs.js';
import { loopTurnsDuring } from '../../test/support/loop-turns.js';
import { AppError } from '../errors.js';
import { REF_KINDS } from './model.js';
import { type CatalogRecord, catalogRecord } from './record.js';
import { RecordingRepository, type SearchQuery } from './recording-repository.js';

const AVAILABLE = await catalogsAvailable();

/** Records go through the import schema, as every real caller's records do (defaults, validation). */
const rec = (fields: Record<string, unknown>): CatalogRecord => catalogRecord.parse(fields);

/** The original brief's record, plus what a real migration adds. */
const BRIEF = {
  call_id: '2023-10-27T14:30:00Z-8923',
  source_system: 'genesys_cloud',
  recording_id: 'rec_5f3a2b1c9d8e7f6g5h4i3j2k1l',
  legacy_archive_id: null,
  storage_location: 'GENESYS_CLOUD_ARCHIVE',
  retention_expiry: '2025-10-27T14:30:00Z',
  encryption_status: 'AES_256',
};

let tenantSeq = 0;
/** Every test works in its own tenants, so one migrated catalog serves the whole file. */
const newTenant = () => `t${++tenantSeq}-${Math.random().toString(36).slice(2, 8)}`;

async function rejection(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => {
      throw new Error('expected a rejection');
    },
    (e: unknown) => e,
  );
}

/** Another process writing to the same catalog (audit events of a running server) for as long as it takes. */
function writerInAnotherProcess(catalog: Record<string, unknown>, n: number): { readonly done: boolean; result: Promise<{ ok: number; errors: string[] }> } {
  const database = fileURLToPath(new URL('./database.ts', import.meta.url));
  const audit = fileURLToPath(new URL('../audit/audit-repository.ts', import.meta.url));
  const code = `
    const { openSqlite, openPostgres } = await import(${JSON.stringify(database)});
    const { AuditRepository } = await import(${JSON.stringify(audit)});
    const cfg = ${JSON.stringify(catalog)};
    const cat = cfg.driver === 'postgres' ? openPostgres(cfg.url, 2) : openSqlite(cfg.path);
    const repo = new AuditRepository(cat.db, cat.dialect);
    const out = { ok: 0, errors: [] };
    for (let i = 0; i < ${n}; i++) {
      try { await repo.append({ tenantId: 'acme', principalId: 'server', principalKind: 'system', action: 'x', outcome: 'completed' }); out.ok++; }
      catch (e) { if (out.errors.length < 3) out.errors.push(String(e)); }
    }
    await cat.close();
    process.stdout.write(JSON.stringify(out));
  `;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { cwd: fileURLToPath(new URL('../..', import.meta.url)), stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d));
  child.stderr.on('data', (d: Buffer) => (stderr += d));
  const state = { done: false, result: undefined as unknown as Promise<{ ok: number; errors: string[] }> };
  state.result = new Promise((resolve, reject) =>
    child.on('close', (code) => {
      state.done = true;
      if (code !== 0) reject(new Error(`child exited ${code}: ${stderr}`));
      else resolve(JSON.parse(stdout));
    }),
  );
  return state;
}

describe.each(CATALOGS)('RecordingRepository on %s', (kind) => {
  let cat: TestCatalog;
  let repo: RecordingRepository;
  const { test } = catalogForBlock(kind, AVAILABLE, (c) => {
    ({ cat, repo } = c);
  });

  test("upserts the brief's example record and finds it by every identifier kind", async () => {
    const t = newTenant();
    const outcome = await repo.upsert(rec({ ...BRIEF, tenant_id: t, conversation_id: 'conv-8923', customer_ref: 'CUST-8923' }));
    expect(outcome).toBe('inserted');
    const byCall = await repo.findByRef(t, BRIEF.call_id);
    expect(byCall).not.toBeNull();
    const r = byCall!;
    expect(r).toMatchObject({
      tenantId: t,
      callId: BRIEF.call_id,
      customerRef: 'CUST-8923',
      conversationId: 'conv-8923',
      startedAt: '2023-10-27T14:30:00.000Z',
      retentionExpiry: '2025-10-27T14:30:00.000Z',
      legalHold: false,
    });
    expect(r.copies).toHaveLength(1);
    expect(r.copies[0]).toMatchObject({
      sourceSystem: 'genesys_cloud',
      origin: 'GENESYS_CLOUD',
      genesysRecordingId: BRIEF.recording_id,
      legacyArchiveId: null,
      storageLocation: 'GENESYS_CLOUD_ARCHIVE',
      encryptionStatus: 'AES_256',
      state: 'AVAILABLE',
      recordingPk: r.id,
      tenantId: t,
    });

    // A legacy copy of the same call adds the legacy id and the cross-reference keys.
    await repo.upsert(rec({ tenant_id: t, call_id: BRIEF.call_id, source_system: 'avaya_aura', legacy_archive_id: 'inum-778899', external_tag: 'tag-8923', sip_call_id: 'a84b4c76e66710@pbx.example' }));
    const refs: Record<(typeof REF_KINDS)[number], string> = {
      id: r.id,
      call_id: BRIEF.call_id,
      customer_ref: 'CUST-8923',
      conversation_id: 'conv-8923',
      recording_id: BRIEF.recording_id,
      legacy_archive_id: 'inum-778899',
      external_tag: 'tag-8923',
      sip_call_id: 'a84b4c76e66710@pbx.example',
    };
    expect(Object.keys(refs).sort()).toEqual([...REF_KINDS].sort());
    for (const [kindOfRef, value] of Object.entries(refs)) {
      const found = await repo.findByRef(t, value);
      expect(found?.id, `ref kind ${kindOfRef}`).toBe(r.id);
    }
    expect(await repo.findByRef(t, 'no-such-ref')).toBeNull();
  });

  it.skipIf(!AVAILABLE[kind])('scopes every lookup by tenant', async () => {
    const a = newTenant();
    const b = newTenant();
    await repo.upsert(rec({ tenant_id: a, call_id: 'shared-call', source_system: 'avaya_aura', legacy_archive_id: 'L-1', customer_ref: 'only-in-a' }));
    await repo.upsert(rec({ tenant_id: b, call_id: 'shared-call', source_system: 'avaya_aura', legacy_archive_id: 'L-1' }));
    const ra = await repo.findByRef(a, 'shared-call');
    const rb = await repo.findByRef(b, 'shared-call');
    expect(ra?.tenantId).toBe(a);
    expect(rb?.tenantId).toBe(b);
    expect(ra!.id).not.toBe(rb!.id);
    expect((await repo.findByRef(b, 'L-1'))!.id).toBe(rb!.id);
    // A ref only tenant A has is "does not exist" for B, including A's internal id.
    expect(await repo.findByRef(b, 'only-in-a')).toBeNull();
    expect(await repo.findByRef(b, ra!.id)).toBeNull();
    expect(await repo.get(b, ra!.id)).toBeNull();
    expect(await repo.count(a)).toBe(1);
    expect(await repo.count(b)).toBe(1);
    // The one cross-tenant read names the other tenant and never the caller's own.
    expect(await repo.otherTenantsHoldingRef('only-in-a', b)).toEqual([a]);
    expect(await repo.otherTenantsHoldingRef('only-in-a', a)).toEqual([]);
    expect((await repo.otherTenantsHoldingRef('shared-call', a)).includes(b)).toBe(true);
    expect(await repo.otherTenantsHoldingRef('nobody-has-this', a)).toEqual([]);
  });

  test('groups a cloud copy and a legacy copy of one call into one recording with two copies', async () => {
    const t = newTenant();
    const counts = await repo.upsertAll([
      rec({ ...BRIEF, tenant_id: t, conversation_id: 'conv-1' }),
      rec({ tenant_id: t, call_id: BRIEF.call_id, source_system: 'avaya_aura', legacy_archive_id: 'avaya_8923', storage_location: 'LEGACY_ARCHIVE', locator: 'avaya/8923.wav' }),
    ]);
    expect(counts).toEqual({ inserted: 1, updated: 1, unchanged: 0, holdsPlaced: 0 });
    expect(await repo.count(t)).toBe(1);
    const r = (await repo.findByRef(t, 'avaya_8923'))!;
    expect(r.copies.map((c) => c.sourceSystem).sort()).toEqual(['avaya_aura', 'genesys_cloud']);
    expect(r.copies.find((c) => c.sourceSystem === 'avaya_aura')).toMatchObject({ origin: 'LEGACY_ARCHIVE', locator: 'avaya/8923.wav', legacyArchiveId: 'avaya_8923' });
    expect((await repo.findByRef(t, BRIEF.recording_id))!.id).toBe(r.id);
    // The conversation id the cloud copy brought stays on the recording.
    expect(r.conversationId).toBe('conv-1');
  });

  test('is idempotent: the same records twice change nothing the second time', async () => {
    const t = newTenant();
    const records = [
      rec({ ...BRIEF, tenant_id: t, conversation_id: 'conv-1', customer_ref: 'C-1', size_bytes: 12345, sha256: 'a'.repeat(64), legal_hold: true }),
      rec({ tenant_id: t, call_id: BRIEF.call_id, source_system: 'avaya_aura', legacy_archive_id: 'L-9', codec: 'g729', source_retention_expiry: '2030-01-01' }),
      rec({ tenant_id: t, source_system: 'verint', locator: 'v/1.wav' }),
      rec({ tenant_id: t, call_id: '2024-01-01T00:00:00+02:00-1', source_system: 'nice', legacy_archive_id: 'n-1', started_at: '2024-01-01' }),
    ];
    const first = await repo.upsertAll(records);
    expect(first.inserted).toBe(3);
    const rows = async () => ({
      recordings: (await cat.db.selectFrom('recordings').selectAll().where('tenant_id', '=', t).orderBy('id').execute()).length,
      copies: (await cat.db.selectFrom('recording_copies').selectAll().where('tenant_id', '=', t).execute()).length,
      refs: (await cat.db.selectFrom('recording_refs').selectAll().where('tenant_id', '=', t).execute()).length,
    });
    const before = await rows();
    const snapshot = await cat.db.selectFrom('recording_copies').selectAll().where('tenant_id', '=', t).orderBy('id').execute();
    const second = await repo.upsertAll(records);
    expect(second).toEqual({ inserted: 0, updated: 0, unchanged: records.length, holdsPlaced: 0 });
    expect(await rows()).toEqual(before);
    // Not even updated_at moves.
    expect(await cat.db.selectFrom('recording_copies').selectAll().where('tenant_id', '=', t).orderBy('id').execute()).toEqual(snapshot);
    expect(before).toEqual({ recordings: 3, copies: 4, refs: expect.any(Number) });
  });

  test('a partial re-import never erases what is known', async () => {
    const t = newTenant();
    await repo.upsert(
      rec({
        tenant_id: t,
        call_id: 'call-p',
        source_system: 'avaya_aura',
        legacy_archive_id: 'L-p',
        customer_ref: 'CUST-p',
        storage_location: 'LEGACY_ARCHIVE',
        retention_expiry: '2031-01-01T00:00:00Z',
        encryption_status: 'AES_256',
        locator: 'a/p.wav',
        state: 'ARCHIVED',
        codec: 'g729',
        size_bytes: 999,
        sha256: 'b'.repeat(64),
        legal_hold: true,
        key_id: 'kms-1',
        source_retention_expiry: '2032-01-01T00:00:00Z',
      }),
    );
    const before = (await repo.findByRef(t, 'L-p'))!;
    // Only the ids: every other field absent (as an empty CSV cell is).
    const outcome = await repo.upsert(rec({ tenant_id: t, source_system: 'avaya_aura', legacy_archive_id: 'L-p' }));
    expect(outcome).toBe('unchanged');
    const after = (await repo.findByRef(t, 'L-p'))!;
    expect(after).toEqual(before);
    expect(after.copies[0]!.state).toBe('ARCHIVED');
    expect(after.legalHold).toBe(true);

    // A new value does replace the old one, and only that one.
    expect(await repo.upsert(rec({ tenant_id: t, source_system: 'avaya_aura', legacy_archive_id: 'L-p', codec: 'pcm_mulaw', state: 'AVAILABLE' }))).toBe('updated');
    const changed = (await repo.findByRef(t, 'L-p'))!;
    expect(changed.copies[0]).toEqual({ ...before.copies[0], codec: 'pcm_mulaw', state: 'AVAILABLE' });
    expect(changed.customerRef).toBe('CUST-p');
  });

  test('a ref shared by two recordings is ambiguous, never a guess', async () => {
    const t = newTenant();
    await repo.upsertAll([
      rec({ tenant_id: t, call_id: 'call-a', source_system: 'avaya_aura', legacy_archive_id: 'LA', customer_ref: 'SAME-CUSTOMER' }),
      rec({ tenant_id: t, call_id: 'call-b', source_system: 'avaya_aura', legacy_archive_id: 'LB', customer_ref: 'SAME-CUSTOMER' }),
    ]);
    const e = await rejection(repo.findByRef(t, 'SAME-CUSTOMER'));
    expect(e).toBeInstanceOf(AppError);
    expect((e as AppError).code).toBe('recording.ambiguous_ref');
    expect((e as AppError).status).toBe(409);
    // The specific ids still resolve.
    expect((await repo.findByRef(t, 'call-a'))!.callId).toBe('call-a');
  });

  test('linking a legacy copy to its call later moves it without leaving its ids ambiguous', async () => {
    const t = newTenant();
    // The legacy index arrives first, without call ids; the cloud export with call ids later.
    await repo.upsert(rec({ tenant_id: t, source_system: 'avaya_aura', legacy_archive_id: 'L-late', customer_ref: 'CUST-late', locator: 'a/late.wav' }));
    const orphanId = (await repo.findByRef(t, 'L-late'))!.id;
    await repo.upsert(rec({ tenant_id: t, call_id: 'call-late', source_system: 'genesys_cloud', recording_id: 'g-late', conversation_id: 'conv-late' }));
    await repo.upsert(rec({ tenant_id: t, call_id: 'call-late', source_system: 'avaya_aura', legacy_archive_id: 'L-late' }));
    const r = (await repo.findByRef(t, 'L-late'))!;
    expect(r.callId).toBe('call-late');
    expect(r.copies.map((c) => c.sourceSystem).sort()).toEqual(['avaya_aura', 'genesys_cloud']);
    expect(r.copies.find((c) => c.sourceSystem === 'avaya_aura')!.locator).toBe('a/late.wav');
    // Nothing the first import knew is lost, and the old id still leads to the recording.
    expect(r.customerRef).toBe('CUST-late');
    expect((await repo.findByRef(t, 'CUST-late'))!.id).toBe(r.id);
    expect((await repo.findByRef(t, orphanId))!.id).toBe(r.id);
    expect(await repo.count(t)).toBe(1);
    // And doing it again is a no-op.
    expect(await repo.upsert(rec({ tenant_id: t, call_id: 'call-late', source_system: 'avaya_aura', legacy_archive_id: 'L-late' }))).toBe('unchanged');
  });

  test('a copy re-imported under another call moves there; the old call keeps its other copies', async () => {
    const t = newTenant();
    await repo.upsertAll([
      rec({ tenant_id: t, call_id: 'call-1', source_system: 'avaya_aura', legacy_archive_id: 'L-A' }),
      rec({ tenant_id: t, call_id: 'call-1', source_system: 'verint', legacy_archive_id: 'L-B' }),
      rec({ tenant_id: t, call_id: 'call-2', source_system: 'genesys_cloud', recording_id: 'G-2', conversation_id: 'conv-2' }),
    ]);
    expect(await repo.upsert(rec({ tenant_id: t, call_id: 'call-2', source_system: 'avaya_aura', legacy_archive_id: 'L-A' }))).toBe('updated');
    const two = (await repo.findByRef(t, 'L-A'))!;
    expect(two.callId).toBe('call-2');
    expect(two.copies.map((c) => c.legacyArchiveId ?? c.genesysRecordingId).sort()).toEqual(['G-2', 'L-A']);
    const one = (await repo.findByRef(t, 'call-1'))!;
    expect(one.copies.map((c) => c.legacyArchiveId)).toEqual(['L-B']);
    expect((await repo.findByRef(t, 'L-B'))!.id).toBe(one.id);
    expect(await repo.count(t)).toBe(2);
  });

  test('a call id learnt later is set on the recording, and a new recording may take the old call id in the same batch', async () => {
    const t = newTenant();
    await repo.upsert(rec({ tenant_id: t, source_system: 'avaya_aura', legacy_archive_id: 'L-1' }));
    await repo.upsert(rec({ tenant_id: t, call_id: 'c-old', source_system: 'avaya_aura', legacy_archive_id: 'L-2' }));
    const first = (await repo.findByRef(t, 'L-1'))!;
    const counts = await repo.upsertAll([
      // L-1's recording learns its call id; a cloud copy of that call joins it.
      rec({ tenant_id: t, call_id: 'c-1', source_system: 'avaya_aura', legacy_archive_id: 'L-1' }),
      rec({ tenant_id: t, call_id: 'c-1', source_system: 'genesys_cloud', recording_id: 'G-1', conversation_id: 'conv-1' }),
      // L-2's call id is corrected, and a new recording takes the freed call id, in one transaction.
      rec({ tenant_id: t, call_id: 'c-new', source_system: 'avaya_aura', legacy_archive_id: 'L-2' }),
      rec({ tenant_id: t, call_id: 'c-old', source_system: 'avaya_aura', legacy_archive_id: 'L-3' }),
    ]);
    expect(counts).toEqual({ inserted: 1, updated: 3, unchanged: 0, holdsPlaced: 0 });
    const linked = (await repo.findByRef(t, 'G-1'))!;
    expect(linked.id).toBe(first.id);
    expect(linked.callId).toBe('c-1');
    expect(linked.copies).toHaveLength(2);
    expect((await repo.findByRef(t, 'c-new'))!.copies[0]!.legacyArchiveId).toBe('L-2');
    expect((await repo.search({ tenantId: t, callId: 'c-old', limit: 5 })).items[0]!.copies[0]!.legacyArchiveId).toBe('L-3');
  });

  test('copies of one call that fall into different chunks of a big batch still make one recording', async () => {
    const t = newTenant();
    const calls = 650;
    const records: CatalogRecord[] = [];
    for (let i = 0; i < calls; i++) records.push(rec({ tenant_id: t, call_id: `chunk-${i}`, source_system: 'avaya_aura', legacy_archive_id: `CL-${i}` }));
    for (let i = 0; i < calls; i++) records.push(rec({ tenant_id: t, call_id: `chunk-${i}`, source_system: 'genesys_cloud', recording_id: `CG-${i}`, conversation_id: `CC-${i}` }));
    // The same record twice in one batch is one write.
    records.push(records[3]!);
    expect(await repo.upsertAll(records)).toEqual({ inserted: calls, updated: calls, unchanged: 1, holdsPlaced: 0 });
    expect(await repo.count(t)).toBe(calls);
    const r = (await repo.findByRef(t, 'CG-600'))!;
    expect(r.callId).toBe('chunk-600');
    expect(r.copies).toHaveLength(2);
    expect(await repo.upsertAll(records)).toEqual({ inserted: 0, updated: 0, unchanged: records.length, holdsPlaced: 0 });
  });

  describe('search', () => {
    const t = newTenant();
    const other = newTenant();
    const N = 23;
    beforeAll(async () => {
      if (!AVAILABLE[kind]) return;
      const records: CatalogRecord[] = [];
      for (let i = 0; i < N; i++) {
        const day = String(1 + i).padStart(2, '0');
        const callId = `2023-10-${day}T14:30:00Z-${1000 + i}`;
        records.push(rec({ tenant_id: t, call_id: callId, source_system: i % 2 ? 'avaya_aura' : 'verint', legacy_archive_id: `L${i}`, state: i % 5 === 0 ? 'ARCHIVED' : 'AVAILABLE' }));
        if (i % 3 === 0) records.push(rec({ tenant_id: t, call_id: callId, source_system: 'genesys_cloud', recording_id: `G${i}`, conversation_id: `C${i}` }));
      }
      records.push(rec({ tenant_id: other, call_id: '2023-10-05T14:30:00Z-1004', source_system: 'verint', legacy_archive_id: 'L4' }));
      await repo.upsertAll(records);
    });

    test('derives started_at from call ids and filters on a half-open time range', async () => {
      const r = (await repo.findByRef(t, 'L0'))!;
      expect(r.startedAt).toBe('2023-10-01T14:30:00.000Z');
      const page = await repo.search({ tenantId: t, from: '2023-10-05T14:30:00.000Z', to: '2023-10-08T14:30:00.000Z', limit: 100 });
      expect(page.items.map((x) => x.callId).sort()).toEqual(['2023-10-05T14:30:00Z-1004', '2023-10-06T14:30:00Z-1005', '2023-10-07T14:30:00Z-1006']);
      expect(page.next).toBeNull();
      expect((await repo.search({ tenantId: t, from: '2023-10-20T00:00:00.000Z', limit: 100 })).items).toHaveLength(N - 19);
      expect((await repo.search({ tenantId: t, to: '2023-10-03T00:00:00.000Z', limit: 100 })).items).toHaveLength(2);
    });

    test('filters by call id, source system, origin and state', async () => {
      const byCall = await repo.search({ tenantId: t, callId: '2023-10-04T14:30:00Z-1003', limit: 10 });
      expect(byCall.items).toHaveLength(1);
      expect(byCall.items[0]!.copies).toHaveLength(2);
      // Another tenant's recording with the same call id is not there.
      expect(byCall.items[0]!.tenantId).toBe(t);

      const cloud = await repo.search({ tenantId: t, origin: 'GENESYS_CLOUD', limit: 100 });
      expect(cloud.items).toHaveLength(Math.ceil(N / 3));
      expect(cloud.items.every((x) => x.copies.some((c) => c.origin === 'GENESYS_CLOUD'))).toBe(true);
      const legacy = await repo.search({ tenantId: t, origin: 'LEGACY_ARCHIVE', limit: 100 });
      expect(legacy.items).toHaveLength(N);

      const avaya = await repo.search({ tenantId: t, sourceSystem: 'avaya_aura', limit: 100 });
      expect(avaya.items).toHaveLength(Math.floor(N / 2));
      // A match on one copy returns the recording with all its copies.
      const withCloud = avaya.items.find((x) => x.copies.length === 2)!;
      expect(withCloud.copies.map((c) => c.sourceSystem).sort()).toEqual(['avaya_aura', 'genesys_cloud']);

      const archived = await repo.search({ tenantId: t, state: 'ARCHIVED', limit: 100 });
      expect(archived.items.map((x) => x.callId!.slice(-4)).sort()).toEqual(['1000', '1005', '1010', '1015', '1020']);
      const both = await repo.search({ tenantId: t, state: 'ARCHIVED', sourceSystem: 'verint', limit: 100 });
      expect(both.items.map((x) => x.callId!.slice(-4)).sort()).toEqual(['1000', '1010', '1020']);
      expect((await repo.search({ tenantId: t, sourceSystem: 'no_such_system', limit: 100 })).items).toEqual([]);
    });

    test('keyset pagination returns every recording exactly once', async () => {
      for (const limit of [1, 4, 7, N, N + 5]) {
        const seen: string[] = [];
        let after: SearchQuery['after'];
        let pages = 0;
        for (;;) {
          const page = await repo.search({ tenantId: t, limit, ...(after ? { after } : {}) });
          seen.push(...page.items.map((x) => x.id));
          pages++;
          expect(page.items.length).toBeLessThanOrEqual(limit);
          if (!page.next) break;
          expect(page.next).toBe(page.items[page.items.length - 1]!.id);
          after = page.next;
        }
        expect(seen).toHaveLength(N);
        expect(new Set(seen).size).toBe(N);
        expect(pages).toBe(Math.max(1, Math.ceil(N / limit)));
      }
      // Pagination composes with filters.
      const seen: string[] = [];
      let after: SearchQuery['after'];
      for (;;) {
        const page = await repo.search({ tenantId: t, sourceSystem: 'verint', limit: 2, ...(after ? { after } : {}) });
        seen.push(...page.items.map((x) => x.id));
        if (!page.next) break;
        after = page.next;
      }
      expect(new Set(seen).size).toBe(Math.ceil(N / 2));
    });

    test('with a time window, pages run in (started_at, id) order, each recording once, equal start times included', async () => {
      const w = newTenant();
      // Groups of 1 to 9 recordings sharing a start time: a group longer than a page spans pages.
      const records: CatalogRecord[] = [];
      for (let i = 0, group = 0; i < 120; group++) {
        const started_at = new Date(Date.UTC(2024, 2, 1) + group * 60_000).toISOString();
        for (let k = 0; k <= group % 9 && i < 120; k++, i++) records.push(rec({ tenant_id: w, source_system: 'verint', legacy_archive_id: `W${i}`, started_at }));
      }
      records.push(rec({ tenant_id: w, source_system: 'verint', legacy_archive_id: 'W-no-start' }));
      await repo.upsertAll(records);
      const all = (await repo.search({ tenantId: w, limit: 500 })).items
        .filter((r) => r.startedAt !== null)
        .map((r) => ({ startedAt: r.startedAt!, id: r.id }))
        .sort((a, b) => (a.startedAt < b.startedAt ? -1 : a.startedAt > b.startedAt ? 1 : a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
      expect(all).toHaveLength(120);
      for (const [from, to] of [
        ['2024-03-01T00:00:00.000Z', '2024-04-01T00:00:00.000Z'],
        ['2024-03-01T00:04:00.000Z', '2024-03-01T00:17:00.000Z'],
        [undefined, '2024-03-01T00:09:00.000Z'],
        ['2024-03-01T00:13:00.000Z', undefined],
      ] as const) {
        const seen: { startedAt: string; id: string }[] = [];
        let after: SearchQuery['after'];
        for (;;) {
          const page = await repo.search({ tenantId: w, limit: 7, ...(from ? { from } : {}), ...(to ? { to } : {}), ...(after ? { after } : {}) });
          seen.push(...page.items.map((r) => ({ startedAt: r.startedAt!, id: r.id })));
          if (!page.next) break;
          expect(page.next).toEqual(seen[seen.length - 1]);
          after = page.next;
        }
        expect(seen).toEqual(all.filter((r) => (!from || r.startedAt >= from) && (!to || r.startedAt < to)));
      }
    });

    test('refuses a cursor of the other order (a time-window cursor without a window, an id cursor with one)', async () => {
      const windowed = await repo.search({ tenantId: t, from: '2023-10-01T00:00:00.000Z', limit: 2 });
      const plain = await repo.search({ tenantId: t, limit: 2 });
      expect(typeof windowed.next).toBe('object');
      expect(typeof plain.next).toBe('string');
      const e1 = await rejection(repo.search({ tenantId: t, limit: 2, after: windowed.next! }));
      expect(e1).toBeInstanceOf(AppError);
      expect((e1 as AppError).code).toBe('request.invalid');
      const e2 = await rejection(repo.search({ tenantId: t, to: '2024-01-01T00:00:00.000Z', limit: 2, after: plain.next! }));
      expect((e2 as AppError).code).toBe('request.invalid');
    });

    test('iterate gives the event loop a turn between pages (a sync report must not stop retrievals)', async () => {
      const drain = async () => {
        for await (const _ of repo.iterate(t, 5));
      };
      expect(await loopTurnsDuring(drain)).toBeGreaterThanOrEqual(Math.floor(N / 5) - 1);
    });

    test('iterate streams one tenant, or all tenants, in pages', async () => {
      const ids: string[] = [];
      for await (const r of repo.iterate(t, 5)) ids.push(r.id);
      expect(ids).toHaveLength(N);
      expect(new Set(ids).size).toBe(N);
      const all: { tenantId: string; copies: number }[] = [];
      for await (const r of repo.iterate(null, 4)) all.push({ tenantId: r.tenantId, copies: r.copies.length });
      expect(all.filter((x) => x.tenantId === t)).toHaveLength(N);
      expect(all.filter((x) => x.tenantId === other)).toHaveLength(1);
      expect(all.length).toBe(await repo.count());
      expect(all.every((x) => x.copies >= 1)).toBe(true);
    });
  });

  test('upsertAll is atomic: a failure in the middle writes nothing', async () => {
    const t = newTenant();
    const good = (i: number) => rec({ tenant_id: t, call_id: `atomic-${i}`, source_system: 'avaya_aura', legacy_archive_id: `AL${i}` });
    // The middle record breaks a NOT NULL constraint in the database itself.
    const broken = { ...good(2), source_system: null } as unknown as CatalogRecord;
    const e = await rejection(repo.upsertAll([good(1), good(2 + 10), broken, good(3)]));
    expect(e).toBeInstanceOf(Error);
    expect(await repo.count(t)).toBe(0);
    expect(await cat.db.selectFrom('recording_refs').select('value').where('tenant_id', '=', t).execute()).toEqual([]);
    expect(await cat.db.selectFrom('recording_copies').select('id').where('tenant_id', '=', t).execute()).toEqual([]);

    // A source that fails midway (e.g. a file turning bad) rolls back as well.
    async function* failing(): AsyncGenerator<CatalogRecord> {
      yield good(4);
      yield good(5);
      throw new Error('source broke');
    }
    await expect(repo.upsertAll(failing())).rejects.toThrow('source broke');
    expect(await repo.count(t)).toBe(0);
    // The catalog is still usable afterwards.
    expect(await repo.upsertAll([good(6)])).toEqual({ inserted: 1, updated: 0, unchanged: 0, holdsPlaced: 0 });
  });

  test('imports while another process writes to the same catalog, without "database is locked"', async () => {
    const t = newTenant();
    const other = writerInAnotherProcess(cat.catalogConfig, 40);
    const failures: string[] = [];
    let batches = 0;
    while (!other.done) {
      // A busy server, not a tight loop (better-sqlite3 answers synchronously: this also lets the event loop see the child).
      await new Promise((r) => setTimeout(r, 2));
      const records = Array.from({ length: 20 }, (_, i) => rec({ tenant_id: t, call_id: `busy-${batches}-${i}`, source_system: 'avaya_aura', legacy_archive_id: `busy-${batches}-${i}` }));
      try {
        await repo.upsertAll(records);
        batches++;
      } catch (e) {
        failures.push(String(e));
      }
    }
    expect(await other.result).toEqual({ ok: 40, errors: [] });
    expect(failures.slice(0, 3)).toEqual([]);
    expect(await repo.count(t)).toBe(batches * 20);
  }, 30_000);

  test('writes a 5 000-record batch in reasonable time', async () => {
    const t = newTenant();
    const records: CatalogRecord[] = [];
    for (let i = 0; i < 5000; i++) {
      records.push(rec({ tenant_id: t, call_id: `2024-02-01T00:00:00Z-${i}`, source_system: 'avaya_aura', legacy_archive_id: `bulk-${i}`, customer_ref: `cust-${i}` }));
    }
    const started = Date.now();
    const counts = await repo.upsertAll(records);
    const ms = Date.now() - started;
    expect(counts).toEqual({ inserted: 5000, updated: 0, unchanged: 0, holdsPlaced: 0 });
    expect(await repo.count(t)).toBe(5000);
    expect((await repo.findByRef(t, 'bulk-4321'))!.customerRef).toBe('cust-4321');
    expect(ms).toBeLessThan(15_000);
  }, 30_000);
});
