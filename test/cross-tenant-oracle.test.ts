import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditEvent } from '../src/audit/event.js';
import { usableCatalogs } from './support/catalogs.js';
import { CONSOLE_KEY, KEYS, startConsoleGateway } from './console/support.js';
import { bearer, type TestGateway } from './support/gateway.js';
import { raw } from './support/http.js';

/**
 * product.md principle 4: a ref another tenant holds gets the same answer as a ref nobody holds —
 * in everything the caller's tenant can see: status, body, headers, the caller's own audit
 * event as its auditors read it (GET /api/v1/audit/events), and where that event sits in the one
 * chain every tenant shares — how many events of others follow it before the tenant's next (the seq
 * gap) and whether that next event links to it (prevHash). Only the owner's trail learns of the
 * attempt (`recording.cross_tenant_attempt`); an unknown ref's companion is the operator's
 * `recording.lookup_miss` (docs/AUDIT.md).
 *
 * Both refs have the same length, so even Content-Length and the body's `detail` (which can name
 * the ref) compare once the ref itself is replaced.
 */
const FOREIGN = 'globex_secret'; // globex holds it (console/support.ts)
const UNKNOWN = 'nobody_secret';
if (FOREIGN.length !== UNKNOWN.length) throw new Error('the two refs must have the same length');

/** What differs between any two requests, whatever they ask: who/when/which request, and the chain position (compared on its own, below). */
const PER_REQUEST = ['id', 'seq', 'occurredAt', 'httpRequestId', 'requestId', 'hash', 'prevHash'] as const;
/** Response headers that differ between any two requests. */
const PER_RESPONSE_HEADERS = ['date', 'x-request-id', 'connection', 'keep-alive'];

describe.each(await usableCatalogs())('an attempt on a ref of another tenant looks exactly like an unknown ref to the caller, on %s', (kind) => {
  let gw: TestGateway;
  const send = (method: string, path: string, key: string, body: unknown, requestId: string) =>
    raw(gw.url + path, {
      method,
      headers: { ...bearer(key), 'x-request-id': requestId, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
  /** The caller's own event for one request, read the way the caller's tenant reads it: through the API. */
  const callerEvent = async (reader: string, httpRequestId: string): Promise<AuditEvent> => {
    const found: AuditEvent[] = [];
    let after: number | null = null;
    do {
      const r = await raw(`${gw.url}/api/v1/audit/events?limit=1000${after !== null ? `&after=${after}` : ''}`, { headers: bearer(reader) });
      expect(r.status, r.body.toString()).toBe(200);
      const page = JSON.parse(r.body.toString()) as { items: AuditEvent[]; next_after: number | null };
      found.push(...page.items.filter((e) => e.httpRequestId === httpRequestId));
      after = page.next_after;
    } while (after !== null);
    expect(found, `events of ${httpRequestId}`).toHaveLength(1);
    return found[0]!;
  };
  /**
   * Where the caller's event sits, as its tenant sees it: the tenant's next event (the first read of
   * the trail after the request, which is itself audited), how many seqs on, and whether it links
   * to the caller's event.
   */
  const position = async (reader: string, ev: AuditEvent) => {
    const r = await raw(`${gw.url}/api/v1/audit/events?after=${ev.seq}&limit=1`, { headers: bearer(reader) });
    expect(r.status, r.body.toString()).toBe(200);
    const next = (JSON.parse(r.body.toString()) as { items: AuditEvent[] }).items[0]!;
    return { gap: next.seq - ev.seq, linked: next.prevHash === ev.hash };
  };
  /** Every event of one request in the whole chain (the operator's view), in chain order. */
  const chainOf = async (httpRequestId: string) =>
    (await gw.catalogDb.db.selectFrom('audit_events').selectAll().where('http_request_id', '=', httpRequestId).orderBy('seq').execute()).map((r) => ({
      seq: Number(r.seq),
      tenantId: r.tenant_id,
      action: r.action,
    }));
  const normalised = (ev: AuditEvent, ref: string) => {
    const rest: Record<string, unknown> = { ...ev };
    for (const k of PER_REQUEST) delete rest[k];
    // An evidence request names its (random) package before the lookup.
    if (ev.detail && 'package_id' in ev.detail) rest.detail = { ...ev.detail, package_id: '<package>' };
    return JSON.parse(JSON.stringify(rest).split(ref).join('<ref>')) as Record<string, unknown>;
  };
  const normalisedBody = (b: Buffer, ref: string) => {
    const { request_id: _id, ...rest } = JSON.parse(b.toString()) as Record<string, unknown>;
    return JSON.parse(JSON.stringify(rest).split(ref).join('<ref>')) as unknown;
  };
  const normalisedHeaders = (h: Record<string, unknown>) => Object.fromEntries(Object.entries(h).filter(([k]) => !PER_RESPONSE_HEADERS.includes(k)));

  beforeAll(async () => {
    gw = await startConsoleGateway((doc) => (doc.auth.rate_limit = { max: 10_000, window_ms: 60_000 }), { catalog: kind });
  });
  afterAll(async () => gw?.stop());

  type Case = { name: string; method: string; path: (ref: string) => string; key: string; reader: string; body?: (ref: string) => unknown };
  const cases: Case[] = [
    { name: 'metadata', method: 'GET', path: (ref) => `/api/v1/recordings/${ref}`, key: CONSOLE_KEY, reader: CONSOLE_KEY },
    { name: 'media', method: 'GET', path: (ref) => `/api/v1/recordings/${ref}/media?format=wav&purpose=probe`, key: CONSOLE_KEY, reader: CONSOLE_KEY },
    {
      name: 'retrieve',
      method: 'POST',
      path: () => '/api/v1/recordings/retrieve',
      key: CONSOLE_KEY,
      reader: CONSOLE_KEY,
      body: (ref) => ({ request_id: `req-${randomUUID()}`, caller_id: 'carol', target_recording_ref: ref, purpose: 'probe' }),
    },
    { name: 'media ticket', method: 'POST', path: () => '/api/v1/media-tickets', key: CONSOLE_KEY, reader: CONSOLE_KEY, body: (ref) => ({ ref, purpose: 'probe', format: 'wav' }) },
    { name: 'waveform', method: 'GET', path: (ref) => `/api/v1/recordings/${ref}/waveform?points=100&purpose=probe`, key: CONSOLE_KEY, reader: CONSOLE_KEY },
    { name: 'evidence', method: 'POST', path: () => '/api/v1/evidence', key: CONSOLE_KEY, reader: CONSOLE_KEY, body: (ref) => ({ refs: [ref], purpose: 'probe' }) },
    { name: 'legal hold', method: 'POST', path: (ref) => `/api/v1/recordings/${ref}/holds`, key: KEYS.acmeAdmin, reader: KEYS.acmeAuditor, body: () => ({ matter: 'M-probe', reason: 'probe' }) },
    { name: 'integrity', method: 'POST', path: (ref) => `/api/v1/recordings/${ref}/integrity`, key: CONSOLE_KEY, reader: CONSOLE_KEY },
  ];

  it.each(cases)('$name: same status, body, headers and own audit event; the owner has the attempt', async (c) => {
    const ask = async (ref: string) => {
      const rid = `probe-${randomUUID()}`;
      const r = await send(c.method, c.path(ref), c.key, c.body?.(ref), rid);
      return { r, rid };
    };
    // Each probe is followed at once by the read of its own event: the tenant's next event is that read's.
    const theirs = await ask(FOREIGN);
    const mine = await callerEvent(c.reader, theirs.rid);
    const minePosition = await position(c.reader, mine);
    const unknown = await ask(UNKNOWN);
    const control = await callerEvent(c.reader, unknown.rid);
    const controlPosition = await position(c.reader, control);

    expect(theirs.r.status, theirs.r.body.toString()).toBe(404);
    expect(unknown.r.status).toBe(404);
    expect(normalisedBody(theirs.r.body, FOREIGN)).toEqual(normalisedBody(unknown.r.body, UNKNOWN));
    expect(normalisedHeaders(theirs.r.headers)).toEqual(normalisedHeaders(unknown.r.headers));

    // Field by field, so a failure names the field that tells the two apart.
    for (const f of ['detail', 'outcome', 'status', 'errorCode', 'recordingPk', 'copyId', 'origin', 'action', 'principalId', 'tenantId'] as const) {
      expect(normalised(mine, FOREIGN)[f], f).toEqual(normalised(control, UNKNOWN)[f]);
    }
    expect(normalised(mine, FOREIGN)).toEqual(normalised(control, UNKNOWN));
    expect(mine).toMatchObject({ tenantId: 'acme', outcome: 'denied', status: 404, errorCode: 'recording.not_found' });
    // The chain position: as many events of others after it, and the tenant's next event never linked to it.
    expect(minePosition, 'seq gap and prevHash link after a foreign ref').toEqual(controlPosition);
    expect(controlPosition).toEqual({ gap: 2, linked: false });
    // Exactly one companion, right after the caller's event: the owner's for a ref one tenant holds, the operator's for a ref nobody holds.
    expect(await chainOf(theirs.rid)).toEqual([
      { seq: mine.seq, tenantId: 'acme', action: mine.action },
      { seq: mine.seq + 1, tenantId: 'globex', action: 'recording.cross_tenant_attempt' },
    ]);
    expect(await chainOf(unknown.rid)).toEqual([
      { seq: control.seq, tenantId: 'acme', action: control.action },
      { seq: control.seq + 1, tenantId: null, action: 'recording.lookup_miss' },
    ]);

    // The owner's trail keeps the evidence, joinable to the caller's event by the request id.
    const owner = (await gw.deps.auditRepo.query({ tenantId: 'globex', action: 'recording.cross_tenant_attempt', limit: 1000 })).items.filter((e) => e.httpRequestId === theirs.rid);
    const globexPk = (await gw.deps.recordings.findByRef('globex', FOREIGN))!.id;
    expect(owner).toMatchObject([{ outcome: 'denied', status: 404, errorCode: 'recording.not_found', ref: FOREIGN, recordingPk: globexPk, detail: expect.objectContaining({ requesting_tenant: 'acme' }) }]);
    expect((await gw.deps.auditRepo.query({ tenantId: 'globex', action: 'recording.cross_tenant_attempt', limit: 1000 })).items.filter((e) => e.httpRequestId === unknown.rid)).toEqual([]);
  });
});
