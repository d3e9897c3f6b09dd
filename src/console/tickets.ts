import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { Principal } from '../access/principal.js';
import type { AudioFormat } from '../media/format.js';

/**
 * Media tickets: how a browser <audio> element, which cannot send an Authorization header, plays
 * a recording with Range requests (seeking) without the API key ever appearing in a URL.
 *
 * An authenticated, audited POST issues a ticket bound to one principal (hence one tenant), one
 * recording, one output format and one purpose of access. The ticket is a bearer secret for one
 * playback session of that recording, nothing else:
 * - it must be first used within `firstUseMs` (default 60 s) and dies `lifetimeMs` after issue
 *   (default 10 min) or after `maxUses` requests, whichever comes first; the console asks for a
 *   new one to go on playing after that;
 * - it can be revoked (the console does so when the player is closed);
 * - only its SHA-256 is held, in memory of the instance that issued it (several instances need
 *   sticky routing for /api/v1/media-tickets/*, or a shared store: not done);
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
  uses: number;
}

export interface TicketStoreOptions {
  firstUseMs?: number;
  lifetimeMs?: number;
  maxUses?: number;
  /** Live tickets one principal may hold; the oldest goes first beyond it. */
  maxPerPrincipal?: number;
  now?: () => number;
}

const TICKET_RE = /^mt_[A-Za-z0-9_-]{43}$/;
const digest = (secret: string) => createHash('sha256').update(secret).digest('hex');

export class MediaTicketStore {
  private readonly byDigest = new Map<string, MediaTicket>();
  private readonly firstUseMs: number;
  private readonly lifetimeMs: number;
  private readonly maxUses: number;
  private readonly maxPerPrincipal: number;
  private readonly now: () => number;

  constructor(opts: TicketStoreOptions = {}) {
    this.firstUseMs = opts.firstUseMs ?? 60_000;
    this.lifetimeMs = opts.lifetimeMs ?? 600_000;
    this.maxUses = opts.maxUses ?? 500;
    this.maxPerPrincipal = opts.maxPerPrincipal ?? 16;
    this.now = opts.now ?? Date.now;
  }

  static looksLikeTicket(s: string): boolean {
    return TICKET_RE.test(s);
  }

  issue(t: Omit<MediaTicket, 'id' | 'issuedAt' | 'firstUseBy' | 'expiresAt' | 'uses'>): { secret: string; ticket: MediaTicket } {
    this.sweep();
    const now = this.now();
    const mine = [...this.byDigest.entries()].filter(([, v]) => v.principal.tenantId === t.principal.tenantId && v.principal.id === t.principal.id);
    for (const [k] of mine.slice(0, Math.max(0, mine.length - this.maxPerPrincipal + 1))) this.byDigest.delete(k);
    const secret = `mt_${randomBytes(32).toString('base64url')}`;
    const ticket: MediaTicket = { ...t, id: `mtk_${randomUUID()}`, issuedAt: now, firstUseBy: now + this.firstUseMs, expiresAt: now + this.lifetimeMs, uses: 0 };
    this.byDigest.set(digest(secret), ticket);
    return { secret, ticket };
  }

  /** The live ticket for a secret, counting this use; null when unknown, expired, used up or revoked. */
  use(secret: string): MediaTicket | null {
    if (!TICKET_RE.test(secret)) return null;
    const key = digest(secret);
    const t = this.byDigest.get(key);
    if (!t) return null;
    const now = this.now();
    if (now >= t.expiresAt || t.uses >= this.maxUses || (t.uses === 0 && now >= t.firstUseBy)) {
      this.byDigest.delete(key);
      return null;
    }
    t.uses++;
    return t;
  }

  /** Revokes a ticket of this principal by its public id. */
  revoke(principal: Principal, id: string): boolean {
    for (const [k, t] of this.byDigest) {
      if (t.id === id && t.principal.tenantId === principal.tenantId && (t.principal.id === principal.id || principal.scopes.has('admin'))) {
        this.byDigest.delete(k);
        return true;
      }
    }
    return false;
  }

  sweep(): void {
    const now = this.now();
    for (const [k, t] of this.byDigest) if (now >= t.expiresAt || (t.uses === 0 && now >= t.firstUseBy)) this.byDigest.delete(k);
  }

  get size(): number {
    return this.byDigest.size;
  }
}
