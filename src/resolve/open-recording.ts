import type { Recording } from '../catalog/model.js';
import type { AppDeps } from '../deps.js';
import type { AudioFormat } from '../media/format.js';
import { openCopyCheckingKeys } from './key-guard.js';
import { type OpenedCopy, openOrRediscover } from './open-copy.js';

/**
 * Opens a recording's media the one way every reader does — the streaming path, the job worker,
 * the console's waveform and its evidence packages: copies whose key the key service refuses are
 * skipped or refused (key-guard.ts), a source's key refusal gets one retry after a metadata
 * refresh, and when every copy the catalog has is gone one finder round may find the recording
 * moved (open-copy.ts openOrRediscover). A reader that opened copies its own way would read bytes
 * the others refuse. `note` receives what happened, for the reader's audit event or manifest.
 */
export function openRecording(
  deps: AppDeps,
  rec: Recording,
  format: AudioFormat,
  signal: AbortSignal,
  note: (detail: Record<string, unknown>) => void,
  log?: (msg: string, o: object) => void,
): Promise<OpenedCopy> {
  return openOrRediscover(deps, rec, (r) => openCopyCheckingKeys(deps, r, format, signal, note, log), signal, note, log);
}
