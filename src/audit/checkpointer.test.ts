import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openTestCatalog, usableCatalogs, type TestCatalog } from '../../test/support/catalogs.js';
import { LocalKeyring } from '../keys/keyring.js';
import { AuditRepository } from './audit-repository.js';
import { Checkpointer } from './checkpointer.js';
import type { AuditEventInput } from './event.js';

const ev = (i: number): AuditEventInput => ({ tenantId: 'acme', principalId: 'p', principalKind: 'api_key', action: 'recording.retrieve', outcome: 'completed', detail: { i } });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.each(await usableCatalogs())('Checkpointer on %s', (kind) => {
  let cat: TestCatalog;
  let dir: string;
  let keys: LocalKeyring;
  let repo: AuditRepository;
  const logs: string[] = [];
  const log = (_level: string, msg: string) => void logs.push(msg);
  beforeEach(async () => {
    cat = await openTestCatalog(kind);
    dir = mkdtempSync(join(tmpdir(), 'custodian-cp-'));
    keys = new LocalKeyring(join(dir, 'keys', 'staging.key'));
    repo = new AuditRepository(cat.db, cat.dialect, keys);
    logs.length = 0;
  });
  afterEach(async () => {
    await cat.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  it('checkpoints every N events, on its timer when there is news, and on stop', async () => {
    const cp = new Checkpointer(repo, keys, { everyEvents: 10, intervalMs: 200, log });
    cp.start();
    for (let i = 0; i < 25; i++) await repo.append(ev(i));
    await expect.poll(async () => (await repo.checkpoints()).length).toBeGreaterThanOrEqual(2);
    // The timer covers the 5 left over, once; with nothing new it writes nothing more.
    await expect.poll(async () => (await repo.latestCheckpoint())?.eventCount, { timeout: 3000 }).toBe(25);
    const n = (await repo.checkpoints()).length;
    await sleep(500);
    expect((await repo.checkpoints()).length).toBe(n);
    await repo.append(ev(99));
    const last = await cp.stop();
    expect(last).toMatchObject({ eventCount: 26, lastSeq: (await repo.head())!.seq });
    expect(await repo.verify()).toMatchObject({ ok: true, checked: 26, checkpoints: n + 1 });
    expect(logs).toEqual([]);
  });

  it('continues the count after a restart, and two instances never duplicate a checkpoint', async () => {
    const a = new Checkpointer(repo, keys, { everyEvents: 1000, intervalMs: 60_000, log });
    for (let i = 0; i < 7; i++) await repo.append(ev(i));
    expect(await a.checkpoint()).toMatchObject({ eventCount: 7 });
    expect(await a.checkpoint()).toBeNull();
    // A new process: it trusts the latest checkpoint once its signature verifies, and counts on from it.
    const b = new Checkpointer(new AuditRepository(cat.db, cat.dialect, keys), keys, { everyEvents: 1000, intervalMs: 60_000, log });
    for (let i = 0; i < 3; i++) await repo.append(ev(i));
    const [x, y] = await Promise.all([a.checkpoint(), b.checkpoint()]);
    expect([x, y].filter(Boolean)).toHaveLength(1);
    expect((x ?? y)!.eventCount).toBe(10);
    expect(await repo.verify()).toMatchObject({ ok: true, checked: 10, checkpoints: 2 });
  });

  it('a starting instance never calls the chain truncated when a peer checkpoints between its two reads', async () => {
    // Another instance appends and writes a checkpoint right after each read the new instance
    // makes (the head, the latest checkpoint): whichever order they come in, the peer's newer
    // checkpoint lands between them — the interleaving that once raised a false "truncated".
    const peer = new Checkpointer(repo, keys, { everyEvents: 1000, intervalMs: 60_000, log });
    for (let i = 0; i < 5; i++) await repo.append(ev(i));
    await peer.checkpoint();
    let n = 100;
    const peerMoves = async () => {
      await repo.append(ev(n++));
      expect(await peer.checkpoint()).not.toBeNull();
    };
    const reads: string[] = [];
    let racing = true;
    class RacedRepository extends AuditRepository {
      override async head() {
        const h = await super.head();
        reads.push('head');
        if (racing) await peerMoves();
        return h;
      }
      override async latestCheckpoint() {
        const c = await super.latestCheckpoint();
        reads.push('checkpoint');
        if (racing) await peerMoves();
        return c;
      }
    }
    const fresh = new Checkpointer(new RacedRepository(cat.db, cat.dialect, keys), keys, { everyEvents: 1000, intervalMs: 60_000, log });
    await fresh.checkpoint();
    racing = false;
    expect(reads.sort()).toEqual(['checkpoint', 'head']);
    expect(logs).toEqual([]);
    // It counts on from what it read: its next checkpoint (or the peer's) still matches the chain.
    await repo.append(ev(n++));
    expect(await fresh.checkpoint()).not.toBeNull();
    expect(logs).toEqual([]);
    expect(await repo.verify()).toMatchObject({ ok: true, checked: 8 });
  });

  it('a starting instance still reports a real truncation: a signed checkpoint past the head', async () => {
    const a = new Checkpointer(repo, keys, { everyEvents: 1000, intervalMs: 60_000, log });
    for (let i = 0; i < 6; i++) await repo.append(ev(i));
    expect(await a.checkpoint()).toMatchObject({ eventCount: 6 });
    // The tail is cut (triggers dropped, as an attacker with DBA rights would).
    if (kind === 'postgres') await sql`drop trigger audit_events_no_change on audit_events`.execute(cat.db);
    else await sql`drop trigger audit_events_no_delete`.execute(cat.db);
    const head = (await repo.head())!.seq;
    await cat.db.deleteFrom('audit_events').where('seq', '>', head - 2).execute();
    const fresh = () => new Checkpointer(new AuditRepository(cat.db, cat.dialect, keys), keys, { everyEvents: 1000, intervalMs: 60_000, log });
    expect(await fresh().checkpoint()).toBeNull();
    expect(logs).toEqual(['the audit chain ends before its last checkpoint (truncated); not signing']);
    // Every event cut: still truncation, not an empty chain with nothing to do.
    logs.length = 0;
    await cat.db.deleteFrom('audit_events').execute();
    expect(await fresh().checkpoint()).toBeNull();
    expect(logs).toEqual(['the audit chain ends before its last checkpoint (truncated); not signing']);
    expect((await repo.checkpoints()).length).toBe(1);
  });

  it('never signs over a chain that was altered since the last checkpoint', async () => {
    const cp = new Checkpointer(repo, keys, { everyEvents: 1000, intervalMs: 60_000, log });
    for (let i = 0; i < 4; i++) await repo.append(ev(i));
    await cp.checkpoint();
    const later = [];
    for (let i = 0; i < 4; i++) later.push(await repo.append(ev(10 + i)));
    if (kind === 'postgres') await sql`drop trigger audit_events_no_change on audit_events`.execute(cat.db);
    else await sql`drop trigger audit_events_no_update`.execute(cat.db);
    await cat.db.updateTable('audit_events').set({ outcome: 'denied' }).where('seq', '=', later[1]!.seq).execute();
    expect(await cp.checkpoint()).toBeNull();
    expect(logs).toContain('the audit chain is broken; not signing a checkpoint over it');
    expect((await repo.checkpoints()).length).toBe(1);
  });
});
