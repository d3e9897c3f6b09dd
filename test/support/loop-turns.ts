/**
 * How many turns the event loop got (setImmediate callbacks that ran) while `work` ran. A scan
 * on SQLite runs every query synchronously and resolves in microtasks: without an explicit yield
 * between pages it finishes before the loop serves a single timer, socket or request (0 turns).
 */
export async function loopTurnsDuring(work: () => Promise<unknown>): Promise<number> {
  let turns = 0;
  let done = false;
  const tick = () => {
    if (done) return;
    turns++;
    setImmediate(tick);
  };
  setImmediate(tick);
  try {
    await work();
  } finally {
    done = true;
  }
  return turns;
}
