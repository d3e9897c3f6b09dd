import { execFileSync } from 'node:child_process';
import { createHash, createPublicKey, verify } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LocalKeyring } from './keyring.js';

describe('LocalKeyring', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'custodian-keyring-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('wraps and unwraps data keys; refuses a wrapped key from another keyring', async () => {
    const k = new LocalKeyring(join(dir, 'keys', 'staging.key'));
    const dk = await k.generateDataKey();
    expect(await k.unwrap(dk.keyId, dk.wrapped)).toEqual(dk.plaintext);
    const other = new LocalKeyring(join(dir, 'other', 'staging.key'));
    await expect(other.unwrap(dk.keyId, dk.wrapped)).rejects.toMatchObject({ code: 'key.unavailable' });
  });

  it('makes its Ed25519 signing key on first use, beside the master key, mode 0600, and keeps it', async () => {
    const path = join(dir, 'keys', 'staging.key');
    const k = new LocalKeyring(path);
    // Nothing signed yet: no signing key on disk.
    expect(readdirSync(join(dir, 'keys'))).toEqual(['staging.key']);
    const sig = await k.sign(Buffer.from('hello'));
    expect(readdirSync(join(dir, 'keys')).sort()).toEqual(['signing-ed25519.pem', 'staging.key']);
    for (const f of ['staging.key', 'signing-ed25519.pem']) expect(statSync(join(dir, 'keys', f)).mode & 0o777).toBe(0o600);
    expect(sig).toMatchObject({ algorithm: 'Ed25519', keyId: await k.signingKeyId() });
    expect(await k.verify(Buffer.from('hello'), sig.signature, sig.keyId)).toBe(true);
    expect(await k.verify(Buffer.from('hellO'), sig.signature, sig.keyId)).toBe(false);
    expect(await k.verify(Buffer.from('hello'), 'not base64 at all', sig.keyId)).toBe(false);
    expect(await k.verify(Buffer.from('hello'), sig.signature, 'sha256:' + '0'.repeat(64))).toBe(false);
    // A second process on the same data dir signs with the same key.
    const again = new LocalKeyring(path);
    expect(await again.signingKeyId()).toBe(sig.keyId);
    expect(await again.verify(Buffer.from('hello'), sig.signature, sig.keyId)).toBe(true);
  });

  it('publishes the public key; its id is the SHA-256 of the DER SPKI (as openssl prints it); plain node:crypto and openssl verify', async () => {
    const k = new LocalKeyring(join(dir, 'keys', 'staging.key'));
    const id = await k.signingKeyId();
    const pem = await k.publicKey(id);
    const der = createPublicKey(pem).export({ type: 'spki', format: 'der' });
    expect(id).toBe(`sha256:${createHash('sha256').update(der).digest('hex')}`);
    const data = Buffer.from('{"a":1}');
    const sig = await k.sign(data);
    expect(verify(null, data, createPublicKey(pem), Buffer.from(sig.signature, 'base64'))).toBe(true);
    writeFileSync(join(dir, 'pub.pem'), pem);
    writeFileSync(join(dir, 'data'), data);
    writeFileSync(join(dir, 'sig'), Buffer.from(sig.signature, 'base64'));
    const out = execFileSync('openssl', ['pkeyutl', '-verify', '-pubin', '-inkey', join(dir, 'pub.pem'), '-rawin', '-in', join(dir, 'data'), '-sigfile', join(dir, 'sig')], { encoding: 'utf8' });
    expect(out).toMatch(/Signature Verified Successfully/);
    const fp = execFileSync('sh', ['-c', `openssl pkey -pubin -in ${join(dir, 'pub.pem')} -outform DER | sha256sum`], { encoding: 'utf8' });
    expect(`sha256:${fp.split(' ')[0]}`).toBe(id);
    await expect(k.publicKey('sha256:' + 'f'.repeat(64))).rejects.toMatchObject({ code: 'key.unknown' });
  });

  it('checkKey: the keys it holds are enabled, any other id unknown', async () => {
    const k = new LocalKeyring(join(dir, 'keys', 'staging.key'));
    expect(await k.checkKey(k.keyId)).toEqual({ keyId: k.keyId, state: 'enabled' });
    const sid = await k.signingKeyId();
    expect(await k.checkKey(sid)).toEqual({ keyId: sid, state: 'enabled' });
    expect(await k.checkKey('arn:aws:kms:eu-west-1:111122223333:key/elsewhere')).toMatchObject({ state: 'unknown' });
    expect(await k.checkKey('local:00000000')).toMatchObject({ state: 'unknown' });
  });
});
