/** What the client asked for (product.md `format_preference`). */
export const FORMAT_PREFERENCES = ['wav', 'original', 'mp3', 'opus', 'json'] as const;
export type FormatPreference = (typeof FORMAT_PREFERENCES)[number];
export type AudioFormat = Exclude<FormatPreference, 'json'>;

/**
 * The only Content-Type values custodian ever sends with media (the original brief's whitelist).
 * `application/octet-stream` is used solely for `original` bytes in a container no player
 * recognises (e.g. raw G.729 frames): it claims nothing about playability.
 */
export const CONTENT_TYPES = ['audio/wav', 'audio/mpeg', 'audio/ogg', 'application/json', 'application/octet-stream'] as const;
export type ContentType = (typeof CONTENT_TYPES)[number];

export const CONTENT_TYPE_OF_FORMAT: Record<Exclude<AudioFormat, 'original'>, ContentType> = {
  wav: 'audio/wav',
  mp3: 'audio/mpeg',
  opus: 'audio/ogg',
};
