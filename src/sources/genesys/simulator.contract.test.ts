import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GENESYS_FORMATS } from './config.js';
import { GenesysConnector } from './connector.js';
import { FILE_STATES, MEDIA_SUBTYPES } from './models.js';
import { findOperation, loadGenesysOpenApi, resolveRef, validate, type Schema } from './openapi-check.js';
import { startGenesysSimulator, type GenesysSimulator } from './simulator.js';
import { configFor, copyOf } from './test-helpers.js';

/**
 * (a) The simulator against the published Swagger 2.0 extracts: every answer it gives on the API
 * host is a documented status of the operation, its body validates against the definition the
 * extract names for that status, and error bodies carry a code the extract lists for it. The
 * requests the connector sends (PUT body, analytics query) are validated against the body schemas.
 */

const doc = loadGenesysOpenApi();
let sim: GenesysSimulator;
let token = '';
/** A client whose roles grant nothing the simulator checks. */
let bareToken = '';
const CONV = 'c0ffee00-0000-4000-8000-00000000000a';
const REC = 'reca0000-0000-4000-8000-00000000000a';

async function call(method: 'GET' | 'PUT' | 'POST', path: string, body?: unknown, auth: boolean | string = true): Promise<{ status: number; headers: Record<string, unknown>; json: unknown }> {
  const bearer = auth === true ? token : auth === false ? undefined : auth;
  const res = await request(sim.apiBaseUrl + path, {
    method,
    headers: { ...(bearer ? { authorization: `Bearer ${bearer}` } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    body: body === undefined ? null : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.body.text();
  return { status: res.statusCode, headers: res.headers, json: text === '' ? undefined : (JSON.parse(text) as unknown) };
}

/** The answer is documented for the operation, and its body validates against the named definition. */
function expectConforms(method: string, path: string, r: { status: number; json: unknown }): void {
  const found = findOperation(doc, method, path.split('?')[0] as string);
  expect(found, `${method} ${path} is not in the extracts`).toBeDefined();
  const resp = found?.op.responses[String(r.status)];
  expect(resp, `${method} ${found?.template} does not document ${r.status}`).toBeDefined();
  if (resp?.schema && r.json !== undefined) expect(validate(doc, resp.schema, r.json)).toEqual([]);
  if (r.status >= 400) {
    const body = r.json as { code?: string; status?: number };
    expect(Object.keys(resp?.['x-inin-error-codes'] ?? {})).toContain(body.code);
    expect(body.status).toBe(r.status);
  }
}

function bodySchema(method: string, template: string): Schema {
  const op = doc.paths[template]?.[method];
  const p = op?.parameters?.find((x) => x.in === 'body');
  if (!p?.schema) throw new Error(`no body parameter for ${method} ${template}`);
  return p.schema;
}

function enumOf(def: string, prop: string): unknown[] {
  return resolveRef(doc, { $ref: `#/definitions/${def}` }).properties?.[prop]?.enum ?? [];
}

beforeAll(async () => {
  sim = await startGenesysSimulator({
    restoreDelayMs: 20,
    clients: [
      { id: 'custodian-sim', secret: 'custodian-sim-secret', name: 'custodian gateway' },
      { id: 'bare-client', secret: 'bare-secret', permissions: [] },
    ],
    recordings: [
      { conversationId: CONV, recordingId: REC, bytes: 'RIFF....WAVEfmt ', externalTag: 'LEGACY-7', protocolCallId: 'sip-7@sbc', startTime: '2026-02-01T09:00:00Z' },
      { conversationId: CONV, recordingId: 'rec-screen', bytes: 'x', mediaSubtype: 'Screen', startTime: '2026-02-01T09:00:00Z' },
      { conversationId: 'c-arch', recordingId: 'r-arch', bytes: 'x', fileState: 'ARCHIVED', archiveDate: '2025-01-01T00:00:00Z', deleteDate: '2030-01-01T00:00:00Z' },
    ],
  });
  const res = await request(`${sim.loginBaseUrl}/oauth/token`, {
    method: 'POST',
    headers: { authorization: `Basic ${Buffer.from('custodian-sim:custodian-sim-secret').toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
    body: 'grant_type=client_credentials',
  });
  const json = (await res.body.json()) as { access_token: string; token_type: string; expires_in: number };
  expect(res.statusCode).toBe(200);
  // OAuth is not in the extracts: the shape is the documented client-credentials answer.
  expect(Object.keys(json).sort()).toEqual(['access_token', 'expires_in', 'token_type']);
  expect(json.token_type).toBe('bearer');
  expect(Number.isInteger(json.expires_in)).toBe(true);
  token = json.access_token;
  const bare = await request(`${sim.loginBaseUrl}/oauth/token`, {
    method: 'POST',
    headers: { authorization: `Basic ${Buffer.from('bare-client:bare-secret').toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
    body: 'grant_type=client_credentials',
  });
  bareToken = ((await bare.body.json()) as { access_token: string }).access_token;
});

afterAll(async () => {
  await sim.close();
});

describe('(a) simulator responses conform to the Genesys OpenAPI extracts', () => {
  it('the validator is honest: it rejects wrong types, unknown fields, enum misses, missing required fields and null', () => {
    const rec = { $ref: '#/definitions/Recording' };
    expect(validate(doc, rec, { id: 'x', fileState: 'AVAILABLE', mediaUris: { S: { mediaUri: 'https://x' } } })).toEqual([]);
    expect(validate(doc, rec, { fileState: 'GONE' })).toEqual(['$.fileState: "GONE" not in enum']);
    expect(validate(doc, rec, { outputSizeInBytes: '12' })).toEqual(['$.outputSizeInBytes: expected integer']);
    expect(validate(doc, rec, { downloadUrl: 'x' })).toEqual(['$.downloadUrl: not a field of the definition']);
    expect(validate(doc, rec, { archiveDate: 'yesterday' })).toEqual(['$.archiveDate: not an ISO-8601 date-time']);
    expect(validate(doc, rec, { mediaUris: { S: { uri: 'x' } } })).toEqual(['$.mediaUris.S.uri: not a field of the definition']);
    expect(validate(doc, rec, { mediaUris: null })).toEqual(['$.mediaUris: null (absent fields are omitted, not null)']);
    expect(validate(doc, { $ref: '#/definitions/ConversationQuery' }, {})).toEqual(['$.interval: required']);
    expect(validate(doc, { $ref: '#/definitions/PagingSpec' }, { pageSize: 25 })).toEqual(['$.pageNumber: required']);
  });

  it('our enums are the extracts’ enums', () => {
    expect([...FILE_STATES].sort()).toEqual([...enumOf('Recording', 'fileState')].sort());
    expect([...FILE_STATES].sort()).toEqual([...enumOf('RecordingMetadata', 'fileState')].sort());
    expect([...MEDIA_SUBTYPES].sort()).toEqual([...enumOf('Recording', 'mediaSubtype')].sort());
    const formatParam = doc.paths['/api/v2/conversations/{conversationId}/recordings/{recordingId}']?.get?.parameters?.find((p) => p.name === 'formatId');
    expect([...GENESYS_FORMATS].sort()).toEqual([...(formatParam?.enum ?? [])].sort());
  });

  it('recording metadata, list and single', async () => {
    const list = await call('GET', `/api/v2/conversations/${CONV}/recordingmetadata`);
    expect(list.status).toBe(200);
    expectConforms('GET', `/api/v2/conversations/${CONV}/recordingmetadata`, list);
    expect((list.json as unknown[]).length).toBe(2);
    for (const path of [`/api/v2/conversations/${CONV}/recordingmetadata/${REC}`, `/api/v2/conversations/${CONV}/recordingmetadata/rec-screen`, '/api/v2/conversations/c-arch/recordingmetadata/r-arch']) {
      const one = await call('GET', path);
      expect(one.status).toBe(200);
      expectConforms('GET', path, one);
    }
  });

  it('recordings/{id}: 202 while transcoding (Recording body), then 200 with mediaUris; every formatId', async () => {
    sim.set({ transcodePolls: 1, transcodingBody: 'recording' });
    const path = `/api/v2/conversations/${CONV}/recordings/${REC}?formatId=MP3`;
    const first = await call('GET', path);
    expect(first.status).toBe(202);
    expect((first.json as { mediaUris?: unknown }).mediaUris).toBeUndefined();
    expectConforms('GET', path, first);
    sim.set({ transcodingBody: 'empty' });
    for (const f of GENESYS_FORMATS) {
      const p = `/api/v2/conversations/${CONV}/recordings/${REC}?formatId=${f}`;
      let r = await call('GET', p);
      if (r.status === 202) {
        expect(r.json).toBeUndefined();
        expectConforms('GET', p, r);
        r = await call('GET', p);
      }
      expect(r.status).toBe(200);
      expectConforms('GET', p, r);
      const uris = (r.json as { mediaUris?: Record<string, { mediaUri: string }> }).mediaUris;
      if (f === 'NONE') expect(uris).toBeUndefined();
      else expect(uris?.S?.mediaUri).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/media\//);
    }
    sim.set({ transcodePolls: 0 });
    const archived = await call('GET', '/api/v2/conversations/c-arch/recordings/r-arch?formatId=WAV');
    expect(archived.status).toBe(200);
    expectConforms('GET', '/api/v2/conversations/c-arch/recordings/r-arch', archived);
    expect((archived.json as { mediaUris?: unknown; fileState: string }).fileState).toBe('ARCHIVED');
    expect((archived.json as { mediaUris?: unknown }).mediaUris).toBeUndefined();
  });

  it('recordings list of a conversation', async () => {
    const path = `/api/v2/conversations/${CONV}/recordings?formatId=WAV`;
    const r = await call('GET', path);
    expect(r.status).toBe(200);
    expectConforms('GET', path, r);
  });

  it('PUT restore: the connector’s body is a Recording, the answer is a Recording', async () => {
    const c = new GenesysConnector('t', configFor(sim));
    try {
      const rec = await c.restore(copyOf('c-arch', 'r-arch'), new Date('2030-01-01T00:00:00Z'), new AbortController().signal);
      expect(rec.fileState).toBe('RESTORING');
      const put = sim.requests.find((e) => e.method === 'PUT');
      expect(validate(doc, bodySchema('put', '/api/v2/conversations/{conversationId}/recordings/{recordingId}'), JSON.parse(put?.body ?? 'null'))).toEqual([]);
      const again = await call('PUT', '/api/v2/conversations/c-arch/recordings/r-arch', { archiveDate: '2030-02-01T00:00:00.000Z' });
      expect(again.status).toBe(200);
      expectConforms('PUT', '/api/v2/conversations/c-arch/recordings/r-arch', again);
    } finally {
      await c.close();
    }
  });

  it('analytics conversation details query: the connector’s queries are ConversationQuery, answers AnalyticsConversationQueryResponse', async () => {
    const c = new GenesysConnector('t', configFor(sim));
    const interval = { start: new Date('2026-02-01T00:00:00Z'), end: new Date('2026-02-02T00:00:00Z') };
    try {
      expect(await c.findConversations({ externalTag: 'LEGACY-7', interval }, new AbortController().signal)).toHaveLength(1);
      expect(await c.findConversations({ conversationId: CONV, protocolCallId: 'sip-7@sbc', interval }, new AbortController().signal)).toHaveLength(1);
    } finally {
      await c.close();
    }
    const schema = bodySchema('post', '/api/v2/analytics/conversations/details/query');
    const sent = sim.requests.filter((e) => e.path === '/api/v2/analytics/conversations/details/query');
    expect(sent).toHaveLength(2);
    for (const e of sent) expect(validate(doc, schema, JSON.parse(e.body))).toEqual([]);
    const path = '/api/v2/analytics/conversations/details/query';
    const hit = await call('POST', path, {
      interval: '2026-02-01T00:00:00.000Z/2026-02-02T00:00:00.000Z',
      segmentFilters: [{ type: 'or', predicates: [{ dimension: 'protocolCallId', value: 'sip-7@sbc' }, { dimension: 'protocolCallId', value: 'other' }] }],
    });
    expect(hit.status).toBe(200);
    expectConforms('POST', path, hit);
    expect((hit.json as { totalHits: number }).totalHits).toBe(1);
    const miss = await call('POST', path, { interval: '2026-02-01T00:00:00.000Z/2026-02-02T00:00:00.000Z', conversationFilters: [{ type: 'and', predicates: [{ dimension: 'externalTag', value: 'nope' }] }] });
    expect(miss.json).toEqual({ totalHits: 0 });
    expectConforms('POST', path, miss);
  });

  it('error answers: documented status, ErrorBody, and a code the extract lists for that status', async () => {
    const cases: [method: 'GET' | 'PUT' | 'POST', path: string, body: unknown, status: number][] = [
      ['GET', `/api/v2/conversations/${CONV}/recordingmetadata/nope`, undefined, 404],
      ['GET', '/api/v2/conversations/nope/recordingmetadata', undefined, 404],
      ['GET', `/api/v2/conversations/${CONV}/recordings/nope?formatId=WAV`, undefined, 404],
      ['GET', '/api/v2/conversations/nope/recordings', undefined, 404],
      ['GET', `/api/v2/conversations/${CONV}/recordings/${REC}?formatId=FLAC`, undefined, 400],
      ['PUT', `/api/v2/conversations/${CONV}/recordings/${REC}`, '{not json', 400],
      ['PUT', `/api/v2/conversations/${CONV}/recordings/${REC}`, { archiveDate: 'soon' }, 400],
      ['PUT', `/api/v2/conversations/${CONV}/recordings/nope`, { archiveDate: '2030-01-01T00:00:00Z' }, 404],
      ['POST', '/api/v2/analytics/conversations/details/query', { interval: 'last week' }, 400],
      ['POST', '/api/v2/analytics/conversations/details/query', { interval: '2026-02-01T00:00:00Z/2026-02-02T00:00:00Z', conversationFilters: [{ type: 'and', predicates: [{ dimension: 'mediaStatsMinConversationMos', value: '3' }] }] }, 400],
    ];
    for (const [method, path, body, status] of cases) {
      const r = await call(method, path, body);
      expect(r.status, `${method} ${path}`).toBe(status);
      expectConforms(method, path, r);
    }
    const noAuth = await call('GET', `/api/v2/conversations/${CONV}/recordingmetadata`, undefined, false);
    expect(noAuth.status).toBe(401);
    expectConforms('GET', `/api/v2/conversations/${CONV}/recordingmetadata`, noAuth);
    sim.rateLimitNext(1, 2);
    const limited = await call('GET', `/api/v2/conversations/${CONV}/recordingmetadata/${REC}`);
    expect(limited.status).toBe(429);
    expect(limited.headers['retry-after']).toBe('2');
    expect((limited.json as { code: string }).code).toBe('too.many.requests.retry.after');
    expectConforms('GET', `/api/v2/conversations/${CONV}/recordingmetadata/${REC}`, limited);
    for (const status of [500, 503, 504]) {
      sim.failNext(1, { status });
      const r = await call('GET', `/api/v2/conversations/${CONV}/recordings/${REC}?formatId=WAV`);
      expect(r.status).toBe(status);
      expectConforms('GET', `/api/v2/conversations/${CONV}/recordings/${REC}`, r);
    }
  });

  it('recording settings: a RecordingSettings with the link lifetimes in minutes', async () => {
    sim.set({ mediaLinkTtlMs: 2 * 60_000 });
    const r = await call('GET', '/api/v2/recording/settings');
    sim.set({ mediaLinkTtlMs: 60 * 60_000 });
    expect(r.status).toBe(200);
    expectConforms('GET', '/api/v2/recording/settings', r);
    expect(r.json).toMatchObject({ recordingPlaybackUrlTtl: 2, recordingBatchDownloadUrlTtl: 60 });
  });

  it('batch requests: submission and status conform; archived items carry errorMsg; results are links to the original bytes', async () => {
    const body = {
      batchDownloadRequestList: [
        { conversationId: CONV, recordingId: REC },
        { conversationId: 'c-arch', recordingId: 'r-arch' },
        { conversationId: CONV },
        { conversationId: 'nope', recordingId: 'nope' },
      ],
    };
    // The request body the connector sends is a BatchDownloadJobSubmission.
    expect(validate(doc, bodySchema('post', '/api/v2/recording/batchrequests'), body)).toEqual([]);
    sim.set({ batchPolls: 1 });
    sim.setFileState('c-arch', 'r-arch', 'ARCHIVED'); // an earlier test restored it
    const sub = await call('POST', '/api/v2/recording/batchrequests', body);
    expect(sub.status).toBe(200);
    expectConforms('POST', '/api/v2/recording/batchrequests', sub);
    const id = (sub.json as { id: string }).id;
    const first = await call('GET', `/api/v2/recording/batchrequests/${id}`);
    expectConforms('GET', `/api/v2/recording/batchrequests/${id}`, first);
    expect(first.json).toMatchObject({ status: 'InProgress', jobId: id, expectedResultCount: 5 });
    const done = await call('GET', `/api/v2/recording/batchrequests/${id}`);
    expectConforms('GET', `/api/v2/recording/batchrequests/${id}`, done);
    const st = done.json as { status: string; resultCount: number; errorCount: number; results: { conversationId: string; recordingId?: string; resultUrl?: string; errorMsg?: string; contentType?: string }[] };
    expect(st).toMatchObject({ status: 'Completed', resultCount: 5, errorCount: 2 });
    expect(st.results.find((x) => x.recordingId === 'r-arch')?.errorMsg).toMatch(/archived/i);
    expect(st.results.find((x) => x.conversationId === 'nope')?.errorMsg).toBeDefined();
    const ok = st.results.find((x) => x.recordingId === REC && x.resultUrl);
    const media = await request(ok!.resultUrl!);
    expect(await media.body.text()).toBe('RIFF....WAVEfmt ');
  });

  it('batch requests: the documented errors (too many, empty, unknown job, another client, missing rights)', async () => {
    const many = { batchDownloadRequestList: Array.from({ length: 101 }, (_, i) => ({ conversationId: `c${i}` })) };
    const cases: [method: 'GET' | 'POST', path: string, body: unknown, status: number, code: string, auth?: string][] = [
      ['POST', '/api/v2/recording/batchrequests', many, 400, 'batch.download.too.many.items'],
      ['POST', '/api/v2/recording/batchrequests', { batchDownloadRequestList: [] }, 400, 'batch.download.bad.request'],
      ['GET', '/api/v2/recording/batchrequests/no-such-job', undefined, 404, 'batch.download.job.not.found'],
      ['POST', '/api/v2/recording/batchrequests', { batchDownloadRequestList: [{ conversationId: CONV }] }, 403, 'missing.any.permissions', bareToken],
    ];
    for (const [method, path, body, status, code, auth] of cases) {
      const r = await call(method, path, body, auth ?? true);
      expect(r.status, `${method} ${path}`).toBe(status);
      expect((r.json as { code: string }).code).toBe(code);
      expectConforms(method, path, r);
    }
    // Only the submitting client may read the results.
    sim.set({ clients: [...sim.knobs.clients, { id: 'other-client', secret: 'other-secret' }] });
    const sub = await call('POST', '/api/v2/recording/batchrequests', { batchDownloadRequestList: [{ conversationId: CONV }] });
    const login = await request(`${sim.loginBaseUrl}/oauth/token`, {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from('other-client:other-secret').toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: 'grant_type=client_credentials',
    });
    const other = ((await login.body.json()) as { access_token: string }).access_token;
    const path = `/api/v2/recording/batchrequests/${(sub.json as { id: string }).id}`;
    const denied = await call('GET', path, undefined, other);
    expect(denied.status).toBe(403);
    expect((denied.json as { code: string }).code).toBe('batch.download.permission.denied');
    expectConforms('GET', path, denied);
  });

  it('missing rights: 403 with a code the extract lists, for every call the gateway makes', async () => {
    const cases: [method: 'GET' | 'POST', path: string, body?: unknown][] = [
      ['GET', `/api/v2/conversations/${CONV}/recordingmetadata`],
      ['GET', `/api/v2/conversations/${CONV}/recordingmetadata/${REC}`],
      ['GET', `/api/v2/conversations/${CONV}/recordings/${REC}?formatId=WAV`],
      ['POST', '/api/v2/analytics/conversations/details/query', { interval: '2026-02-01T00:00:00Z/2026-02-02T00:00:00Z' }],
    ];
    for (const [method, path, body] of cases) {
      const r = await call(method, path, body, bareToken);
      expect(r.status, path).toBe(403);
      expectConforms(method, path, r);
      expect((r.json as { message: string }).message).toMatch(/:view/);
    }
  });

  it('one conversation out of the client’s reach: 403 with each code the extract lists for the metadata list, the others still answer', async () => {
    const codes = ['missing.division.permission', 'missing.any.division.permissions', 'recording.recording.view.permission.check.failed', 'authz.policy.denied', 'not.authorized', 'missing.permissions', 'missing.any.permissions', 'app.not.authorized.for.scope'] as const;
    sim.addRecording({ conversationId: 'c-denied', recordingId: 'r-denied', bytes: 'x', startTime: '2026-02-01T09:00:00Z' });
    for (const code of codes) {
      sim.denyConversation('c-denied', code);
      const r = await call('GET', '/api/v2/conversations/c-denied/recordingmetadata');
      expect(r.status, code).toBe(403);
      expect(r.json).toMatchObject({ code, status: 403 });
      expectConforms('GET', '/api/v2/conversations/c-denied/recordingmetadata', r);
    }
    sim.denyConversation('c-denied');
    const one = await call('GET', '/api/v2/conversations/c-denied/recordingmetadata/r-denied');
    expect(one.status).toBe(403);
    expect((one.json as { message: string }).message).toContain("'recording:recording:view' in the provided division(s)");
    expectConforms('GET', '/api/v2/conversations/c-denied/recordingmetadata/r-denied', one);
    expect((await call('GET', `/api/v2/conversations/${CONV}/recordingmetadata`)).status).toBe(200);
  });

  it('recordings of other media than audio (chat, email, message): RecordingMetadata with that media and no mediaSubtype', async () => {
    for (const media of ['chat', 'email', 'message'] as const) {
      sim.addRecording({ conversationId: 'c-digital', recordingId: `r-${media}`, media, bytes: 'x', startTime: '2026-02-01T09:00:00Z' });
    }
    const list = await call('GET', '/api/v2/conversations/c-digital/recordingmetadata');
    expect(list.status).toBe(200);
    expectConforms('GET', '/api/v2/conversations/c-digital/recordingmetadata', list);
    expect((list.json as { id: string; media: string; mediaSubtype?: string }[]).map((m) => [m.id, m.media, m.mediaSubtype])).toEqual([
      ['r-chat', 'chat', undefined],
      ['r-email', 'email', undefined],
      ['r-message', 'message', undefined],
    ]);
    const audio = await call('GET', `/api/v2/conversations/${CONV}/recordingmetadata/${REC}`);
    expect(audio.json).toMatchObject({ media: 'audio', mediaSubtype: 'Trunk' });
  });

  it('tokens/me is not in the extracts; the simulator answers the SDKs’ TokenInfo shape', async () => {
    expect(findOperation(doc, 'GET', '/api/v2/tokens/me')).toBeUndefined();
    expect(doc.definitions.TokenInfo).toBeUndefined();
    const r = await call('GET', '/api/v2/tokens/me');
    expect(r.status).toBe(200);
    expect(Object.keys(r.json as object).sort()).toEqual(['OAuthClient', 'authorizedScope', 'homeOrganization', 'organization']);
    expect(r.json).toMatchObject({ OAuthClient: { id: 'custodian-sim', name: 'custodian gateway' }, organization: { id: sim.org.id, name: sim.org.name } });
  });

  it('every answer the API host gave in this file is documented for its operation, with a listed error code', () => {
    // tokens/me and authorization/subjects/me are outside the extracts (see above; preflight.ts).
    const apiLog = sim.requests.filter((e) => e.role === 'api' && e.path !== '/api/v2/tokens/me' && e.path !== '/api/v2/authorization/subjects/me');
    expect(apiLog.length).toBeGreaterThan(30);
    for (const e of apiLog) {
      const found = findOperation(doc, e.method, e.path);
      expect(found, `${e.method} ${e.path}`).toBeDefined();
      const resp = found?.op.responses[String(e.status)];
      expect(resp, `${e.method} ${found?.template} → ${e.status}`).toBeDefined();
      if (e.errorCode) expect(Object.keys(resp?.['x-inin-error-codes'] ?? {}), `${e.method} ${found?.template} → ${e.status}`).toContain(e.errorCode);
    }
  });
});
