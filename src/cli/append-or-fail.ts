import type { AuditEvent, AuditEventInput } from '../audit/event.js';
import type { AppDeps } from '../deps.js';
import { AppError } from '../errors.js';

/**
 * Appends the events, or fails the command naming what was (or was not) done: an admin action
 * without its audit event is not "ok" (`audit.unavailable`, one line: `<done>: the audit event
 * could not be written (<why>)`).
 */
export async function appendOrFail(deps: Pick<AppDeps, 'auditRepo'>, events: AuditEventInput[], done: string): Promise<AuditEvent[]> {
  try {
    // Appended at once, the group commit batches them (audit-repository.ts); any one not written fails the command.
    return await Promise.all(events.map((e) => deps.auditRepo.append(e)));
  } catch (e) {
    throw auditFailed(done, e);
  }
}

/** The refusal when an audit event could not be written: one line saying what was (not) done. */
export function auditFailed(done: string, e: unknown): AppError {
  const why = String((e as Error)?.message ?? e).split('\n')[0];
  return new AppError('audit.unavailable', `${done}: the audit event could not be written (${why})`, { cause: e });
}
