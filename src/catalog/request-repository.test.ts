import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CATALOGS, catalogAvailable, openTestCatalog, type TestCatalog } from '../../test/support/catalogs.js';
import { RequestRepository } from './request-repository.js';

const AVAILABLE: Record<string, boolean> = {};
for (const k of CATALOGS) AVAILABLE[k] = await catalogAvailable(k);

describe.each(CATALOGS)('RequestRepository (idempotency keys) on %s', (kind) => {
  let cat: TestCatalog;
  let repo: RequestRepository;
  beforeAll(async () => {
    if (!AVAILABLE[kind]) return;
    cat = await openTestCatalog(kind);
    repo = new RequestRepository(cat.db);
  });
  afterAll(async () => {
    await cat?.dispose();
  });
  const test = AVAILABLE[kind] ? it : it.skip;

  test('a request_id is new once, then a repeat with the same body and a conflict with another', async () => {
    expect(await repo.claim('acme', 'audit_req_9928374', 'hash-a')).toBe('new');
    expect(await repo.claim('acme', 'audit_req_9928374', 'hash-a')).toBe('repeat');
    expect(await repo.claim('acme', 'audit_req_9928374', 'hash-b')).toBe('conflict');
    // Keys are per tenant.
    expect(await repo.claim('globex', 'audit_req_9928374', 'hash-b')).toBe('new');
  });

  test('concurrent claims of one key: exactly one is new', async () => {
    const results = await Promise.all(Array.from({ length: 12 }, () => repo.claim('acme', 'req-concurrent', 'h')));
    expect(results.filter((r) => r === 'new')).toHaveLength(1);
    expect(results.filter((r) => r === 'repeat')).toHaveLength(11);
  });
});
