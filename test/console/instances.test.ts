import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EvidenceJobStore } from '../../src/console/evidence/job-store.js';
import { type CatalogKind, catalogAvailable, openTestCatalog, type TestCatalog, usableCatalogs } from '../support/catalogs.js';
import type { TestGateway } from '../support/gateway.js';
import { CONSOLE_KEY, startConsoleGateway, unzip, verifyPackage } from './support.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const auth = { authorization: `Bearer ${CONSOLE_KEY}` };
const PURPOSE = 'Case 2024-300: durable export';
const TTL_MS = 4000;

/**
 * Evidence jobs are rows of the catalog (evidence_jobs), not memory: two gateways share one
 * catalog and one data directory (keys, staging). A takes the request but builds nothing
 * (jobs.concurrency 0); an "instance" that claimed the job died (its lease lapsed); B takes it
 * over and builds it; A reports progress and serves the ZIP, B serves ranges; both see it expire.
 * Media tickets are sealed with a key both share: issued on one, played and revoked on the other.
 */
describe.each(['sqlite', 'postgres'] as CatalogKind[])('durable evidence jobs across instances (%s)', async (kind) => {
  const run = await catalogAvailable(kind);
  let a: TestGateway;
  let b: TestGateway | undefined;
  let work: string;

  beforeAll(async () => {
    if (!run) return;
    work = mkdtempSync(join(tmpdir(), 'custodian-evjobs-'));
    a = await startConsoleGateway(
      (doc) => {
        doc.jobs = { concurrency: 0, staging_ttl_ms: TTL_MS, poll_interval_ms: 50 };
      },
      { catalog: kind },
    );
  }, 60_000);

  afterAll(async () => {
    await b?.stop();
    await a?.stop();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it.skipIf(!run)('a job started on A, whose first builder died, is built by B; A reports progress and serves it; it expires everywhere', async () => {
    const res = await fetch(`${a.url}/api/v1/evidence`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ refs: ['avaya_8923', 'v_2001', 'v_2002', 'ms_1001'], purpose: PURPOSE, mode: 'job' }),
    });
    expect(res.status).toBe(202);
    const { job_id, poll_endpoint } = (await res.json()) as { job_id: string; poll_endpoint: string };
    const status = async (gw: TestGateway) => (await (await fetch(`${gw.url}${poll_endpoint}`, { headers: auth })).json()) as Record<string, any>;
    expect(await status(a)).toMatchObject({ status: 'queued', progress: { recordings_total: 4, recordings_done: 0 } });

    // An instance claims it and dies at once: its lease lapses.
    const ghost = await new EvidenceJobStore(a.catalogDb).claim('ghost-instance', 1);
    expect(ghost?.id).toBe(job_id);
    await new Promise((r) => setTimeout(r, 20));
    expect((await status(a)).status).toBe('running');

    b = await startConsoleGateway(
      (doc) => {
        doc.data_dir = a.dir;
        doc.jobs = { concurrency: 1, staging_ttl_ms: TTL_MS, poll_interval_ms: 50 };
      },
      { deps: { catalog: { ...a.catalogDb, close: async () => {} } } },
    );
    let s: Record<string, any> = {};
    for (let i = 0; i < 200 && s.status !== 'ready'; i++) {
      s = await status(a);
      if (s.status === 'failed') throw new Error(JSON.stringify(s));
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(s).toMatchObject({ status: 'ready', progress: { recordings_total: 4, recordings_done: 4 }, content_endpoint: `/api/v1/evidence/jobs/${job_id}/content` });
    expect(s.progress.files_done).toBeGreaterThan(10);

    // A serves the ZIP B built (shared staging, the wrapped data key from the row).
    const zip = Buffer.from(await (await fetch(`${a.url}${s.content_endpoint}`, { headers: auth })).arrayBuffer());
    expect(zip.length).toBe(s.size);
    const { manifest } = verifyPackage(await unzip(zip), join(work, 'pkg'));
    expect(manifest).toMatchObject({ purpose: PURPOSE, complete: true, created_by: { principal: 'carol', tenant: 'acme' } });
    const part = await fetch(`${b.url}${s.content_endpoint}`, { headers: { ...auth, range: 'bytes=0-99' } });
    expect(part.status).toBe(206);
    expect(Buffer.from(await part.arrayBuffer())).toEqual(zip.subarray(0, 100));

    const end = (await a.deps.auditRepo.query({ tenantId: 'acme', limit: 1000 })).items.filter((e) => e.action === 'evidence.export.end');
    expect(end).toHaveLength(1);
    expect(end[0]).toMatchObject({ outcome: 'completed', sha256: s.sha256, detail: expect.objectContaining({ job_id, instance: b.deps.instanceId, attempt: 2 }) });

    // Past the TTL, whichever instance sweeps first purges it; both answer 410.
    for (let i = 0; i < 200 && s.status !== 'expired'; i++) {
      await new Promise((r) => setTimeout(r, 100));
      s = await status(b);
    }
    expect(s.status).toBe('expired');
    const gone = await fetch(`${a.url}/api/v1/evidence/jobs/${job_id}/content`, { headers: auth });
    expect(gone.status).toBe(410);
    expect(await gone.json()).toMatchObject({ code: 'job.expired' });
  }, 60_000);

  it.skipIf(!run)('a media ticket issued by A plays on B (Range), and a revocation on B kills it on A', async () => {
    const issued = await fetch(`${a.url}/api/v1/media-tickets`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ ref: 'avaya_8923', purpose: PURPOSE }) });
    expect(issued.status).toBe(201);
    const t = (await issued.json()) as { ticket_id: string; media_url: string };
    const onB = await fetch(`${b!.url}${t.media_url}`, { headers: { range: 'bytes=0-43' } });
    expect(onB.status).toBe(206);
    expect(Buffer.from(await onB.arrayBuffer()).subarray(0, 4).toString()).toBe('RIFF');
    expect((await fetch(`${a.url}${t.media_url}`, { headers: { range: 'bytes=44-99' } })).status).toBe(206);
    const plays = (await a.deps.auditRepo.query({ tenantId: 'acme', limit: 1000 })).items.filter((e) => e.action === 'recording.media' && (e.detail as { ticket_id?: string })?.ticket_id === t.ticket_id);
    expect(plays.map((e) => e.principalId)).toEqual(['carol', 'carol']);
    expect((await fetch(`${b!.url}/api/v1/media-tickets/${t.ticket_id}`, { method: 'DELETE', headers: auth })).status).toBe(204);
    const dead = await fetch(`${a.url}${t.media_url}`, { headers: { range: 'bytes=0-43' } });
    expect(dead.status).toBe(401);
    expect(await dead.json()).toMatchObject({ code: 'auth.invalid_token' });
  });

  it.skipIf(!run)('another tenant, or another principal without admin, does not see the job', async () => {
    const res = await fetch(`${a.url}/api/v1/evidence`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ refs: ['v_2001'], purpose: PURPOSE, mode: 'job' }) });
    const { poll_endpoint } = (await res.json()) as { poll_endpoint: string };
    const { KEYS } = await import('../support/gateway.js');
    for (const key of [KEYS.globexAdmin, KEYS.acmeNoScope]) {
      const r = await fetch(`${b!.url}${poll_endpoint}`, { headers: { authorization: `Bearer ${key}` } });
      expect(r.status).toBe(404);
    }
    const admin = await fetch(`${b!.url}${poll_endpoint}`, { headers: { authorization: `Bearer ${KEYS.acmeAdmin}` } });
    expect(admin.status).toBe(200);
  });
});

/**
 * The lease of an evidence job belongs to one attempt, not to the instance: when another loop of
 * the same instance re-claims a job whose lease lapsed (the first loop stalled), the stale attempt
 * can neither renew the lease, nor fail, requeue or finish the job under the live attempt.
 */
describe.each(await usableCatalogs())('evidence job leases per attempt (%s)', (kind) => {
  let cat: TestCatalog;
  beforeAll(async () => {
    cat = await openTestCatalog(kind);
  });
  afterAll(async () => {
    await cat?.dispose();
  });

  it('a stale attempt of the same instance changes nothing once another loop of it re-claimed the job', async () => {
    const store = new EvidenceJobStore(cat);
    const principal = { id: 'carol', tenantId: 'acme', kind: 'oidc', scopes: new Set(['audit:read']), credentialId: null } as never;
    await store.create({ id: 'evjob_lease1', principal, purpose: PURPOSE, input: { packageId: 'lease1', createdAt: new Date().toISOString(), items: [] }, requestEventId: 'e1', httpRequestId: 'h1' });
    const me = 'host-x:1:abcdef';
    const first = (await store.claim(me, 60_000))!;
    expect(first.id).toBe('evjob_lease1');
    // Loop 1 stalls past its lease; loop 2 of the same instance takes the job over.
    await sql`update evidence_jobs set lease_until = ${new Date(Date.now() - 1000).toISOString()} where id = ${'evjob_lease1'}`.execute(cat.db);
    const second = (await store.claim(me, 60_000))!;
    expect(second).toMatchObject({ id: 'evjob_lease1', attempts: 2 });
    expect(second.leaseOwner).not.toBe(first.leaseOwner);

    const progress = { recordings_total: 0, recordings_done: 0, files_done: 0, bytes_done: 0 };
    expect(await store.heartbeat('evjob_lease1', first.leaseOwner!, 60_000, progress)).toBe(false);
    expect(await store.heartbeat('evjob_lease1', me, 60_000, progress)).toBe(false);
    expect(await store.release('evjob_lease1', first.leaseOwner!, { code: 'source.stream_broken', detail: 'stale attempt' }, false)).toBe(false);
    expect(await store.release('evjob_lease1', first.leaseOwner!, null, true)).toBe(false);
    const staged = { progress, size: 1, sha256: 'ab'.repeat(32), problems: 0, stagingKey: 'evidence_stale', dekKeyId: 'k', dekWrapped: 'w', expiresAt: new Date(Date.now() + 60_000).toISOString() };
    expect(await store.markReady('evjob_lease1', first.leaseOwner!, staged)).toBe(false);
    expect(await store.get('acme', 'evjob_lease1')).toMatchObject({ status: 'running', attempts: 2, error: null, stagingKey: null });

    expect(await store.heartbeat('evjob_lease1', second.leaseOwner!, 60_000, progress)).toBe(true);
    expect(await store.markReady('evjob_lease1', second.leaseOwner!, { ...staged, stagingKey: 'evidence_live' })).toBe(true);
    expect(await store.get('acme', 'evjob_lease1')).toMatchObject({ status: 'ready', stagingKey: 'evidence_live' });
  });
});
