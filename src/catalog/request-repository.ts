import type { Kysely } from 'kysely';
import type { Database } from './tables.js';

/** Idempotency keys of retrieve requests (product.md: request_id per tenant). */
export class RequestRepository {
  constructor(private readonly db: Kysely<Database>) {}

  /** Records the key on first use; tells whether a later use repeats the same request or conflicts. */
  async claim(tenantId: string, requestId: string, bodyHash: string): Promise<'new' | 'repeat' | 'conflict'> {
    const inserted = await this.db
      .insertInto('retrieve_requests')
      .values({ tenant_id: tenantId, request_id: requestId, body_hash: bodyHash, recording_pk: null, created_at: new Date().toISOString() })
      .onConflict((oc) => oc.doNothing())
      .executeTakeFirst();
    if (Number(inserted.numInsertedOrUpdatedRows ?? 0) > 0) return 'new';
    const row = await this.db.selectFrom('retrieve_requests').select('body_hash').where('tenant_id', '=', tenantId).where('request_id', '=', requestId).executeTakeFirstOrThrow();
    return row.body_hash === bodyHash ? 'repeat' : 'conflict';
  }
}
