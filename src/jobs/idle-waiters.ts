/**
 * Worker loops that have no work wait for their poll interval, or less: `wakeOne` (new work was
 * queued here) ends one wait, `wakeAll` (shutdown) ends them all. Shared by the retrieval job
 * worker and the console's evidence job worker.
 */
export class IdleWaiters {
  readonly #wakers = new Set<() => void>();

  wait(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const wake = () => {
        clearTimeout(t);
        this.#wakers.delete(wake);
        resolve();
      };
      const t = setTimeout(wake, ms);
      this.#wakers.add(wake);
    });
  }

  wakeOne(): void {
    const first = this.#wakers.values().next();
    if (!first.done) first.value();
  }

  wakeAll(): void {
    for (const wake of [...this.#wakers]) wake();
  }
}
