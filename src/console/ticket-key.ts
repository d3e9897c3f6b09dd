import { type Kysely, sql } from 'kysely';
import type { AppDeps } from '../deps.js';
import type { TicketRevocations } from './tickets.js';

interface ConsoleKeysTable {
  name: string;
  key_id: string;
  wrapped: string;
  created_at: string;
}
interface RevocationsTable {
  ticket_id: string;
  tenant_id: string;
  revoked_by: string;
  admin: number;
  expires_at: string;
  created_at: string;
}
type Db = Kysely<{ console_keys: ConsoleKeysTable; media_ticket_revocations: RevocationsTable }>;

const db = (deps: AppDeps) => deps.catalog.db.withTables<{ console_keys: ConsoleKeysTable; media_ticket_revocations: RevocationsTable }>() as unknown as Db;

/**
 * The key that seals media tickets, the same on every instance: a data key of the key service
 * (local keyring or KMS), kept in the catalog only wrapped (`console_keys`, migration 0009). The
 * first instance that needs it makes it; a concurrent one loses the insert race and reads the
 * winner's. Unwrapped once per process. After a master key rotation it is made again (below).
 */
export function sharedTicketKey(deps: AppDeps, name = 'media_ticket_v1'): () => Promise<Buffer> {
  let key: Promise<Buffer> | undefined;
  const load = async (): Promise<Buffer> => {
    const d = db(deps);
    const read = () => d.selectFrom('console_keys').selectAll().where('name', '=', name).executeTakeFirst();
    let row = await read();
    if (!row) {
      const dek = await deps.keys.generateDataKey();
      dek.plaintext.fill(0);
      await d
        .insertInto('console_keys')
        .values({ name, key_id: dek.keyId, wrapped: dek.wrapped, created_at: new Date().toISOString() })
        .onConflict((oc) => oc.doNothing())
        .execute();
      row = await read();
      if (!row) throw new Error('console_keys: the ticket key could not be stored');
    }
    try {
      return await deps.keys.unwrap(row.key_id, row.wrapped);
    } catch (e) {
      // The master key that wrapped it was rotated away (docs/OPERATIONS.md "Key rotation"): the
      // key service no longer holds it, or holds it disabled. The ticket key is then made anew —
      // the tickets it sealed die with it, and they live minutes. A key service that cannot be
      // reached is not that: the error stands and the next request asks again.
      const { state } = await deps.keys.checkKey(row.key_id).catch(() => ({ state: 'unavailable' as const }));
      if (state === 'enabled' || state === 'unavailable') throw e;
      const dek = await deps.keys.generateDataKey();
      dek.plaintext.fill(0);
      // Compare-and-set on the old row: instances doing this at once agree on one new key.
      await d
        .updateTable('console_keys')
        .set({ key_id: dek.keyId, wrapped: dek.wrapped, created_at: new Date().toISOString() })
        .where('name', '=', name)
        .where('key_id', '=', row.key_id)
        .where('wrapped', '=', row.wrapped)
        .execute();
      deps.logger.warn({ retired_key_id: row.key_id, key_state: state }, 'console: the media ticket key was wrapped by a retired master key; a new one was made (outstanding tickets no longer play)');
      const again = await read();
      if (!again) throw e;
      return deps.keys.unwrap(again.key_id, again.wrapped);
    }
  };
  return () => {
    key ??= load().catch((e: unknown) => {
      key = undefined;
      throw e;
    });
    return key;
  };
}

/** Revocations in the catalog: every instance sees them at once. */
export function catalogRevocations(deps: AppDeps): TicketRevocations {
  return {
    async revoke(r) {
      await db(deps)
        .insertInto('media_ticket_revocations')
        .values({ ticket_id: r.ticketId, tenant_id: r.tenantId, revoked_by: r.principalId, admin: r.admin ? 1 : 0, expires_at: new Date(r.until).toISOString(), created_at: new Date().toISOString() })
        // One row per (ticket, tenant, revoking principal): a principal may revoke the same ticket
        // again with another of its credentials (an admin key after a plain one). The row keeps the
        // strongest revocation — admin if either was, until the later end — never the first alone,
        // which would drop an admin's revocation while its audit event says it takes effect.
        // (CASE rather than max()/GREATEST(): the same text on SQLite and PostgreSQL.)
        .onConflict((oc) =>
          oc.columns(['ticket_id', 'tenant_id', 'revoked_by']).doUpdateSet({
            admin: sql<number>`CASE WHEN excluded.admin > media_ticket_revocations.admin THEN excluded.admin ELSE media_ticket_revocations.admin END`,
            expires_at: sql<string>`CASE WHEN excluded.expires_at > media_ticket_revocations.expires_at THEN excluded.expires_at ELSE media_ticket_revocations.expires_at END`,
          }),
        )
        .execute();
    },
    async isRevoked(t) {
      const row = await db(deps)
        .selectFrom('media_ticket_revocations')
        .select('ticket_id')
        .where('ticket_id', '=', t.ticketId)
        .where('tenant_id', '=', t.tenantId)
        .where((eb) => eb.or([eb('revoked_by', '=', t.principalId), eb('admin', '=', 1)]))
        .executeTakeFirst();
      return !!row;
    },
    async sweep(now) {
      await db(deps).deleteFrom('media_ticket_revocations').where('expires_at', '<', new Date(now).toISOString()).execute();
    },
  };
}
