import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CATALOGS, catalogAvailable, openTestCatalog, type TestCatalog } from '../../test/support/catalogs.js';
import { Secret } from '../config/secret.js';
import { AppError } from '../errors.js';
import { ApiKeyService, type StaticKey } from './api-keys.js';

const AVAILABLE: Record<string, boolean> = {};
for (const k of CATALOGS) AVAILABLE[k] = await catalogAvailable(k);

const STATIC_KEY = 'cst_ops-bot_' + 'S'.repeat(40);
const statics: StaticKey[] = [{ id: 'ops-bot', tenant: 'acme', principal: 'ops', scopes: ['recordings:read', 'audit:read'], key: new Secret(STATIC_KEY, 'inline') }];

async function authError(p: Promise<unknown>): Promise<AppError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(AppError);
  expect((e as AppError).code).toBe('auth.invalid_token');
  expect((e as AppError).status).toBe(401);
  return e as AppError;
}

describe.each(CATALOGS)('ApiKeyService on %s', (kind) => {
  let cat: TestCatalog;
  let svc: ApiKeyService;
  beforeAll(async () => {
    if (!AVAILABLE[kind]) return;
    cat = await openTestCatalog(kind);
    svc = new ApiKeyService(cat.db, statics);
  });
  afterAll(async () => {
    await cat?.dispose();
  });
  const test = AVAILABLE[kind] ? it : it.skip;

  test('authenticates a static key from the config', async () => {
    const p = await svc.authenticate(STATIC_KEY);
    expect(p).toEqual({ id: 'ops', tenantId: 'acme', scopes: new Set(['recordings:read', 'audit:read']), kind: 'api_key', credentialId: 'ops-bot' });
    expect(ApiKeyService.looksLikeKey(STATIC_KEY)).toBe(true);
    expect(ApiKeyService.looksLikeKey('eyJhbGciOi.x.y')).toBe(false);
  });

  test('refuses a static key id with the wrong secret', async () => {
    await authError(svc.authenticate('cst_ops-bot_' + 'T'.repeat(40)));
    await authError(svc.authenticate(STATIC_KEY.slice(0, -1)));
    await authError(svc.authenticate(STATIC_KEY + 'x'));
  });

  test('issues keys stored only as a hash, and authenticates them', async () => {
    const issued = await svc.issue('globex', 'auditor-7', ['audit:read', 'recordings:read'], 'quarterly audit');
    expect(issued.key).toMatch(/^cst_[A-Za-z0-9-]{3,64}_[A-Za-z0-9_-]{40,}$/);
    expect(issued.key.startsWith(`cst_${issued.id}_`)).toBe(true);
    const secretPart = issued.key.slice(`cst_${issued.id}_`.length);
    const row = await cat.db.selectFrom('api_keys').selectAll().where('id', '=', issued.id).executeTakeFirstOrThrow();
    expect(row).toMatchObject({ tenant_id: 'globex', principal_id: 'auditor-7', description: 'quarterly audit', revoked_at: null });
    expect(row.key_hash).toBe(createHash('sha256').update(issued.key).digest('hex'));
    const text = JSON.stringify(row);
    expect(text).not.toContain(issued.key);
    expect(text).not.toContain(secretPart);
    expect(text).not.toContain(secretPart.slice(0, 16));

    const p = await svc.authenticate(issued.key);
    expect(p).toEqual({ id: 'auditor-7', tenantId: 'globex', scopes: new Set(['audit:read', 'recordings:read']), kind: 'api_key', credentialId: issued.id });
    // Two issued keys never collide.
    const other = await svc.issue('globex', 'auditor-7', ['audit:read']);
    expect(other.id).not.toBe(issued.id);
    expect(other.key).not.toBe(issued.key);
  });

  test('refuses a known id with a wrong secret, and an unknown id', async () => {
    const issued = await svc.issue('acme', 'bob', ['recordings:read']);
    await authError(svc.authenticate(`cst_${issued.id}_${'A'.repeat(43)}`));
    await authError(svc.authenticate(`cst_unknown-id_${'A'.repeat(43)}`));
    // The key of one id presented under another id is not valid either.
    const secretPart = issued.key.slice(`cst_${issued.id}_`.length);
    await authError(svc.authenticate(`cst_ops-bot_${secretPart}`));
  });

  test('refuses revoked keys; revoking twice reports nothing to revoke', async () => {
    const issued = await svc.issue('acme', 'carol', ['recordings:export']);
    expect((await svc.authenticate(issued.key)).id).toBe('carol');
    expect(await svc.revoke(issued.id)).toBe(true);
    await authError(svc.authenticate(issued.key));
    expect(await svc.revoke(issued.id)).toBe(false);
    expect(await svc.revoke('never-issued')).toBe(false);
    const row = await cat.db.selectFrom('api_keys').select('revoked_at').where('id', '=', issued.id).executeTakeFirstOrThrow();
    expect(row.revoked_at).not.toBeNull();
  });

  test('drops unknown scopes stored with a key', async () => {
    const issued = await svc.issue('acme', 'dave', ['recordings:read']);
    await cat.db.updateTable('api_keys').set({ scopes: JSON.stringify(['recordings:read', 'superuser']) }).where('id', '=', issued.id).execute();
    expect([...(await svc.authenticate(issued.key)).scopes]).toEqual(['recordings:read']);
  });

  test.each([
    ['empty', ''],
    ['the prefix only', 'cst_'],
    ['no secret', 'cst_ops-bot_'],
    ['a short secret', 'cst_ops-bot_short'],
    ['a short id', 'cst_ab_' + 'x'.repeat(20)],
    ['another scheme', 'Bearer ' + STATIC_KEY],
    ['white space', STATIC_KEY + ' '],
    ['a newline', STATIC_KEY + '\n'],
    ['non-ASCII', 'cst_ops-bot_' + 'é'.repeat(20)],
    ['an over-long secret', 'cst_ops-bot_' + 'x'.repeat(129)],
    ['SQL', "cst_x' or '1'='1_" + 'x'.repeat(20)],
  ])('refuses a malformed key (%s)', async (_name, key) => {
    const e = await authError(svc.authenticate(key));
    expect(e.message).toMatch(/malformed/);
  });

  test('refuses a static key whose value does not match its id, at construction', () => {
    const bad = (id: string, key: string) => () => new ApiKeyService(cat.db, [{ ...statics[0]!, id, key: new Secret(key, 'inline') }]);
    expect(bad('ops-bot', 'cst_other_' + 'x'.repeat(20))).toThrow(/auth\.api_keys: key "ops-bot" must have the form cst_ops-bot_/);
    expect(bad('ops-bot', 'plain-password')).toThrow(/ops-bot/);
    // The message never carries the configured value.
    try {
      bad('ops-bot', 'cst_other_' + 'x'.repeat(20))();
    } catch (e) {
      expect((e as Error).message).not.toContain('x'.repeat(20));
    }
  });
});
