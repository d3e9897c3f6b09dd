import type { AuditRepository } from '../../src/audit/audit-repository.js';

/**
 * Runs `fn` while the audit trail refuses every write — the group-committed appends and the one
 * inside a caller's transaction (appendIn) — as a database that is down or full would, then
 * restores it. What a route does then is the test: refuse (503 audit.unavailable), never act
 * without evidence.
 */
export async function withTrailDown<T>(repo: Pick<AuditRepository, 'append' | 'appendTogether' | 'appendIn'>, fn: () => Promise<T>): Promise<T> {
  const real = { append: repo.append, appendTogether: repo.appendTogether, appendIn: repo.appendIn };
  repo.append = () => Promise.reject(new Error('audit store unavailable'));
  repo.appendTogether = (inputs) => inputs.map(() => Promise.reject(new Error('audit store unavailable')));
  repo.appendIn = () => Promise.reject(new Error('audit store unavailable'));
  try {
    return await fn();
  } finally {
    Object.assign(repo, real);
  }
}
