import type { Copy } from '../catalog/model.js';
import type { SourceConfig, TenantConfig } from '../config/schema.js';
import { AppError } from '../errors.js';
import type { CopyLocation, SourceConnector } from './port.js';

export type ConnectorFactory = (tenantId: string, cfg: SourceConfig) => SourceConnector;

/**
 * Connectors by tenant. A lookup names the tenant first and only ever searches that tenant's
 * own connectors: a copy of tenant A can never be served through tenant B's credentials,
 * even when the catalog row is wrong.
 */
export class SourceRegistry {
  private readonly byTenant = new Map<string, { connectors: Map<string, SourceConnector>; configs: SourceConfig[] }>();

  constructor(tenants: TenantConfig[], factory: ConnectorFactory) {
    for (const t of tenants) {
      const connectors = new Map<string, SourceConnector>();
      for (const s of t.sources) connectors.set(s.name, factory(t.id, s));
      this.byTenant.set(t.id, { connectors, configs: t.sources });
    }
  }

  /** The source configuration that serves a copy (its mode and budget), or undefined. */
  configFor(tenantId: string, copy: Copy): SourceConfig | undefined {
    const tenant = this.byTenant.get(tenantId);
    if (!tenant || copy.tenantId !== tenantId) return undefined;
    return copy.connector ? tenant.configs.find((c) => c.name === copy.connector) : tenant.configs.find((c) => c.source_systems.includes(copy.sourceSystem));
  }

  forCopy(tenantId: string, copy: Copy): SourceConnector {
    const tenant = this.byTenant.get(tenantId);
    if (copy.tenantId !== tenantId) throw new AppError('source.not_configured', 'copy belongs to another tenant');
    let connector: SourceConnector | undefined;
    if (copy.connector) connector = tenant?.connectors.get(copy.connector);
    else {
      const cfg = tenant?.configs.find((c) => c.source_systems.includes(copy.sourceSystem));
      connector = cfg ? tenant?.connectors.get(cfg.name) : undefined;
    }
    if (!connector) {
      throw new AppError('source.not_configured', `no source of this tenant serves ${copy.connector ? `connector "${copy.connector}"` : `source_system "${copy.sourceSystem}"`}`);
    }
    // Defence in depth: the factory stamped the tenant on the connector.
    if (connector.tenantId !== tenantId) throw new AppError('internal', 'connector tenant mismatch');
    return connector;
  }

  /** A tenant's sources with their configuration (for per-tenant services such as fallback lookups). */
  sourcesOf(tenantId: string): { connector: SourceConnector; config: SourceConfig }[] {
    const tenant = this.byTenant.get(tenantId);
    if (!tenant) return [];
    return tenant.configs.map((config) => ({ connector: tenant.connectors.get(config.name)!, config }));
  }

  all(): SourceConnector[] {
    return [...this.byTenant.values()].flatMap((t) => [...t.connectors.values()]);
  }

  async close(): Promise<void> {
    await Promise.allSettled(this.all().map((c) => c.close()));
  }
}

export function locationOf(copy: Copy, conversationId: string | null): CopyLocation {
  return {
    copyId: copy.id,
    locator: copy.locator,
    sourceSystem: copy.sourceSystem,
    genesysRecordingId: copy.genesysRecordingId,
    conversationId,
    legacyArchiveId: copy.legacyArchiveId,
    sizeBytes: copy.sizeBytes,
  };
}
