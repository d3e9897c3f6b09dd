import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exportCommand, importCommand } from '../src/cli/catalog-commands.js';
import { IMPORTED_HOLD } from '../src/holds/hold-repository.js';
import { usableCatalogs } from './support/catalogs.js';
import { KEYS, bearer, startTestGateway, type TestGateway } from './support/gateway.js';
import { withTrailDown } from './support/trail-down.js';
import { raw } from './support/http.js';

const PAST = '2020-01-01T00:00:00Z';
const FUTURE = '2099-01-01T00:00:00Z';
const WAV = 'call_mono_pcm16_8k.wav';

/**
 * Retention and legal hold through the real gateway: the source's own deletion date, holds as
 * records with four-eyes release, the catalog's imported flag, and every step in the audit trail.
 */
describe.each(await usableCatalogs())('retention and legal holds on %s', (kind) => {
  let gw: TestGateway;
  const json = (method: string, path: string, key: string, body?: unknown) =>
    raw(`${gw.url}${path}`, {
      method,
      headers: { ...bearer(key), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
  const media = (ref: string, key = KEYS.acme) => raw(`${gw.url}/api/v1/recordings/${ref}/media?format=original`, { headers: bearer(key) });
  const codeOf = (r: { body: Buffer }) => JSON.parse(r.body.toString()).code as string;
  const eventsOf = async (action: string) => (await gw.deps.auditRepo.query({ tenantId: 'acme', action, limit: 1000 })).items;

  beforeAll(async () => {
    gw = await startTestGateway({ catalog: kind, config: (doc) => (doc.auth.rate_limit = { max: 10_000, window_ms: 60_000 }) });
    await gw.seed([
      { call_id: 'c-expired', legacy_archive_id: 'expired_1', locator: WAV, retention_expiry: PAST },
      { call_id: 'c-flag', legacy_archive_id: 'flag_1', locator: WAV, retention_expiry: PAST, legal_hold: true },
      // The catalog obliges until 2099, but the only copy's source deleted it already.
      { call_id: 'c-src-gone', legacy_archive_id: 'srcgone_1', locator: WAV, retention_expiry: FUTURE, source_retention_expiry: PAST },
      // Two copies: the first deleted at its source, the second still there.
      { call_id: 'c-two', source_system: 'verint', legacy_archive_id: 'two_v', locator: WAV, retention_expiry: FUTURE, source_retention_expiry: PAST },
      { call_id: 'c-two', legacy_archive_id: 'two_a', locator: WAV, retention_expiry: FUTURE, source_retention_expiry: FUTURE },
      { call_id: 'c-bad', legacy_archive_id: 'bad_1', locator: WAV },
      { tenant_id: 'globex', call_id: 'g-1', legacy_archive_id: 'globex_1', locator: WAV },
    ]);
  });
  afterAll(async () => gw?.stop());

  it("considers the source's own deletion date: a copy past it is not served; all copies past it is EXPIRED (410)", async () => {
    const gone = await media('srcgone_1');
    expect(gone.status).toBe(410);
    expect(gone.headers['x-retention-status']).toBe('EXPIRED');
    expect(JSON.parse(gone.body.toString()).detail).toMatch(/deleted at its source/);
    const two = await media('two_a');
    expect(two.status).toBe(200);
    expect(two.headers['x-retention-status']).toBe('ACTIVE');
    const meta = JSON.parse((await json('GET', '/api/v1/recordings/two_a', KEYS.acme)).body.toString());
    expect(meta.retention_status).toBe('ACTIVE');
  });

  it("makes the catalog's imported legal_hold flag a hold record: served past expiry as LEGAL_HOLD, and listed", async () => {
    const r = await media('flag_1');
    expect(r.status).toBe(200);
    expect(r.headers['x-retention-status']).toBe('LEGAL_HOLD');
    const meta = JSON.parse((await json('GET', '/api/v1/recordings/flag_1', KEYS.acme)).body.toString());
    expect(meta).toMatchObject({ retention_status: 'LEGAL_HOLD', legal_hold: true });
    const list = JSON.parse((await json('GET', `/api/v1/holds?recording=${meta.id}`, KEYS.acmeAuditor)).body.toString());
    expect(list.items).toMatchObject([{ recording_id: meta.id, matter: 'imported', status: 'active', created_by: 'catalog-import', released_at: null }]);
    expect(list.items[0].reason).toMatch(/legal_hold/);
    expect(IMPORTED_HOLD).toMatchObject({ matter: 'imported', createdBy: 'catalog-import' });
    // The flag is no longer what holds it: the row says 0, the hold record says held.
    expect(await gw.catalogDb.db.selectFrom('recordings').select('legal_hold').where('id', '=', meta.id).execute()).toEqual([{ legal_hold: 0 }]);
  });

  it('a hold placed by an admin overrides expiry; release takes a second admin; every step is audited', async () => {
    expect((await media('expired_1')).status).toBe(410);

    const created = await json('POST', '/api/v1/recordings/expired_1/holds', KEYS.acmeAdmin, { matter: 'Smith v Acme 2026-117', reason: 'Litigation hold: counsel letter of 2026-05-02' });
    expect(created.status, created.body.toString()).toBe(201);
    const hold = JSON.parse(created.body.toString());
    expect(hold).toMatchObject({ status: 'active', matter: 'Smith v Acme 2026-117', created_by: 'root', released_at: null });
    expect(created.headers.location).toBe(`/api/v1/holds/${hold.id}`);
    const createEv = await gw.deps.auditRepo.byId(created.headers['x-audit-event-id'] as string);
    expect(createEv).toMatchObject({ action: 'hold.create', outcome: 'completed', principalId: 'root', recordingPk: hold.recording_id, detail: { hold_id: hold.id, matter: 'Smith v Acme 2026-117' } });

    const served = await media('expired_1');
    expect(served.status).toBe(200);
    expect(served.headers['x-retention-status']).toBe('LEGAL_HOLD');
    expect(JSON.parse((await json('GET', '/api/v1/recordings/expired_1', KEYS.acme)).body.toString())).toMatchObject({ retention_status: 'LEGAL_HOLD', legal_hold: true });

    // Listed for auditors and admins, not for readers.
    for (const key of [KEYS.acmeAuditor, KEYS.acmeAdmin]) {
      const list = JSON.parse((await json('GET', '/api/v1/holds?status=active', key)).body.toString());
      expect(list.items.map((h: { id: string }) => h.id)).toContain(hold.id);
    }
    expect((await json('GET', '/api/v1/holds', KEYS.acme)).status).toBe(403);
    expect(JSON.parse((await json('GET', '/api/v1/holds?status=released', KEYS.acmeAuditor)).body.toString()).items).toEqual([]);

    // Four eyes: root asks, root cannot confirm, carol confirms.
    const asked = await json('POST', `/api/v1/holds/${hold.id}/release`, KEYS.acmeAdmin, { reason: 'case settled' });
    expect(asked.status).toBe(202);
    expect(JSON.parse(asked.body.toString())).toMatchObject({ status: 'release_requested', release_requested_by: 'root' });
    expect((await media('expired_1')).headers['x-retention-status']).toBe('LEGAL_HOLD');
    const self = await json('POST', `/api/v1/holds/${hold.id}/release`, KEYS.acmeAdmin, {});
    expect(self.status).toBe(409);
    expect(codeOf(self)).toBe('hold.second_admin_required');
    const confirmed = await json('POST', `/api/v1/holds/${hold.id}/release`, KEYS.acmeAdmin2);
    expect(confirmed.status, confirmed.body.toString()).toBe(200);
    expect(JSON.parse(confirmed.body.toString())).toMatchObject({ status: 'released', released_by: 'carol', release_requested_by: 'root' });
    const again = await json('POST', `/api/v1/holds/${hold.id}/release`, KEYS.acmeAdmin2);
    expect(again.status).toBe(409);
    expect(codeOf(again)).toBe('hold.already_released');

    expect((await media('expired_1')).status).toBe(410);
    expect(JSON.parse((await json('GET', '/api/v1/holds?status=released', KEYS.acmeAuditor)).body.toString()).items.map((h: { id: string }) => h.id)).toEqual([hold.id]);

    const trail = async (action: string) => (await eventsOf(action)).filter((e) => e.detail?.hold_id === hold.id);
    expect(await trail('hold.release_request')).toMatchObject([{ outcome: 'completed', principalId: 'root', status: 202, detail: { reason: 'case settled' } }]);
    expect(await trail('hold.release')).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ outcome: 'denied', principalId: 'root', errorCode: 'hold.second_admin_required' }),
        expect.objectContaining({ outcome: 'completed', principalId: 'carol', status: 200 }),
        expect.objectContaining({ outcome: 'failed', principalId: 'carol', errorCode: 'hold.already_released' }),
      ]),
    );
    expect((await eventsOf('hold.list')).length).toBeGreaterThanOrEqual(4);
    expect((await gw.deps.auditRepo.verify()).ok).toBe(true);
  });

  it('names copies the source will delete on its own date when a hold is placed (a hold binds us, not the sources)', async () => {
    const r = await json('POST', '/api/v1/recordings/two_a/holds', KEYS.acmeAdmin, { matter: 'M-two', reason: 'r' });
    expect(r.status).toBe(201);
    expect(JSON.parse(r.body.toString()).copies_deleted_by_source_on).toEqual([expect.objectContaining({ source_retention_expiry: '2099-01-01T00:00:00.000Z' })]);
  });

  it.each([
    ['unknown ref', 404, 'recording.not_found', 'POST', '/api/v1/recordings/no_such_ref/holds', () => KEYS.acmeAdmin, { matter: 'm', reason: 'r' }],
    ["another tenant's ref", 404, 'recording.not_found', 'POST', '/api/v1/recordings/globex_1/holds', () => KEYS.acmeAdmin, { matter: 'm', reason: 'r' }],
    ['missing matter', 422, 'request.invalid', 'POST', '/api/v1/recordings/bad_1/holds', () => KEYS.acmeAdmin, { reason: 'r' }],
    ['missing reason', 422, 'request.invalid', 'POST', '/api/v1/recordings/bad_1/holds', () => KEYS.acmeAdmin, { matter: 'm' }],
    ['blank matter', 422, 'request.invalid', 'POST', '/api/v1/recordings/bad_1/holds', () => KEYS.acmeAdmin, { matter: '   ', reason: 'r' }],
    ['unknown field', 422, 'request.invalid', 'POST', '/api/v1/recordings/bad_1/holds', () => KEYS.acmeAdmin, { matter: 'm', reason: 'r', until: 'forever' }],
    ['no body', 422, 'request.invalid', 'POST', '/api/v1/recordings/bad_1/holds', () => KEYS.acmeAdmin, undefined],
    ['a reader', 403, 'access.scope_missing', 'POST', '/api/v1/recordings/bad_1/holds', () => KEYS.acme, { matter: 'm', reason: 'r' }],
    ['an auditor', 403, 'access.scope_missing', 'POST', '/api/v1/recordings/bad_1/holds', () => KEYS.acmeAuditor, { matter: 'm', reason: 'r' }],
    ['release by a non-admin', 403, 'access.scope_missing', 'POST', '/api/v1/holds/00000000-0000-4000-8000-000000000000/release', () => KEYS.acmeAuditor, {}],
    ['release of an unknown hold', 404, 'hold.not_found', 'POST', '/api/v1/holds/00000000-0000-4000-8000-000000000000/release', () => KEYS.acmeAdmin, {}],
    ['release with a bad id', 422, 'request.invalid', 'POST', '/api/v1/holds/not-a-uuid/release', () => KEYS.acmeAdmin, {}],
    ['list with a bad status', 422, 'request.invalid', 'GET', '/api/v1/holds?status=pending', () => KEYS.acmeAuditor, undefined],
  ] as const)('%s → %i %s', async (_name, status, code, method, path, key, body) => {
    const r = await json(method, path, key(), body);
    expect(r.status, r.body.toString()).toBe(status);
    expect(codeOf(r)).toBe(code);
    expect(r.headers['content-type']).toBe('application/problem+json');
  });

  it("a hold attempt on another tenant's ref is a 404 like an unknown ref, and evidence in the owner's trail (product.md principle 4)", async () => {
    const strip = (r: { body: Buffer }) => {
      const { request_id: _id, detail: _detail, ...rest } = JSON.parse(r.body.toString()) as Record<string, unknown>;
      return rest;
    };
    const theirs = await json('POST', '/api/v1/recordings/g-1/holds', KEYS.acmeAdmin, { matter: 'M-x', reason: 'r' });
    const unknown = await json('POST', '/api/v1/recordings/g-nowhere/holds', KEYS.acmeAdmin, { matter: 'M-x', reason: 'r' });
    expect(theirs.status).toBe(404);
    expect(strip(theirs)).toEqual(strip(unknown));
    const owner = (await gw.deps.auditRepo.query({ tenantId: 'globex', action: 'recording.cross_tenant_attempt', limit: 1000 })).items.filter((e) => e.ref === 'g-1');
    expect(owner).toMatchObject([{ outcome: 'denied', status: 404, errorCode: 'recording.not_found', principalId: 'root', detail: { requesting_tenant: 'acme' } }]);
    // The owner's event and the caller's share the request id: the operator can join them, the caller's tenant sees nothing.
    expect(owner[0]!.httpRequestId).toBe(theirs.headers['x-request-id']);
    // The caller's own trail has the refused placement, with what was asked — read as the tenant's
    // auditor reads it, and exactly like the attempt on a ref nobody holds.
    const trail = await json('GET', '/api/v1/audit/events?action=hold.create&limit=1000', KEYS.acmeAuditor);
    expect(trail.status).toBe(200);
    const visible = (JSON.parse(trail.body.toString()) as { items: Record<string, any>[] }).items;
    const mine = visible.filter((e) => e.ref === 'g-1');
    const control = visible.filter((e) => e.ref === 'g-nowhere');
    expect(mine).toHaveLength(1);
    expect(control).toHaveLength(1);
    for (const f of ['detail', 'outcome', 'status', 'errorCode', 'recordingPk', 'copyId', 'origin', 'principalId', 'tenantId', 'action']) {
      expect(mine[0]![f], f).toEqual(control[0]![f]);
    }
    expect(mine[0]).toMatchObject({ outcome: 'denied', status: 404, errorCode: 'recording.not_found', detail: { matter: 'M-x', reason: 'r' } });
    expect(mine[0]!.detail).not.toHaveProperty('cross_tenant_attempt');
    expect(await gw.catalogDb.db.selectFrom('legal_holds').select('id').where('matter', '=', 'M-x').execute()).toEqual([]);
  });

  it('places and releases a hold in one commit with its audit event: with the trail down, 503 and nothing changed', async () => {
    const repo = gw.deps.audit.repo;
    const trailDown = <T>(fn: () => Promise<T>): Promise<T> => withTrailDown(repo, fn);
    const holdsOf = () => gw.catalogDb.db.selectFrom('legal_holds').selectAll().where('matter', '=', 'M-down').execute();

    const refused = await trailDown(() => json('POST', '/api/v1/recordings/bad_1/holds', KEYS.acmeAdmin, { matter: 'M-down', reason: 'r' }));
    expect(refused.status, refused.body.toString()).toBe(503);
    expect(codeOf(refused)).toBe('audit.unavailable');
    expect(await holdsOf()).toEqual([]);

    // The trail back: the same placement is not a duplicate of a hold that never committed.
    const placed = await json('POST', '/api/v1/recordings/bad_1/holds', KEYS.acmeAdmin, { matter: 'M-down', reason: 'r' });
    expect(placed.status, placed.body.toString()).toBe(201);
    const id = JSON.parse(placed.body.toString()).id as string;

    // Release request and confirmation: each refused without its event, the hold as it was.
    const asked = await trailDown(() => json('POST', `/api/v1/holds/${id}/release`, KEYS.acmeAdmin, { reason: 'done' }));
    expect(asked.status).toBe(503);
    expect(codeOf(asked)).toBe('audit.unavailable');
    expect(await holdsOf()).toMatchObject([{ id, release_requested_by: null, released_at: null }]);
    expect((await json('POST', `/api/v1/holds/${id}/release`, KEYS.acmeAdmin, { reason: 'done' })).status).toBe(202);
    // A refusal stays the refusal when its event cannot be written: nothing was granted.
    const self = await trailDown(() => json('POST', `/api/v1/holds/${id}/release`, KEYS.acmeAdmin, {}));
    expect(self.status).toBe(409);
    expect(codeOf(self)).toBe('hold.second_admin_required');
    const confirmed = await trailDown(() => json('POST', `/api/v1/holds/${id}/release`, KEYS.acmeAdmin2));
    expect(confirmed.status).toBe(503);
    expect(await holdsOf()).toMatchObject([{ id, release_requested_by: 'root', released_at: null }]);
    expect((await json('POST', `/api/v1/holds/${id}/release`, KEYS.acmeAdmin2)).status).toBe(200);

    const trail = async (action: string) => (await eventsOf(action)).filter((e) => e.detail?.hold_id === id);
    expect(await trail('hold.create')).toMatchObject([{ outcome: 'completed', status: 201 }]);
    expect(await trail('hold.release_request')).toMatchObject([{ outcome: 'completed', status: 202 }]);
    expect(await trail('hold.release')).toMatchObject([{ outcome: 'completed', status: 200, principalId: 'carol' }]);
    expect((await gw.deps.auditRepo.verify()).ok).toBe(true);
  });

  it("cannot see or release another tenant's hold, and a duplicate matter is 409", async () => {
    const g = await json('POST', '/api/v1/recordings/globex_1/holds', KEYS.globexAdmin, { matter: 'G-1', reason: 'r' });
    expect(g.status).toBe(201);
    const gid = JSON.parse(g.body.toString()).id;
    const theirs = await json('POST', `/api/v1/holds/${gid}/release`, KEYS.acmeAdmin, {});
    expect(theirs.status).toBe(404);
    expect(codeOf(theirs)).toBe('hold.not_found');
    expect(JSON.parse((await json('GET', '/api/v1/holds', KEYS.acmeAdmin)).body.toString()).items.map((h: { id: string }) => h.id)).not.toContain(gid);
    const dup = await json('POST', '/api/v1/recordings/globex_1/holds', KEYS.globexAdmin, { matter: 'G-1', reason: 'again' });
    expect(dup.status).toBe(409);
    expect(codeOf(dup)).toBe('hold.duplicate');
  });

  it('an imported hold is lifted only by the four-eyes release; re-imports neither lift it nor place it again; export says held while it is', async () => {
    const file = join(gw.dir, 'held.jsonl');
    const out = join(gw.dir, 'export.jsonl');
    const record = { tenant_id: 'acme', call_id: 'c-imp', source_system: 'avaya_aura', legacy_archive_id: 'imp_1', locator: WAV, retention_expiry: PAST, legal_hold: true };
    const io = { out: () => {}, err: () => {} };
    /** `custodian import` of the lines; its admin.catalog.import event. */
    const importOf = async (lines: string[], exit = 0) => {
      const seen = new Set((await eventsOf('admin.catalog.import')).map((e) => e.id));
      writeFileSync(file, lines.join('\n') + '\n');
      expect(await importCommand(gw.deps, file, new Set(['acme', 'globex']), io)).toBe(exit);
      const fresh = (await eventsOf('admin.catalog.import')).filter((e) => !seen.has(e.id));
      expect(fresh).toHaveLength(1);
      return fresh[0]!;
    };
    const exported = async () => {
      expect(await exportCommand(gw.deps, { tenant: 'acme', out }, io)).toBe(0);
      return readFileSync(out, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { legacy_archive_id: string; legal_hold: boolean }).find((r) => r.legacy_archive_id === 'imp_1');
    };

    // All or nothing: a held record before a bad line places no hold (the hold is one of the import's writes).
    const importedHolds = async () => (await gw.catalogDb.db.selectFrom('legal_holds').select('id').where('tenant_id', '=', 'acme').where('matter', '=', 'imported').execute()).length;
    const before = await importedHolds();
    const refused = await importOf([JSON.stringify(record), '{"tenant_id":"acme"}'], 1);
    expect(refused).toMatchObject({ outcome: 'failed', detail: { reason: 'bad_rows' } });
    expect((await media('imp_1')).status).toBe(404);
    expect(await importedHolds()).toBe(before);

    const first = await importOf([JSON.stringify(record)]);
    expect(first).toMatchObject({ outcome: 'completed', detail: { inserted: 1, holds_placed: 1 } });
    const held = await media('imp_1');
    expect(held.status).toBe(200);
    expect(held.headers['x-retention-status']).toBe('LEGAL_HOLD');
    const id = JSON.parse((await json('GET', '/api/v1/recordings/imp_1', KEYS.acme)).body.toString()).id as string;
    const holdsOf = async () => JSON.parse((await json('GET', `/api/v1/holds?recording=${id}`, KEYS.acmeAuditor)).body.toString()).items as { id: string; matter: string; status: string }[];
    const [hold] = await holdsOf();
    expect(await holdsOf()).toMatchObject([{ matter: 'imported', status: 'active', created_by: 'catalog-import' }]);
    expect(JSON.parse((await json('GET', '/api/v1/holds?status=active', KEYS.acmeAdmin)).body.toString()).items.map((h: { id: string }) => h.id)).toContain(hold!.id);
    expect(await exported()).toMatchObject({ legal_hold: true });

    // The same file again: no second hold. legal_hold false: nothing released (only four eyes release).
    const again = await importOf([JSON.stringify(record)]);
    expect(again.detail).toMatchObject({ holds_placed: 0 });
    expect(await holdsOf()).toMatchObject([{ id: hold!.id, status: 'active' }]);
    await importOf([JSON.stringify({ ...record, legal_hold: false })]);
    expect((await media('imp_1')).headers['x-retention-status']).toBe('LEGAL_HOLD');
    expect(await holdsOf()).toMatchObject([{ id: hold!.id, status: 'active' }]);

    // Four eyes, like any hold: root asks, carol confirms; then the retention date applies again.
    expect((await json('POST', `/api/v1/holds/${hold!.id}/release`, KEYS.acmeAdmin, { reason: 'claim settled' })).status).toBe(202);
    expect((await media('imp_1')).headers['x-retention-status']).toBe('LEGAL_HOLD');
    const confirmed = await json('POST', `/api/v1/holds/${hold!.id}/release`, KEYS.acmeAdmin2);
    expect(confirmed.status, confirmed.body.toString()).toBe(200);
    expect(JSON.parse(confirmed.body.toString())).toMatchObject({ status: 'released', matter: 'imported', release_requested_by: 'root', released_by: 'carol' });
    const gone = await media('imp_1');
    expect(gone.status).toBe(410);
    expect(gone.headers['x-retention-status']).toBe('EXPIRED');
    const metaGone = await json('GET', '/api/v1/recordings/imp_1', KEYS.acme);
    expect(metaGone.status).toBe(410);
    expect(codeOf(metaGone)).toBe('recording.expired');
    expect(await exported()).toMatchObject({ legal_hold: false });

    // Re-importing the file that said legal_hold true does not re-place a hold two admins released.
    const after = await importOf([JSON.stringify(record)]);
    expect(after.detail).toMatchObject({ holds_placed: 0 });
    expect((await media('imp_1')).status).toBe(410);
    expect(await holdsOf()).toMatchObject([{ id: hold!.id, status: 'released' }]);
    expect((await eventsOf('hold.release')).filter((e) => e.detail?.hold_id === hold!.id)).toMatchObject([{ outcome: 'completed', principalId: 'carol', recordingPk: id }]);
    expect((await gw.deps.auditRepo.verify()).ok).toBe(true);
  });
  it("an import re-linking a held recording's only copy to another call: the hold follows the copy, the media stays served under it", async () => {
    await gw.seed([
      { call_id: 'c-mv1', legacy_archive_id: 'mv_L1', locator: WAV, retention_expiry: PAST },
      { call_id: 'c-mv2', source_system: 'verint', legacy_archive_id: 'mv_V2', locator: WAV, retention_expiry: PAST },
    ]);
    const placed = await json('POST', '/api/v1/recordings/mv_L1/holds', KEYS.acmeAdmin, { matter: 'Jones v Acme', reason: 'litigation' });
    expect(placed.status, placed.body.toString()).toBe(201);
    const hold = JSON.parse(placed.body.toString()) as { id: string; recording_id: string };
    const before = await media('mv_L1');
    expect(before.status).toBe(200);
    expect(before.headers['x-retention-status']).toBe('LEGAL_HOLD');
    const copyId = JSON.parse((await json('GET', '/api/v1/recordings/mv_L1', KEYS.acme)).body.toString()).copies.find((c: { legacy_archive_id: string }) => c.legacy_archive_id === 'mv_L1').id as string;

    // The same copy, now linked to another call.
    const file = join(gw.dir, 'move.jsonl');
    writeFileSync(file, JSON.stringify({ tenant_id: 'acme', call_id: 'c-mv2', source_system: 'avaya_aura', legacy_archive_id: 'mv_L1' }) + '\n');
    const seen = new Set((await eventsOf('admin.catalog.import')).map((e) => e.id));
    expect(await importCommand(gw.deps, file, new Set(['acme', 'globex']), { out: () => {}, err: () => {} })).toBe(0);
    const imported = (await eventsOf('admin.catalog.import')).filter((e) => !seen.has(e.id));
    expect(imported).toMatchObject([{ outcome: 'completed', detail: { updated: 1, holds_placed: 1 } }]);

    const after = await media('mv_L1');
    expect(after.status, after.body.toString()).toBe(200);
    expect(after.headers['x-retention-status']).toBe('LEGAL_HOLD');
    const meta = JSON.parse((await json('GET', '/api/v1/recordings/mv_L1', KEYS.acme)).body.toString());
    expect(meta).toMatchObject({ call_id: 'c-mv2', retention_status: 'LEGAL_HOLD', legal_hold: true });
    const followed = JSON.parse((await json('GET', `/api/v1/holds?recording=${meta.id}`, KEYS.acmeAuditor)).body.toString()).items;
    expect(followed).toMatchObject([{ matter: 'Jones v Acme', status: 'active', created_by: 'catalog-import' }]);
    expect(followed[0].reason).toContain(`copy ${copyId}`);
    expect(followed[0].reason).toContain(`recording ${hold.recording_id}`);
    // The original hold is where it was, active: nothing was lifted.
    const original = JSON.parse((await json('GET', `/api/v1/holds?recording=${hold.recording_id}`, KEYS.acmeAuditor)).body.toString()).items;
    expect(original).toMatchObject([{ id: hold.id, status: 'active' }]);
    expect((await gw.deps.auditRepo.verify()).ok).toBe(true);
  });

  it('two admins asking for the same release: one 202, the other never told the hold is released while it is not', async () => {
    const placed = await json('POST', '/api/v1/recordings/two_a/holds', KEYS.acmeAdmin, { matter: 'M-race', reason: 'r' });
    expect(placed.status).toBe(201);
    const id = JSON.parse(placed.body.toString()).id as string;
    const [a, b] = await Promise.all([json('POST', `/api/v1/holds/${id}/release`, KEYS.acmeAdmin, {}), json('POST', `/api/v1/holds/${id}/release`, KEYS.acmeAdmin2, {})]);
    const outcomes = [a, b].map((r) => (r.status === 409 ? codeOf(r) : r.status)).sort();
    // Serialised the later call confirms; interleaved (PostgreSQL) it is told the release is requested.
    expect([[200, 202], [202, 'hold.release_already_requested']]).toContainEqual(outcomes);
    const now = JSON.parse((await json('GET', '/api/v1/holds?recording=' + JSON.parse(placed.body.toString()).recording_id, KEYS.acmeAuditor)).body.toString()).items.find((h: { id: string }) => h.id === id);
    expect(now.status).toBe(outcomes.includes(200) ? 'released' : 'release_requested');
  });
});
