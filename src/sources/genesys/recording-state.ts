import { AppError } from '../../errors.js';
import { notAnOutage } from '../circuit.js';
import { genesysError } from './errors.js';
import type { Recording, RecordingMetadata } from './models.js';

/**
 * What a recording's fileState means for a download. AVAILABLE and RESTORED play; ARCHIVED needs a
 * restore job; RESTORING is one under way; DELETED is gone (expired when past its deleteDate);
 * UPLOADING is not there yet; ERROR is a failure at Genesys (e.g. a revoked customer key).
 *
 * ERROR and an unknown state stay source.bad_gateway for clients (a 502: another copy may serve),
 * but are notAnOutage: they describe this recording — Genesys answered — and must not open the
 * source's circuit breaker for every other recording (circuit.ts).
 */
export function assertPlayable(r: RecordingMetadata | Recording, now = Date.now()): void {
  const state = r.fileState;
  switch (state) {
    case undefined:
    case 'AVAILABLE':
    case 'RESTORED':
      return;
    case 'ARCHIVED':
      throw genesysError('source.archived', 'the recording is archived in Genesys Cloud; a restore must run first', {
        extra: { file_state: state, ...(r.archiveDate ? { archive_date: r.archiveDate } : {}) },
      });
    case 'RESTORING':
      throw genesysError('source.restoring', 'the recording is being restored in Genesys Cloud', { extra: { file_state: state } });
    case 'UPLOADING':
      throw genesysError('source.media_not_ready', 'the recording is still being uploaded to Genesys Cloud', {
        extra: { file_state: state },
        headers: { 'Retry-After': '60' },
      });
    case 'DELETED': {
      const deleted = r.deleteDate ? Date.parse(r.deleteDate) : NaN;
      if (!Number.isNaN(deleted) && deleted <= now) {
        throw new AppError('recording.expired', 'Genesys Cloud deleted the recording at the end of its retention', {
          extra: { file_state: state, delete_date: r.deleteDate },
        });
      }
      throw new AppError('recording.not_found', 'Genesys Cloud has deleted the recording', { extra: { file_state: state } });
    }
    case 'ERROR':
      throw notAnOutage(
        new AppError('source.bad_gateway', 'Genesys Cloud reports the recording in fileState ERROR (failed transcode or unavailable encryption key)', {
          extra: { file_state: state },
        }),
      );
    default:
      throw notAnOutage(new AppError('source.bad_gateway', `Genesys Cloud reports an unknown fileState`, { extra: { file_state: String(state) } }));
  }
}

/**
 * The audio link: key "S" (the mixed recording) when present, else the first entry with a mediaUri.
 * No link at all is an answer about this recording (formatId NONE, no playable media): notAnOutage.
 */
export function pickMediaUri(r: Recording): string {
  const uris = r.mediaUris ?? {};
  const s = uris.S?.mediaUri;
  if (typeof s === 'string' && s !== '') return s;
  for (const v of Object.values(uris)) if (typeof v?.mediaUri === 'string' && v.mediaUri !== '') return v.mediaUri;
  throw notAnOutage(new AppError('source.bad_gateway', 'Genesys returned the recording without a media link (formatId NONE or no playable media)'));
}
