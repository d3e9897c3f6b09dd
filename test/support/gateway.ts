import { cpSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { DEMO_AUDIO_DIR } from '../../src/cli/demo-seed.js';
import type { CatalogRecord } from '../../src/catalog/record.js';
import { parseConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import { type Gateway, startGateway, type BuildDepsOptions } from '../../src/main.js';
import { type CatalogKind, openTestCatalog, type TestCatalog } from './catalogs.js';
import { raw } from './http.js';

export const AUDIO = DEMO_AUDIO_DIR;

export const KEYS = {
  acme: 'cst_acme-reader_' + 'a'.repeat(32),
  /** Another reader in acme (another principal): a job is its starter's, not its tenant's. */
  acmeReader2: 'cst_acme-reader2_' + 'h'.repeat(32),
  acmeAdmin: 'cst_acme-admin_' + 'b'.repeat(32),
  /** A second administrator (four-eyes steps). */
  acmeAdmin2: 'cst_acme-admin2_' + 'f'.repeat(32),
  globexAdmin: 'cst_globex-admin_' + 'g'.repeat(32),
  acmeAuditor: 'cst_acme-auditor_' + 'c'.repeat(32),
  acmeNoScope: 'cst_acme-noscope_' + 'd'.repeat(32),
  globex: 'cst_globex-reader_' + 'e'.repeat(32),
};

export interface TestGateway extends Gateway {
  catalogDb: TestCatalog;
  dir: string;
  /** Archive roots by tenant. */
  roots: Record<string, string>;
  config: Config;
  logs: string[];
  seed(records: Partial<CatalogRecord>[]): Promise<void>;
  stop(): Promise<void>;
}

export interface GatewayOptions {
  catalog?: CatalogKind;
  /** Extra sources per tenant (beyond each tenant's filesystem archive). */
  sources?: Record<string, Record<string, unknown>[]>;
  config?: (doc: Record<string, any>) => void;
  deps?: BuildDepsOptions;
}

/**
 * Boots the real gateway on an ephemeral port: two tenants (acme, globex), each with its own
 * filesystem archive holding copies of the fixture audio, and API keys of several scopes.
 */
export async function startTestGateway(opts: GatewayOptions = {}): Promise<TestGateway> {
  const dir = mkdtempSync(join(tmpdir(), 'custodian-gw-'));
  const roots: Record<string, string> = {};
  for (const t of ['acme', 'globex']) {
    roots[t] = join(dir, 'archive', t);
    mkdirSync(roots[t], { recursive: true });
    cpSync(AUDIO, roots[t], { recursive: true });
  }
  const catalogDb = await openTestCatalog(opts.catalog ?? 'sqlite');
  const doc: Record<string, any> = {
    data_dir: dir,
    allow_inline_secrets: true,
    server: { host: '127.0.0.1', port: 0, shutdown_grace_ms: 500 },
    catalog: catalogDb.catalogConfig,
    logging: { level: 'info' },
    auth: {
      api_keys: [
        { id: 'acme-reader', tenant: 'acme', principal: 'alice', scopes: ['recordings:read'], key: KEYS.acme },
        { id: 'acme-reader2', tenant: 'acme', principal: 'bob', scopes: ['recordings:read'], key: KEYS.acmeReader2 },
        { id: 'acme-admin', tenant: 'acme', principal: 'root', scopes: ['admin'], key: KEYS.acmeAdmin },
        { id: 'acme-admin2', tenant: 'acme', principal: 'carol', scopes: ['admin'], key: KEYS.acmeAdmin2 },
        { id: 'globex-admin', tenant: 'globex', principal: 'gadmin', scopes: ['admin'], key: KEYS.globexAdmin },
        { id: 'acme-auditor', tenant: 'acme', principal: 'audrey', scopes: ['audit:read'], key: KEYS.acmeAuditor },
        { id: 'acme-noscope', tenant: 'acme', principal: 'nobody', scopes: ['recordings:export'], key: KEYS.acmeNoScope },
        { id: 'globex-reader', tenant: 'globex', principal: 'gary', scopes: ['recordings:read', 'audit:read'], key: KEYS.globex },
      ],
    },
    tenants: ['acme', 'globex'].map((t) => ({
      id: t,
      // A 20 s first-byte budget: a transcode's first byte waits for ffmpeg's first output buffer
      // (media/prepare.ts), and on a loaded 2-core CI machine ffmpeg alone can take the default 2 s
      // to start — a test of transcoding must not turn into a 202 job. Tests of the budget set their own.
      sources: [{ name: 'archive', type: 'filesystem', root: roots[t], source_systems: ['avaya_aura', 'verint', 'filesystem'], first_byte_budget_ms: 20_000 }, ...(opts.sources?.[t] ?? [])],
    })),
  };
  opts.config?.(doc);
  const config = parseConfig(doc, {});
  const logs: string[] = [];
  const logger = pino({ level: 'info', redact: ['req.headers.authorization'] }, { write: (s: string) => void logs.push(s) });
  // The catalog is opened by the harness so tests can look at (and tamper with) the same database.
  const gw = await startGateway(config, { logger, catalog: { ...catalogDb, close: async () => {} }, ...opts.deps });
  return {
    ...gw,
    catalogDb,
    dir,
    roots,
    config,
    logs,
    async seed(records) {
      await gw.deps.recordings.upsertAll(records.map((r) => ({ state: 'AVAILABLE', legal_hold: false, source_system: 'avaya_aura', tenant_id: 'acme', ...r }) as CatalogRecord));
    },
    async stop() {
      await gw.close();
      await catalogDb.dispose();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export function bearer(key: string): Record<string, string> {
  return { authorization: `Bearer ${key}` };
}

export function retrieveBody(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    request_id: `req_${Math.random().toString(36).slice(2)}`,
    caller_id: 'alice',
    target_recording_ref: 'avaya_8923',
    format_preference: 'original',
    ...overrides,
  };
}

/** Polls a job's status endpoint until its status is one of `want` (the body is returned), or throws after `timeoutMs`. */
export async function pollUntil(gw: Pick<TestGateway, 'url'>, poll: string, want: string[], key = KEYS.acme, timeoutMs = 20_000) {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const res = await raw(`${gw.url}${poll}`, { headers: bearer(key) });
    const body = JSON.parse(res.body.toString());
    if (want.includes(body.status)) return body;
    if (Date.now() > until) throw new Error(`job still ${body.status}: ${res.body.toString()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
