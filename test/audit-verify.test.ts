import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { usableCatalogs } from './support/catalogs.js';
import { KEYS, bearer, startTestGateway, type TestGateway } from './support/gateway.js';
import { raw } from './support/http.js';

/**
 * GET /api/v1/audit/verify walks the one chain every tenant's events share (docs/AUDIT.md). Every
 * caller — a tenant's `admin` too: the scope is granted per tenant — learns whether the chain holds, never how many
 * events it has, its head hash, how many checkpoints cover it, or where another tenant's event
 * broke it: polled, those would tell one tenant's auditor how busy the other tenants are.
 */
describe.each(await usableCatalogs())('GET /api/v1/audit/verify per caller on %s', (kind) => {
  let gw: TestGateway;
  const verify = async (key: string) => {
    const r = await raw(`${gw.url}/api/v1/audit/verify`, { headers: bearer(key) });
    expect(r.status, r.body.toString()).toBe(200);
    return { body: JSON.parse(r.body.toString()) as Record<string, any>, text: r.body.toString() };
  };

  beforeAll(async () => {
    gw = await startTestGateway({ catalog: kind });
    await gw.seed([
      { call_id: 'c-a', legacy_archive_id: 'a_1', locator: 'call_mono_pcm16_8k.wav' },
      { tenant_id: 'globex', call_id: 'c-g', legacy_archive_id: 'g_1', locator: 'call_mono_pcm16_8k.wav' },
    ]);
    for (let i = 0; i < 3; i++) {
      expect((await raw(`${gw.url}/api/v1/recordings/a_1`, { headers: bearer(KEYS.acme) })).status).toBe(200);
      expect((await raw(`${gw.url}/api/v1/recordings/g_1`, { headers: bearer(KEYS.globex) })).status).toBe(200);
    }
    expect(await gw.deps.checkpointer!.checkpoint()).toBeTruthy();
  });
  afterAll(async () => gw?.stop());

  it("a tenant's auditor learns that the chain holds and is signed, not its size or head", async () => {
    const { body } = await verify(KEYS.acmeAuditor);
    expect(body).toEqual({ ok: true, checkpointed: true });
  });

  it("a tenant's admin gets the same view: admin is granted per tenant, and the whole walk is the operator's (custodian audit verify)", async () => {
    const { body, text } = await verify(KEYS.acmeAdmin);
    expect(body).toEqual({ ok: true, checkpointed: true });
    expect(text).not.toContain((await gw.deps.auditRepo.head())!.hash);
  });

  it("a break in another tenant's event: not ok with the reason, without that event's seq or id; its owner and an admin see where", async () => {
    const victim = (await gw.deps.auditRepo.query({ tenantId: 'globex', action: 'recording.metadata', limit: 10 })).items[1]!;
    if (kind === 'postgres') await sql`drop trigger audit_events_no_change on audit_events`.execute(gw.catalogDb.db);
    else await sql`drop trigger audit_events_no_update`.execute(gw.catalogDb.db);
    await gw.catalogDb.db.updateTable('audit_events').set({ client_ip: '203.0.113.9' }).where('id', '=', victim.id).execute();

    const acme = await verify(KEYS.acmeAuditor);
    expect(acme.body).toEqual({ ok: false, checkpointed: false, broken: { reason: 'hash_mismatch' } });
    expect(acme.text).not.toContain(victim.id);

    const globex = await verify(KEYS.globex);
    expect(globex.body).toEqual({ ok: false, checkpointed: false, broken: { reason: 'hash_mismatch', seq: victim.seq, id: victim.id } });

    const admin = await verify(KEYS.acmeAdmin);
    expect(admin.body).toEqual({ ok: false, checkpointed: false, broken: { reason: 'hash_mismatch' } });
    // The operator's walk (what `custodian audit verify` runs) names it.
    expect(await gw.deps.auditRepo.verify()).toMatchObject({ ok: false, broken: { reason: 'hash_mismatch', seq: victim.seq, id: victim.id } });
  });
});

/**
 * An event whose stored `detail` is not JSON at all (a row edited by someone who can drop the
 * triggers): verify names it as the first broken link (`hash_mismatch` at its seq) instead of
 * throwing, and no read of the trail — any tenant's — fails because of it (docs/AUDIT.md).
 */
describe.each(await usableCatalogs())('an event whose detail is not JSON, on %s', (kind) => {
  let gw: TestGateway;
  const get = (path: string, key: string) => raw(`${gw.url}${path}`, { headers: bearer(key) });

  beforeAll(async () => {
    gw = await startTestGateway({ catalog: kind });
    await gw.seed([
      { call_id: 'c-a', legacy_archive_id: 'a_1', locator: 'call_mono_pcm16_8k.wav' },
      { tenant_id: 'globex', call_id: 'c-g', legacy_archive_id: 'g_1', locator: 'call_mono_pcm16_8k.wav' },
    ]);
    for (let i = 0; i < 2; i++) {
      expect((await raw(`${gw.url}/api/v1/recordings/a_1/media?format=original&purpose=p${i}`, { headers: bearer(KEYS.acme) })).status).toBe(200);
      expect((await raw(`${gw.url}/api/v1/recordings/g_1`, { headers: bearer(KEYS.globex) })).status).toBe(200);
    }
  });
  afterAll(async () => gw?.stop());

  it('verify reports hash_mismatch at its seq; /audit/verify and /audit/events answer every tenant; the checkpointer logs a broken chain', async () => {
    const victim = (await gw.deps.auditRepo.query({ tenantId: 'acme', action: 'recording.media', limit: 10 })).items[0]!;
    expect(victim.detail).toMatchObject({ purpose: 'p0' });
    if (kind === 'postgres') await sql`drop trigger audit_events_no_change on audit_events`.execute(gw.catalogDb.db);
    else await sql`drop trigger audit_events_no_update`.execute(gw.catalogDb.db);
    await gw.catalogDb.db.updateTable('audit_events').set({ detail: '{"purpose":' }).where('id', '=', victim.id).execute();

    // The operator's walk names it.
    expect(await gw.deps.auditRepo.verify()).toMatchObject({ ok: false, broken: { reason: 'hash_mismatch', seq: victim.seq, id: victim.id } });
    expect(await gw.deps.auditRepo.verifySegment(null, (await gw.deps.auditRepo.head())!.seq)).toEqual({ ok: false, seq: victim.seq, reason: 'hash_mismatch' });

    // Each tenant's view: 200, not ok; the owner learns where.
    const mine = await get('/api/v1/audit/verify', KEYS.acmeAuditor);
    expect(mine.status, mine.body.toString()).toBe(200);
    expect(JSON.parse(mine.body.toString())).toEqual({ ok: false, checkpointed: false, broken: { reason: 'hash_mismatch', seq: victim.seq, id: victim.id } });
    const theirs = await get('/api/v1/audit/verify', KEYS.globex);
    expect(theirs.status, theirs.body.toString()).toBe(200);
    expect(JSON.parse(theirs.body.toString())).toEqual({ ok: false, checkpointed: false, broken: { reason: 'hash_mismatch' } });

    // Reading the trail: another tenant is untouched; the owner gets the row, its detail flagged as unreadable with the stored text.
    const globexEvents = await get('/api/v1/audit/events?limit=1000', KEYS.globex);
    expect(globexEvents.status, globexEvents.body.toString()).toBe(200);
    const acmeEvents = await get('/api/v1/audit/events?limit=1000', KEYS.acmeAuditor);
    expect(acmeEvents.status, acmeEvents.body.toString()).toBe(200);
    const row = (JSON.parse(acmeEvents.body.toString()) as { items: Record<string, unknown>[] }).items.find((e) => e.id === victim.id);
    expect(row).toMatchObject({ id: victim.id, seq: victim.seq, detail: null, detailUnreadable: '{"purpose":' });
    // Readable events carry no such flag.
    const other = (JSON.parse(acmeEvents.body.toString()) as { items: Record<string, unknown>[] }).items.find((e) => e.id !== victim.id)!;
    expect(other).not.toHaveProperty('detailUnreadable');
    expect(await gw.deps.auditRepo.byId(victim.id)).toMatchObject({ detail: null, detailUnreadable: '{"purpose":' });

    // An export still streams it, as stored (the offline verifier then fails its hash).
    const exp = await get('/api/v1/audit/export?from=2000-01-01T00:00:00Z&to=2999-01-01T00:00:00Z', KEYS.acmeAuditor);
    expect(exp.status).toBe(200);
    const line = exp.body.toString().split('\n').find((l) => l.includes(victim.id));
    expect(JSON.parse(line!)).toMatchObject({ type: 'event', id: victim.id, detail: '{"purpose":' });

    // The checkpointer refuses to sign over it and says why (not "checkpoint failed").
    await expect(gw.deps.checkpointer!.checkpoint()).resolves.toBeNull();
    expect(gw.logs.join('\n')).toContain('the audit chain is broken');
    expect(gw.logs.join('\n')).not.toContain('audit checkpoint failed');
  });
});
