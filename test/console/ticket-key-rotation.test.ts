import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { sharedTicketKey } from '../../src/console/ticket-key.js';
import type { AppDeps } from '../../src/deps.js';
import { LocalKeyring } from '../../src/keys/keyring.js';
import { openTestCatalog, usableCatalogs } from '../support/catalogs.js';

/**
 * docs/OPERATIONS.md "Key rotation": the local master key is replaced. The console's media-ticket
 * key is kept in the catalog wrapped by the old master key; every ticket issue or play answered
 * 503 key.unavailable after the rotation until someone edited the database by hand.
 */
describe.each(await usableCatalogs())('the media ticket key across a master key rotation, on %s', (kind) => {
  const dir = mkdtempSync(join(tmpdir(), 'custodian-rot-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('is made anew when the key service no longer holds the key that wrapped it, and agrees across instances', async () => {
    const cat = await openTestCatalog(kind);
    try {
      const logs: string[] = [];
      const logger = pino({ level: 'warn' }, { write: (s: string) => void logs.push(s) });
      const depsWith = (keys: LocalKeyring) => ({ catalog: cat, keys, logger }) as unknown as AppDeps;
      const before = await sharedTicketKey(depsWith(new LocalKeyring(join(dir, `${kind}-old`, 'staging.key'))))();

      // The rotation: a new master key; two instances start on it.
      const rotated = new LocalKeyring(join(dir, `${kind}-new`, 'staging.key'));
      const [a, b] = await Promise.all([sharedTicketKey(depsWith(rotated))(), sharedTicketKey(depsWith(rotated))()]);
      expect(a.equals(before)).toBe(false);
      expect(a.equals(b)).toBe(true);
      expect(logs.some((l) => l.includes('retired master key'))).toBe(true);
      // And it stays: a third instance reads the same key, with nothing made again.
      const logged = logs.length;
      expect((await sharedTicketKey(depsWith(rotated))()).equals(a)).toBe(true);
      expect(logs.length).toBe(logged);
    } finally {
      await cat.dispose();
    }
  });

  it('is not replaced when the key service merely cannot be reached', async () => {
    const cat = await openTestCatalog(kind);
    try {
      const keys = new LocalKeyring(join(dir, `${kind}-down`, 'staging.key'));
      const logger = pino({ level: 'silent' });
      const first = await sharedTicketKey({ catalog: cat, keys, logger } as unknown as AppDeps)();
      const down = Object.assign(Object.create(keys) as LocalKeyring, {
        unwrap: () => Promise.reject(new Error('key service unreachable')),
        checkKey: async (keyId: string) => ({ keyId, state: 'unavailable' as const }),
      });
      await expect(sharedTicketKey({ catalog: cat, keys: down, logger } as unknown as AppDeps)()).rejects.toThrow('unreachable');
      expect((await sharedTicketKey({ catalog: cat, keys, logger } as unknown as AppDeps)()).equals(first)).toBe(true);
    } finally {
      await cat.dispose();
    }
  });
});
