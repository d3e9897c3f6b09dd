import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { CATALOGS, catalogAvailable, openTestCatalog, type TestCatalog } from '../../test/support/catalogs.js';
import { loopTurnsDuring } from '../../test/support/loop-turns.js';
import { writeTransaction } from '../catalog/database.js';
import { LocalKeyring } from '../keys/keyring.js';
import { type AuditQuery, AuditRepository } from './audit-repository.js';
import { chainHash } from './chain.js';
import { canonicalCheckpoint } from './checkpoint.js';
import { Checkpointer } from './checkpointer.js';
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

/** What an attacker with DBA rights does first: remove the append-only guards (events and checkpoints). */
async function dropGuards(cat: TestCatalog): Promise<void> {
  if (cat.dialect === 'postgres') {
    await sql`drop trigger audit_events_no_change on audit_events`.execute(cat.db);
    await sql`drop trigger audit_checkpoints_no_change on audit_checkpoints`.execute(cat.db);
  } else {
    await sql`drop trigger audit_events_no_update`.execute(cat.db);
    await sql`drop trigger audit_events_no_delete`.execute(cat.db);
    await sql`drop trigger audit_checkpoints_no_update`.execute(cat.db);
    await sql`drop trigger audit_checkpoints_no_delete`.execute(cat.db);
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
    expect(await repo.verify()).toEqual({ ok: true, checked: 0, lastHash: GENESIS_HASH, checkpoints: 0 });
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
    expect(await repo.byId(b.id)).toEqual(b);
    expect(chainHash({ ...back, detail: JSON.stringify(back.detail) })).toBe(back.hash);
    expect(await repo.byId('no-such-event')).toBeNull();
    // A caller-reserved id is kept (X-Audit-Event-Id names it before the write).
    const reserved = await repo.append(event({ id: 'reserved-event-id' }));
    expect(reserved.id).toBe('reserved-event-id');
  });

  // A request with "\ud800" (JSON escape of a lone surrogate) as its ref broke the chain for good:
  // the hash covered the JS string, the database stored U+FFFD, and verify reported hash_mismatch.
  test('text a database cannot store as given (lone surrogates, NUL) is stored as hashed, and the chain verifies', async () => {
    const before = await repo.verify();
    const e = await repo.append(
      event({ principalId: 'p\udc00', callerId: 'a\u0000b', requestId: '\ud83d', ref: '\ud800x', auditLogId: 'ok \ud83d\ude00', userAgent: 'ua\ud800', detail: { s: '\ud800\u0000' } }),
    );
    expect(e).toMatchObject({ principalId: 'p\ufffd', callerId: 'a\ufffdb', requestId: '\ufffd', ref: '\ufffdx', auditLogId: 'ok \ud83d\ude00', userAgent: 'ua\ufffd' });
    // detail is JSON text: its escapes keep the original code units
    expect(e.detail).toEqual({ s: '\ud800\u0000' });
    expect(await repo.byId(e.id)).toEqual(e);
    const after = await repo.verify();
    expect(after).toMatchObject({ ok: true, checked: before.checked + 1, lastHash: e.hash });
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

  test('scans of the chain give the event loop a turn between pages (on SQLite every query runs on it, synchronously)', async () => {
    // An auditor's verify or export, or the checkpointer's re-check, must not stop retrievals for
    // the length of the chain: measured 12 ms per 1 000 events, all of it in one piece before this.
    const head = await repo.head();
    const drain = async (it: AsyncIterable<unknown>) => {
      for await (const _ of it);
    };
    expect(await loopTurnsDuring(() => repo.verify(50))).toBeGreaterThanOrEqual(3);
    expect(await loopTurnsDuring(() => repo.verifySegment(null, head!.seq, 50))).toBeGreaterThanOrEqual(3);
    expect(await loopTurnsDuring(() => drain(repo.exportEvents({ throughSeq: head!.seq }, 50)))).toBeGreaterThanOrEqual(3);
    expect(await loopTurnsDuring(() => drain(repo.exportEvents({ tenantId: 'acme', throughSeq: head!.seq }, 50)))).toBeGreaterThanOrEqual(1);
  });

  test('a scan at its default page size gives the loop a turn every 64 events', async () => {
    // The checkpointer re-checks its segment at the default size: pages of 250 blocked every
    // request in flight for 6-10 ms once per 1 000 events (SCAN_PAGE's comment has the numbers).
    const head = (await repo.head())!;
    const { count } = (await repo.verifySegment(null, head.seq)) as { count: number };
    expect(count).toBeGreaterThanOrEqual(200);
    expect(await loopTurnsDuring(() => repo.verifySegment(null, head.seq))).toBeGreaterThanOrEqual(Math.floor(count / 64) - 1);
    expect(await loopTurnsDuring(() => repo.verify())).toBeGreaterThanOrEqual(Math.floor(count / 64) - 1);
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

  test('walking a time window in small pages gives exactly the events in it, in seq order, whatever the clocks', async () => {
    // occurred_at is each instance's clock, seq the commit order: three instances a minute apart
    // in their clocks, and one event in 97 from a clock six hours off.
    const t = `w-${Math.random().toString(36).slice(2, 8)}`;
    const N = 400;
    const minute = 60_000;
    const base = Date.UTC(2024, 0, 1);
    const at = (m: number) => new Date(base + m * minute).toISOString();
    const made: AuditEvent[] = [];
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      await writeTransaction(cat.db, async (trx) => {
        for (let i = 0; i < N; i++) {
          vi.setSystemTime(base + i * minute + [-150_000, 0, 90_000][i % 3]! + (i % 97 === 13 ? (i % 2 ? 6 : -6) * 3_600_000 : 0));
          made.push(await repo.appendIn(trx, event({ tenantId: i % 4 === 3 ? `${t}-other` : t, outcome: i % 10 ? 'completed' : 'denied' })));
        }
      });
    } finally {
      vi.useRealTimers();
    }
    type Window = Omit<AuditQuery, 'tenantId' | 'limit' | 'afterSeq'>;
    const expected = (w: Window) =>
      made.filter((e) => e.tenantId === t && (!w.from || e.occurredAt >= w.from) && (!w.to || e.occurredAt < w.to) && (!w.outcome || e.outcome === w.outcome)).map((e) => e.seq);
    const walk = async (w: Window, limit: number) => {
      const seen: number[] = [];
      for (let after: number | undefined; ; ) {
        const page = await repo.query({ tenantId: t, ...w, limit, ...(after !== undefined ? { afterSeq: after } : {}) });
        expect(page.items.length).toBeLessThanOrEqual(limit);
        seen.push(...page.items.map((e) => e.seq));
        if (page.next === null) return seen;
        expect(page.next).toBe(page.items[page.items.length - 1]!.seq);
        after = page.next;
      }
    };
    const windows: Window[] = [
      { from: at(20), to: at(50) },
      { from: at(100), to: at(250) },
      { from: at(-400), to: at(-10) },
      { from: at(N + 10), to: at(N + 400) },
      { from: at(300) },
      { to: at(80) },
      { from: at(0), to: at(300), outcome: 'denied' },
      { from: at(-1000), to: at(N + 1000) },
      { from: at(10 * N), to: at(20 * N) },
    ];
    for (const w of windows) for (const limit of [1, 3, 10]) expect({ w, limit, seqs: await walk(w, limit) }).toEqual({ w, limit, seqs: expected(w) });
    // The clocks did their part: a window whose events lie far apart in seq (an event six hours
    // fast among those of its time), one holding only events six hours slow.
    const late = expected(windows[4]!);
    expect(late[1]! - late[0]!).toBeGreaterThan(200);
    expect(expected(windows[2]!).length).toBeGreaterThan(0);
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

/**
 * Signed checkpoints against an attacker with DBA rights (guards dropped), who can edit, delete,
 * reorder, rebuild the whole chain and write checkpoint rows — but cannot sign with the key service.
 */
describe.each(CATALOGS)('signed checkpoints on %s', (kind) => {
  const test = AVAILABLE[kind] ? it : it.skip;

  interface Trail {
    t: TestCatalog;
    r: AuditRepository;
    keys: LocalKeyring;
    events: AuditEvent[];
    dispose(): Promise<void>;
  }

  /** `n` events with a signed checkpoint after every 5th, the guards then dropped. */
  async function signedTrail(n: number): Promise<Trail> {
    const t = await openTestCatalog(kind);
    const dir = mkdtempSync(join(tmpdir(), 'custodian-keys-'));
    const keys = new LocalKeyring(join(dir, 'staging.key'));
    const r = new AuditRepository(t.db, t.dialect, keys);
    const cp = new Checkpointer(r, keys, { everyEvents: 1_000_000, intervalMs: 3_600_000 });
    const events: AuditEvent[] = [];
    for (let i = 0; i < n; i++) {
      events.push(await r.append(event({ detail: { i }, bytesSent: i * 100, status: 200 })));
      if (i % 5 === 4) expect(await cp.checkpoint()).not.toBeNull();
    }
    expect(await r.verify()).toMatchObject({ ok: true, checked: n, checkpoints: Math.floor(n / 5) });
    await dropGuards(t);
    return {
      t,
      r,
      keys,
      events,
      dispose: async () => {
        await t.dispose();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  }

  /** What a careful attacker does after an edit: recompute every hash so the plain chain verifies again. */
  async function rebuildChain(t: TestCatalog, r: AuditRepository): Promise<void> {
    const rows = await t.db.selectFrom('audit_events').selectAll().orderBy('seq').execute();
    let prev = GENESIS_HASH;
    for (const row of rows) {
      const ev = (await r.byId(row.id))!;
      const hash = chainHash({ ...ev, detail: row.detail, prevHash: prev });
      if (row.prev_hash !== prev || row.hash !== hash) await t.db.updateTable('audit_events').set({ prev_hash: prev, hash }).where('seq', '=', row.seq).execute();
      prev = hash;
    }
  }

  test('the checkpoint table is append-only too', async () => {
    const t = await openTestCatalog(kind);
    const dir = mkdtempSync(join(tmpdir(), 'custodian-keys-'));
    try {
      const keys = new LocalKeyring(join(dir, 'staging.key'));
      const r = new AuditRepository(t.db, t.dialect, keys);
      await r.append(event());
      expect(await new Checkpointer(r, keys, { everyEvents: 10, intervalMs: 60_000 }).checkpoint()).toMatchObject({ eventCount: 1 });
      await expect(sql`update audit_checkpoints set event_count = 2`.execute(t.db)).rejects.toThrow(/append-only/);
      await expect(sql`delete from audit_checkpoints`.execute(t.db)).rejects.toThrow(/append-only/);
      if (kind === 'postgres') await expect(sql`truncate audit_checkpoints`.execute(t.db)).rejects.toThrow(/append-only/);
      // The signature covers the canonical form, which names its key.
      const [c] = await r.checkpoints();
      expect(await keys.verify(Buffer.from(canonicalCheckpoint(c!)), c!.signature, c!.keyId)).toBe(true);
      expect(c!.keyId).toBe(await keys.signingKeyId());
    } finally {
      await t.dispose();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('an edited field is a hash_mismatch, before any checkpoint is consulted', async () => {
    const { t, r, events, dispose } = await signedTrail(12);
    try {
      await t.db.updateTable('audit_events').set({ outcome: 'denied' }).where('seq', '=', events[6]!.seq).execute();
      expect(await r.verify()).toMatchObject({ ok: false, checked: 6, checkpoints: 1, broken: { seq: events[6]!.seq, id: events[6]!.id, reason: 'hash_mismatch' } });
    } finally {
      await dispose();
    }
  });

  test('a deleted row is a chain_break at the next one', async () => {
    const { t, r, events, dispose } = await signedTrail(12);
    try {
      await t.db.deleteFrom('audit_events').where('seq', '=', events[2]!.seq).execute();
      expect(await r.verify(4)).toMatchObject({ ok: false, checked: 2, broken: { seq: events[3]!.seq, reason: 'chain_break' } });
    } finally {
      await dispose();
    }
  });

  test('a reordered row is a chain_break', async () => {
    const { t, r, events, dispose } = await signedTrail(12);
    try {
      const [x, y] = [events[7]!, events[8]!];
      const rowOf = async (seq: number) => {
        const { seq: _s, ...rest } = await t.db.selectFrom('audit_events').selectAll().where('seq', '=', seq).executeTakeFirstOrThrow();
        return rest;
      };
      const [rx, ry] = [await rowOf(x.seq), await rowOf(y.seq)];
      await t.db.updateTable('audit_events').set({ id: 'parked' }).where('seq', '=', x.seq).execute();
      await t.db.updateTable('audit_events').set(rx).where('seq', '=', y.seq).execute();
      await t.db.updateTable('audit_events').set(ry).where('seq', '=', x.seq).execute();
      expect(await r.verify()).toMatchObject({ ok: false, checked: 7, broken: { seq: x.seq, id: y.id, reason: 'chain_break' } });
    } finally {
      await dispose();
    }
  });

  test('a rewritten chain (edit, then every hash recomputed) passes the plain check and fails at the first checkpoint over it', async () => {
    const { t, r, events, dispose } = await signedTrail(17);
    try {
      await t.db.updateTable('audit_events').set({ outcome: 'denied', detail: '{"i":6,"note":"nothing to see"}' }).where('seq', '=', events[6]!.seq).execute();
      await rebuildChain(t, r);
      // The hash chain alone is fooled…
      expect(await r.verify({ checkpoints: false })).toMatchObject({ ok: true, checked: 17 });
      // …the signed checkpoint after event 10 is not: the chain at its seq has another hash.
      expect(await r.verify()).toMatchObject({
        ok: false,
        checked: 10,
        checkpoints: 1,
        broken: { seq: events[9]!.seq, id: events[9]!.id, reason: 'checkpoint_mismatch', checkpointId: expect.any(Number) },
      });
    } finally {
      await dispose();
    }
  });

  test('a deletion hidden by a rebuilt chain is a checkpoint_mismatch too (the count, or the seq, no longer fits)', async () => {
    const { t, r, events, dispose } = await signedTrail(12);
    try {
      await t.db.deleteFrom('audit_events').where('seq', '=', events[1]!.seq).execute();
      await rebuildChain(t, r);
      expect((await r.verify({ checkpoints: false })).ok).toBe(true);
      expect(await r.verify()).toMatchObject({ ok: false, broken: { seq: events[4]!.seq, reason: 'checkpoint_mismatch' } });
      // Removing the row a checkpoint names: the chain goes past the checkpoint's seq.
      await t.db.deleteFrom('audit_events').where('seq', '=', events[9]!.seq).execute();
      await rebuildChain(t, r);
      const v = await r.verify();
      expect(v.broken?.reason).toBe('checkpoint_mismatch');
    } finally {
      await dispose();
    }
  });

  test('a forged checkpoint — bad signature, altered row, or signed with another key — is checkpoint_forged', async () => {
    const { t, r, events, dispose } = await signedTrail(12);
    const dir = mkdtempSync(join(tmpdir(), 'custodian-keys-'));
    try {
      // 1. An attacker edits a signed checkpoint to fit a rebuilt chain.
      await t.db.updateTable('audit_events').set({ outcome: 'denied' }).where('seq', '=', events[2]!.seq).execute();
      await rebuildChain(t, r);
      const rebuilt = (await r.byId(events[4]!.id))!;
      await t.db.updateTable('audit_checkpoints').set({ last_hash: rebuilt.hash }).where('last_seq', '=', events[4]!.seq).execute();
      expect(await r.verify()).toMatchObject({ ok: false, checked: 5, broken: { seq: events[4]!.seq, reason: 'checkpoint_forged' } });

      // 2. A checkpoint the attacker signs with a key of their own (the row names that key).
      const t2 = await signedTrail(7);
      try {
        const mine = new LocalKeyring(join(dir, 'attacker.key'));
        const head = (await t2.r.head())!;
        const fields = { lastSeq: head.seq, lastHash: head.hash, eventCount: 7, createdAt: new Date().toISOString(), keyId: await mine.signingKeyId(), algorithm: 'Ed25519' };
        const sig = await mine.sign(Buffer.from(canonicalCheckpoint(fields)));
        await t2.r.insertCheckpoint({ ...fields, signature: sig.signature });
        expect(await t2.r.verify()).toMatchObject({ ok: false, checked: 7, broken: { seq: head.seq, reason: 'checkpoint_forged' } });
      } finally {
        await t2.dispose();
      }

      // 3. A checkpoint row with garbage for a signature, beyond the end of the chain.
      const t3 = await signedTrail(6);
      try {
        await t3.r.insertCheckpoint({ lastSeq: 10_000, lastHash: 'f'.repeat(64), eventCount: 10_000, createdAt: new Date().toISOString(), keyId: await t3.keys.signingKeyId(), algorithm: 'Ed25519', signature: 'AAAA' });
        expect(await t3.r.verify()).toMatchObject({ ok: false, checked: 6, broken: { seq: 10_000, reason: 'checkpoint_forged' } });
      } finally {
        await t3.dispose();
      }
    } finally {
      await dispose();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('tail truncation is reported as truncated when it reaches a checkpoint', async () => {
    const { t, r, events, dispose } = await signedTrail(13);
    try {
      const lastCp = (await r.latestCheckpoint())!;
      expect(lastCp.lastSeq).toBe(events[9]!.seq);
      // Cutting only what no checkpoint covers yet is not detectable here (docs/AUDIT.md: exports and the interval bound it).
      await t.db.deleteFrom('audit_events').where('seq', '>', events[9]!.seq).execute();
      expect(await r.verify()).toMatchObject({ ok: true, checked: 10, checkpoints: 2 });
      // Cutting into the checkpointed part is.
      await t.db.deleteFrom('audit_events').where('seq', '>=', events[8]!.seq).execute();
      expect(await r.verify()).toMatchObject({ ok: false, checked: 8, checkpoints: 1, broken: { seq: events[9]!.seq, reason: 'truncated', id: null } });
    } finally {
      await dispose();
    }
  });
});
