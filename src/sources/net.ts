import type { IncomingHttpHeaders } from 'node:http';
import { AppError } from '../errors.js';

/**
 * Small pieces every HTTP connector needs (Genesys, legacy recorders): recognising network
 * failures through undici's wrapping, abort-aware waits, header access.
 */

const NET_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
]);

/** The error code of a network failure (undici or node), found through AggregateError and `cause`. */
export function netCodeOf(e: unknown): string | undefined {
  for (let cur: unknown = e, depth = 0; cur && depth < 5; depth++) {
    const code = (cur as { code?: unknown }).code;
    if (typeof code === 'string' && NET_CODES.has(code)) return code;
    const inner = (cur as { errors?: unknown[] }).errors;
    if (Array.isArray(inner))
      for (const x of inner) {
        const c = netCodeOf(x);
        if (c) return c;
      }
    cur = (cur as { cause?: unknown }).cause;
  }
  return undefined;
}

/**
 * Errors made by `abortedError`, so they can be told apart from a source's own failures while
 * keeping the code clients have always seen (source.unavailable, "request aborted"). By identity,
 * not by message: a source's error text is not ours to trust.
 */
const CALLER_ABORTS = new WeakSet<AppError>();

/** What a connector throws when its caller's signal fired: the caller went away, not the source. */
export function abortedError(): AppError {
  const e = new AppError('source.unavailable', 'request aborted');
  CALLER_ABORTS.add(e);
  return e;
}

/** Whether `e` is a caller abort (abortedError): never evidence that the source is unwell. */
export function isCallerAbort(e: unknown): boolean {
  return e instanceof AppError && CALLER_ABORTS.has(e);
}

/** Sleeps; rejects with the aborted error as soon as the signal fires. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(abortedError());
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, Math.max(0, ms));
    const onAbort = () => {
      clearTimeout(t);
      reject(abortedError());
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Waits for a shared promise without tying its fate to this caller's signal. */
export function abortable<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(abortedError());
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(abortedError());
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}

export function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}
