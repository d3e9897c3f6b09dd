import { setImmediate as nextTurn } from 'node:timers/promises';

/**
 * Gives the event loop a turn: timers, sockets and other requests run before the caller goes on.
 * Called between the pages of a long scan. better-sqlite3 runs every query synchronously, and
 * kysely's promises around it resolve as microtasks, so a paged scan on SQLite (an audit verify or
 * export, the checkpointer's re-check, a sync report) never let the loop in until it had read its
 * last page: 12 ms per 1 000 audit events, a whole chain's verify in one piece (seconds), every
 * retrieval stalled behind it. PostgreSQL's queries yield on their socket; the extra turn is cheap.
 */
export function yieldToLoop(): Promise<void> {
  return nextTurn();
}
