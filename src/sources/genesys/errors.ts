import { AppError, type AppErrorOptions } from '../../errors.js';

/** Source-state codes the Genesys connector raises (catalogued in src/errors.ts). */
export type GenesysErrorCode = 'source.archived' | 'source.restoring' | 'source.media_not_ready' | 'source.auth_failed';

export function genesysError(code: GenesysErrorCode, detail?: string, opts?: AppErrorOptions): AppError {
  return new AppError(code, detail, opts);
}
