import type { IncomingHttpHeaders } from 'node:http';
import type { Dispatcher } from 'undici';
import { AppError } from '../../errors.js';
import { genesysError } from './errors.js';
import type { ErrorBody } from './models.js';
import { header, netCodeOf } from '../net.js';
import { notAnOutage } from '../circuit.js';
export { abortable, abortedError, header, netCodeOf, sleep } from '../net.js';

/** A failure worth another attempt: a 5xx answer or a network error before any byte was used. */
export class TransientError extends Error {
  constructor(
    readonly status: number | undefined,
    readonly netCode: string | undefined,
    readonly genesys: ErrorBody | undefined,
  ) {
    super(status ? `HTTP ${status}` : `network error ${netCode ?? ''}`.trim());
    this.name = 'TransientError';
  }
}

export function isTransient(e: unknown): boolean {
  return e instanceof TransientError || netCodeOf(e) !== undefined;
}

/** Final mapping of a transient failure once retries are spent. Never includes URLs. */
export function transientToAppError(e: unknown, what: string): AppError {
  if (e instanceof TransientError && e.status !== undefined) {
    const extra = genesysExtra(e.status, e.genesys);
    if (e.status === 504) return new AppError('source.timeout', `${what}: Genesys answered 504`, { extra });
    if (e.status === 503) return new AppError('source.unavailable', `${what}: Genesys answered 503`, { extra });
    return new AppError('source.bad_gateway', `${what}: Genesys answered ${e.status}`, { extra });
  }
  const code = e instanceof TransientError ? e.netCode : netCodeOf(e);
  if (code === 'UND_ERR_CONNECT_TIMEOUT' || code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT' || code === 'ETIMEDOUT') {
    return new AppError('source.timeout', `${what}: no answer in time (${code})`);
  }
  return new AppError('source.unavailable', `${what}: not reachable (${code ?? 'network error'})`);
}

/** Retry-After in milliseconds: delta-seconds or an HTTP date; `fallbackMs` when absent or unparsable. */
export function retryAfterMs(headers: IncomingHttpHeaders, fallbackMs: number, now = Date.now()): number {
  const v = header(headers, 'retry-after')?.trim();
  if (!v) return fallbackMs;
  if (/^\d+(\.\d+)?$/.test(v)) return Math.round(Number(v) * 1000);
  const at = Date.parse(v);
  return Number.isNaN(at) ? fallbackMs : Math.max(0, at - now);
}

/** The answer to a 429 (API or login) that will not be waited out: a 503 carrying Genesys' Retry-After. */
export function rateLimitPersists(what: string, waitMs: number): AppError {
  return new AppError('source.unavailable', `${what}: Genesys rate limit (429) persists`, {
    headers: { 'Retry-After': String(Math.max(1, Math.ceil(waitMs / 1000))) },
    extra: { genesys_status: 429 },
  });
}

const JSON_LIMIT = 8 * 1024 * 1024;

/** Reads a whole (small) body; refuses oversized ones so a broken upstream cannot exhaust memory. */
export async function readBody(res: Dispatcher.ResponseData, limit = JSON_LIMIT): Promise<Buffer> {
  const declared = Number(header(res.headers, 'content-length') ?? NaN);
  if (declared > limit) {
    res.body.destroy();
    throw new AppError('source.bad_gateway', 'Genesys answered with an oversized body');
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of res.body as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) {
      res.body.destroy();
      throw new AppError('source.bad_gateway', 'Genesys answered with an oversized body');
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

export async function readJson<T>(res: Dispatcher.ResponseData, what: string): Promise<T> {
  const buf = await readBody(res);
  try {
    return JSON.parse(buf.toString('utf8')) as T;
  } catch {
    throw new AppError('source.bad_gateway', `${what}: Genesys answered ${res.statusCode} with a body that is not JSON`);
  }
}

/** An error body if it parses as one; never throws. */
export async function readErrorBody(res: Dispatcher.ResponseData): Promise<ErrorBody | undefined> {
  try {
    const buf = await readBody(res, 64 * 1024);
    const v: unknown = JSON.parse(buf.toString('utf8'));
    return v && typeof v === 'object' ? (v as ErrorBody) : undefined;
  } catch {
    res.body.destroy();
    return undefined;
  }
}

/** What of an error body may reach our clients: status, code and the correlation id, never the message. */
export function genesysExtra(status: number, body: ErrorBody | undefined): Record<string, unknown> {
  const extra: Record<string, unknown> = { genesys_status: status };
  if (typeof body?.code === 'string') extra.genesys_code = body.code;
  if (typeof body?.contextId === 'string') extra.genesys_context_id = body.contextId;
  return extra;
}

export type NotFoundMeaning = 'recording' | 'upstream';

/** Maps a final (non-retried) 4xx/5xx answer of the Platform API to the error catalogue. */
export function genesysToAppError(status: number, body: ErrorBody | undefined, what: string, notFound: NotFoundMeaning): AppError {
  const extra = genesysExtra(status, body);
  const code = typeof body?.code === 'string' ? ` (${body.code})` : '';
  if (status === 404 && notFound === 'recording') return new AppError('recording.not_found', `${what}: Genesys has no such recording${code}`, { extra });
  if (status === 401 || status === 403) return genesysError('source.auth_failed', `${what}: Genesys refused access${code}`, { extra });
  if (status === 408 || status === 504) return new AppError('source.timeout', `${what}: Genesys timed out${code}`, { extra });
  if (status === 503) return new AppError('source.unavailable', `${what}: Genesys is unavailable${code}`, { extra });
  const e = new AppError('source.bad_gateway', `${what}: Genesys answered ${status}${code}`, { extra });
  // A 4xx (400, 409, 415…) refuses this request, about this id: Genesys is up and answering, so
  // it must not open the circuit breaker for every other recording (circuit.ts). A 5xx here does.
  return status < 500 ? notAnOutage(e) : e;
}
