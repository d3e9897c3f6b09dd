import { createCipheriv, createDecipheriv, randomBytes, randomUUID } from 'node:crypto';
import type { Principal } from '../access/principal.js';
import type { Scope } from '../config/schema.js';
import type { AudioFormat } from '../media/format.js';

/**
 * Media tickets: how a browser <audio> element, which cannot send an Authorization header, plays
 * a recording with Range requests (seeking) without the API key or token ever appearing in a URL.
 *
 * An authenticated, audited POST issues a ticket bound to one principal (hence one tenant), one
 * recording, one output format and one purpose of access. The ticket is a bearer secret for one
 * playback session of that recording, nothing else.
 *
 * The credential that asked for it bounds it too: a ticket never outlives its bearer token's `exp`
 * (capped at issue), and the play route checks an API key's ticket against the key as it stands
 * (revoked, or gone from the configuration: refused), as the auth hook checks the key itself.
 *
 * A ticket is **sealed, not stored**: its claims are encrypted and authenticated with AES-256-GCM
 * under a key every instance shares (ticket-key.ts: a data key of the key service, kept wrapped in
 * the catalog), so any instance behind a load balancer can check it — no sticky routing. Forging
 * or altering one fails the GCM tag; the claims (principal, purpose) cannot be read from the URL.
 * - it dies `lifetimeMs` after issue (default 10 min), on every instance;
 * - revocation (the console revokes when the player closes) is a row every instance checks
 *   (TicketRevocations), so a revoked ticket is dead everywhere at once;
 * - the first-use window (`firstUseMs`, default 60 s) and the use count (`maxUses`) are counted
 *   by each instance for the requests it serves: an instance refuses a ticket it has not served
 *   before once the window has passed (the console then asks for a new ticket and resumes);
 * - every request made with it is audited as `recording.media` with the ticket's purpose, and the
 *   route's log level keeps its URL out of the request log.
 * It is not strictly single-use: a player issues several Range requests per playback (first
 * probe, then one per seek), so "single use" would break seeking.
 */
export interface MediaTicket {
  /** Public id, for the audit trail and revocation; not a credential. */
  id: string;
  principal: Principal;
  recordingPk: string;
  /** The ref the caller used when asking for the ticket. */
  ref: string;
  format: Exclude<AudioFormat, 'original'> | 'original';
  purpose: string;
  issuedAt: number;
  firstUseBy: number;
  expiresAt: number;
  /** Requests served with it by this instance, this one included. */
  uses: number;
}

/** What a revocation takes effect on: the revoking principal's own ticket, or (an admin) any ticket of its tenant. */
export type RevocationScope = 'if_own_ticket' | 'if_ticket_of_tenant';

export interface TicketRevocations {
  revoke(r: { ticketId: string; tenantId: string; principalId: string; admin: boolean; until: number }): Promise<void>;
  /** Whether the ticket's owner, or an admin of its tenant, revoked it. */
  isRevoked(t: { ticketId: string; tenantId: string; principalId: string }): Promise<boolean>;
  sweep(now: number): Promise<void>;
}

/** Revocations of one process (unit tests, or a single instance). */
export class MemoryRevocations implements TicketRevocations {
  private readonly rows: { ticketId: string; tenantId: string; principalId: string; admin: boolean; until: number }[] = [];
  async revoke(r: Parameters<TicketRevocations['revoke']>[0]): Promise<void> {
    this.rows.push(r);
  }
  async isRevoked(t: { ticketId: string; tenantId: string; principalId: string }): Promise<boolean> {
    return this.rows.some((r) => r.ticketId === t.ticketId && r.tenantId === t.tenantId && (r.principalId === t.principalId || r.admin));
  }
  async sweep(now: number): Promise<void> {
    for (let i = this.rows.length - 1; i >= 0; i--) if (this.rows[i]!.until < now) this.rows.splice(i, 1);
  }
}

export interface TicketStoreOptions {
  firstUseMs?: number;
  lifetimeMs?: number;
  maxUses?: number;
  now?: () => number;
}

/** mt_ + base64url(12-byte IV | ciphertext | 16-byte tag). */
const TICKET_RE = /^mt_[A-Za-z0-9_-]{60,4000}$/;
const AAD = Buffer.from('custodian.media-ticket.v1');

interface Sealed {
  v: 1;
  i: string;
  t: string;
  p: string;
  k: Principal['kind'];
  c: string | null;
  s: Scope[];
  r: string;
  f: string;
  m: MediaTicket['format'];
  u: string;
  ia: number;
  fu: number;
  ex: number;
}

export class MediaTicketStore {
  /** What this instance has served: ticket id → uses (first-use window and use count are per instance). */
  private readonly served = new Map<string, { uses: number; expiresAt: number }>();
  private readonly firstUseMs: number;
  private readonly lifetimeMs: number;
  private readonly maxUses: number;
  private readonly now: () => number;

  constructor(
    private readonly key: () => Promise<Buffer>,
    private readonly revocations: TicketRevocations = new MemoryRevocations(),
    opts: TicketStoreOptions = {},
  ) {
    this.firstUseMs = opts.firstUseMs ?? 60_000;
    this.lifetimeMs = opts.lifetimeMs ?? 600_000;
    this.maxUses = opts.maxUses ?? 500;
    this.now = opts.now ?? Date.now;
  }

  static looksLikeTicket(s: string): boolean {
    return TICKET_RE.test(s);
  }

  /**
   * Seals a ticket. `notAfter` (ms since the epoch) caps its life: a ticket issued to a bearer token
   * dies with the token (its `exp`), never later. One whose cap has passed is dead on issue
   * (`expiresAt <= issuedAt`).
   */
  async issue(t: Omit<MediaTicket, 'id' | 'issuedAt' | 'firstUseBy' | 'expiresAt' | 'uses'>, opts: { notAfter?: number } = {}): Promise<{ secret: string; ticket: MediaTicket }> {
    const now = this.now();
    const expiresAt = Math.min(now + this.lifetimeMs, opts.notAfter ?? Infinity);
    const ticket: MediaTicket = { ...t, id: `mtk_${randomUUID()}`, issuedAt: now, firstUseBy: Math.min(now + this.firstUseMs, expiresAt), expiresAt, uses: 0 };
    const p = t.principal;
    const claims: Sealed = { v: 1, i: ticket.id, t: p.tenantId, p: p.id, k: p.kind, c: p.credentialId, s: [...p.scopes], r: t.recordingPk, f: t.ref, m: t.format, u: t.purpose, ia: now, fu: ticket.firstUseBy, ex: ticket.expiresAt };
    const iv = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', await this.key(), iv);
    c.setAAD(AAD);
    const body = Buffer.concat([c.update(JSON.stringify(claims)), c.final()]);
    return { secret: `mt_${Buffer.concat([iv, body, c.getAuthTag()]).toString('base64url')}`, ticket };
  }

  private async open(secret: string): Promise<Sealed | null> {
    if (!TICKET_RE.test(secret)) return null;
    const raw = Buffer.from(secret.slice(3), 'base64url');
    if (raw.length < 12 + 16 + 2) return null;
    try {
      const d = createDecipheriv('aes-256-gcm', await this.key(), raw.subarray(0, 12));
      d.setAAD(AAD);
      d.setAuthTag(raw.subarray(raw.length - 16));
      const json = Buffer.concat([d.update(raw.subarray(12, raw.length - 16)), d.final()]).toString('utf8');
      const s = JSON.parse(json) as Sealed;
      return s.v === 1 ? s : null;
    } catch {
      return null;
    }
  }

  /**
   * Whose an authentic ticket is, without counting a use or asking whether it is still live: to
   * put a refused request in the ticket's tenant's trail, as its principal's. Null when forged.
   */
  async whose(secret: string): Promise<Pick<MediaTicket, 'id' | 'principal' | 'recordingPk' | 'purpose'> | null> {
    const s = await this.open(secret);
    if (!s) return null;
    return { id: s.i, principal: { id: s.p, tenantId: s.t, kind: s.k, credentialId: s.c, scopes: new Set(s.s) }, recordingPk: s.r, purpose: s.u };
  }

  /** The live ticket for a secret, counting this use; null when forged, expired, used up or revoked. */
  async use(secret: string): Promise<MediaTicket | null> {
    const s = await this.open(secret);
    if (!s) return null;
    const now = this.now();
    if (now >= s.ex) return null;
    const local = this.served.get(s.i);
    if (!local && now >= s.fu) return null;
    if (local && local.uses >= this.maxUses) return null;
    if (await this.revocations.isRevoked({ ticketId: s.i, tenantId: s.t, principalId: s.p })) {
      this.served.delete(s.i);
      return null;
    }
    const entry = local ?? { uses: 0, expiresAt: s.ex };
    entry.uses++;
    this.served.set(s.i, entry);
    return {
      id: s.i,
      principal: { id: s.p, tenantId: s.t, kind: s.k, credentialId: s.c, scopes: new Set(s.s) },
      recordingPk: s.r,
      ref: s.f,
      format: s.m,
      purpose: s.u,
      issuedAt: s.ia,
      firstUseBy: s.fu,
      expiresAt: s.ex,
      uses: entry.uses,
    };
  }

  /**
   * Revokes a ticket by its public id, for every instance. Only a revocation by the ticket's own
   * principal (or an admin of its tenant) takes effect: the row records who asked, checked at use.
   * A ticket is sealed, not stored, so its id alone does not say whose it is: what is returned is
   * what this revocation can take effect on — the caller's own ticket, or (an admin) any ticket
   * of its tenant — not a claim that a ticket was revoked.
   */
  async revoke(principal: Principal, id: string): Promise<RevocationScope> {
    const admin = principal.scopes.has('admin');
    await this.revocations.revoke({ ticketId: id, tenantId: principal.tenantId, principalId: principal.id, admin, until: this.now() + this.lifetimeMs });
    return admin ? 'if_ticket_of_tenant' : 'if_own_ticket';
  }

  async sweep(): Promise<void> {
    const now = this.now();
    for (const [k, t] of this.served) if (now >= t.expiresAt) this.served.delete(k);
    await this.revocations.sweep(now);
  }

  get size(): number {
    return this.served.size;
  }
}
