import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { type Kysely, sql } from 'kysely';
import { preparedMarker } from '../catalog/named-statements.js';
import type { ApiKeysTable, Database } from '../catalog/tables.js';
import { SCOPES, type Scope } from '../config/schema.js';
import type { Secret } from '../config/secret.js';
import { AppError } from '../errors.js';
import { API_KEY_RE, formatKey, keyFormatHint } from './key-format.js';
import type { Principal } from './principal.js';

/**
 * API keys look like `cst_<id>_<secret>` (key-format.ts). Only a SHA-256 of the whole key is stored: the key has
 * 256 bits of entropy, so a slow hash adds nothing, and a fast one keeps auth off the hot path.
 */
const KEY_RE = API_KEY_RE;

const sha256 = (s: string) => createHash('sha256').update(s).digest();

// Every request with a stored key reads its row: prepared on PostgreSQL (named-statements.ts),
// where planning the one-row read anew took longer than running it. Columns named, not *: a
// prepared statement's result type must not change when a migration adds a column.
const KEY_BY_ID = sql.raw(preparedMarker('api_key_by_id'));
type KeyRow = Pick<ApiKeysTable, 'id' | 'tenant_id' | 'principal_id' | 'scopes' | 'key_hash' | 'revoked_at'>;

function principalOf(row: KeyRow): Principal {
  const scopes = (JSON.parse(row.scopes) as string[]).filter((s): s is Scope => (SCOPES as readonly string[]).includes(s));
  return { id: row.principal_id, tenantId: row.tenant_id, scopes: new Set(scopes), kind: 'api_key', credentialId: row.id };
}

export interface StaticKey {
  id: string;
  tenant: string;
  principal: string;
  scopes: Scope[];
  key: Secret;
}

export interface IssuedKey {
  id: string;
  key: string;
  tenantId: string;
  principalId: string;
  scopes: Scope[];
}

export { formatKey };

export class ApiKeyService {
  private readonly statics = new Map<string, { hash: Buffer; principal: Principal }>();

  constructor(
    private readonly db: Kysely<Database>,
    staticKeys: StaticKey[],
  ) {
    for (const k of staticKeys) {
      const m = KEY_RE.exec(k.key.reveal());
      if (!m || m[1] !== k.id) throw new Error(`auth.api_keys: key "${k.id}" ${keyFormatHint(k.id)}`);
      this.statics.set(k.id, {
        hash: sha256(k.key.reveal()),
        principal: { id: k.principal, tenantId: k.tenant, scopes: new Set(k.scopes), kind: 'api_key', credentialId: k.id },
      });
    }
  }

  static looksLikeKey(token: string): boolean {
    return token.startsWith('cst_');
  }

  async authenticate(token: string): Promise<Principal> {
    const m = KEY_RE.exec(token);
    if (!m) throw new AppError('auth.invalid_token', 'the API key is malformed');
    const id = m[1]!;
    const presented = sha256(token);
    const st = this.statics.get(id);
    if (st) {
      if (timingSafeEqual(st.hash, presented)) return st.principal;
      throw new AppError('auth.invalid_token', 'the API key is not valid');
    }
    const [row] = (await sql<KeyRow>`${KEY_BY_ID} select id, tenant_id, principal_id, scopes, key_hash, revoked_at from api_keys where id = ${id}`.execute(this.db)).rows;
    if (!row || row.revoked_at !== null || !timingSafeEqual(Buffer.from(row.key_hash, 'hex'), presented)) {
      throw new AppError('auth.invalid_token', 'the API key is not valid');
    }
    return principalOf(row);
  }

  /**
   * What a key id authenticates as now, without its secret: the configured key of that id, or the
   * stored one if not revoked; null when neither (revoked, or gone from the configuration). For
   * credentials used on the key's behalf after the request that presented it (media tickets).
   */
  async currentPrincipal(id: string): Promise<Principal | null> {
    const st = this.statics.get(id);
    if (st) return st.principal;
    // The same statement as authenticate's (one prepared statement on PostgreSQL).
    const [row] = (await sql<KeyRow>`${KEY_BY_ID} select id, tenant_id, principal_id, scopes, key_hash, revoked_at from api_keys where id = ${id}`.execute(this.db)).rows;
    if (!row || row.revoked_at !== null) return null;
    return principalOf(row);
  }

  /** Issues a key; the caller shows it once. Only its hash is kept. */
  async issue(tenantId: string, principalId: string, scopes: Scope[], description?: string): Promise<IssuedKey> {
    const id = randomUUID().slice(0, 8) + randomUUID().slice(0, 4);
    const key = formatKey(id, randomBytes(32).toString('base64url'));
    await this.db
      .insertInto('api_keys')
      .values({
        id,
        tenant_id: tenantId,
        principal_id: principalId,
        scopes: JSON.stringify(scopes),
        key_hash: sha256(key).toString('hex'),
        description: description ?? null,
        created_at: new Date().toISOString(),
        revoked_at: null,
      })
      .execute();
    return { id, key, tenantId, principalId, scopes };
  }

  async revoke(id: string): Promise<boolean> {
    const r = await this.db.updateTable('api_keys').set({ revoked_at: new Date().toISOString() }).where('id', '=', id).where('revoked_at', 'is', null).executeTakeFirst();
    return Number(r.numUpdatedRows) > 0;
  }
}
