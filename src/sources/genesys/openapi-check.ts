import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';

/**
 * A small Swagger 2.0 subset validator, to hold the simulator (and the requests the connector
 * sends) to the published Genesys definitions. Strict where Swagger is lax, on purpose: fields
 * that the definition does not name are errors (a simulator must not invent fields), and so is
 * null (Genesys omits absent fields; Swagger 2 has no nullable).
 */

export interface Schema {
  $ref?: string;
  type?: string;
  format?: string;
  enum?: unknown[];
  required?: string[];
  properties?: Record<string, Schema>;
  additionalProperties?: Schema | boolean;
  items?: Schema;
}

export interface Operation {
  operationId?: string;
  parameters?: { name: string; in: string; required?: boolean; schema?: Schema; type?: string; enum?: unknown[] }[];
  responses: Record<string, { schema?: Schema; 'x-inin-error-codes'?: Record<string, string> }>;
}

export interface SwaggerDoc {
  paths: Record<string, Record<string, Operation>>;
  definitions: Record<string, Schema>;
}

export const OPENAPI_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '../../../../shared/reference/genesys-openapi');

/** Loads and merges the extracts; a definition or operation present in two files must be identical (tags aside). */
export function loadGenesysOpenApi(dir = OPENAPI_DIR, files = ['recording.yml', 'conversations.yml', 'analytics.yml']): SwaggerDoc {
  const out: SwaggerDoc = { paths: {}, definitions: {} };
  for (const f of files) {
    const doc = parse(readFileSync(resolve(dir, f), 'utf8'), { maxAliasCount: -1 }) as SwaggerDoc & { swagger?: string };
    if (doc.swagger !== '2.0') throw new Error(`${f} is not a Swagger 2.0 document`);
    for (const [name, def] of Object.entries(doc.definitions ?? {})) {
      const have = out.definitions[name];
      if (have && JSON.stringify(have) !== JSON.stringify(def)) throw new Error(`definition ${name} differs between extracts (${f})`);
      out.definitions[name] = def;
    }
    for (const [path, item] of Object.entries(doc.paths ?? {})) {
      for (const [method, op] of Object.entries(item)) {
        const slot = (out.paths[path] ??= {});
        const have = slot[method];
        // The extracts split one definition by API group: the same operation differs only in `tags`.
        const sameButTags = (a: Operation, b: Operation) => JSON.stringify({ ...a, tags: null }) === JSON.stringify({ ...b, tags: null });
        if (have && !sameButTags(have, op)) throw new Error(`operation ${method} ${path} differs between extracts (${f})`);
        slot[method] = op;
      }
    }
  }
  return out;
}

/** The operation whose path template matches a concrete path, e.g. /api/v2/conversations/{conversationId}/recordings. */
export function findOperation(doc: SwaggerDoc, method: string, path: string): { template: string; op: Operation } | undefined {
  const segs = path.split('/');
  for (const [template, item] of Object.entries(doc.paths)) {
    const t = template.split('/');
    if (t.length !== segs.length) continue;
    if (!t.every((s, i) => (s.startsWith('{') && s.endsWith('}') ? segs[i] !== '' : s === segs[i]))) continue;
    const op = item[method.toLowerCase()];
    if (op) return { template, op };
  }
  return undefined;
}

const DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:?\d{2})$/;

export function resolveRef(doc: SwaggerDoc, schema: Schema): Schema {
  let s = schema;
  for (let i = 0; s.$ref && i < 20; i++) {
    const m = /^#\/definitions\/(.+)$/.exec(s.$ref);
    const def = m ? doc.definitions[m[1] as string] : undefined;
    if (!def) throw new Error(`unresolvable $ref ${s.$ref}`);
    s = def;
  }
  return s;
}

/** Errors of `value` against `schema` (empty when it conforms), each naming the JSON path. */
export function validate(doc: SwaggerDoc, schema: Schema, value: unknown, at = '$'): string[] {
  const s = resolveRef(doc, schema);
  const errs: string[] = [];
  const type = s.type ?? (s.properties || s.additionalProperties ? 'object' : undefined);
  if (value === null) return [`${at}: null (absent fields are omitted, not null)`];
  if (s.enum && !s.enum.map(String).includes(String(value))) errs.push(`${at}: ${JSON.stringify(value)} not in enum`);
  switch (type) {
    case 'object': {
      if (typeof value !== 'object' || Array.isArray(value)) return [...errs, `${at}: expected object`];
      const obj = value as Record<string, unknown>;
      for (const r of s.required ?? []) if (!(r in obj)) errs.push(`${at}.${r}: required`);
      for (const [k, v] of Object.entries(obj)) {
        const p = s.properties?.[k];
        if (p) errs.push(...validate(doc, p, v, `${at}.${k}`));
        else if (s.additionalProperties && typeof s.additionalProperties === 'object') errs.push(...validate(doc, s.additionalProperties, v, `${at}.${k}`));
        else errs.push(`${at}.${k}: not a field of the definition`);
      }
      break;
    }
    case 'array':
      if (!Array.isArray(value)) return [...errs, `${at}: expected array`];
      value.forEach((v, i) => errs.push(...validate(doc, s.items ?? {}, v, `${at}[${i}]`)));
      break;
    case 'string':
      if (typeof value !== 'string') return [...errs, `${at}: expected string`];
      if (s.format === 'date-time' && (!DATE_TIME.test(value) || Number.isNaN(Date.parse(value)))) errs.push(`${at}: not an ISO-8601 date-time`);
      if (s.format === 'uri') {
        try {
          new URL(value, 'http://base.invalid');
        } catch {
          errs.push(`${at}: not a URI`);
        }
      }
      break;
    case 'integer':
      if (typeof value !== 'number' || !Number.isInteger(value)) return [...errs, `${at}: expected integer`];
      if (s.format === 'int32' && (value < -(2 ** 31) || value >= 2 ** 31)) errs.push(`${at}: outside int32`);
      break;
    case 'number':
      if (typeof value !== 'number' || !Number.isFinite(value)) errs.push(`${at}: expected number`);
      break;
    case 'boolean':
      if (typeof value !== 'boolean') errs.push(`${at}: expected boolean`);
      break;
    case undefined:
      break;
    default:
      errs.push(`${at}: schema type ${type} is outside the validator's subset`);
  }
  return errs;
}
