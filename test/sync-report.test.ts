import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'csv-parse/sync';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type GenesysSimulator, startGenesysSimulator } from '../src/sources/genesys/simulator.js';
import { runSync } from '../src/sync/runner.js';
import { genesysSource, VERINT_MAPPING, verintTree } from '../src/sync/test-helpers.js';
import { usableCatalogs } from './support/catalogs.js';
import { bearer, KEYS, startTestGateway, type TestGateway } from './support/gateway.js';
import { raw } from './support/http.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const T0 = Date.parse('2024-03-01T09:00:00Z');

describe.each(await usableCatalogs())('GET /api/v1/reports/migration on %s', (kind) => {
  let gw: TestGateway;
  let sim: GenesysSimulator;

  beforeAll(async () => {
    sim = await startGenesysSimulator({});
    sim.addRecording({ conversationId: 'conv-1', recordingId: 'rec-1', startTime: new Date(T0), bytes: 'x', externalTag: 'CALL-1' });
    sim.addRecording({ conversationId: 'conv-2', recordingId: 'rec-2', startTime: new Date(T0 + 60_000), bytes: 'x' });
    gw = await startTestGateway({
      catalog: kind,
      sources: { acme: [genesysSource(sim)] },
      config: (doc) => {
        doc.tenants[0].sync = { legacy: [{ source: 'archive', prefix: 'verint', mapping: VERINT_MAPPING }] };
      },
    });
    verintTree(join(gw.roots.acme!, 'verint'), [
      { id: 'v1', start: new Date(T0), sidecar: { callId: 'CALL-1', startTime: new Date(T0).toISOString(), duration: 60, retainUntil: '2099-01-01T00:00:00Z' } },
      { id: 'v9', start: new Date(T0), sidecar: { callId: 'CALL-9', startTime: new Date(T0).toISOString(), retainUntil: '2099-01-01T00:00:00Z', purgeAfter: '2030-01-01T00:00:00Z' } },
    ]);
    const r = await runSync(gw.deps, { tenantId: 'acme', since: new Date('2024-03-01T00:00:00Z'), until: new Date('2024-03-02T00:00:00Z') });
    expect(r.runs.map((x) => x.status)).toEqual(['succeeded', 'succeeded']);
  });
  afterAll(async () => {
    await gw?.stop();
    await sim?.close();
  });

  it('answers counts and lists in JSON and CSV to audit:read, audits the read, and refuses other scopes', async () => {
    const res = await raw(`${gw.url}/api/v1/reports/migration`, { headers: bearer(KEYS.acmeAuditor) });
    expect(res.status).toBe(200);
    const body = JSON.parse(res.body.toString()) as { counts: Record<string, number>; lists: Record<string, { call_id: string }[]> };
    expect(body.counts).toEqual({ recordings: 3, legacy_only: 1, cloud_only: 1, both: 1, ambiguous: 0, mismatched: 0, retention_gap: 1 });
    expect(body.lists.retention_gap!.map((r) => r.call_id)).toEqual(['CALL-9']);
    expect(res.headers['cache-control']).toBe('no-store');
    const ev = await gw.deps.auditRepo.query({ tenantId: 'acme', action: 'report.migration', limit: 10 });
    expect(ev.items[0]).toMatchObject({ principalId: 'audrey', outcome: 'completed', id: res.headers['x-audit-event-id'] });

    const csv = await raw(`${gw.url}/api/v1/reports/migration?format=csv`, { headers: bearer(KEYS.acmeAdmin) });
    expect(csv.status).toBe(200);
    expect(csv.headers['content-type']).toMatch(/^text\/csv/);
    const rows = parse(csv.body, { columns: true }) as Record<string, string>[];
    expect(rows.find((r) => r.category === 'count:both')?.recording).toBe('1');
    expect(rows.filter((r) => r.category === 'legacy_only').map((r) => r.call_id)).toEqual(['CALL-9']);

    expect((await raw(`${gw.url}/api/v1/reports/migration`, { headers: bearer(KEYS.acme) })).status).toBe(403);
    expect((await raw(`${gw.url}/api/v1/reports/migration?format=xml`, { headers: bearer(KEYS.acmeAuditor) })).status).toBe(422);
    // Another tenant sees its own (empty) catalog only.
    const other = JSON.parse((await raw(`${gw.url}/api/v1/reports/migration`, { headers: bearer(KEYS.globex) })).body.toString()) as { counts: { recordings: number } };
    expect(other.counts.recordings).toBe(0);
  });
});

describe('custodian sync / report migration (CLI)', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'custodian-sync-cli-'));
    verintTree(join(dir, 'archive'), [
      { id: 'v1', start: new Date(T0), sidecar: { callId: 'CALL-1', startTime: new Date(T0).toISOString(), retainUntil: '2099-01-01T00:00:00Z', purgeAfter: '2030-01-01T00:00:00Z' } },
      { id: 'v2', start: new Date(T0 + 3_600_000) },
    ]);
    writeFileSync(
      join(dir, 'custodian.json'),
      JSON.stringify({
        data_dir: dir,
        catalog: { driver: 'sqlite', path: join(dir, 'catalog.sqlite') },
        tenants: [{ id: 'acme', sources: [{ name: 'verint', type: 'filesystem', root: join(dir, 'archive') }], sync: { legacy: [{ source: 'verint', mapping: VERINT_MAPPING }] } }],
      }),
    );
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const cli = (args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args, '--config', join(dir, 'custodian.json')], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });

  // Each command is a fresh process (tsx start-up): three of them, a generous timeout.
  it('syncs, reports in CSV, and refuses a bad --since naming the flag', { timeout: 120_000 }, () => {
    const s = cli(['sync', '--tenant', 'acme']);
    expect(s.stderr).toContain('acme/verint (filesystem): succeeded');
    expect(s.status).toBe(0);
    expect(JSON.parse(s.stdout)).toMatchObject({ runs: [{ source: 'verint', status: 'succeeded', stats: { added: 2 } }] });

    const csv = cli(['report', 'migration', '--tenant', 'acme', '--format', 'csv']);
    expect(csv.status).toBe(0);
    const rows = parse(csv.stdout, { columns: true }) as Record<string, string>[];
    expect(rows.find((r) => r.category === 'count:legacy_only')?.recording).toBe('2');
    expect(rows.find((r) => r.category === 'count:retention_gap')?.recording).toBe('1');
    // No TTY in a test: no progress bar noise on stderr.
    expect(csv.stderr).not.toContain('\r');

    const bad = cli(['sync', '--since', 'yesterday']);
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toContain('--since');
  });
});
