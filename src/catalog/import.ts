import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { parse as parseCsv } from 'csv-parse';
import { formatIssues } from '../config/load.js';
import { type CatalogRecord, catalogRecord } from './record.js';
import type { RecordingRepository, UpsertOutcome } from './recording-repository.js';

export interface RowError {
  line: number;
  message: string;
}

export interface ImportReport {
  rows: number;
  errors: RowError[];
  written: Record<UpsertOutcome, number> | null;
}

type Row = { line: number; value: unknown } | { line: number; error: string };

/** JSONL: one object per line, blank lines skipped. Line numbers are 1-based file lines. */
async function* jsonlRows(path: string): AsyncGenerator<Row> {
  const rl = createInterface({ input: createReadStream(path, 'utf8'), crlfDelay: Infinity });
  let line = 0;
  for await (const text of rl) {
    line++;
    if (text.trim() === '') continue;
    try {
      yield { line, value: JSON.parse(text) };
    } catch {
      yield { line, error: 'not valid JSON' };
    }
  }
}

const CSV_NUMBERS = new Set(['size_bytes']);
const CSV_BOOLEANS = new Set(['legal_hold']);

/** CSV with a header row of record field names; empty cells mean "absent". */
async function* csvRows(path: string): AsyncGenerator<Row> {
  const parser = createReadStream(path).pipe(parseCsv({ columns: true, bom: true, skip_empty_lines: true, info: true, relax_column_count: false, trim: false }));
  try {
    for await (const { record, info } of parser as AsyncIterable<{ record: Record<string, string>; info: { lines: number } }>) {
      const value: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(record)) {
        if (v === '') continue;
        if (CSV_NUMBERS.has(k)) value[k] = /^\d+$/.test(v) ? Number(v) : v;
        else if (CSV_BOOLEANS.has(k)) value[k] = v === 'true' ? true : v === 'false' ? false : v;
        else value[k] = v;
      }
      yield { line: info.lines, value };
    }
  } catch (e) {
    const m = /line (\d+)/.exec((e as Error).message);
    yield { line: m ? Number(m[1]) : 0, error: `CSV syntax: ${(e as Error).message}` };
  }
}

function rowsOf(path: string): AsyncGenerator<Row> {
  return /\.csv$/i.test(path) ? csvRows(path) : jsonlRows(path);
}

/**
 * Two passes over the file so memory stays flat: the first validates every row and collects
 * errors with line numbers; only a clean file is written, in one transaction (all or nothing).
 * A tenant filter refuses rows of other tenants rather than importing them silently.
 */
export async function importFile(repo: RecordingRepository, path: string, opts: { tenants?: ReadonlySet<string>; maxErrors?: number } = {}): Promise<ImportReport> {
  const errors: RowError[] = [];
  const maxErrors = opts.maxErrors ?? 1000;
  let rows = 0;
  const validate = (row: Row): CatalogRecord | null => {
    if ('error' in row) {
      errors.push({ line: row.line, message: row.error });
      return null;
    }
    const r = catalogRecord.safeParse(row.value);
    if (!r.success) {
      errors.push({ line: row.line, message: formatIssues(r.error).join('; ') });
      return null;
    }
    if (opts.tenants && !opts.tenants.has(r.data.tenant_id)) {
      errors.push({ line: row.line, message: `tenant_id: unknown tenant "${r.data.tenant_id}"` });
      return null;
    }
    return r.data;
  };
  for await (const row of rowsOf(path)) {
    rows++;
    validate(row);
    if (errors.length >= maxErrors) break;
  }
  if (errors.length) return { rows, errors, written: null };
  async function* records(): AsyncGenerator<CatalogRecord> {
    for await (const row of rowsOf(path)) {
      const r = validate(row);
      // The file changed between passes: stop, and the transaction rolls back.
      if (!r) throw new Error(`line ${row.line} became invalid during import`);
      yield r;
    }
  }
  const written = await repo.upsertAll(records());
  return { rows, errors, written };
}
