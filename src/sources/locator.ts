import type { CopyLocation } from './port.js';

/** Fills a path template such as "{yyyy}/{legacy_archive_id}.wav" from a copy; null when a field it needs is missing. */
export function locatorOf(copy: CopyLocation, template: string): string | null {
  if (copy.locator) return copy.locator;
  let missing = false;
  const out = template.replace(/\{(legacy_archive_id|recording_id|conversation_id)\}/g, (_m, name: string) => {
    const v = name === 'legacy_archive_id' ? copy.legacyArchiveId : name === 'recording_id' ? copy.genesysRecordingId : copy.conversationId;
    if (!v) missing = true;
    return v ?? '';
  });
  return missing ? null : out;
}
