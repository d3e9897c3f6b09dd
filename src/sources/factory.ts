import type { SourceConfig } from '../config/schema.js';
import { FilesystemConnector } from './filesystem/connector.js';
import { GenesysConnector } from './genesys/connector.js';
import { LegacyHttpConnector } from './legacy-http/connector.js';
import type { SourceConnector } from './port.js';
import { S3Connector } from './s3/connector.js';

/** The one place that knows every connector kind. */
export function createConnector(tenantId: string, cfg: SourceConfig): SourceConnector {
  switch (cfg.type) {
    case 'filesystem':
      return new FilesystemConnector(tenantId, cfg);
    case 's3':
      return new S3Connector(tenantId, cfg);
    case 'genesys':
      return new GenesysConnector(tenantId, cfg);
    case 'legacy-http':
      return new LegacyHttpConnector(tenantId, cfg);
  }
}
