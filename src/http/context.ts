import type { Principal } from '../access/principal.js';
import type { AuditEventInput } from '../audit/event.js';
import type { Scope } from '../config/schema.js';

/** What a request learns on its way, for its audit event. */
export interface AuditDraft {
  action: string;
  ref?: string | null;
  recordingPk?: string | null;
  copyId?: string | null;
  origin?: string | null;
  callerId?: string | null;
  requestId?: string | null;
  auditLogId?: string | null;
  detail?: Record<string, unknown>;
  /** Set once an event for this request has been written (by the handler, the stream or the error handler). */
  written: boolean;
  /**
   * Events for other trails that this request's own event carries into its commit: a ref another
   * tenant holds (its owner's cross_tenant_attempt) or nobody does (the operator trail's
   * lookup_miss), one companion either way (http/evidence.ts). Cleared once written.
   */
  alsoFor?: AuditEventInput[];
}

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal | null;
    audit: AuditDraft;
  }
  interface FastifyContextConfig {
    /** Route needs a principal; with a scope, that scope too. */
    auth?: boolean;
    scope?: Scope;
    /** Audit action name for this route, e.g. recording.retrieve. */
    action?: string;
    /** Operational endpoints (probes, metrics) write no audit event. */
    unaudited?: boolean;
  }
}
