import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { AppError } from '../errors.js';

/** A data key: the plaintext stays in memory of this process only; the wrapped form is what gets stored. */
export interface DataKey {
  keyId: string;
  plaintext: Buffer;
  wrapped: string;
}

/**
 * The key service port: envelope encryption. Raw master keys never leave it; callers get data
 * keys (plaintext for immediate use, wrapped for storage) and hand wrapped keys back to unwrap.
 */
export interface KeyService {
  generateDataKey(): Promise<DataKey>;
  unwrap(keyId: string, wrapped: string): Promise<Buffer>;
}

/**
 * Embedded default: one AES-256 master key in a file of the data directory (mode 0600), made on
 * first use. Good for one host; production uses a KMS adapter so the master key is not on disk.
 */
export class LocalKeyring implements KeyService {
  private readonly master: Buffer;
  readonly keyId: string;

  constructor(path: string) {
    if (!existsSync(path)) {
      mkdirSync(dirname(path), { recursive: true });
      writeFileSync(path, randomBytes(32).toString('base64') + '\n', { mode: 0o600, flag: 'wx' });
    }
    const key = Buffer.from(readFileSync(path, 'utf8').trim(), 'base64');
    if (key.length !== 32) throw new Error(`${path}: the keyring must hold a base64 256-bit key`);
    this.master = key;
    this.keyId = `local:${Buffer.from(key.subarray(0, 4)).toString('hex')}`;
  }

  async generateDataKey(): Promise<DataKey> {
    const plaintext = randomBytes(32);
    const iv = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', this.master, iv);
    const wrapped = Buffer.concat([iv, c.update(plaintext), c.final(), c.getAuthTag()]).toString('base64');
    return { keyId: this.keyId, plaintext, wrapped };
  }

  async unwrap(keyId: string, wrapped: string): Promise<Buffer> {
    if (keyId !== this.keyId) throw new AppError('key.unavailable', 'the data key was wrapped by a master key this keyring does not hold');
    const buf = Buffer.from(wrapped, 'base64');
    try {
      const d = createDecipheriv('aes-256-gcm', this.master, buf.subarray(0, 12));
      d.setAuthTag(buf.subarray(buf.length - 16));
      return Buffer.concat([d.update(buf.subarray(12, buf.length - 16)), d.final()]);
    } catch (e) {
      throw new AppError('key.unavailable', 'the wrapped data key does not open with this keyring', { cause: e });
    }
  }
}
