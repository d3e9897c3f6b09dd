import { runSync, type SyncDeps } from './runner.js';

export interface SyncScheduler {
  /** Stops the timers, aborts a run in flight (its cursor stays for the next to resume) and waits for it to settle. */
  stop(): Promise<void>;
}

type Log = (level: 'info' | 'warn' | 'error', msg: string, o: object) => void;

/**
 * Starts a sync of every tenant that sets `sync.schedule_interval_ms`: the first right away, each
 * next one an interval after the previous one ended, so a tenant's runs never overlap in this
 * process; across instances each source's lease lets one run at a time (the others get busy).
 */
export function startSyncScheduler(deps: SyncDeps, log: Log = () => {}): SyncScheduler {
  const ac = new AbortController();
  const timers = new Set<NodeJS.Timeout>();
  const running = new Set<Promise<void>>();
  for (const t of deps.config.tenants) {
    const every = t.sync?.schedule_interval_ms;
    if (!every) continue;
    const tick = () => {
      const run = runSync(deps, { tenantId: t.id, principalId: 'scheduler', signal: ac.signal })
        .then((report) => {
          for (const r of report.runs) if (r.status !== 'succeeded') log(r.status === 'busy' ? 'info' : 'warn', `scheduled sync ${r.status}`, { tenant: t.id, source: r.source, error: r.error });
        })
        .catch((e: unknown) => log('error', 'scheduled sync failed', { tenant: t.id, err: e }))
        .finally(() => {
          running.delete(run);
          if (ac.signal.aborted) return;
          const timer = setTimeout(() => {
            timers.delete(timer);
            tick();
          }, every);
          timers.add(timer);
        });
      running.add(run);
    };
    tick();
  }
  return {
    async stop() {
      ac.abort();
      for (const t of timers) clearTimeout(t);
      timers.clear();
      await Promise.allSettled([...running]);
    },
  };
}
