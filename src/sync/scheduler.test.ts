import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openTestCatalog, type TestCatalog } from '../../test/support/catalogs.js';
import type { SyncDeps } from './runner.js';
import { startSyncScheduler } from './scheduler.js';
import { SyncStore } from './store.js';
import { syncDepsFor, tempDir, verintTree } from './test-helpers.js';

describe('scheduled sync', () => {
  let cat: TestCatalog;
  let share: ReturnType<typeof tempDir>;
  let deps: SyncDeps & { close(): Promise<void> };
  beforeEach(async () => {
    cat = await openTestCatalog('sqlite');
    share = tempDir();
  });
  afterEach(async () => {
    await deps?.close();
    await cat.dispose();
    share.dispose();
  });

  const waitFor = async (what: () => Promise<boolean>, ms = 10_000) => {
    for (const end = Date.now() + ms; Date.now() < end; await new Promise((r) => setTimeout(r, 50))) if (await what()) return;
    throw new Error('timed out');
  };
  const runs = async () => (await new SyncStore(cat.db).runs('acme', 100)).filter((r) => r.source === 'verint-share');

  it('runs each interval after the previous run ended (never overlapping), picks up new files, and stops cleanly', { timeout: 30_000 }, async () => {
    const root = join(share.dir, 'archive');
    verintTree(root, [{ id: 'a1', start: new Date('2024-03-01T10:00:00Z') }]);
    deps = syncDepsFor(cat, {
      sources: [{ name: 'verint-share', type: 'filesystem', root, source_systems: ['verint'] }],
      sync: { schedule_interval_ms: 1_000, legacy: [{ source: 'verint-share', mapping: { call_id: 'callId' } }] },
    });
    const scheduler = startSyncScheduler(deps);
    await waitFor(async () => (await runs()).some((r) => r.status === 'succeeded'));
    expect(await deps.recordings.findByRef('acme', 'a1')).not.toBeNull();
    verintTree(root, [{ id: 'a2', start: new Date('2024-03-01T11:00:00Z') }]);
    await waitFor(async () => (await deps.recordings.findByRef('acme', 'a2')) !== null);
    await scheduler.stop();
    const all = (await runs()).sort((a, b) => a.startedAt.localeCompare(b.startedAt));
    expect(all.length).toBeGreaterThanOrEqual(2);
    // One at a time: each run started after the one before had finished.
    for (let i = 1; i < all.length; i++) expect(all[i]!.startedAt >= all[i - 1]!.finishedAt!).toBe(true);
    expect(all.every((r) => r.status === 'succeeded')).toBe(true);
    // Nothing starts after stop().
    const n = all.length;
    await new Promise((r) => setTimeout(r, 1_300));
    expect((await runs()).length).toBe(n);
    const events = await cat.db.selectFrom('audit_events').select(['principal_id']).where('action', '=', 'sync.run').execute();
    expect(events.every((e) => e.principal_id === 'scheduler')).toBe(true);
  });

  it('is off unless schedule_interval_ms is set', async () => {
    deps = syncDepsFor(cat, { sources: [{ name: 'verint-share', type: 'filesystem', root: share.dir, source_systems: ['verint'] }], sync: { legacy: [{ source: 'verint-share' }] } });
    const scheduler = startSyncScheduler(deps);
    await new Promise((r) => setTimeout(r, 200));
    await scheduler.stop();
    expect(await runs()).toHaveLength(0);
  });
});
