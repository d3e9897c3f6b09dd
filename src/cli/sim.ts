import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { parseCommandArgs } from './args.js';
import { z } from 'zod';
import { ConfigError } from '../config/load.js';
import { FILE_STATES, MEDIA_SUBTYPES } from '../sources/genesys/models.js';
import { startGenesysSimulator, type GenesysSimulatorOptions, type SimRecordingInput } from '../sources/genesys/simulator.js';
import { LEGACY_PROVIDERS, type LegacyProvider } from '../sources/legacy-http/config.js';
import { DEFAULT_SIM_USER, startLegacySimulator } from '../sources/legacy-http/simulator.js';

/**
 * `custodian sim genesys [--port N] [--host h] [--seed file.json]` and
 * `custodian sim legacy --provider avaya_aura|cisco_mediasense|generic_http [--port N] [--file media.wav]`:
 * run a simulator standalone (Genesys in the combined single-port layout) until Ctrl-C, printing
 * its base URLs, credentials and a source entry to paste into a config.
 */

export const SIM_USAGE = `custodian sim genesys [--port N] [--host 127.0.0.1] [--seed file.json]
custodian sim legacy --provider avaya_aura|cisco_mediasense|generic_http [--port N] [--host 127.0.0.1] [--file media.wav]

  Seed file (JSON): an array of recordings, or
    {"clients": [{"id": "…", "secret": "…", "name": "…", "permissions": ["recording:recording:view", …]}],
     "knobs": {"mediaLinkTtlMs": 120000, "transcodePolls": 2, …},
     "recordings": [{"conversationId": "…", "recordingId": "…", "path": "call.wav", "fileState": "AVAILABLE",
                     "externalTag": "…", "protocolCallId": "…", "startTime": "2026-01-01T10:00:00Z"}]}
  Recording paths are relative to the seed file.`;

const client = z.object({ id: z.string().min(1), secret: z.string().min(1), name: z.string().optional(), permissions: z.array(z.string()).optional(), scopes: z.array(z.string()).optional() }).strict();
const recording = z
  .object({
    conversationId: z.string().min(1),
    recordingId: z.string().min(1),
    fileState: z.enum(FILE_STATES).optional(),
    path: z.string().min(1).optional(),
    text: z.string().optional(),
    contentType: z.string().optional(),
    mediaSubtype: z.enum(MEDIA_SUBTYPES).optional(),
    startTime: z.string().optional(),
    durationMs: z.number().int().min(0).optional(),
    archiveDate: z.string().optional(),
    deleteDate: z.string().optional(),
    externalTag: z.string().optional(),
    protocolCallId: z.string().optional(),
    direction: z.enum(['inbound', 'outbound']).optional(),
    ani: z.string().optional(),
    dnis: z.string().optional(),
    transcodePolls: z.number().int().min(0).optional(),
  })
  .strict();
const knobs = z
  .object({
    tokenLifetimeS: z.number().int().min(1),
    mediaLinkTtlMs: z.number().int().min(1),
    transcodePolls: z.number().int().min(0),
    transcodingBody: z.enum(['empty', 'recording']),
    estimatedTranscodeTimeMs: z.number().int().min(0),
    restoreDelayMs: z.number().int().min(0),
    loginDelayMs: z.number().int().min(0),
    clockSkewMs: z.number().int(),
    mediaBody: z.enum(['recording', 'html']),
    mediaTruncateAfter: z.number().int().min(0),
    batchPolls: z.number().int().min(0),
    batchLinkTtlMs: z.number().int().min(1),
  })
  .partial()
  .strict();
const seedSchema = z.object({ clients: z.array(client).min(1).optional(), knobs: knobs.optional(), recordings: z.array(recording).default([]) }).strict();

/** Reads a seed file into simulator options (paths resolved against the file's folder). */
export function readSeed(file: string): GenesysSimulatorOptions {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new ConfigError(`--seed ${file}: ${(e as Error).message}`);
  }
  // A bare array is the recordings alone.
  const parsed = seedSchema.safeParse(Array.isArray(raw) ? { recordings: raw } : raw);
  if (!parsed.success) {
    throw new ConfigError(`--seed ${file}: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`);
  }
  const doc = parsed.data;
  const base = dirname(resolve(file));
  const recordings: SimRecordingInput[] = doc.recordings.map(({ path, text, ...r }) => ({
    ...r,
    ...(path !== undefined ? { path: isAbsolute(path) ? path : resolve(base, path) } : { bytes: text ?? '' }),
  }));
  return {
    ...(doc.knobs ?? {}),
    ...(doc.clients ? { clients: doc.clients } : {}),
    recordings,
  };
}

const DEMO_RECORDING: SimRecordingInput = {
  conversationId: 'c0ffee00-0000-4000-8000-000000000001',
  recordingId: 'reca0000-0000-4000-8000-000000000001',
  bytes: 'RIFF-demo-bytes',
  externalTag: 'LEGACY-0001',
  protocolCallId: 'demo-call-0001@sbc.example',
};

function untilSignal(): Promise<string> {
  return new Promise((resolve) => {
    const on = (sig: string) => () => resolve(sig);
    process.once('SIGINT', on('SIGINT'));
    process.once('SIGTERM', on('SIGTERM'));
  });
}

/* The CLI talks to a human: console output is its interface. */
/* eslint-disable no-console */
export async function runSim(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs('sim', {
    args: argv,
    allowPositionals: true,
    options: {
      port: { type: 'string' },
      host: { type: 'string' },
      seed: { type: 'string' },
      provider: { type: 'string' },
      file: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const [kind, extra] = positionals;
  if (values.help || !kind || extra !== undefined || (kind !== 'genesys' && kind !== 'legacy')) {
    console.log(SIM_USAGE);
    return values.help ? 0 : 2;
  }
  const port = values.port === undefined ? 0 : Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new ConfigError('--port: 0..65535');
  const host = values.host ?? '127.0.0.1';

  if (kind === 'genesys') {
    if (values.provider || values.file) throw new ConfigError('sim genesys takes --port, --host and --seed (media files go in the seed)');
    const seeded = values.seed ? readSeed(values.seed) : { recordings: [DEMO_RECORDING] };
    const sim = await startGenesysSimulator({ ...seeded, layout: 'combined', port, host });
    const c = sim.knobs.clients[0]!;
    const recs = seeded.recordings ?? [];
    console.log(
      [
        'Genesys Cloud simulator (combined layout: login, API and media on one port)',
        `  login base URL:  ${sim.loginBaseUrl}`,
        `  api base URL:    ${sim.apiBaseUrl}`,
        `  media base URL:  ${sim.mediaBaseUrl}`,
        `  client id:       ${c.id}`,
        `  client secret:   ${c.secret}`,
        ...(sim.knobs.clients.length > 1 ? [`  other clients:   ${sim.knobs.clients.slice(1).map((x) => x.id).join(', ')}`] : []),
        `  recordings:      ${recs.length}`,
        ...recs.slice(0, 10).map((r) => `    ${r.conversationId} / ${r.recordingId}${r.fileState ? ` (${r.fileState})` : ''}`),
        ...(recs.length > 10 ? [`    … and ${recs.length - 10} more`] : []),
        'source entry (allow_inline_secrets: true):',
        `  - { name: genesys-sim, type: genesys, environment: mypurecloud.ie, login_base_url: "${sim.loginBaseUrl}", api_base_url: "${sim.apiBaseUrl}", client_id: ${c.id}, client_secret: ${c.secret}, source_systems: [genesys_cloud] }`,
        'Ctrl-C stops it.',
      ].join('\n'),
    );
    await untilSignal();
    await sim.close();
    return 0;
  }

  if (values.seed) throw new ConfigError('sim legacy takes --provider, --port, --host and --file');
  const provider = values.provider as LegacyProvider | undefined;
  if (!provider || !(LEGACY_PROVIDERS as readonly string[]).includes(provider)) throw new ConfigError(`--provider: one of ${LEGACY_PROVIDERS.join(', ')}`);
  const media = values.file ? { path: values.file } : { bytes: 'RIFF-demo-bytes' };
  const id = provider === 'avaya_aura' ? '100000000000001' : provider === 'cisco_mediasense' ? '1a2b3c4d5e6f0001' : 'REC-0001';
  const sim = await startLegacySimulator({ provider, port, host, recordings: [{ id, ...(provider === 'avaya_aura' ? { ucid: '00001002071523456789' } : {}), ...media }] });
  const auth = provider === 'cisco_mediasense' ? 'session' : 'basic';
  console.log(
    [
      `Legacy recorder simulator (${provider})`,
      `  base URL:      ${sim.baseUrl}`,
      `  api endpoint:  ${sim.endpoint}`,
      ...(sim.mediaBaseUrl !== sim.baseUrl ? [`  media base URL: ${sim.mediaBaseUrl}`] : []),
      `  username:      ${DEFAULT_SIM_USER.username}`,
      `  password:      ${DEFAULT_SIM_USER.password}`,
      `  recording:     ${id}${provider === 'avaya_aura' ? ' (ucid 00001002071523456789)' : ''}`,
      'source entry (allow_inline_secrets: true):',
      `  - { name: legacy-sim, type: legacy-http, provider: ${provider}, api_endpoint: "${sim.endpoint}", auth_type: ${auth}, username: ${DEFAULT_SIM_USER.username}, password: ${DEFAULT_SIM_USER.password} }`,
      'Ctrl-C stops it.',
    ].join('\n'),
  );
  await untilSignal();
  await sim.close();
  return 0;
}
