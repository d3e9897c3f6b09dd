import { createHash, createPublicKey } from 'node:crypto';
import { AppError } from '../../errors.js';
import type { KeyService } from '../../keys/keyring.js';

/**
 * What the evidence builder needs from a signing key: a tiny port, so tests can inject a key and
 * the builder does not care where the key lives. Only Ed25519: `openssl pkeyutl -verify -rawin`
 * checks it offline, which is what the package README tells a recipient to do.
 */
export interface EvidenceSigner {
  readonly algorithm: 'Ed25519';
  /** The key service's name for the key (`sha256:<fingerprint>` locally, an ARN on KMS). */
  readonly keyId: string;
  /** Hex SHA-256 of the DER SubjectPublicKeyInfo: what `openssl pkey -pubin -outform DER | sha256sum` prints. */
  readonly fingerprint: string;
  readonly publicKeyPem: string;
  sign(data: Buffer): Promise<Buffer>;
}

export function fingerprintOf(publicKeyPem: string): string {
  return createHash('sha256').update(createPublicKey(publicKeyPem).export({ type: 'spki', format: 'der' })).digest('hex');
}

/**
 * The gateway's KeyService (src/keys: a local Ed25519 key in the data directory, or AWS KMS)
 * as an evidence signer. Made per package: a key rotated mid-export is caught, not mixed up.
 */
export async function keyServiceSigner(keys: KeyService): Promise<EvidenceSigner> {
  const keyId = await keys.signingKeyId();
  const publicKeyPem = await keys.publicKey(keyId);
  const pub = createPublicKey(publicKeyPem);
  if (pub.asymmetricKeyType !== 'ed25519') throw new AppError('key.unavailable', `the signing key is ${pub.asymmetricKeyType}, not Ed25519`);
  return {
    algorithm: 'Ed25519',
    keyId,
    fingerprint: fingerprintOf(publicKeyPem),
    publicKeyPem,
    async sign(data) {
      const s = await keys.sign(data);
      if (s.keyId !== keyId || s.algorithm !== 'Ed25519') throw new AppError('key.unavailable', 'the signing key changed while the package was built');
      return Buffer.from(s.signature, 'base64');
    },
  };
}
