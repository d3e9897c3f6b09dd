import { writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditRepository } from '../src/audit/audit-repository.js';
import type { AuditEvent } from '../src/audit/event.js';
import { auditExportLines, type ExportManifest } from '../src/audit/export.js';
import { usableCatalogs } from './support/catalogs.js';
import { KEYS, bearer, startTestGateway, type TestGateway } from './support/gateway.js';
import { raw } from './support/http.js';

/**
 * A `recording.not_found` of a ref lookup writes exactly one companion event in the caller's commit,
 * right after the caller's own, whoever holds the ref (http/evidence.ts, docs/AUDIT.md "A ref of
 * another tenant"): the owner's `recording.cross_tenant_attempt` (naming its recording) when one
 * tenant holds it, else the operator's `recording.lookup_miss`; several owners get theirs after that
 * commit. And a tenant's export does not carry the head of the chain every tenant shares.
 */
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const SCRIPT = join(ROOT, 'scripts', 'verify-audit-export.mjs');

describe.each(await usableCatalogs())('the companion of a 404 for a ref, on %s', (kind) => {
  let gw: TestGateway;
  let repo: AuditRepository;
  /** Per commit, the events it carried (what the repository tells its listeners). */
  const commits: AuditEvent[][] = [];

  beforeAll(async () => {
    gw = await startTestGateway({ catalog: kind, config: (doc) => (doc.auth.rate_limit = { max: 10_000, window_ms: 60_000 }) });
    await gw.seed([
      { tenant_id: 'globex', call_id: 'g-only', legacy_archive_id: 'globex_only', locator: 'call_mono_pcm16_8k.wav' },
      { tenant_id: 'globex', call_id: 'g-shared', legacy_archive_id: 'shared_ref', locator: 'call_mono_pcm16_8k.wav' },
      { tenant_id: 'initech', call_id: 'i-shared', legacy_archive_id: 'shared_ref', locator: 'call_mono_pcm16_8k.wav' },
      // A ref that names two recordings of globex: its own lookup would be ambiguous.
      { tenant_id: 'globex', call_id: 'twice_ref', legacy_archive_id: 'g-twice-1', locator: 'call_mono_pcm16_8k.wav' },
      { tenant_id: 'globex', call_id: 'g-twice-2', legacy_archive_id: 'g-twice-2', customer_ref: 'twice_ref', locator: 'call_mono_pcm16_8k.wav' },
    ]);
    repo = gw.deps.audit.repo as AuditRepository;
    const published = repo.published.bind(repo);
    repo.published = (events) => {
      commits.push(events);
      published(events);
    };
  });
  afterAll(async () => gw?.stop());

  const probe = async (ref: string) => {
    const r = await raw(`${gw.url}/api/v1/recordings/${ref}`, { headers: bearer(KEYS.acme) });
    expect(r.status, r.body.toString()).toBe(404);
    return r.headers['x-request-id'] as string;
  };
  /** The caller's commit: the one that carried its own (acme) event. */
  const callersCommit = (rid: string) => commits.find((c) => c.some((e) => e.httpRequestId === rid && e.tenantId === 'acme'))!;
  const eventsOf = async (rid: string) =>
    (await gw.catalogDb.db.selectFrom('audit_events').selectAll().where('http_request_id', '=', rid).orderBy('seq').execute()).map((r) => ({
      seq: Number(r.seq),
      tenantId: r.tenant_id,
      action: r.action,
      recordingPk: r.recording_pk,
      detail: r.detail === null ? null : (JSON.parse(r.detail) as Record<string, unknown>),
      prevHash: r.prev_hash,
      hash: r.hash,
    }));
  const pkOf = async (tenant: string, ref: string) => (await gw.deps.recordings.findByRef(tenant, ref))!.id;

  it('one owner, no owner, several owners: two rows of this request in the caller’s commit, the companion right after the caller’s event', async () => {
    const one = await probe('globex_only');
    const none = await probe('nobody_holds');
    const several = await probe('shared_ref');
    for (const rid of [one, none, several]) {
      const mine = callersCommit(rid).filter((e) => e.httpRequestId === rid);
      expect(mine, rid).toHaveLength(2);
      expect(mine[1]!.seq).toBe(mine[0]!.seq + 1);
      expect(mine[1]!.prevHash).toBe(mine[0]!.hash);
    }
    expect((await eventsOf(one)).map(({ tenantId, action, recordingPk }) => ({ tenantId, action, recordingPk }))).toEqual([
      { tenantId: 'acme', action: 'recording.metadata', recordingPk: null },
      { tenantId: 'globex', action: 'recording.cross_tenant_attempt', recordingPk: await pkOf('globex', 'globex_only') },
    ]);
    expect((await eventsOf(none)).map(({ tenantId, action, detail }) => ({ tenantId, action, detail }))).toEqual([
      expect.objectContaining({ tenantId: 'acme', action: 'recording.metadata' }),
      { tenantId: null, action: 'recording.lookup_miss', detail: { requesting_tenant: 'acme', owning_tenants: [] } },
    ]);
  });

  it("several owners: the operator's companion names them, and each owner gets its event after the caller's commit", async () => {
    const rid = await probe('shared_ref');
    let events = await eventsOf(rid);
    for (let i = 0; i < 100 && events.length < 4; i++) {
      await new Promise((r) => setTimeout(r, 20));
      events = await eventsOf(rid);
    }
    const [own, companion, ...owners] = events;
    expect(own).toMatchObject({ tenantId: 'acme', action: 'recording.metadata' });
    expect(companion).toMatchObject({ seq: own!.seq + 1, tenantId: null, action: 'recording.lookup_miss', detail: { requesting_tenant: 'acme', owning_tenants: ['globex', 'initech'] } });
    expect(owners.map(({ tenantId, action, recordingPk }) => ({ tenantId, action, recordingPk })).sort((a, b) => a.tenantId!.localeCompare(b.tenantId!))).toEqual([
      { tenantId: 'globex', action: 'recording.cross_tenant_attempt', recordingPk: await pkOf('globex', 'shared_ref') },
      { tenantId: 'initech', action: 'recording.cross_tenant_attempt', recordingPk: await pkOf('initech', 'shared_ref') },
    ]);
    // Not in the caller's commit.
    const ownersIds = new Set(owners.map((o) => o.seq));
    expect(callersCommit(rid).some((e) => ownersIds.has(e.seq))).toBe(false);
  });

  it('a ref naming two recordings of its owner: the owner still has the attempt, without a recording', async () => {
    expect(await gw.deps.recordings.otherTenantsRecordingsOfRef('twice_ref', 'acme')).toEqual([{ tenantId: 'globex', recordingPk: null }]);
    expect(await gw.deps.recordings.otherTenantsRecordingsOfRef('shared_ref', 'globex')).toEqual([{ tenantId: 'initech', recordingPk: await pkOf('initech', 'shared_ref') }]);
    expect(await gw.deps.recordings.otherTenantsRecordingsOfRef('nobody_holds', 'acme')).toEqual([]);
    const rid = await probe('twice_ref');
    expect((await eventsOf(rid)).map(({ tenantId, action, recordingPk }) => ({ tenantId, action, recordingPk }))).toEqual([
      { tenantId: 'acme', action: 'recording.metadata', recordingPk: null },
      { tenantId: 'globex', action: 'recording.cross_tenant_attempt', recordingPk: null },
    ]);
  });

  it("the owner's auditor finds the attempt by recording (?recording=)", async () => {
    const rid = await probe('globex_only');
    const pk = await pkOf('globex', 'globex_only');
    const r = await raw(`${gw.url}/api/v1/audit/events?recording=${pk}&action=recording.cross_tenant_attempt&limit=1000`, { headers: bearer(KEYS.globex) });
    expect(r.status, r.body.toString()).toBe(200);
    const items = (JSON.parse(r.body.toString()) as { items: AuditEvent[] }).items;
    expect(items.filter((e) => e.httpRequestId === rid)).toMatchObject([{ tenantId: 'globex', ref: 'globex_only', recordingPk: pk, detail: { requesting_tenant: 'acme' } }]);
  });

  it("a tenant's export has no chain head and none of the operator's companions, and still verifies offline; the whole-chain export pins the head", async () => {
    await probe('nobody_holds');
    const from = new Date(Date.now() - 3_600_000).toISOString();
    const to = new Date(Date.now() + 60_000).toISOString();
    const key = JSON.parse((await raw(`${gw.url}/api/v1/audit/signing-key`, { headers: bearer(KEYS.acmeAuditor) })).body.toString()) as { public_key: string };
    const pinned = join(gw.dir, 'companion-pinned.pem');
    writeFileSync(pinned, key.public_key);

    const res = await raw(`${gw.url}/api/v1/audit/export?from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}`, { headers: bearer(KEYS.acmeAuditor) });
    expect(res.status).toBe(200);
    const lines = res.body.toString('utf8').split('\n').filter(Boolean);
    const manifest = JSON.parse(JSON.parse(lines.at(-1)!).manifest) as ExportManifest;
    expect(manifest.scope.tenant).toBe('acme');
    expect(manifest).not.toHaveProperty('chain_head');
    const events = lines.slice(0, -1).map((l) => JSON.parse(l) as { tenantId: string | null; action: string });
    expect(events.length).toBeGreaterThan(0);
    expect(events.every((e) => e.tenantId === 'acme')).toBe(true);
    expect(events.some((e) => e.action === 'recording.lookup_miss')).toBe(false);
    const file = join(gw.dir, 'companion-export.jsonl');
    writeFileSync(file, res.body);
    const v = spawnSync(process.execPath, [SCRIPT, file, '--pubkey', pinned], { encoding: 'utf8', cwd: '/' });
    expect(v.status, v.stdout + v.stderr).toBe(0);
    expect(JSON.parse(v.stdout.trim())).toMatchObject({ ok: true, contiguous: false, scope: { tenant: 'acme' } });

    // The operator's whole-chain export (custodian audit export without --tenant) keeps the head.
    const whole: string[] = [];
    for await (const l of auditExportLines(gw.deps.auditRepo, gw.deps.keys, { from, to })) whole.push(l);
    const wholeManifest = JSON.parse(JSON.parse(whole.at(-1)!).manifest) as ExportManifest;
    expect(wholeManifest.chain_head).toEqual({ seq: expect.any(Number), hash: expect.stringMatching(/^[0-9a-f]{64}$/) });
    expect(wholeManifest.chain_head!.seq).toBeGreaterThanOrEqual(wholeManifest.last_seq!);
    // And a CLI export of one tenant is a tenant export: no head either.
    const one: string[] = [];
    for await (const l of auditExportLines(gw.deps.auditRepo, gw.deps.keys, { from, to, tenantId: 'globex' })) one.push(l);
    expect(JSON.parse(JSON.parse(one.at(-1)!).manifest)).not.toHaveProperty('chain_head');
  });
});
