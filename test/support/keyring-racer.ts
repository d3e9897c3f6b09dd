/**
 * One racer of src/keys/keyring-race.test.ts: waits for a line on stdin (every racer is released
 * at once), makes or opens the keyring at argv[2], and prints its key ids (or the error) as JSON.
 */
import { once } from 'node:events';
import { LocalKeyring } from '../../src/keys/keyring.js';

process.stdout.write('ready\n');
await once(process.stdin, 'data');
try {
  const k = new LocalKeyring(process.argv[2]!);
  const dk = await k.generateDataKey();
  process.stdout.write(JSON.stringify({ keyId: k.keyId, dataKeyId: dk.keyId, signingKeyId: await k.signingKeyId() }) + '\n');
} catch (e) {
  process.stdout.write(JSON.stringify({ error: String((e as Error)?.stack ?? e) }) + '\n');
}
process.exit(0);
