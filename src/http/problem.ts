import type { FastifyError } from 'fastify';
import { hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod';
import { AppError, isAppError } from '../errors.js';

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: string;
  request_id: string;
  [extra: string]: unknown;
}

/**
 * Turns anything thrown on the request path into an AppError. Fastify's own errors (body
 * parsing, size, schema) are mapped here so that no bad input ever surfaces as a 500.
 */
export function toAppError(err: unknown): AppError {
  if (isAppError(err)) return err;
  const fe = err as FastifyError & { validation?: unknown[] };
  if (hasZodFastifySchemaValidationErrors(fe) || fe?.validation) {
    const issues = ((fe.validation ?? []) as { instancePath?: string; message?: string; params?: { issue?: { path?: PropertyKey[] } } }[]).map((v) => ({
      path: v.instancePath || (v.params?.issue?.path ? '/' + v.params.issue.path.map(String).join('/') : ''),
      message: v.message ?? 'invalid',
    }));
    return new AppError('request.invalid', issues.map((i) => `${i.path || '(body)'}: ${i.message}`).join('; ') || 'invalid request', {
      extra: { errors: issues, location: (fe as { validationContext?: string }).validationContext ?? 'body' },
    });
  }
  switch (fe?.code) {
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new AppError('request.malformed_json', fe.code === 'FST_ERR_CTP_EMPTY_JSON_BODY' ? 'the body is empty' : 'the body is not valid JSON');
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new AppError('request.too_large');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new AppError('request.unsupported_media_type');
    case 'FST_ERR_NOT_FOUND':
      return new AppError('request.not_found');
  }
  // JSON.parse SyntaxError from the body parser (content-type application/json with broken text)
  if (err instanceof SyntaxError && (fe as { statusCode?: number }).statusCode === 400) return new AppError('request.malformed_json');
  if (typeof fe?.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) {
    return new AppError(fe.statusCode === 413 ? 'request.too_large' : fe.statusCode === 415 ? 'request.unsupported_media_type' : 'request.invalid', fe.message);
  }
  return new AppError('internal', 'an unexpected error occurred; it has been logged with the request id', { cause: err });
}

export function problemBody(e: AppError, requestId: string): Problem {
  return {
    type: `https://custodian.dev/errors/${e.code}`,
    title: e.title,
    status: e.status,
    detail: e.message,
    code: e.code,
    request_id: requestId,
    ...e.extra,
  };
}
