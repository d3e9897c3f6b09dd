import type { SourceConfig } from '../config/schema.js';
import { FilesystemConnector } from './filesystem/connector.js';
import { GenesysConnector } from './genesys/connector.js';
import type { Transcoder } from '../media/transcoder.js';
import { LegacyHttpConnector } from './legacy-http/connector.js';
import type { SourceConnector } from './port.js';
import { type BudgetStore, memoryBudgetStore } from './request-budget.js';
import { S3Connector } from './s3/connector.js';

/**
 * The one place that knows every connector kind. `budgets` keeps the sources' request budgets
 * (shared across instances when it is the PostgreSQL store).
 */
export function createConnector(tenantId: string, cfg: SourceConfig, budgets: BudgetStore = memoryBudgetStore(), transcoder?: Transcoder): SourceConnector {
  switch (cfg.type) {
    case 'filesystem':
      return new FilesystemConnector(tenantId, cfg);
    case 's3':
      return new S3Connector(tenantId, cfg);
    case 'genesys':
      return new GenesysConnector(tenantId, cfg, budgets);
    case 'legacy-http':
      return new LegacyHttpConnector(tenantId, cfg, transcoder);
  }
}
