import { type GenesysSimulator, startGenesysSimulator } from '../../src/sources/genesys/simulator.js';

/**
 * A tenant's Genesys source pointed at the simulator, logging in with the simulator's default
 * client. `overrides` replace or add fields (name, client, source_systems, budgets, mode, …).
 */
export function genesysSource(sim: Pick<GenesysSimulator, 'loginBaseUrl' | 'apiBaseUrl'>, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    name: 'genesys',
    type: 'genesys',
    environment: 'mypurecloud.ie',
    login_base_url: sim.loginBaseUrl,
    api_base_url: sim.apiBaseUrl,
    client_id: 'custodian-sim',
    client_secret: 'custodian-sim-secret',
    source_systems: ['genesys_cloud'],
    ...overrides,
  };
}

const VIEW = 'recording:recording:view';
const SENSITIVE = 'recording:recording:viewSensitiveData';

/** A client of {@link startRedactionSimulator}: `full` may view sensitive data, `partial` may not (Genesys serves it redacted media). */
export type RedactionClient = 'full' | 'partial';

/** A Genesys simulator with two OAuth clients, `full` and `partial` (secrets `full-secret`, `partial-secret`). */
export function startRedactionSimulator(): Promise<GenesysSimulator> {
  return startGenesysSimulator({
    clients: [
      { id: 'full', secret: 'full-secret', permissions: [VIEW, SENSITIVE, 'analytics:conversationDetail:view'] },
      { id: 'partial', secret: 'partial-secret', permissions: [VIEW, 'analytics:conversationDetail:view'] },
    ],
  });
}

/** A source of {@link startRedactionSimulator} logging in as `client`; no source_systems, so copies name it by connector. */
export function redactionSource(sim: GenesysSimulator, name: string, client: RedactionClient, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return genesysSource(sim, { name, client_id: client, client_secret: `${client}-secret`, source_systems: [], ...extra });
}
