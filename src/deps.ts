import type { Logger } from 'pino';
import type { ApiKeyService } from './access/api-keys.js';
import type { JwtVerifier } from './access/jwt.js';
import type { RateLimiter } from './access/rate-limit.js';
import type { AuditRepository } from './audit/audit-repository.js';
import type { Checkpointer } from './audit/checkpointer.js';
import type { AuditRecorder } from './audit/recorder.js';
import type { CatalogDb } from './catalog/database.js';
import type { RecordingRepository } from './catalog/recording-repository.js';
import type { RequestRepository } from './catalog/request-repository.js';
import type { Config } from './config/schema.js';
import type { HandoffClock } from './http/handoff-clock.js';
import type { Metrics } from './http/metrics.js';
import type { JobRepository } from './jobs/job-repository.js';
import type { Staging } from './jobs/staging.js';
import type { HoldRepository } from './holds/hold-repository.js';
import type { KeyService } from './keys/keyring.js';
import type { Transcoder } from './media/transcoder.js';
import type { Resolver } from './resolve/resolver.js';
import type { SourceRegistry } from './sources/registry.js';

/** Everything a request needs, built once by the composition root (main.ts) or by a test. */
export interface AppDeps {
  config: Config;
  logger: Logger;
  catalog: CatalogDb;
  recordings: RecordingRepository;
  requests: RequestRepository;
  auditRepo: AuditRepository;
  audit: AuditRecorder;
  apiKeys: ApiKeyService;
  jwt: JwtVerifier | null;
  rateLimiter: RateLimiter;
  sources: SourceRegistry;
  resolver: Resolver;
  transcoder: Transcoder;
  metrics: Metrics;
  jobs: JobRepository;
  staging: Staging;
  keys: KeyService;
  holds: HoldRepository;
  /** Names this process as a lease owner of jobs. */
  instanceId: string;
  /** Set once the worker runs; the streaming path pokes it when it queues a job. */
  worker?: { poke(): void };
  /** Fetches handed from a request to a job: shutdown aborts and awaits them before closing the catalog. */
  handedOff: Set<{ abort: AbortController; done: Promise<void> }>;
  /** What recent 202 hand-offs cost, so the next one starts early enough to land within its budget. */
  handoffClock: HandoffClock;
  /** Set once the gateway runs: writes the signed audit checkpoints. */
  checkpointer?: Checkpointer;
}
