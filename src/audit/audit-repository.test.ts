import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CATALOGS, catalogAvailable, openTestCatalog, type TestCatalog } from '../../test/support/catalogs.js';
import { AuditRepository } from './audit-repository.js';
import { chainHash } from './chain.js';
import { type AuditEvent, type AuditEventInput, GENESIS_HASH } from './event.js';

const AVAILABLE: Record<string, boolean> = {};
for (const k of CATALOGS) AVAILABLE[k] = await catalogAvailable(k);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function event(fields: Partial<AuditEventInput> = {}): AuditEventInput {
  return {
    tenantId: 'acme',
    principalId: 'alice',
    principalKind: 'api_key',
    action: 'recording.retrieve',
    outcome: 'allowed',
    ...fields,
  };
}

/**
 * Appends `n` events from a separate Node process on the same catalog, as the CLI beside a
 * running server (SQLite) or a second instance (PostgreSQL) does.
 */
function appendFromAnotherProcess(catalog: Record<string, unknown>, n: number): { readonly done: boolean; result: Promise<{ ok: number; failed: number; errors: string[] }> } {
  const database = fileURLToPath(new URL('../catalog/database.ts', import.meta.url));
  const audit = fileURLToPath(new URL('./audit-repository.ts', import.meta.url));
  const code = `
    const { openSqlite, openPostgres } = await import(${JSON.stringify(database)});
    const { AuditRepository } = await import(${JSON.stringify(audit)});
    const cfg = ${JSON.stringify(catalog)};
    const cat = cfg.driver === 'postgres' ? openPostgres(cfg.url, 2) : openSqlite(cfg.path);
    const repo = new AuditRepository(cat.db, cat.dialect);
    const out = { ok: 0, failed: 0, errors: [] };
    for (let i = 0; i < ${n}; i++) {
      try { await repo.append({ tenantId: 'acme', principalId: 'cli', principalKind: 'system', action: 'there', outcome: 'completed', detail: { i } }); out.ok++; }
      catch (e) { out.failed++; if (out.errors.length < 3) out.errors.push(String(e)); }
    }
    await cat.close();
    process.stdout.write(JSON.stringify(out));
  `;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { cwd: fileURLToPath(new URL('../..', import.meta.url)), stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d));
  child.stderr.on('data', (d: Buffer) => (stderr += d));
  const state = { done: false, result: undefined as unknown as Promise<{ ok: number; failed: number; errors: string[] }> };
  state.result = new Promise((resolve, reject) =>
    child.on('close', (code) => {
      state.done = true;
      if (code !== 0) reject(new Error(`child exited ${code}: ${stderr}`));
      else resolve(JSON.parse(stdout));
    }),
  );
  return state;
}

/** What an attacker with DBA rights does first: remove the append-only guard. */
async function dropGuards(cat: TestCatalog): Promise<void> {
  if (cat.dialect === 'postgres') {
    await sql`drop trigger audit_events_no_change on audit_events`.execute(cat.db);
  } else {
    await sql`drop trigger audit_events_no_update`.execute(cat.db);
    await sql`drop trigger audit_events_no_delete`.execute(cat.db);
  }
}

describe.each(CATALOGS)('AuditRepository on %s', (kind) => {
  let cat: TestCatalog;
  let repo: AuditRepository;
  beforeAll(async () => {
    if (!AVAILABLE[kind]) return;
    cat = await openTestCatalog(kind);
    repo = new AuditRepository(cat.db, cat.dialect);
  });
  afterAll(async () => {
    await cat?.dispose();
  });
  const test = AVAILABLE[kind] ? it : it.skip;

  test('an empty trail verifies', async () => {
    expect(await repo.verify()).toEqual({ ok: true, checked: 0, lastHash: GENESIS_HASH });
  });

  test('append assigns increasing seq and chains prev_hash to the previous hash', async () => {
    const a = await repo.append(
      event({
        callerId: 'compliance_tool_user_01',
        requestId: 'audit_req_9928374',
        auditLogId: 'log_20231027_001',
        httpRequestId: 'req-1',
        ref: 'rec_5f3a2b1c9d8e7f6g5h4i3j2k1l',
        recordingPk: 'pk-1',
        copyId: 'copy-1',
        origin: 'GENESYS_CLOUD',
        status: 200,
        clientIp: '127.0.0.1',
        userAgent: 'vitest',
        detail: { purpose: 'dispute #42', nested: { list: [1, 2] } },
      }),
    );
    const b = await repo.append(event({ outcome: 'completed', relatedEventId: a.id, bytesSent: 5_000_000_000, sha256: 'd'.repeat(64), status: 200 }));
    expect(a.prevHash).toBe(GENESIS_HASH);
    expect(b.seq).toBeGreaterThan(a.seq);
    expect(b.prevHash).toBe(a.hash);
    expect(a.hash).toMatch(/^[0-9a-f]{64}$/);
    expect(a).toMatchObject({ tenantId: 'acme', callerId: 'compliance_tool_user_01', status: 200, detail: { purpose: 'dispute #42', nested: { list: [1, 2] } } });
    expect(b.bytesSent).toBe(5_000_000_000);
    // The stored row reads back exactly as returned, and its hash is the hash of its content.
    const back = (await repo.byId(a.id))!;
    expect(back).toEqual(a);
    expect(chainHash({ ...back, detail: JSON.stringify(back.detail) })).toBe(back.hash);
    expect(await repo.byId('no-such-event')).toBeNull();
    // A caller-reserved id is kept (X-Audit-Event-Id names it before the write).
    const reserved = await repo.append(event({ id: 'reserved-event-id' }));
    expect(reserved.id).toBe('reserved-event-id');
  });

  test('verify passes an intact chain of 200 events, whatever the page size', async () => {
    for (let i = 0; i < 200; i++) await repo.append(event({ tenantId: i % 2 ? 'acme' : 'globex', action: 'catalog.search', detail: { i } }));
    const whole = await repo.verify();
    expect(whole.ok).toBe(true);
    expect(whole.checked).toBeGreaterThanOrEqual(203);
    for (const pageSize of [1, 7, 50, whole.checked, whole.checked + 1]) {
      expect(await repo.verify(pageSize)).toEqual(whole);
    }
    const last = await cat.db.selectFrom('audit_events').select('hash').orderBy('seq', 'desc').limit(1).executeTakeFirstOrThrow();
    expect(whole.lastHash).toBe(last.hash);
  });

  test('the database itself refuses UPDATE and DELETE on audit_events', async () => {
    const before = await repo.verify();
    await expect(sql`update audit_events set outcome = 'denied'`.execute(cat.db)).rejects.toThrow(/append-only/);
    await expect(cat.db.updateTable('audit_events').set({ detail: null }).where('action', '=', 'catalog.search').execute()).rejects.toThrow(/append-only/);
    await expect(sql`delete from audit_events`.execute(cat.db)).rejects.toThrow(/append-only/);
    await expect(cat.db.deleteFrom('audit_events').where('tenant_id', '=', 'globex').execute()).rejects.toThrow(/append-only/);
    if (kind === 'postgres') await expect(sql`truncate audit_events`.execute(cat.db)).rejects.toThrow(/append-only/);
    expect(await repo.verify()).toEqual(before);
  });

  test('query filters by tenant, time, principal, recording, outcome and action, with keyset pages', async () => {
    const t = `q-${Math.random().toString(36).slice(2, 8)}`;
    const made: AuditEvent[] = [];
    for (let i = 0; i < 30; i++) {
      made.push(
        await repo.append(
          event({
            tenantId: t,
            principalId: i % 3 === 0 ? 'bob' : 'alice',
            recordingPk: i % 5 === 0 ? 'rec-five' : `rec-${i}`,
            outcome: i % 4 === 0 ? 'denied' : 'completed',
            action: i % 2 ? 'recording.media' : 'recording.retrieve',
          }),
        ),
      );
      if (i % 6 === 5) await sleep(3);
    }
    await repo.append(event({ tenantId: `${t}-other`, principalId: 'bob', recordingPk: 'rec-five' }));

    const all = async (q: Partial<Parameters<AuditRepository['query']>[0]>) => (await repo.query({ tenantId: t, limit: 1000, ...q })).items.map((e) => e.seq);
    const seqs = (pred: (e: AuditEvent, i: number) => boolean) => made.filter(pred).map((e) => e.seq);

    expect(await all({})).toEqual(made.map((e) => e.seq));
    expect(await all({ principalId: 'bob' })).toEqual(seqs((_e, i) => i % 3 === 0));
    expect(await all({ recordingPk: 'rec-five' })).toEqual(seqs((_e, i) => i % 5 === 0));
    expect(await all({ outcome: 'denied' })).toEqual(seqs((_e, i) => i % 4 === 0));
    expect(await all({ action: 'recording.media' })).toEqual(seqs((_e, i) => i % 2 === 1));
    expect(await all({ principalId: 'bob', outcome: 'denied', action: 'recording.retrieve' })).toEqual(seqs((_e, i) => i % 3 === 0 && i % 4 === 0 && i % 2 === 0));
    const from = made[7]!.occurredAt;
    const to = made[20]!.occurredAt;
    expect(from < to).toBe(true);
    expect(await all({ from, to })).toEqual(seqs((e) => e.occurredAt >= from && e.occurredAt < to));
    expect(await all({ from })).toEqual(seqs((e) => e.occurredAt >= from));
    expect(await all({ to })).toEqual(seqs((e) => e.occurredAt < to));
    // Another tenant's events never appear, whatever the filter.
    expect(await all({ tenantId: 'nobody' })).toEqual([]);
    expect((await repo.query({ tenantId: `${t}-other`, limit: 10 })).items).toHaveLength(1);

    // Keyset pages cover every event exactly once.
    for (const limit of [1, 4, 30, 31]) {
      const seen: number[] = [];
      let afterSeq: number | undefined;
      for (;;) {
        const page = await repo.query({ tenantId: t, limit, ...(afterSeq !== undefined ? { afterSeq } : {}) });
        seen.push(...page.items.map((e) => e.seq));
        if (page.next === null) break;
        expect(page.next).toBe(page.items[page.items.length - 1]!.seq);
        afterSeq = page.next;
      }
      expect(seen).toEqual(made.map((e) => e.seq));
    }
    const filtered: number[] = [];
    let afterSeq: number | undefined;
    for (;;) {
      const page = await repo.query({ tenantId: t, principalId: 'alice', limit: 3, ...(afterSeq !== undefined ? { afterSeq } : {}) });
      filtered.push(...page.items.map((e) => e.seq));
      if (page.next === null) break;
      afterSeq = page.next;
    }
    expect(filtered).toEqual(seqs((_e, i) => i % 3 !== 0));
  });

  test('50 concurrent appends keep one valid chain', async () => {
    const before = (await repo.verify()).checked;
    const events = await Promise.all(Array.from({ length: 50 }, (_, i) => repo.append(event({ action: 'concurrent', detail: { i } }))));
    expect(new Set(events.map((e) => e.seq)).size).toBe(50);
    expect(new Set(events.map((e) => e.prevHash)).size).toBe(50);
    const v = await repo.verify(16);
    expect(v).toMatchObject({ ok: true, checked: before + 50 });
    const rows = await cat.db.selectFrom('audit_events').select(['seq', 'prev_hash', 'hash']).orderBy('seq').execute();
    for (let i = 1; i < rows.length; i++) expect(rows[i]!.prev_hash).toBe(rows[i - 1]!.hash);
  });

  test('another process appending at the same time (a CLI beside the server, a second instance) neither fails nor forks the chain', async () => {
    const before = (await repo.verify()).checked;
    const N = 40;
    const child = appendFromAnotherProcess(cat.catalogConfig, N);
    const failures: unknown[] = [];
    let mine = 0;
    // Append here for as long as the other process is appending.
    while (!child.done) {
      // A busy server, not a tight loop (better-sqlite3 answers synchronously: this also lets the event loop see the child).
      await new Promise((r) => setTimeout(r, 2));
      try {
        await repo.append(event({ action: 'here' }));
        mine++;
      } catch (e) {
        failures.push(e);
      }
    }
    const theirs = await child.result;
    expect(theirs).toEqual({ ok: N, failed: 0, errors: [] });
    expect(failures.map(String)).toEqual([]);
    const v = await repo.verify();
    expect(v).toMatchObject({ ok: true, checked: before + N + mine });
  }, 30_000);

  describe('tampering (guards dropped, as by an attacker with DBA rights)', () => {
    async function tamperable(n: number): Promise<{ t: TestCatalog; r: AuditRepository; events: AuditEvent[] }> {
      const t = await openTestCatalog(kind);
      const r = new AuditRepository(t.db, t.dialect);
      const events: AuditEvent[] = [];
      for (let i = 0; i < n; i++) events.push(await r.append(event({ detail: { i }, bytesSent: i * 100, status: 200 })));
      expect((await r.verify()).ok).toBe(true);
      await dropGuards(t);
      return { t, r, events };
    }

    test('an edited field is a hash_mismatch at that event', async () => {
      const { t, r, events } = await tamperable(10);
      try {
        await t.db.updateTable('audit_events').set({ outcome: 'denied' }).where('seq', '=', events[4]!.seq).execute();
        expect(await r.verify(3)).toMatchObject({ ok: false, checked: 4, lastHash: events[3]!.hash, broken: { seq: events[4]!.seq, id: events[4]!.id, reason: 'hash_mismatch' } });
        // Editing the JSON detail, even only its spacing, is detected too.
        await t.db.updateTable('audit_events').set({ outcome: events[4]!.outcome }).where('seq', '=', events[4]!.seq).execute();
        expect((await r.verify()).ok).toBe(true);
        await t.db.updateTable('audit_events').set({ detail: '{ "i": 6 }' }).where('seq', '=', events[6]!.seq).execute();
        expect((await r.verify()).broken).toMatchObject({ seq: events[6]!.seq, reason: 'hash_mismatch' });
        // Recomputing the edited row's own hash only moves the break to the next row.
        const row = await t.db.selectFrom('audit_events').selectAll().where('seq', '=', events[6]!.seq).executeTakeFirstOrThrow();
        const rehashed = chainHash({ ...(await r.byId(row.id))!, detail: row.detail });
        await t.db.updateTable('audit_events').set({ hash: rehashed }).where('seq', '=', events[6]!.seq).execute();
        expect((await r.verify()).broken).toMatchObject({ seq: events[7]!.seq, reason: 'chain_break' });
      } finally {
        await t.dispose();
      }
    });

    test('a deleted event is a chain_break at the next one', async () => {
      const { t, r, events } = await tamperable(10);
      try {
        await t.db.deleteFrom('audit_events').where('seq', '=', events[5]!.seq).execute();
        expect(await r.verify(4)).toMatchObject({ ok: false, checked: 5, broken: { seq: events[6]!.seq, id: events[6]!.id, reason: 'chain_break' } });
      } finally {
        await t.dispose();
      }
    });

    test('swapping two events (reordering) breaks the chain', async () => {
      const { t, r, events } = await tamperable(10);
      try {
        const [x, y] = [events[3]!, events[4]!];
        const rowOf = async (seq: number) => {
          const { seq: _s, ...rest } = await t.db.selectFrom('audit_events').selectAll().where('seq', '=', seq).executeTakeFirstOrThrow();
          return rest;
        };
        const swap = async (a: number, b: number) => {
          const [ra, rb] = [await rowOf(a), await rowOf(b)];
          // ids are unique: park one first.
          await t.db.updateTable('audit_events').set({ id: 'parked' }).where('seq', '=', a).execute();
          await t.db.updateTable('audit_events').set(ra).where('seq', '=', b).execute();
          await t.db.updateTable('audit_events').set(rb).where('seq', '=', a).execute();
        };
        await swap(x.seq, y.seq);
        const v = await r.verify();
        expect(v.ok).toBe(false);
        expect(v.broken).toMatchObject({ seq: x.seq, id: y.id, reason: 'chain_break' });
        await swap(x.seq, y.seq);
        expect((await r.verify()).ok).toBe(true);
        // Swapping only the timestamps (rows stay in place) is a mismatch at the first.
        await t.db.updateTable('audit_events').set({ occurred_at: y.occurredAt }).where('seq', '=', x.seq).execute();
        await t.db.updateTable('audit_events').set({ occurred_at: x.occurredAt }).where('seq', '=', y.seq).execute();
        if (x.occurredAt !== y.occurredAt) expect((await r.verify()).broken).toMatchObject({ seq: x.seq, reason: 'hash_mismatch' });
      } finally {
        await t.dispose();
      }
    });

    test('an event inserted into the middle breaks the chain', async () => {
      const { t, r, events } = await tamperable(6);
      try {
        // A forged event that claims to follow event 2, with a correct hash of its own content.
        const forged = { ...events[2]!, id: 'forged', prevHash: events[2]!.hash, occurredAt: events[2]!.occurredAt };
        const hash = chainHash({ ...forged, detail: JSON.stringify(forged.detail) });
        await t.db
          .insertInto('audit_events')
          .values({
            id: 'forged',
            occurred_at: forged.occurredAt,
            tenant_id: forged.tenantId,
            principal_id: forged.principalId,
            principal_kind: forged.principalKind,
            caller_id: null,
            request_id: null,
            audit_log_id: null,
            http_request_id: null,
            action: forged.action,
            ref: null,
            recording_pk: null,
            copy_id: null,
            origin: null,
            outcome: forged.outcome,
            status: forged.status,
            error_code: null,
            bytes_sent: forged.bytesSent,
            sha256: null,
            client_ip: null,
            user_agent: null,
            related_event_id: null,
            detail: JSON.stringify(forged.detail),
            prev_hash: forged.prevHash,
            hash,
          })
          .execute();
        // It lands at the end (seq is the database's), where it does not continue the chain.
        const v = await r.verify();
        expect(v.ok).toBe(false);
        expect(v.broken).toMatchObject({ id: 'forged', reason: 'chain_break' });
        expect(v.checked).toBe(events.length);
      } finally {
        await t.dispose();
      }
    });
  });
});
