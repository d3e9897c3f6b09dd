import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { usableCatalogs } from './support/catalogs.js';
import { KEYS, bearer, startTestGateway, type TestGateway } from './support/gateway.js';
import { raw } from './support/http.js';

/**
 * An evidence job's 202 is three things written together: a `recording.export` event per
 * recording, the request's `evidence.export allowed 202`, and the evidence_jobs row the events name.
 * They commit in one transaction or not at all: a job row that cannot be written must not leave a
 * trail saying the recordings were exported (found on PostgreSQL, where a NUL in the purpose made
 * the row's insert fail after both events had committed: 500, and an export that never happened).
 */
describe.each(await usableCatalogs())('evidence job and its events commit together, on %s', (kind) => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startTestGateway({ catalog: kind });
    await gw.seed([{ call_id: '2023-10-27T14:30:00Z-8923', legacy_archive_id: 'avaya_8923', locator: 'call_mono_pcm16_8k.wav' }]);
  });
  afterAll(async () => gw?.stop());

  const db = () => gw.deps.catalog.db;
  const jobRows = async () => Number((await sql<{ n: number | string }>`select count(*) as n from evidence_jobs`.execute(db())).rows[0]!.n);
  const eventsOf = async (rid: string) =>
    (await db().selectFrom('audit_events').select(['action', 'outcome', 'status', 'error_code']).where('http_request_id', '=', rid).execute()).map((e) => ({ ...e, status: e.status === null ? null : Number(e.status) }));
  const exportJob = (purpose: string) =>
    raw(`${gw.url}/api/v1/evidence`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...bearer(KEYS.acmeAdmin) },
      body: JSON.stringify({ refs: ['avaya_8923'], purpose, mode: 'job' }),
    });

  it('refuses a NUL in the purpose (422, the field named) before anything is recorded as exported', async () => {
    const before = await jobRows();
    const r = await exportJob('case\u00007');
    expect(r.status, r.body.toString()).toBe(422);
    const body = JSON.parse(r.body.toString());
    expect(body.code).toBe('request.invalid');
    expect(body.errors).toEqual([expect.objectContaining({ path: '/purpose' })]);
    await expect.poll(() => eventsOf(String(r.headers['x-request-id']))).toEqual([expect.objectContaining({ action: 'evidence.export', outcome: 'failed', status: 422 })]);
    expect(await jobRows()).toBe(before);
  });

  it('leaves neither the events nor the row when the job row cannot be written (500, a failure event, the chain intact)', async () => {
    // The row's insert fails in the database, whatever the route sent: a trigger refuses it.
    if (kind === 'sqlite') {
      await sql`create trigger refuse_evidence_job before insert on evidence_jobs begin select raise(abort, 'refused by test'); end`.execute(db());
    } else {
      await sql`create function refuse_evidence_job() returns trigger language plpgsql as $$ begin raise exception 'refused by test'; end $$`.execute(db());
      await sql`create trigger refuse_evidence_job before insert on evidence_jobs for each row execute function refuse_evidence_job()`.execute(db());
    }
    try {
      const before = await jobRows();
      const r = await exportJob('Case 12');
      expect(r.status, r.body.toString()).toBe(500);
      expect(JSON.parse(r.body.toString()).code).toBe('internal');
      const rid = String(r.headers['x-request-id']);
      await expect.poll(() => eventsOf(rid)).toEqual([expect.objectContaining({ action: 'evidence.export', outcome: 'failed', status: 500, error_code: 'internal' })]);
      expect(await jobRows()).toBe(before);
    } finally {
      await sql`drop trigger refuse_evidence_job${sql.raw(kind === 'sqlite' ? '' : ' on evidence_jobs')}`.execute(db());
      if (kind === 'postgres') await sql`drop function refuse_evidence_job()`.execute(db());
    }
    const verify = await raw(`${gw.url}/api/v1/audit/verify`, { headers: bearer(KEYS.acmeAuditor) });
    expect(JSON.parse(verify.body.toString())).toMatchObject({ ok: true });
  });

  it('still starts a job: the row, one recording.export and the 202 event, naming each other', async () => {
    const r = await exportJob('Case 13');
    expect(r.status, r.body.toString()).toBe(202);
    const { job_id } = JSON.parse(r.body.toString());
    const rid = String(r.headers['x-request-id']);
    const events = await eventsOf(rid);
    expect(events).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ action: 'recording.export', outcome: 'allowed', status: 202 }),
        expect.objectContaining({ action: 'evidence.export', outcome: 'allowed', status: 202 }),
      ]),
    );
    const job = (await sql<{ request_event_id: string; input_json: string }>`select request_event_id, input_json from evidence_jobs where id = ${job_id}`.execute(db())).rows[0]!;
    expect(job.request_event_id).toBe(r.headers['x-audit-event-id']);
    const exportIds = (await db().selectFrom('audit_events').select('id').where('http_request_id', '=', rid).where('action', '=', 'recording.export').execute()).map((e) => e.id);
    expect(JSON.parse(job.input_json).items.map((i: { exportEventId: string }) => i.exportEventId)).toEqual(exportIds);
  });
});
