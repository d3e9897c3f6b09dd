import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findOperation, loadGenesysOpenApi } from './openapi-check.js';
import { SIM_PERMISSIONS, startGenesysSimulator, type GenesysSimulator } from './simulator.js';

/**
 * The simulator guards each route with the permissions its extract lists
 * (x-inin-requires-permissions, type ANY): a client holding any one of them is let through, one
 * holding none is refused 403 missing.any.permissions. A screen-view-only client reading one
 * recording was refused before (recordingView lacked recording:screenRecording:view).
 */
const CONV = 'c-perm';
const REC = 'r-perm';
const doc = loadGenesysOpenApi();

const ROUTES: [method: string, path: string, body: unknown, guard: readonly string[]][] = [
  ['GET', `/api/v2/conversations/${CONV}/recordingmetadata`, undefined, SIM_PERMISSIONS.recordingView],
  ['GET', `/api/v2/conversations/${CONV}/recordingmetadata/${REC}`, undefined, SIM_PERMISSIONS.recordingView],
  ['GET', `/api/v2/conversations/${CONV}/recordings`, undefined, SIM_PERMISSIONS.recordingView],
  ['GET', `/api/v2/conversations/${CONV}/recordings/${REC}`, undefined, SIM_PERMISSIONS.recordingView],
  ['POST', '/api/v2/recording/batchrequests', { batchDownloadRequestList: [{ conversationId: CONV, recordingId: REC }] }, SIM_PERMISSIONS.batchDownload],
  ['POST', '/api/v2/analytics/conversations/details/query', { interval: '2026-01-01T00:00:00Z/2026-01-02T00:00:00Z' }, SIM_PERMISSIONS.analytics],
];

function specPermissions(method: string, path: string): string[] {
  const found = findOperation(doc, method, path);
  const req = (found?.op as { 'x-inin-requires-permissions'?: { type: string; permissions: string[] } } | undefined)?.['x-inin-requires-permissions'];
  expect(req?.type, `${method} ${path}`).toBe('ANY');
  return req!.permissions;
}

let sim: GenesysSimulator;
const everyPermission = [...new Set(ROUTES.flatMap(([m, p]) => specPermissions(m, p)))];

beforeAll(async () => {
  sim = await startGenesysSimulator({
    clients: [
      ...everyPermission.map((perm, i) => ({ id: `only-${i}`, secret: `secret-${i}`, permissions: [perm] })),
      { id: 'none', secret: 'none-secret', permissions: [] },
    ],
    recordings: [{ conversationId: CONV, recordingId: REC, bytes: 'RIFF....WAVEfmt ', startTime: '2026-01-01T09:00:00Z' }],
  });
});

afterAll(async () => {
  await sim.close();
});

async function tokenOf(id: string, secret: string): Promise<string> {
  const res = await request(`${sim.loginBaseUrl}/oauth/token`, {
    method: 'POST',
    headers: { authorization: `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
    body: 'grant_type=client_credentials',
  });
  return ((await res.body.json()) as { access_token: string }).access_token;
}

async function call(token: string, method: string, path: string, body: unknown): Promise<{ status: number; code?: string }> {
  const res = await request(`${sim.apiBaseUrl}${path}`, {
    method: method as 'GET' | 'POST',
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.body.text();
  let code: string | undefined;
  try {
    code = (JSON.parse(text) as { code?: string }).code;
  } catch {
    /* not JSON */
  }
  return { status: res.statusCode, code };
}

describe('simulator permissions follow x-inin-requires-permissions', () => {
  it.each(ROUTES)('%s %s: the guard is the extract’s list', (method, path, _body, guard) => {
    expect([...guard].sort()).toEqual([...specPermissions(method, path)].sort());
  });

  it.each(ROUTES)('%s %s: any one listed permission is enough, none is a 403', async (method, path, body) => {
    for (const perm of specPermissions(method, path)) {
      const i = everyPermission.indexOf(perm);
      const r = await call(await tokenOf(`only-${i}`, `secret-${i}`), method, path, body);
      expect(r.status, `${perm}: ${r.code}`).not.toBe(403);
    }
    const r = await call(await tokenOf('none', 'none-secret'), method, path, body);
    expect(r).toMatchObject({ status: 403, code: 'missing.any.permissions' });
  });
});
