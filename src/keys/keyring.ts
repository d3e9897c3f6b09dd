import { type KeyObject, createCipheriv, createDecipheriv, createHash, createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, sign, verify } from 'node:crypto';
import { existsSync, linkSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { AppError } from '../errors.js';
import { makeDirsSync } from '../make-dirs.js';

/** A data key: the plaintext stays in memory of this process only; the wrapped form is what gets stored. */
export interface DataKey {
  keyId: string;
  plaintext: Buffer;
  wrapped: string;
}

/** A detached signature and the key that made it. Always Ed25519 (RFC 8032, pure): node:crypto and openssl verify it offline. */
export interface Signature {
  keyId: string;
  algorithm: 'Ed25519';
  /** base64 */
  signature: string;
}

/**
 * What the key service says of a key: `enabled` is the only state in which a copy protected by it
 * may be served; `unavailable` means the service could not answer (transient).
 */
export type KeyState = 'enabled' | 'disabled' | 'pending_deletion' | 'unknown' | 'unavailable';

export interface KeyCheck {
  keyId: string;
  state: KeyState;
}

/**
 * The key service port: envelope encryption and signatures. Raw master and signing keys never
 * leave it; callers get data keys (plaintext for immediate use, wrapped for storage), hand
 * wrapped keys back to unwrap, and ask it to sign and verify.
 */
export interface KeyService {
  generateDataKey(): Promise<DataKey>;
  unwrap(keyId: string, wrapped: string): Promise<Buffer>;
  /** Signs with the service's current signing key. */
  sign(data: Buffer): Promise<Signature>;
  /** False for a bad signature or a key the service does not know; throws only when it cannot answer. */
  verify(data: Buffer, signature: string, keyId: string): Promise<boolean>;
  /** The id of the key sign() uses now (so a signed statement can name its own key). */
  signingKeyId(): Promise<string>;
  /** The signing key's public half as SPKI PEM, for verifiers outside the process. */
  publicKey(keyId: string): Promise<string>;
  /** Whether a key (a catalog copy's key_id, a data key's master) is usable now. */
  checkKey(keyId: string): Promise<KeyCheck>;
}

/**
 * Writes a key file whole or not at all: the content goes to a temp file of the same directory
 * (0600), which is then linked to the final name. A concurrent first start (the CLI beside the
 * server on a fresh data_dir) thus never reads a file another process is still writing; link()
 * fails with EEXIST when another process made it first, and theirs is kept (the caller reads it).
 */
function createWhole(path: string, content: string): void {
  const tmp = `${path}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    writeFileSync(tmp, content, { mode: 0o600, flag: 'wx' });
    linkSync(tmp, path);
  } catch (e) {
    // Another process made it first: use theirs.
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
  } finally {
    rmSync(tmp, { force: true });
  }
}

/**
 * The local master key's id: a digest of a fixed label and the key, truncated — it names the key
 * (stored beside every wrapped data key, and in backups) and says nothing of its bytes.
 */
function localKeyId(key: Buffer): string {
  return `local:${createHash('sha256').update('custodian.local-keyring.key-id.v1\0').update(key).digest('hex').slice(0, 32)}`;
}

/** Signing key ids are `sha256:` + hex SHA-256 of the DER SubjectPublicKeyInfo: what `openssl pkey -pubin -outform DER | sha256sum` prints. */
const SIGNING_PREFIX = 'sha256:';

/**
 * Embedded default: one AES-256 master key in a file of the data directory (mode 0600), made on
 * first use, and beside it an Ed25519 signing key pair (PKCS#8 PEM, 0600), also made on first
 * use. Good for one host; production uses a KMS adapter so no key is on disk.
 */
export class LocalKeyring implements KeyService {
  private readonly master: Buffer;
  readonly keyId: string;
  private readonly signingPath: string;
  private signing: { keyId: string; privateKey: KeyObject; publicKey: KeyObject } | undefined;

  constructor(path: string) {
    if (!existsSync(path)) {
      makeDirsSync(dirname(path));
      // Another process (the CLI beside the server) may make it at the same moment: one file wins, whole.
      createWhole(path, randomBytes(32).toString('base64') + '\n');
    }
    const key = Buffer.from(readFileSync(path, 'utf8').trim(), 'base64');
    if (key.length !== 32) throw new Error(`${path}: the keyring must hold a base64 256-bit key`);
    this.master = key;
    this.keyId = localKeyId(key);
    this.signingPath = join(dirname(path), 'signing-ed25519.pem');
  }

  async generateDataKey(): Promise<DataKey> {
    const plaintext = randomBytes(32);
    const iv = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', this.master, iv);
    const wrapped = Buffer.concat([iv, c.update(plaintext), c.final(), c.getAuthTag()]).toString('base64');
    return { keyId: this.keyId, plaintext, wrapped };
  }

  /**
   * Whether `keyId` names this keyring's master key: its id, or the form ids had before they were
   * digests ('local:' + the key's first 4 bytes in hex), which rows written by earlier versions
   * still carry (jobs, evidence jobs, the console's ticket key). That form is computed here only to
   * compare with what a row holds; nothing emits it.
   */
  private holds(keyId: string): boolean {
    if (keyId === this.keyId) return true;
    return /^local:[0-9a-f]{8}$/.test(keyId) && keyId === `local:${this.master.subarray(0, 4).toString('hex')}`;
  }

  async unwrap(keyId: string, wrapped: string): Promise<Buffer> {
    if (!this.holds(keyId)) throw new AppError('key.unavailable', 'the data key was wrapped by a master key this keyring does not hold');
    const buf = Buffer.from(wrapped, 'base64');
    try {
      const d = createDecipheriv('aes-256-gcm', this.master, buf.subarray(0, 12));
      d.setAuthTag(buf.subarray(buf.length - 16));
      return Buffer.concat([d.update(buf.subarray(12, buf.length - 16)), d.final()]);
    } catch (e) {
      throw new AppError('key.unavailable', 'the wrapped data key does not open with this keyring', { cause: e });
    }
  }

  /** The signing key pair, loaded or made on first use. */
  private signer(): { keyId: string; privateKey: KeyObject; publicKey: KeyObject } {
    if (this.signing) return this.signing;
    if (!existsSync(this.signingPath)) {
      const { privateKey } = generateKeyPairSync('ed25519');
      createWhole(this.signingPath, privateKey.export({ type: 'pkcs8', format: 'pem' }).toString());
    }
    const privateKey = createPrivateKey(readFileSync(this.signingPath, 'utf8'));
    if (privateKey.asymmetricKeyType !== 'ed25519') throw new Error(`${this.signingPath}: the signing key must be Ed25519`);
    const publicKey = createPublicKey(privateKey);
    const fingerprint = createHash('sha256').update(publicKey.export({ type: 'spki', format: 'der' })).digest('hex');
    this.signing = { keyId: `${SIGNING_PREFIX}${fingerprint}`, privateKey, publicKey };
    return this.signing;
  }

  async signingKeyId(): Promise<string> {
    return this.signer().keyId;
  }

  async sign(data: Buffer): Promise<Signature> {
    const s = this.signer();
    return { keyId: s.keyId, algorithm: 'Ed25519', signature: sign(null, data, s.privateKey).toString('base64') };
  }

  async verify(data: Buffer, signature: string, keyId: string): Promise<boolean> {
    if (!keyId.startsWith(SIGNING_PREFIX)) return false;
    const s = this.signer();
    if (keyId !== s.keyId) return false;
    try {
      return verify(null, data, s.publicKey, Buffer.from(signature, 'base64'));
    } catch {
      return false;
    }
  }

  async publicKey(keyId: string): Promise<string> {
    const s = this.signer();
    if (keyId !== s.keyId) throw new AppError('key.unknown', 'this keyring does not hold that signing key');
    return s.publicKey.export({ type: 'spki', format: 'pem' }).toString();
  }

  /** The keys this keyring holds are enabled; any other id is unknown to it. */
  async checkKey(keyId: string): Promise<KeyCheck> {
    if (this.holds(keyId)) return { keyId, state: 'enabled' };
    if (keyId.startsWith(SIGNING_PREFIX) && keyId === this.signer().keyId) return { keyId, state: 'enabled' };
    return { keyId, state: 'unknown' };
  }
}
