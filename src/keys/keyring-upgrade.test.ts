import { createCipheriv, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LocalKeyring } from './keyring.js';

/**
 * The local keyring's key id is stored beside every wrapped key (jobs.dek_key_id,
 * evidence_jobs.dek_key_id, console_keys.key_id) and in backups: it must say nothing of the key.
 * Rows written before the id changed carry the old form ('local:' + the key's first 4 bytes), and
 * must still open.
 */
describe('LocalKeyring key id', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'custodian-keyid-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const keyFile = (key: Buffer) => {
    mkdirSync(join(dir, 'keys'), { recursive: true });
    const path = join(dir, 'keys', 'staging.key');
    writeFileSync(path, key.toString('base64') + '\n', { mode: 0o600 });
    return path;
  };

  it('reveals no byte of the master key', async () => {
    for (let i = 0; i < 20; i++) {
      const key = randomBytes(32);
      const path = keyFile(key);
      const k = new LocalKeyring(path);
      expect(k.keyId).toMatch(/^local:[0-9a-f]{16,64}$/);
      const hex = k.keyId.slice('local:'.length);
      // No run of 3 or more bytes of the key, at any offset, appears in the id.
      for (let off = 0; off + 3 <= key.length; off++) expect(hex).not.toContain(key.subarray(off, off + 3).toString('hex'));
      expect((await k.generateDataKey()).keyId).toBe(k.keyId);
      // Stable across processes: a second keyring on the same file names the key alike.
      expect(new LocalKeyring(path).keyId).toBe(k.keyId);
      rmSync(join(dir, 'keys'), { recursive: true, force: true });
    }
  });

  it('still unwraps an envelope stored under the old-form id of its own key, and never emits that id', async () => {
    const key = randomBytes(32);
    const path = keyFile(key);
    // What a keyring of the previous version stored: the id was the key's first 4 bytes in hex.
    const oldId = `local:${key.subarray(0, 4).toString('hex')}`;
    const plaintext = randomBytes(32);
    const iv = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', key, iv);
    const wrapped = Buffer.concat([iv, c.update(plaintext), c.final(), c.getAuthTag()]).toString('base64');

    const k = new LocalKeyring(path);
    expect(k.keyId).not.toBe(oldId);
    expect(await k.unwrap(oldId, wrapped)).toEqual(plaintext);
    expect(await k.checkKey(oldId)).toEqual({ keyId: oldId, state: 'enabled' });
    const fresh = await k.generateDataKey();
    expect(fresh.keyId).toBe(k.keyId);
    expect(await k.unwrap(fresh.keyId, fresh.wrapped)).toEqual(fresh.plaintext);
    // The old form of another key is not ours.
    const other = randomBytes(32);
    await expect(k.unwrap(`local:${other.subarray(0, 4).toString('hex')}`, wrapped)).rejects.toMatchObject({ code: 'key.unavailable' });
    expect(await k.checkKey(`local:${other.subarray(0, 4).toString('hex')}`)).toMatchObject({ state: 'unknown' });
    expect(readFileSync(path, 'utf8').trim()).toBe(key.toString('base64'));
  });
});
