import { execFile } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openSqlite } from '../src/catalog/database.js';
import { migrateToLatest } from '../src/catalog/migrations.js';
import type { CatalogRecord } from '../src/catalog/record.js';
import { RecordingRepository } from '../src/catalog/recording-repository.js';
import { type GenesysSimulator, startGenesysSimulator } from '../src/sources/genesys/simulator.js';
import { genesysSource } from '../src/sync/test-helpers.js';
import { fixturePath } from './support/audio.js';
import { usableCatalogs } from './support/catalogs.js';
import { bearer, KEYS, startTestGateway, type TestGateway } from './support/gateway.js';
import { raw } from './support/http.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** A legacy copy on the tenant's file share and a cloud copy in the Genesys simulator, linked by call id. */
function pair(name: string, legacyFile: string, sim: GenesysSimulator, cloudPath: string, tenant = 'acme'): Partial<CatalogRecord>[] {
  sim.addRecording({ conversationId: `conv-${name}`, recordingId: `rec-${name}`, path: cloudPath, contentType: 'audio/wav' });
  return [
    { tenant_id: tenant, call_id: `CALL-${name}`, source_system: 'avaya_aura', connector: 'archive', locator: legacyFile, legacy_archive_id: `av-${name}` },
    { tenant_id: tenant, call_id: `CALL-${name}`, source_system: 'genesys_cloud', connector: 'genesys', recording_id: `rec-${name}`, conversation_id: `conv-${name}` },
  ];
}

describe.each(await usableCatalogs())('POST /api/v1/recordings/{ref}/integrity on %s', (kind) => {
  let gw: TestGateway;
  let sim: GenesysSimulator;
  const url = (ref: string) => `${gw.url}/api/v1/recordings/${encodeURIComponent(ref)}/integrity`;
  const post = (ref: string, key: string) => raw(url(ref), { method: 'POST', headers: bearer(key) });

  beforeAll(async () => {
    sim = await startGenesysSimulator({});
    gw = await startTestGateway({ catalog: kind, sources: { acme: [genesysSource(sim)] } });
    copyFileSync(fixturePath('bad_truncated_pcm16.wav'), join(gw.roots.acme!, 'bad_truncated_pcm16.wav'));
    const pcm = join(gw.roots.acme!, 'call_mono_pcm16_8k.wav');
    await gw.seed([
      ...pair('ulaw', 'call_mono_mulaw_8k.wav', sim, pcm),
      ...pair('g729', 'call_mono_g729_8k.wav', sim, pcm),
      ...pair('other', 'call_stereo_pcm16_8k.wav', sim, pcm),
      ...pair('cut', 'call_mono_pcm16_8k.wav', sim, join(gw.roots.acme!, 'bad_truncated_pcm16.wav')),
      { call_id: 'CALL-alone', connector: 'archive', locator: 'call_mono_pcm16_8k.wav', legacy_archive_id: 'av-alone' },
    ]);
  });
  afterAll(async () => {
    await gw?.stop();
    await sim?.close();
  });

  it('compares the two copies for audit:read, answers and audits the verdict, and stores it', async () => {
    const res = await post('CALL-ulaw', KEYS.acmeAuditor);
    expect(res.status).toBe(200);
    expect(res.headers['cache-control']).toBe('no-store');
    const body = JSON.parse(res.body.toString()) as Record<string, any>;
    expect(body).toMatchObject({ verdict: 'match', offset_ms: 0, legacy: { codec: 'mulaw', duration_ms: 8442 }, cloud: { codec: 'pcm_s16le', duration_ms: 8442 }, checked_by: 'audrey' });
    expect(body.similarity).toBeGreaterThan(0.99);
    const ev = await gw.deps.auditRepo.query({ tenantId: 'acme', action: 'recording.integrity', limit: 10 });
    expect(ev.items.at(-1)).toMatchObject({ id: res.headers['x-audit-event-id'], principalId: 'audrey', outcome: 'completed', ref: 'CALL-ulaw', recordingPk: body.recording });
    expect(ev.items.at(-1)!.detail).toMatchObject({ verdict: 'match', check_id: body.check_id });
    const row = await gw.catalogDb.db.selectFrom('integrity_checks').selectAll().where('id', '=', body.check_id).executeTakeFirst();
    expect(row).toMatchObject({ tenant_id: 'acme', verdict: 'match', trigger: 'on_demand', checked_by: 'audrey' });

    // Admin holds every scope; G.729 against PCM matches too.
    const g729 = JSON.parse((await post('av-g729', KEYS.acmeAdmin)).body.toString()) as Record<string, unknown>;
    expect(g729).toMatchObject({ verdict: 'match', legacy: { codec: 'g729' } });
    const other = JSON.parse((await post('CALL-other', KEYS.acmeAdmin)).body.toString()) as Record<string, any>;
    expect(other).toMatchObject({ verdict: 'mismatch', legacy: { duration_ms: 6717 }, cloud: { duration_ms: 8442 } });
    expect(other.similarity).toBeLessThan(0.5);
  });

  it('answers another tenant exactly as for an unknown ref (404), leaving evidence in the owner trail', async () => {
    const theirs = await post('CALL-ulaw', KEYS.globexAdmin);
    const unknown = await post('CALL-nowhere', KEYS.globexAdmin);
    expect(theirs.status).toBe(404);
    expect(theirs.headers['content-type']).toBe('application/problem+json');
    const strip = (b: Buffer) => {
      const { request_id: _r, ...rest } = JSON.parse(b.toString()) as Record<string, unknown>;
      return rest;
    };
    expect(strip(theirs.body)).toEqual(strip(unknown.body));
    const owner = await gw.deps.auditRepo.query({ tenantId: 'acme', action: 'recording.cross_tenant_attempt', limit: 10 });
    expect(owner.items.some((e) => e.ref === 'CALL-ulaw' && e.principalId === 'gadmin')).toBe(true);
    const mine = await gw.deps.auditRepo.query({ tenantId: 'globex', action: 'recording.integrity', limit: 10 });
    expect(mine.items.map((e) => e.outcome)).toEqual(['denied', 'denied']);
    expect(await gw.catalogDb.db.selectFrom('integrity_checks').select('id').where('tenant_id', '=', 'globex').execute()).toEqual([]);
  });

  it('refuses a reader (403), a recording without both copies (409 problem), and calls a truncated copy unreadable (200, never 500)', async () => {
    expect((await post('CALL-ulaw', KEYS.acme)).status).toBe(403);

    const alone = await post('CALL-alone', KEYS.acmeAuditor);
    expect(alone.status).toBe(409);
    expect(alone.headers['content-type']).toBe('application/problem+json');
    expect(JSON.parse(alone.body.toString())).toMatchObject({ code: 'integrity.not_a_pair', legacy_copies: 1, cloud_copies: 0 });
    const failed = await gw.deps.auditRepo.query({ tenantId: 'acme', action: 'recording.integrity', outcome: 'failed', limit: 10 });
    expect(failed.items.at(-1)).toMatchObject({ ref: 'CALL-alone', errorCode: 'integrity.not_a_pair' });

    const cut = await post('CALL-cut', KEYS.acmeAuditor);
    expect(cut.status).toBe(200);
    expect(JSON.parse(cut.body.toString())).toMatchObject({ verdict: 'unreadable', error_code: 'media.undecodable', similarity: null, cloud: { error: { code: 'media.undecodable' } } });
  });
});

describe('custodian verify integrity (CLI)', () => {
  let dir: string;
  let sim: GenesysSimulator;
  let config: string;
  // Not spawnSync: the Genesys simulator runs in this process and must keep answering.
  const cli = (args: string[]) =>
    new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
      execFile(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'verify', 'integrity', ...args, '--config', config], { cwd: ROOT, encoding: 'utf8', timeout: 90_000 }, (err, stdout, stderr) =>
        resolve({ status: err ? ((err as { code?: number }).code ?? null) : 0, stdout, stderr }),
      );
    });

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'custodian-verify-cli-'));
    sim = await startGenesysSimulator({});
    const archive = join(dir, 'archive');
    mkdirSync(archive);
    for (const f of ['call_mono_pcm16_8k.wav', 'call_mono_mulaw_8k.wav', 'call_stereo_pcm16_8k.wav']) copyFileSync(fixturePath(f), join(archive, f));
    config = join(dir, 'custodian.json');
    const catalogPath = join(dir, 'catalog.sqlite');
    writeFileSync(
      config,
      JSON.stringify({
        data_dir: dir,
        allow_inline_secrets: true,
        catalog: { driver: 'sqlite', path: catalogPath },
        tenants: [{ id: 'acme', sources: [{ name: 'archive', type: 'filesystem', root: archive }, genesysSource(sim)] }],
      }),
    );
    const cat = openSqlite(catalogPath);
    await migrateToLatest(cat.db, 'sqlite');
    const pcm = join(archive, 'call_mono_pcm16_8k.wav');
    const recs = [...pair('same', 'call_mono_mulaw_8k.wav', sim, pcm), ...pair('diff', 'call_stereo_pcm16_8k.wav', sim, pcm)];
    await new RecordingRepository(cat.db).upsertAll(recs.map((r) => ({ legal_hold: false, state: 'AVAILABLE', ...r }) as CatalogRecord));
    await cat.close();
  });
  afterAll(async () => {
    await sim?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  // Each command is a fresh process (tsx start-up): a generous timeout.
  it('checks one recording or a sample, prints verdicts, exits by the worst one, and names a bad flag', { timeout: 180_000 }, async () => {
    const one = await cli(['--recording', 'CALL-same']);
    expect(one.stderr).toMatch(/: match similarity 1/);
    expect(one.status).toBe(0);
    expect(JSON.parse(one.stdout)).toMatchObject({ verdict: 'match', trigger: 'on_demand', checked_by: 'cli' });

    const all = await cli(['--tenant', 'acme', '--sample', '100%']);
    expect(all.status).toBe(1);
    expect(JSON.parse(all.stdout)).toMatchObject({ tenant: 'acme', pairs: 2, sampled: 2, verdicts: { match: 1, mismatch: 1 } });
    expect(all.stderr).toContain('acme: 2 of 2 pair(s) checked');

    const bad = await cli(['--sample', 'many']);
    expect(bad.status).toBe(78);
    expect(bad.stderr).toContain('--sample');
  });
});
