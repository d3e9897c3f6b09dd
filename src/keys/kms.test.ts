/**
 * The AWS KMS adapter. KMS cannot run here (no AWS, no KMS emulator among the allowed
 * dependencies), so these tests stub @aws-sdk/client-kms with aws-sdk-client-mock
 * (test/support/kms.ts): the commands, their inputs and the SDK's own exception classes are
 * real; the answers are made locally (AES-GCM data keys, Ed25519 signatures). What this cannot
 * prove: IAM policies, KMS's own limits and latency, and that a real ECC_NIST_EDWARDS25519 key's
 * signatures verify with node:crypto (KMS documents ED25519_SHA_512 over RAW messages as RFC 8032
 * Ed25519, which is what is simulated).
 */
import { DescribeKeyCommand, GetPublicKeyCommand, KMSClient, SignCommand } from '@aws-sdk/client-kms';
import { createPublicKey, verify } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../config/load.js';
import { ARN, DATA_KEY_ARN, SIGNING_KEY_ARN, fakeKms } from '../../test/support/kms.js';
import { KmsKeyService } from './kms.js';

describe('KmsKeyService (aws-sdk-client-mock)', () => {
  let kms: ReturnType<typeof fakeKms>;
  let t = 0;
  const service = (checkCacheMs = 30_000) =>
    new KmsKeyService(new KMSClient({ region: 'eu-west-1', credentials: { accessKeyId: 'AKIA_TEST', secretAccessKey: 'test' } }), {
      dataKeyId: 'alias/custodian-staging',
      signingKeyId: 'alias/custodian-audit',
      checkCacheMs,
      now: () => t,
    });
  beforeEach(() => {
    t = 1_000_000;
    kms = fakeKms({ [ARN('disabled')]: 'Disabled', [ARN('doomed')]: 'PendingDeletion', [ARN('hsm-offline')]: 'Unavailable' });
  });
  afterEach(() => kms.restore());

  it('gets data keys with GenerateDataKey and unwraps them with Decrypt; the plaintext is never stored', async () => {
    const k = service();
    const dk = await k.generateDataKey();
    expect(dk.keyId).toBe(DATA_KEY_ARN);
    expect(dk.plaintext).toHaveLength(32);
    expect(Buffer.from(dk.wrapped, 'base64').includes(dk.plaintext)).toBe(false);
    expect(await k.unwrap(dk.keyId, dk.wrapped)).toEqual(dk.plaintext);
    kms.setState(DATA_KEY_ARN, 'Disabled');
    await expect(k.unwrap(dk.keyId, dk.wrapped)).rejects.toMatchObject({ code: 'key.disabled' });
    await expect(k.generateDataKey()).rejects.toMatchObject({ code: 'key.disabled' });
    kms.setState(DATA_KEY_ARN, 'PendingDeletion');
    await expect(k.unwrap(dk.keyId, dk.wrapped)).rejects.toMatchObject({ code: 'key.disabled' });
    kms.setState(DATA_KEY_ARN, 'Enabled');
    await expect(k.unwrap(ARN('nope'), dk.wrapped)).rejects.toMatchObject({ code: 'key.unknown' });
  });

  it('signs with Ed25519 (ED25519_SHA_512, RAW) under the key ARN, and the signature verifies offline and through Verify', async () => {
    const k = service();
    expect(await k.signingKeyId()).toBe(SIGNING_KEY_ARN);
    const data = Buffer.from('["custodian.checkpoint.v1",1]');
    const sig = await k.sign(data);
    expect(sig).toMatchObject({ keyId: SIGNING_KEY_ARN, algorithm: 'Ed25519' });
    const call = kms.mock.commandCalls(SignCommand)[0]!.args[0].input;
    expect(call).toMatchObject({ KeyId: SIGNING_KEY_ARN, MessageType: 'RAW', SigningAlgorithm: 'ED25519_SHA_512' });
    const pem = await k.publicKey(SIGNING_KEY_ARN);
    expect(verify(null, data, createPublicKey(pem), Buffer.from(sig.signature, 'base64'))).toBe(true);
    expect(await k.verify(data, sig.signature, sig.keyId)).toBe(true);
    expect(await k.verify(Buffer.from('other'), sig.signature, sig.keyId)).toBe(false);
    expect(await k.verify(data, sig.signature, ARN('never-heard-of-it'))).toBe(false);
    // The alias is resolved once; the public key is fetched once.
    await k.sign(data);
    await k.publicKey(SIGNING_KEY_ARN);
    expect(kms.mock.commandCalls(GetPublicKeyCommand)).toHaveLength(1);
    await expect(k.sign(Buffer.alloc(5000))).rejects.toThrow(/4096/);
  });

  it('refuses a signing key that is not Ed25519', async () => {
    kms.mock.on(GetPublicKeyCommand).resolves({ KeyId: SIGNING_KEY_ARN, KeySpec: 'ECC_NIST_P256', PublicKey: new Uint8Array(1) });
    await expect(service().signingKeyId()).rejects.toMatchObject({ code: 'key.unavailable' });
  });

  it('checkKey maps DescribeKey: enabled, disabled, pending deletion, unknown, unavailable; answers are cached, outages are not', async () => {
    const k = service(30_000);
    expect(await k.checkKey(DATA_KEY_ARN)).toEqual({ keyId: DATA_KEY_ARN, state: 'enabled' });
    expect(await k.checkKey(ARN('disabled'))).toMatchObject({ state: 'disabled' });
    expect(await k.checkKey(ARN('doomed'))).toMatchObject({ state: 'pending_deletion' });
    expect(await k.checkKey(ARN('hsm-offline'))).toMatchObject({ state: 'unavailable' });
    expect(await k.checkKey(ARN('missing'))).toMatchObject({ state: 'unknown' });
    // Cached for check_cache_ms: a key disabled meanwhile is seen once the entry is old.
    kms.setState(DATA_KEY_ARN, 'Disabled');
    expect(await k.checkKey(DATA_KEY_ARN)).toMatchObject({ state: 'enabled' });
    t += 30_001;
    expect(await k.checkKey(DATA_KEY_ARN)).toMatchObject({ state: 'disabled' });
    // A network failure is "unavailable" and asked again next time.
    const calls = kms.mock.commandCalls(DescribeKeyCommand).length;
    kms.mock.on(DescribeKeyCommand, { KeyId: ARN('flaky') }).rejectsOnce(Object.assign(new Error('socket hang up'), { name: 'TimeoutError' }));
    expect(await k.checkKey(ARN('flaky'))).toMatchObject({ state: 'unavailable' });
    expect(kms.mock.commandCalls(DescribeKeyCommand).length).toBe(calls + 1);
  });

  it('is chosen by config (keys.provider aws_kms) and needs its block', () => {
    const cfg = parseConfig({ keys: { provider: 'aws_kms', aws_kms: { region: 'eu-west-1', data_key_id: 'alias/a', signing_key_id: 'alias/b' } } }, {});
    expect(cfg.keys.aws_kms).toMatchObject({ region: 'eu-west-1', check_cache_ms: 30_000 });
    expect(KmsKeyService.fromConfig(cfg.keys.aws_kms!)).toBeInstanceOf(KmsKeyService);
    expect(() => parseConfig({ keys: { provider: 'aws_kms' } }, {})).toThrow(/aws_kms/);
    expect(parseConfig({}, {}).keys.provider).toBe('local');
  });
});
