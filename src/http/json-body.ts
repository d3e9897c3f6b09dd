import type { FastifyInstance } from 'fastify';
import { AppError } from '../errors.js';
import { LONE_SURROGATE } from '../lone-surrogate.js';

/**
 * The one JSON body parser: fastify's own (prototype poisoning refused), fed only well-formed text.
 * Fastify decodes body bytes as UTF-8 with replacement, so an invalid byte became U+FFFD and a
 * purpose, a hold reason or a caller id was recorded as something the caller never sent; and a JSON
 * escape can carry a lone surrogate ("\ud800"), which no database stores as given (the audit chain
 * makes it U+FFFD). Both are refused — 400 request.malformed_json, 422 request.invalid with the
 * field's JSON pointer — never repaired. Identifiers refused lone surrogates already (record.ts);
 * this covers every text field of every body, and field names.
 */
export function useStrictJsonBodies(app: FastifyInstance): void {
  const parse = app.getDefaultJsonParser('error', 'error');
  // A BOM is dropped (it carries nothing); any other byte sequence that is not UTF-8 throws.
  const utf8 = new TextDecoder('utf-8', { fatal: true });
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (req, body, done) => {
    const charset = charsetsOf(req.headers['content-type']).find((c) => !UTF8_LABELS.has(c));
    if (charset !== undefined) {
      done(new AppError('request.unsupported_media_type', `the body must be UTF-8 JSON, not charset=${charset.slice(0, 32).replace(/[^\x21-\x7e]/g, '?')}`), undefined);
      return;
    }
    let text: string;
    try {
      text = utf8.decode(body as Buffer);
    } catch {
      done(new AppError('request.malformed_json', 'the body is not valid UTF-8'), undefined);
      return;
    }
    parse(req, text, (err: Error | null, value?: unknown) => {
      if (err) return done(err, undefined);
      const at = illFormedAt(value);
      if (at !== null) return done(new AppError('request.invalid', `${at || '/'}: text must be well-formed Unicode (a lone surrogate is not)`), undefined);
      done(null, value);
    });
  });
}

/**
 * A body is read as UTF-8 whatever it says it is (JSON is UTF-8: RFC 8259 §8.1), so a body that
 * says it is something else (`charset=utf-16`, `latin1`) is refused (415
 * request.unsupported_media_type), never decoded as what it is not — "é" sent as latin1 would be
 * refused as invalid UTF-8 at best, and bytes that happen to decode would be recorded as text the
 * caller never wrote. Saying UTF-8 (as the WHATWG labels `utf-8`, `utf8`, `unicode-1-1-utf-8`
 * spell it), or nothing, is fine.
 */
const UTF8_LABELS = new Set(['utf-8', 'utf8', 'unicode-1-1-utf-8']);

/** Every charset parameter of a Content-Type (a header may repeat one: each must say UTF-8), lower-cased and unquoted. */
export function charsetsOf(contentType: string | undefined): string[] {
  return [...(contentType ?? '').matchAll(/;\s*charset\s*=\s*(?:"([^"]*)"|([^;\s]*))/gi)].map((m) => (m[1] ?? m[2] ?? '').toLowerCase());
}

const pointer = (s: string) => s.replace(/~/g, '~0').replace(/\//g, '~1');

/**
 * The JSON pointer of the first string (value or field name) holding a lone surrogate, or null.
 * Iterative: a body within the size limit can nest tens of thousands of levels deep.
 */
export function illFormedAt(root: unknown): string | null {
  const stack: [unknown, string][] = [[root, '']];
  while (stack.length) {
    const [v, path] = stack.pop()!;
    if (typeof v === 'string') {
      if (LONE_SURROGATE.test(v)) return path;
    } else if (Array.isArray(v)) {
      for (let i = v.length - 1; i >= 0; i--) stack.push([v[i], `${path}/${i}`]);
    } else if (v !== null && typeof v === 'object') {
      for (const [k, x] of Object.entries(v)) {
        if (LONE_SURROGATE.test(k)) return `${path}/${pointer(k)}`;
        stack.push([x, `${path}/${pointer(k)}`]);
      }
    }
  }
  return null;
}
