import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

/** Prometheus metrics of one gateway process. Labels are bounded sets: never ids. */
export class Metrics {
  readonly registry = new Registry();
  readonly requests = new Counter({
    name: 'custodian_requests_total',
    help: 'Requests by route, origin and outcome',
    labelNames: ['route', 'origin', 'outcome', 'status'] as const,
    registers: [this.registry],
  });
  readonly bytesStreamed = new Counter({
    name: 'custodian_bytes_streamed_total',
    help: 'Media bytes sent to clients',
    labelNames: ['origin', 'transcoded'] as const,
    registers: [this.registry],
  });
  readonly sourceLatency = new Histogram({
    name: 'custodian_source_first_byte_seconds',
    help: 'Time from asking a source to its first byte',
    labelNames: ['kind', 'outcome'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30],
    registers: [this.registry],
  });
  readonly streamAborts = new Counter({
    name: 'custodian_stream_aborts_total',
    help: 'Streams cut short, by reason (client, source, integrity)',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });

  readonly jobs = new Counter({
    name: 'custodian_jobs_total',
    help: 'Job attempts by outcome (ready, retry, waiting, failed, lease_lost, shutdown)',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });

  /**
   * Connector counters (logins, 429 waits, retries, resumes, circuit openings and open circuits),
   * summed per connector kind: labels carry no tenant or source names, since /metrics is unauthenticated.
   */
  watchSources(sources: () => { kind: string; stats?: () => object }[]): void {
    new Gauge({
      name: 'custodian_source_stat',
      help: 'Connector counters and circuit state, summed per connector kind',
      labelNames: ['kind', 'stat'] as const,
      registers: [this.registry],
      collect() {
        this.reset();
        for (const c of sources()) {
          const stats = c.stats?.() as Record<string, unknown> | undefined;
          if (!stats) continue;
          for (const [stat, v] of Object.entries(stats)) {
            if (typeof v === 'number') this.inc({ kind: c.kind, stat }, v);
            else if (stat === 'circuit') this.inc({ kind: c.kind, stat: 'circuits_open' }, v === 'closed' ? 0 : 1);
          }
        }
      },
    });
  }

  constructor(opts: { defaultMetrics?: boolean } = {}) {
    if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry });
  }
}
