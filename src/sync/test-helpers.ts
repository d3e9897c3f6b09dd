import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { AuditRepository } from '../audit/audit-repository.js';
import type { CatalogDb } from '../catalog/database.js';
import { RecordingRepository } from '../catalog/recording-repository.js';
import { parseConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { Metrics } from '../http/metrics.js';
import { createConnector } from '../sources/factory.js';
import { SourceRegistry } from '../sources/registry.js';
import type { GenesysSimulator } from '../sources/genesys/simulator.js';
import type { SyncDeps } from './runner.js';

/** Sync dependencies around a test catalog: one tenant "acme" with the given sources and sync block. */
export function syncDepsFor(
  cat: CatalogDb,
  tenant: { sources: Record<string, unknown>[]; sync?: Record<string, unknown> },
  instanceId = 'test-instance',
): SyncDeps & { close(): Promise<void>; config: Config } {
  const config = parseConfig({ allow_inline_secrets: true, catalog: { driver: 'sqlite', path: ':memory:' }, tenants: [{ id: 'acme', ...tenant }] }, {});
  const sources = new SourceRegistry(config.tenants, createConnector);
  return {
    config,
    catalog: cat,
    recordings: new RecordingRepository(cat.db),
    auditRepo: new AuditRepository(cat.db, cat.dialect),
    sources,
    metrics: new Metrics(),
    instanceId,
    close: () => sources.close(),
  };
}

export function genesysSource(sim: GenesysSimulator, name = 'genesys'): Record<string, unknown> {
  return {
    name,
    type: 'genesys',
    environment: 'mypurecloud.ie',
    login_base_url: sim.loginBaseUrl,
    api_base_url: sim.apiBaseUrl,
    client_id: 'custodian-sim',
    client_secret: 'custodian-sim-secret',
    timeout_ms: 5_000,
  };
}

export interface VerintCall {
  id: string;
  start: Date;
  sidecar?: Record<string, unknown> | string | null;
  bytes?: string;
}

/** Verint export layout: yyyy/mm/dd/hh/<id>.wav with <id>.json beside it. Returns locator → content written. */
export function verintTree(root: string, calls: VerintCall[], ext = 'json'): string[] {
  const out: string[] = [];
  for (const c of calls) {
    const d = c.start;
    const p = (n: number) => String(n).padStart(2, '0');
    const dir = `${d.getUTCFullYear()}/${p(d.getUTCMonth() + 1)}/${p(d.getUTCDate())}/${p(d.getUTCHours())}`;
    const wav = `${dir}/${c.id}.wav`;
    mkdirSync(dirname(join(root, wav)), { recursive: true });
    writeFileSync(join(root, wav), c.bytes ?? `RIFF-fake-${c.id}`);
    if (c.sidecar !== null) {
      const sc = c.sidecar ?? { callId: `CALL-${c.id}`, startTime: d.toISOString(), duration: 61 };
      writeFileSync(join(root, `${dir}/${c.id}.${ext}`), typeof sc === 'string' ? sc : JSON.stringify(sc));
    }
    out.push(wav);
  }
  return out;
}

export function tempDir(prefix = 'custodian-sync-'): { dir: string; dispose(): void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, dispose: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Verint-style JSON sidecar mapping used by the tests and docs/SYNC.md. */
export const VERINT_MAPPING = {
  call_id: 'callId',
  started_at: 'startTime',
  duration_s: 'duration',
  ani: 'contact.ani',
  dnis: 'contact.dnis',
  sip_call_id: 'sipCallId',
  external_tag: 'externalTag',
  retention_expiry: 'retainUntil',
  source_retention_expiry: 'purgeAfter',
};
