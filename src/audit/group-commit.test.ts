import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openTestCatalog, type TestCatalog, usableCatalogs } from '../../test/support/catalogs.js';
import { AuditRepository } from './audit-repository.js';
import type { AuditEventInput } from './event.js';

const ev = (i: number, over: Partial<AuditEventInput> = {}): AuditEventInput => ({ tenantId: 'acme', principalId: `p${i}`, principalKind: 'api_key', action: 'recording.media', outcome: 'allowed', ...over });

/** Concurrent appends share commits (group commit) without changing what each caller gets. */
describe.each(await usableCatalogs())('audit group commit on %s', (kind) => {
  let cat: TestCatalog;
  let repo: AuditRepository;
  beforeAll(async () => {
    cat = await openTestCatalog(kind);
    repo = new AuditRepository(cat.db, cat.dialect);
  });
  afterAll(() => cat.dispose());

  it('200 concurrent appends: each caller gets its own committed event, in arrival order, and the chain verifies', async () => {
    const heard: string[] = [];
    const off = repo.onAppend((e) => heard.push(e.id));
    const events = await Promise.all(Array.from({ length: 200 }, (_, i) => repo.append(ev(i))));
    off();
    expect(events.map((e) => e.principalId)).toEqual(Array.from({ length: 200 }, (_, i) => `p${i}`));
    const seqs = events.map((e) => e.seq);
    expect([...seqs].sort((a, b) => a - b)).toEqual(seqs);
    expect(new Set(seqs).size).toBe(200);
    for (const e of events) expect(await repo.byId(e.id)).toMatchObject({ seq: e.seq, hash: e.hash });
    expect(heard).toEqual(events.map((e) => e.id));
    expect((await repo.verify()).ok).toBe(true);
  });

  it('one bad event in a group fails only its own caller', async () => {
    const taken = (await repo.append(ev(0))).id;
    const results = await Promise.allSettled([repo.append(ev(1)), repo.append(ev(2, { id: taken })), repo.append(ev(3)), repo.append(ev(4))]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled', 'fulfilled']);
    expect((await repo.verify()).ok).toBe(true);
    // The trail goes on.
    expect((await repo.append(ev(5, { id: randomUUID() }))).principalId).toBe('p5');
  });
});
