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
