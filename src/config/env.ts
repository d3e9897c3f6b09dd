import type { ConfigEnv } from './load.js';

/** The one read of the process environment; everything else gets values from the parsed config. */
export function processEnv(): ConfigEnv {
  return { ...process.env };
}
