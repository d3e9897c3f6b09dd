import { join, resolve } from 'node:path';
import { DEMO_CALLER, DEMO_TENANT, OTHER_TENANT, demoKey } from './demo-seed.js';

/**
 * The embedded default of `npm start`: SQLite in the data directory, two tenants with their own
 * local archives, one demo key each. Inline secrets are allowed because the keys are generated
 * here and kept in the data directory, not written in a file someone could commit.
 */
export interface DemoGenesys {
  loginBaseUrl: string;
  apiBaseUrl: string;
  clientId: string;
  clientSecret: string;
}

export function demoConfigDocument(dataDir: string, env: { CUSTODIAN_DEMO_API_KEY?: string | undefined }, genesys?: DemoGenesys): Record<string, unknown> {
  const dir = resolve(dataDir);
  const demo = env.CUSTODIAN_DEMO_API_KEY ?? demoKey(dir, 'demo');
  const other = demoKey(dir, 'other');
  return {
    data_dir: dir,
    allow_inline_secrets: true,
    auth: {
      api_keys: [
        { id: 'demo', tenant: DEMO_TENANT, principal: DEMO_CALLER, scopes: ['recordings:read', 'recordings:export', 'audit:read'], key: demo },
        { id: 'other', tenant: OTHER_TENANT, principal: 'other_auditor', scopes: ['recordings:read', 'audit:read'], key: other },
      ],
    },
    tenants: [
      {
        id: DEMO_TENANT,
        display_name: 'Demo contact centre',
        sources: [
          // A local archive is never the slow part; ffmpeg may be (its first output buffer counts
          // towards the budget, and a busy machine can take seconds to start it): the printed curl
          // for the G.729 recording should answer with audio, not a 202 job.
          { name: 'demo-archive', type: 'filesystem', root: join(dir, 'demo-archive', DEMO_TENANT), source_systems: ['avaya_aura', 'cisco_mediasense', 'verint', 'nice', 'filesystem'], first_byte_budget_ms: 15_000 },
          ...(genesys
            ? [
                {
                  name: 'genesys',
                  type: 'genesys',
                  environment: 'mypurecloud.ie',
                  login_base_url: genesys.loginBaseUrl,
                  api_base_url: genesys.apiBaseUrl,
                  client_id: genesys.clientId,
                  client_secret: genesys.clientSecret,
                  source_systems: ['genesys_cloud'],
                },
              ]
            : []),
        ],
      },
      {
        id: OTHER_TENANT,
        display_name: 'Another tenant (isolation demo)',
        sources: [{ name: 'other-archive', type: 'filesystem', root: join(dir, 'demo-archive', OTHER_TENANT), source_systems: ['avaya_aura'] }],
      },
    ],
  };
}
