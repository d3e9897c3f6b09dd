import { readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import { configSchema, type Config } from './schema.js';
import { withSecretContext } from './secret.js';

/** Start-up stops with this; its message names every offending field. */
export class ConfigError extends Error {
  constructor(
    message: string,
    readonly issues: string[] = [],
  ) {
    super(message);
    this.name = 'ConfigError';
  }
}

/** The only environment variables custodian reads; everything else comes from the file. */
export interface ConfigEnv {
  CUSTODIAN_CONFIG?: string;
  PORT?: string;
  HOST?: string;
  CUSTODIAN_DATA_DIR?: string;
  /** Read by `custodian demo` without a config file only (src/cli/demo-config.ts), not by parseConfig. */
  CUSTODIAN_DEMO_API_KEY?: string;
  CUSTODIAN_LOG_LEVEL?: string;
  [name: string]: string | undefined;
}

function formatPath(path: ReadonlyArray<PropertyKey>): string {
  return path.reduce<string>((acc, p) => (typeof p === 'number' ? `${acc}[${p}]` : acc ? `${acc}.${String(p)}` : String(p)), '') || '(root)';
}

export function formatIssues(error: z.ZodError): string[] {
  return error.issues.map((i) => `${formatPath(i.path)}: ${i.message}`);
}

/** Parses a config document (already read) into the typed, secret-resolved Config. */
export function parseConfig(raw: unknown, env: ConfigEnv = {}): Config {
  if (raw === null || raw === undefined) raw = {};
  if (typeof raw !== 'object' || Array.isArray(raw)) throw new ConfigError('config: the document must be an object');
  const doc = structuredClone(raw) as Record<string, unknown>;

  // Environment overrides, applied before validation so they are validated too. A block that is
  // not an object is left alone for the schema to report by its name.
  const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  const block = (name: string): Record<string, unknown> | null => {
    doc[name] ??= {};
    return isObject(doc[name]) ? doc[name] : null;
  };
  if (env.PORT !== undefined) {
    const port = Number(env.PORT);
    if (!/^\d+$/.test(env.PORT) || port > 65535) throw new ConfigError(`PORT: "${env.PORT}" is not a port number`);
    const server = block('server');
    if (server) server.port = port;
  }
  if (env.HOST) {
    const server = block('server');
    if (server) server.host = env.HOST;
  }
  if (env.CUSTODIAN_DATA_DIR) doc.data_dir = env.CUSTODIAN_DATA_DIR;
  if (env.CUSTODIAN_LOG_LEVEL) {
    const logging = block('logging');
    if (logging) logging.level = env.CUSTODIAN_LOG_LEVEL;
  }

  const allowInline = doc.allow_inline_secrets === true;
  const result = withSecretContext({ env, allowInline }, () => configSchema.safeParse(doc));
  if (!result.success) {
    const issues = formatIssues(result.error);
    throw new ConfigError(`invalid configuration:\n  ${issues.join('\n  ')}`, issues);
  }
  const config = result.data;
  config.data_dir = resolve(config.data_dir);
  for (const t of config.tenants) {
    for (const s of t.sources) {
      if (s.type === 'filesystem' && !isAbsolute(s.root)) s.root = resolve(config.data_dir, s.root);
    }
  }
  return config;
}

/**
 * Reads YAML or JSON from a file; no path means "embedded defaults". A file that holds nothing
 * (zero bytes, blanks, only comments, `null`) is refused: a truncated production config must not
 * start the gateway on SQLite with the embedded defaults. `{}` asks for every default on purpose.
 */
export function loadConfig(path: string | undefined, env: ConfigEnv): Config {
  if (!path) return parseConfig({}, env);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ConfigError(`config file ${path} cannot be read (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  const json = /\.json$/i.test(path);
  if (!text.trim()) throw new ConfigError(`config file ${path} is empty`);
  let raw: unknown;
  try {
    raw = json ? JSON.parse(text) : parseYaml(text);
  } catch (e) {
    throw new ConfigError(`config file ${path} is not valid ${json ? 'JSON' : 'YAML'}: ${(e as Error).message}`);
  }
  if (raw === null || raw === undefined) throw new ConfigError(`config file ${path} is empty`);
  if (typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ConfigError(`config file ${path} must be a mapping of fields (server:, tenants:, …) at the top level, not ${Array.isArray(raw) ? 'a list' : `a ${typeof raw}`}`);
  }
  return parseConfig(raw, env);
}
