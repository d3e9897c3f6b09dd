import type { KMSClient } from '@aws-sdk/client-kms';
import { createPublicKey } from 'node:crypto';
import type { KmsConfig } from '../config/schema.js';
import { AppError } from '../errors.js';
import type { DataKey, KeyCheck, KeyService, KeyState, Signature } from './keyring.js';

type KmsSdk = typeof import('@aws-sdk/client-kms');

let kmsModule: Promise<KmsSdk> | undefined;

/**
 * The SDK is imported only when KMS is configured, not by every process at start: it costs
 * several MiB and start-up time, and the local keyring (the default) never needs it.
 */
const loadKms = (): Promise<KmsSdk> => (kmsModule ??= import('@aws-sdk/client-kms'));

/** KMS signs at most 4096 bytes of RAW message; checkpoints and manifests are a few hundred. */
const MAX_RAW_MESSAGE = 4096;

export interface KmsKeyServiceOptions {
  /** Symmetric key wrapping staging data keys. */
  dataKeyId: string;
  /** ECC_NIST_EDWARDS25519 SIGN_VERIFY key: its ED25519_SHA_512 signatures are plain Ed25519 (RFC 8032). */
  signingKeyId: string;
  /** How long a DescribeKey answer is reused. */
  checkCacheMs?: number;
  now?: () => number;
}

const toPem = (der: Uint8Array): string => createPublicKey({ key: Buffer.from(der), format: 'der', type: 'spki' }).export({ type: 'spki', format: 'pem' }).toString();

const errName = (e: unknown): string => (e && typeof e === 'object' && 'name' in e ? String((e as { name: unknown }).name) : '');

/** KMS's answer to "can this key be used" in our words; throws nothing for key states, only for outages. */
function stateOf(keyState: string | undefined, enabled: boolean | undefined): KeyState {
  switch (keyState) {
    case 'Enabled':
      return enabled === false ? 'disabled' : 'enabled';
    case 'Disabled':
      return 'disabled';
    case 'PendingDeletion':
    case 'PendingReplicaDeletion':
      return 'pending_deletion';
    default:
      // Creating, PendingImport, Unavailable (custom key store disconnected), Updating: not usable now.
      return 'unavailable';
  }
}

/** A KMS failure as the key error a client sees: key states are definite (422), outages transient (503). */
function keyError(e: unknown, what: string): AppError {
  const name = errName(e);
  if (name === 'DisabledException' || name === 'KMSInvalidStateException') return new AppError('key.disabled', `${what}: the KMS key is disabled or pending deletion`, { cause: e });
  if (name === 'NotFoundException' || name === 'InvalidArnException') return new AppError('key.unknown', `${what}: KMS does not know the key`, { cause: e });
  return new AppError('key.unavailable', `${what}: KMS did not answer (${name || 'error'})`, { cause: e });
}

/**
 * The key service on AWS KMS: data keys from GenerateDataKey (the plaintext is used at once and
 * wiped by the caller; the ciphertext blob is what gets stored), Decrypt to unwrap, Sign and
 * Verify with an Ed25519 key, DescribeKey for key checks. No key material is ever on disk here.
 */
export class KmsKeyService implements KeyService {
  private readonly checks = new Map<string, { at: number; check: KeyCheck }>();
  private readonly publicKeys = new Map<string, string>();
  private signingArn: string | undefined;
  private readonly now: () => number;
  private loaded: Promise<{ client: KMSClient; sdk: KmsSdk }> | undefined;

  /** `client` is a client, or how to make one once the SDK is imported (fromConfig: the import is asynchronous). */
  constructor(
    private readonly client: KMSClient | ((sdk: KmsSdk) => KMSClient),
    private readonly opts: KmsKeyServiceOptions,
  ) {
    this.now = opts.now ?? Date.now;
  }

  static fromConfig(cfg: KmsConfig): KmsKeyService {
    const { access_key_id: id, secret_access_key: secret, session_token: token } = cfg;
    const client = (kms: KmsSdk) =>
      new kms.KMSClient({
        region: cfg.region,
        ...(cfg.endpoint ? { endpoint: cfg.endpoint } : {}),
        // A provider keeps the secret out of the client's config object.
        ...(id && secret ? { credentials: async () => ({ accessKeyId: id.reveal(), secretAccessKey: secret.reveal(), ...(token ? { sessionToken: token.reveal() } : {}) }) } : {}),
      });
    // The config uses KMS: loading starts now, in the background, so the first call does not wait for it.
    loadKms().catch(() => {});
    return new KmsKeyService(client, { dataKeyId: cfg.data_key_id, signingKeyId: cfg.signing_key_id, checkCacheMs: cfg.check_cache_ms });
  }

  /** The client and the SDK module its commands are built from, loaded once. */
  private kms(): Promise<{ client: KMSClient; sdk: KmsSdk }> {
    const c = this.client;
    return (this.loaded ??= loadKms().then((sdk) => ({ sdk, client: typeof c === 'function' ? c(sdk) : c })));
  }

  async generateDataKey(): Promise<DataKey> {
    const { client, sdk } = await this.kms();
    let out;
    try {
      out = await client.send(new sdk.GenerateDataKeyCommand({ KeyId: this.opts.dataKeyId, KeySpec: 'AES_256' }));
    } catch (e) {
      throw keyError(e, 'GenerateDataKey');
    }
    if (!out.Plaintext || !out.CiphertextBlob || !out.KeyId) throw new AppError('key.unavailable', 'GenerateDataKey answered without a key');
    const plaintext = Buffer.from(out.Plaintext);
    // The SDK's own copy is wiped too: only the Buffer we hand out holds the key.
    out.Plaintext.fill(0);
    return { keyId: out.KeyId, plaintext, wrapped: Buffer.from(out.CiphertextBlob).toString('base64') };
  }

  async unwrap(keyId: string, wrapped: string): Promise<Buffer> {
    const { client, sdk } = await this.kms();
    let out;
    try {
      out = await client.send(new sdk.DecryptCommand({ KeyId: keyId, CiphertextBlob: Buffer.from(wrapped, 'base64') }));
    } catch (e) {
      throw keyError(e, 'Decrypt');
    }
    if (!out.Plaintext) throw new AppError('key.unavailable', 'Decrypt answered without a key');
    const key = Buffer.from(out.Plaintext);
    out.Plaintext.fill(0);
    return key;
  }

  /** The signing key's ARN (the configured id may be an alias): what signatures name and verifiers look up. */
  async signingKeyId(): Promise<string> {
    if (this.signingArn) return this.signingArn;
    const { client, sdk } = await this.kms();
    let out;
    try {
      out = await client.send(new sdk.GetPublicKeyCommand({ KeyId: this.opts.signingKeyId }));
    } catch (e) {
      throw keyError(e, 'GetPublicKey');
    }
    if (!out.KeyId || !out.PublicKey) throw new AppError('key.unavailable', 'GetPublicKey answered without a key');
    if (out.KeySpec && out.KeySpec !== 'ECC_NIST_EDWARDS25519') throw new AppError('key.unavailable', `the signing key is ${out.KeySpec}, not ECC_NIST_EDWARDS25519`);
    this.publicKeys.set(out.KeyId, toPem(out.PublicKey));
    this.signingArn = out.KeyId;
    return out.KeyId;
  }

  async sign(data: Buffer): Promise<Signature> {
    if (data.length > MAX_RAW_MESSAGE) throw new Error(`KMS signs at most ${MAX_RAW_MESSAGE} bytes of raw message`);
    const keyId = await this.signingKeyId();
    const { client, sdk } = await this.kms();
    let out;
    try {
      out = await client.send(new sdk.SignCommand({ KeyId: keyId, Message: data, MessageType: 'RAW', SigningAlgorithm: 'ED25519_SHA_512' }));
    } catch (e) {
      throw keyError(e, 'Sign');
    }
    if (!out.Signature || !out.KeyId) throw new AppError('key.unavailable', 'Sign answered without a signature');
    return { keyId: out.KeyId, algorithm: 'Ed25519', signature: Buffer.from(out.Signature).toString('base64') };
  }

  async verify(data: Buffer, signature: string, keyId: string): Promise<boolean> {
    const { client, sdk } = await this.kms();
    try {
      const out = await client.send(
        new sdk.VerifyCommand({ KeyId: keyId, Message: data, MessageType: 'RAW', Signature: Buffer.from(signature, 'base64'), SigningAlgorithm: 'ED25519_SHA_512' }),
      );
      return out.SignatureValid === true;
    } catch (e) {
      const name = errName(e);
      // An invalid signature is an answer; so is a key KMS does not know (nobody we trust signed it).
      if (name === 'KMSInvalidSignatureException' || name === 'NotFoundException' || name === 'InvalidArnException') return false;
      throw keyError(e, 'Verify');
    }
  }

  async publicKey(keyId: string): Promise<string> {
    const cached = this.publicKeys.get(keyId);
    if (cached) return cached;
    const { client, sdk } = await this.kms();
    let out;
    try {
      out = await client.send(new sdk.GetPublicKeyCommand({ KeyId: keyId }));
    } catch (e) {
      throw keyError(e, 'GetPublicKey');
    }
    if (!out.PublicKey) throw new AppError('key.unavailable', 'GetPublicKey answered without a key');
    const pem = toPem(out.PublicKey);
    this.publicKeys.set(keyId, pem);
    if (out.KeyId) this.publicKeys.set(out.KeyId, pem);
    return pem;
  }

  async checkKey(keyId: string): Promise<KeyCheck> {
    const ttl = this.opts.checkCacheMs ?? 30_000;
    const hit = this.checks.get(keyId);
    if (hit && this.now() - hit.at < ttl) return hit.check;
    const { client, sdk } = await this.kms();
    let check: KeyCheck;
    try {
      const out = await client.send(new sdk.DescribeKeyCommand({ KeyId: keyId }));
      check = { keyId, state: stateOf(out.KeyMetadata?.KeyState, out.KeyMetadata?.Enabled) };
    } catch (e) {
      const name = errName(e);
      if (name === 'NotFoundException' || name === 'InvalidArnException') check = { keyId, state: 'unknown' };
      // An outage is not remembered: the next request asks again.
      else return { keyId, state: 'unavailable' };
    }
    if (ttl > 0) this.checks.set(keyId, { at: this.now(), check });
    return check;
  }
}
