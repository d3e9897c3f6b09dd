import {
  DecryptCommand,
  DescribeKeyCommand,
  DisabledException,
  GenerateDataKeyCommand,
  GetPublicKeyCommand,
  KMSClient,
  KMSInvalidSignatureException,
  KMSInvalidStateException,
  NotFoundException,
  SignCommand,
  VerifyCommand,
} from '@aws-sdk/client-kms';
import { createCipheriv, createDecipheriv, generateKeyPairSync, randomBytes, sign, verify } from 'node:crypto';
import { mockClient } from 'aws-sdk-client-mock';

/**
 * AWS KMS cannot run here, so tests stub the SDK's KMSClient with aws-sdk-client-mock (every
 * instance in this process, including the gateway's) and answer like KMS does: the data key's
 * ciphertext really is AES-GCM under a key kept here, Sign/Verify really are Ed25519
 * (ED25519_SHA_512 over a RAW message is pure Ed25519), DescribeKey reports the states set in
 * `states`, and errors carry the SDK's exception classes.
 */
export const KMS_REGION = 'eu-west-1';
export const ARN = (id: string) => `arn:aws:kms:${KMS_REGION}:111122223333:key/${id}`;
export const DATA_KEY_ARN = ARN('data-0001');
export const SIGNING_KEY_ARN = ARN('sign-0001');

export type FakeKeyState = 'Enabled' | 'Disabled' | 'PendingDeletion' | 'Unavailable';

export function fakeKms(states: Record<string, FakeKeyState> = {}) {
  const mock = mockClient(KMSClient);
  const master = randomBytes(32);
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const all: Record<string, FakeKeyState> = { [DATA_KEY_ARN]: 'Enabled', [SIGNING_KEY_ARN]: 'Enabled', ...states };
  const aliases: Record<string, string> = { 'alias/custodian-staging': DATA_KEY_ARN, 'alias/custodian-audit': SIGNING_KEY_ARN };
  const meta = { $metadata: {} };
  const resolve = (id: string | undefined) => {
    const arn = id ? (aliases[id] ?? id) : '';
    const state = all[arn];
    if (!state) throw new NotFoundException({ message: `Key '${id}' does not exist`, ...meta });
    return { arn, state };
  };
  const usable = (id: string | undefined) => {
    const k = resolve(id);
    if (k.state === 'Disabled') throw new DisabledException({ message: `${k.arn} is disabled.`, ...meta });
    if (k.state !== 'Enabled') throw new KMSInvalidStateException({ message: `${k.arn} is pending deletion.`, ...meta });
    return k.arn;
  };

  mock.on(GenerateDataKeyCommand).callsFake((input) => {
    const arn = usable(input.KeyId);
    const plaintext = randomBytes(32);
    const iv = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', master, iv);
    const blob = Buffer.concat([Buffer.from(arn.padEnd(96)), iv, c.update(plaintext), c.final(), c.getAuthTag()]);
    return { KeyId: arn, Plaintext: new Uint8Array(plaintext), CiphertextBlob: new Uint8Array(blob) };
  });
  mock.on(DecryptCommand).callsFake((input) => {
    const blob = Buffer.from(input.CiphertextBlob!);
    const arn = usable(blob.subarray(0, 96).toString().trim());
    if (input.KeyId && resolve(input.KeyId).arn !== arn) throw Object.assign(new Error('IncorrectKeyException'), { name: 'IncorrectKeyException' });
    const d = createDecipheriv('aes-256-gcm', master, blob.subarray(96, 108));
    d.setAuthTag(blob.subarray(blob.length - 16));
    return { KeyId: arn, Plaintext: new Uint8Array(Buffer.concat([d.update(blob.subarray(108, blob.length - 16)), d.final()])) };
  });
  mock.on(GetPublicKeyCommand).callsFake((input) => {
    const arn = resolve(input.KeyId).arn;
    if (arn !== SIGNING_KEY_ARN) throw Object.assign(new Error('not an asymmetric key'), { name: 'UnsupportedOperationException' });
    return { KeyId: arn, KeySpec: 'ECC_NIST_EDWARDS25519', KeyUsage: 'SIGN_VERIFY', PublicKey: new Uint8Array(publicKey.export({ type: 'spki', format: 'der' })) };
  });
  mock.on(SignCommand).callsFake((input) => {
    const arn = usable(input.KeyId);
    if (input.SigningAlgorithm !== 'ED25519_SHA_512' || input.MessageType !== 'RAW') throw Object.assign(new Error('bad algorithm'), { name: 'InvalidKeyUsageException' });
    return { KeyId: arn, SigningAlgorithm: input.SigningAlgorithm, Signature: new Uint8Array(sign(null, Buffer.from(input.Message!), privateKey)) };
  });
  mock.on(VerifyCommand).callsFake((input) => {
    const arn = usable(input.KeyId);
    if (!verify(null, Buffer.from(input.Message!), publicKey, Buffer.from(input.Signature!))) {
      throw new KMSInvalidSignatureException({ message: 'invalid signature', ...meta });
    }
    return { KeyId: arn, SignatureValid: true, SigningAlgorithm: input.SigningAlgorithm };
  });
  mock.on(DescribeKeyCommand).callsFake((input) => {
    const { arn, state } = resolve(input.KeyId);
    return { KeyMetadata: { KeyId: arn.split('/').pop(), Arn: arn, KeyState: state, Enabled: state === 'Enabled' } };
  });

  return {
    mock,
    publicKey,
    /** Changes a key's state, as an operator in the AWS console would. */
    setState(arn: string, state: FakeKeyState) {
      all[arn] = state;
    },
    restore: () => mock.restore(),
  };
}
