import { createReadStream } from 'node:fs';
import { Readable, pipeline } from 'node:stream';
import { parse as parseCsv } from 'csv-parse';
import { formatIssues } from '../config/load.js';
import { type CatalogRecord, catalogRecord } from './record.js';
import type { RecordingRepository, UpsertCounts } from './recording-repository.js';
import { NotUtf8Error, TOO_LONG, checkedUtf8, utf8Lines } from './utf8-lines.js';

export interface RowError {
  line: number;
  message: string;
}

export interface ImportReport {
  rows: number;
  errors: RowError[];
  written: UpsertCounts | null;
}

type Row = { line: number; value: unknown } | { line: number; error: string };

/** JSONL: one object per line, blank lines skipped. Line numbers are 1-based file lines. */
async function* jsonlRows(path: string): AsyncGenerator<Row> {
  for await (const { line, text: raw, tooLong } of utf8Lines(createReadStream(path))) {
    if (raw === null) {
      yield { line, error: tooLong ? TOO_LONG : 'not valid UTF-8' };
      continue;
    }
    // Editors on Windows save UTF-8 with a byte-order mark; it is not part of the first object.
    const text = line === 1 ? raw.replace(/^\ufeff/, '') : raw;
    if (text.trim() === '') continue;
    try {
      yield { line, value: JSON.parse(text) };
    } catch {
      // A CR inside a line: the file's lines end with CR alone (old Mac style), which JSONL does not allow.
      yield { line, error: text.includes('\r') ? 'not valid JSON (the line holds CR characters: JSONL lines end with LF or CRLF)' : 'not valid JSON' };
    }
  }
}

const CSV_NUMBERS = new Set(['size_bytes']);
const CSV_BOOLEANS = new Set(['legal_hold']);

type CsvInfo = { lines: number; empty_lines: number };
const crlfCount = (fields: string[]) => fields.reduce((n, f) => n + (f.match(/\r\n/g)?.length ?? 0), 0);

/**
 * CSV with a header row of record field names; empty cells mean "absent". A row is reported at
 * the line it starts on. csv-parse counts the end line of a record and counts a CRLF inside a
 * quoted field twice, so lines are recomputed from the record ends it reports — as each record
 * is parsed (on_record), so that a syntax error later in the same chunk still gets the right line.
 */
async function* csvRows(path: string): AsyncGenerator<Row> {
  let prevEnd = 0;
  let prevEmpty = 0;
  let overcount = 0;
  const onRecord = (fields: string[], info: CsvInfo) => {
    const crlf = crlfCount(fields);
    const line = prevEnd + 1 + (info.empty_lines - prevEmpty);
    prevEnd = info.lines - overcount - crlf;
    prevEmpty = info.empty_lines;
    overcount += crlf;
    return { fields, line };
  };
  // csv-parse types on_record as returning a record of the input type; ours wraps it with its line.
  const on_record = onRecord as unknown as (fields: string[], info: CsvInfo) => string[];
  const parser = parseCsv({ bom: true, skip_empty_lines: true, relax_column_count: true, trim: false, on_record });
  // The bytes are checked as UTF-8 before csv-parse decodes them (utf8-lines.ts); pipeline hands a failure on to the parser.
  pipeline(Readable.from(checkedUtf8(createReadStream(path))), parser, () => {});
  let header: string[] | null = null;
  try {
    for await (const { fields, line } of parser as AsyncIterable<{ fields: string[]; line: number }>) {
      if (!header) {
        header = fields;
        const dup = header.find((h, i) => header!.indexOf(h) !== i);
        if (dup !== undefined) {
          yield { line, error: `CSV header: column "${dup}" appears twice` };
          return;
        }
        continue;
      }
      if (fields.length !== header.length) {
        yield { line, error: `CSV row has ${fields.length} columns, the header has ${header.length}` };
        continue;
      }
      const value: Record<string, unknown> = {};
      header.forEach((k, i) => {
        const v = fields[i]!;
        if (v === '') return;
        if (CSV_NUMBERS.has(k)) value[k] = /^\d+$/.test(v) ? Number(v) : v;
        else if (CSV_BOOLEANS.has(k)) value[k] = v === 'true' ? true : v === 'false' ? false : v;
        else value[k] = v;
      });
      yield { line, value };
    }
  } catch (e) {
    if (e instanceof NotUtf8Error) {
      yield { line: e.line, error: e.reason };
      return;
    }
    if (isFileError(e)) throw e;
    const err = e as Error & { code?: string; lines?: number; empty_lines?: number };
    // An unclosed quote is found at the end of the file; the row it breaks starts after the last good one.
    const line =
      err.code === 'CSV_QUOTE_NOT_CLOSED'
        ? prevEnd + 1 + ((err.empty_lines ?? prevEmpty) - prevEmpty)
        : typeof err.lines === 'number'
          ? err.lines - overcount
          : Number(/line (\d+)/.exec(err.message)?.[1] ?? 0);
    yield { line, error: `CSV syntax: ${err.message.replace(/ (at|on) line \d+/, '')}` };
  }
}

/** The file itself cannot be read (missing, a directory, no permission): an error of the run, at line 0. */
const isFileError = (e: unknown): e is NodeJS.ErrnoException => typeof (e as NodeJS.ErrnoException | null)?.syscall === 'string';

async function* rowsOf(path: string): AsyncGenerator<Row> {
  try {
    yield* /\.csv$/i.test(path) ? csvRows(path) : jsonlRows(path);
  } catch (e) {
    if (!isFileError(e)) throw e;
    yield { line: 0, error: `cannot read the file (${e.code ?? 'error'}: ${e.message.replace(/^\w+: /, '')})` };
  }
}

/** Ends the import transaction (rolling it back) once a bad row has been seen and the file read. */
class RowsRejected extends Error {}

/**
 * One pass over the file, memory flat: rows are validated and written as they are read, in one
 * transaction (all or nothing). The first bad row stops the writing, not the reading: every bad
 * row is reported with its line (up to maxErrors), then the transaction rolls back, so a file
 * with errors writes nothing. (Two passes — validate everything, then write — parsed and
 * validated each row twice: more than half of the time of a bulk import.)
 * A tenant filter refuses rows of other tenants rather than importing them silently.
 * `touched`, when given, receives the tenant of every record handed to the catalog — whose catalog
 * the import wrote, or tried to before it failed (the CLI audits the import in those tenants' trails).
 */
export async function importFile(
  repo: RecordingRepository,
  path: string,
  opts: { tenants?: ReadonlySet<string>; maxErrors?: number; touched?: Set<string> } = {},
): Promise<ImportReport> {
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
    // A file's null is "not known here", as for every field (an export writes null for every copy
    // without a date): it keeps the stored date. The catalog clears on an explicit null, which only
    // a reader of the source itself sends (the Genesys sync and finder: the date was lifted there).
    if (r.data.source_retention_expiry === null) delete r.data.source_retention_expiry;
    return r.data;
  };
  async function* records(): AsyncGenerator<CatalogRecord> {
    for await (const row of rowsOf(path)) {
      rows++;
      const r = validate(row);
      if (errors.length >= maxErrors) break;
      if (r && !errors.length) {
        opts.touched?.add(r.tenant_id);
        yield r;
      }
    }
    if (errors.length) throw new RowsRejected();
  }
  try {
    const written = await repo.upsertAll(records());
    if (written.inserted || written.updated) await repo.refreshStatistics();
    return { rows, errors, written };
  } catch (e) {
    if (e instanceof RowsRejected) return { rows, errors, written: null };
    throw e;
  }
}
