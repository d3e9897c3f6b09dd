import { z } from 'zod';
import { sourceCommon } from '../common-config.js';

export const filesystemSourceConfig = sourceCommon.extend({
  type: z.literal('filesystem'),
  /** Archive root (local disk or an NFS/SMB mount). Relative paths are taken from the data directory. */
  root: z.string().min(1),
  /**
   * How a locator is derived when a catalog copy has none, e.g. "{legacy_archive_id}.wav".
   * Placeholders: {legacy_archive_id}, {recording_id}, {conversation_id}.
   */
  path_template: z.string().min(1).default('{legacy_archive_id}'),
});
export type FilesystemSourceConfig = z.infer<typeof filesystemSourceConfig>;
