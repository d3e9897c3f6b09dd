/**
 * API keys look like `cst_<id>_<secret>`. The id has no "_" so the key splits unambiguously;
 * the secret is url-safe base64 (or any 16–128 characters of that alphabet for static keys).
 * Config validation and authentication share these, so a key the config accepts can be used.
 */
export const API_KEY_ID = /^[A-Za-z0-9-]{3,64}$/;
export const API_KEY_RE = /^cst_([A-Za-z0-9-]{3,64})_([A-Za-z0-9_-]{16,128})$/;

export function formatKey(id: string, secret: string): string {
  return `cst_${id}_${secret}`;
}

/** Whether `key` is a well-formed key of `id`. */
export function isKeyOf(id: string, key: string): boolean {
  return API_KEY_RE.exec(key)?.[1] === id;
}

export function keyFormatHint(id: string): string {
  return `must have the form cst_${id}_<secret of 16 to 128 characters A-Z a-z 0-9 _ ->`;
}
