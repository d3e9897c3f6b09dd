import { AppError, type AppErrorOptions, type ErrorCode, type ErrorSpec } from '../../errors.js';

/**
 * Codes the Genesys connector needs that src/errors.ts does not have yet. To be merged into the
 * catalogue (and docs/ERRORS.md); until then each is raised as the existing code with the same
 * status (INTERIM), carrying its own code in `genesysCode` and in the problem body as `reason`.
 */
export const GENESYS_ERRORS = {
  /** fileState ARCHIVED: a restore (PUT with a new archiveDate) must run first; the gateway makes it a 202 job. */
  'source.archived': { status: 503, title: 'The recording is archived at the source and must be restored first' },
  /** fileState RESTORING: a restore is under way (hours); poll, do not restore again. */
  'source.restoring': { status: 503, title: 'The recording is being restored at the source' },
  /** fileState UPLOADING, or still transcoding (202) when the poll budget ran out. */
  'source.media_not_ready': { status: 503, title: 'The source is still preparing the media; retry later' },
  /** Login refused, a 401 after a fresh login, or 403 (missing permissions) for the configured client. */
  'source.auth_failed': { status: 502, title: 'The source refused the configured credentials or permissions' },
} as const satisfies Record<string, ErrorSpec>;

export type GenesysErrorCode = keyof typeof GENESYS_ERRORS;

const INTERIM: Record<GenesysErrorCode, ErrorCode> = {
  'source.archived': 'source.unavailable',
  'source.restoring': 'source.unavailable',
  'source.media_not_ready': 'source.unavailable',
  'source.auth_failed': 'source.bad_gateway',
};

/** An AppError whose real code awaits the merge; after it, `genesysError` becomes `new AppError(code, …)`. */
export class GenesysSourceError extends AppError {
  readonly genesysCode: GenesysErrorCode;
  constructor(code: GenesysErrorCode, detail?: string, opts: AppErrorOptions = {}) {
    super(INTERIM[code], detail ?? GENESYS_ERRORS[code].title, { ...opts, extra: { reason: code, ...opts.extra } });
    this.genesysCode = code;
  }
}

export function genesysError(code: GenesysErrorCode, detail?: string, opts?: AppErrorOptions): AppError {
  return new GenesysSourceError(code, detail, opts);
}

/** The code a caller should act on: the pending Genesys code if any, else the catalogue code. */
export function errorCodeOf(e: unknown): string | undefined {
  if (e instanceof GenesysSourceError) return e.genesysCode;
  if (e instanceof AppError) return e.code;
  return undefined;
}
