import { execFileSync } from 'node:child_process';
import { createHash, createPublicKey, verify as verifySignature } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import yauzl from 'yauzl';
import { AUDIO, type GatewayOptions, KEYS, type TestGateway, startTestGateway } from '../support/gateway.js';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const WEB = join(ROOT, 'web');
export const CHROMIUM = '/usr/bin/chromium';

/** A console user who may read, export and read the trail (the e2e flows need all three). */
export const CONSOLE_KEY = 'cst_acme-console_' + 'f'.repeat(32);

export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--autoplay-policy=no-user-gesture-required',
];

/**
 * Whether the browser tests can run. Without /usr/bin/chromium they are skipped with a loud
 * notice, except under CI=true where they must run (.ci/run installs Debian's chromium).
 */
export function chromiumAvailable(): boolean {
  if (existsSync(CHROMIUM)) return true;
  if (process.env.CI === 'true') throw new Error(`${CHROMIUM} is required under CI=true (apt-get install chromium; .ci/run does it)`);
  // eslint-disable-next-line no-console
  console.warn(`\n!!! ${CHROMIUM} not found: the console's browser tests are SKIPPED (apt-get install -y chromium) !!!\n`);
  return false;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    return e.isDirectory() ? sourceFiles(p) : [p];
  });
}

/** Newest modification time of everything the console is built from. */
function newestSource(): number {
  const files = [join(WEB, 'index.html'), join(WEB, 'vite.config.ts'), join(WEB, 'tsconfig.json'), ...sourceFiles(join(WEB, 'src')), ...sourceFiles(join(WEB, 'public'))];
  return Math.max(...files.map((f) => statSync(f).mtimeMs));
}

/**
 * Builds web/dist with Vite unless it was built after the last change to its sources (npm test
 * builds it in pretest; this covers running the file alone, and edits since), so the browser tests
 * always run the current console. A lock directory keeps concurrent runs from building over each other.
 */
export async function ensureConsoleBuilt(): Promise<void> {
  const index = join(WEB, 'dist', 'index.html');
  const lock = join(WEB, '.build-lock');
  const fresh = () => existsSync(index) && statSync(index).mtimeMs >= newestSource();
  if (fresh()) return;
  for (let i = 0; ; i++) {
    try {
      mkdirSync(lock);
      break;
    } catch {
      // A lock older than a minute belongs to a run that died.
      if (existsSync(lock) && Date.now() - statSync(lock).mtimeMs > 60_000) rmSync(lock, { recursive: true, force: true });
      if (i > 600) throw new Error('waited 60 s for another console build');
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  try {
    if (fresh()) return;
    const { build } = await import('vite');
    await build({ configFile: join(WEB, 'vite.config.ts'), logLevel: 'warn' });
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
export const fileSha256 = (name: string) => sha256(readFileSync(join(AUDIO, name)));

/** The catalog the console tests look at: both origins, several codecs, a stereo call, a legal hold, an expired one. */
export async function startConsoleGateway(config?: (doc: Record<string, any>) => void, opts: Pick<GatewayOptions, 'catalog' | 'deps'> = {}): Promise<TestGateway> {
  const gw = await startTestGateway({
    ...opts,
    config: (doc) => {
      doc.auth.api_keys.push({ id: 'acme-console', tenant: 'acme', principal: 'carol', scopes: ['recordings:read', 'recordings:export', 'audit:read'], key: CONSOLE_KEY });
      config?.(doc);
    },
  });
  await gw.seed([
    // The brief's example: a Genesys copy (no Genesys org configured here, so playback falls back) and the legacy G.729 copy.
    { call_id: '2023-10-27T14:30:00Z-8923', source_system: 'genesys_cloud', recording_id: 'rec_5f3a2b1c9d8e7f6g5h4i3j2k1l', conversation_id: 'conv-8923', storage_location: 'GENESYS_CLOUD_ARCHIVE', customer_ref: 'CUST-8923', started_at: '2023-10-27T14:30:00Z', retention_expiry: '2032-10-27T14:30:00Z', encryption_status: 'AES_256' },
    { call_id: '2023-10-27T14:30:00Z-8923', legacy_archive_id: 'avaya_8923', locator: 'call_mono_g729_8k.wav', codec: 'g729', customer_ref: 'CUST-8923', started_at: '2023-10-27T14:30:00Z', retention_expiry: '2032-10-27T14:30:00Z', storage_location: 'LEGACY_ARCHIVE' },
    { call_id: '2024-03-05T09:12:00Z-1001', legacy_archive_id: 'ms_1001', locator: 'call_mono_mulaw_8k.wav', source_system: 'verint', codec: 'mulaw', started_at: '2024-03-05T09:12:00Z', retention_expiry: '2031-03-05T00:00:00Z' },
    { call_id: '2024-04-01T10:00:00Z-2001', legacy_archive_id: 'v_2001', locator: 'call_mono_alaw_8k.wav', source_system: 'verint', codec: 'alaw', started_at: '2024-04-01T10:00:00Z', retention_expiry: '2031-04-01T00:00:00Z', sha256: fileSha256('call_mono_alaw_8k.wav') },
    { call_id: '2024-04-01T11:00:00Z-2002', legacy_archive_id: 'v_2002', locator: 'call_mono_gsm610_8k.wav', source_system: 'verint', codec: 'gsm_ms', started_at: '2024-04-01T11:00:00Z', retention_expiry: '2031-04-01T00:00:00Z' },
    { call_id: '2024-04-02T09:30:00Z-2003', legacy_archive_id: 'v_2003', locator: 'call_stereo_pcm16_8k.wav', source_system: 'verint', codec: 'pcm_s16le', started_at: '2024-04-02T09:30:00Z', retention_expiry: '2026-01-01T00:00:00Z', legal_hold: true },
    { call_id: '2024-05-10T15:45:00Z-3001', source_system: 'genesys_cloud', recording_id: 'rec_archived_3001', conversation_id: 'conv-3001', state: 'ARCHIVED', started_at: '2024-05-10T15:45:00Z', retention_expiry: '2031-05-10T00:00:00Z' },
    { call_id: '2019-01-15T12:00:00Z-1234', legacy_archive_id: 'expired_1', locator: 'call_mono_pcm16_8k.wav', started_at: '2019-01-15T12:00:00Z', retention_expiry: '2020-01-01T00:00:00Z' },
    { call_id: '2024-01-03T00:00:00Z-0003', legacy_archive_id: 'tampered_1', locator: 'call_mono_alaw_8k.wav', source_system: 'verint', sha256: 'f'.repeat(64), started_at: '2024-01-03T00:00:00Z' },
    { call_id: '2024-01-01T00:00:00Z-0001', legacy_archive_id: 'globex_secret', locator: 'call_mono_pcm16_8k.wav', tenant_id: 'globex' },
  ]);
  return gw;
}

export { KEYS };

/** Every entry of a ZIP, read with yauzl (an independent reader: not the library that wrote it). */
export function unzip(buf: Buffer): Promise<Map<string, Buffer>> {
  return new Promise((resolve, reject) => {
    yauzl.fromBuffer(buf, { lazyEntries: true, validateEntrySizes: true }, (err, zip) => {
      if (err || !zip) return reject(err ?? new Error('no zip'));
      const files = new Map<string, Buffer>();
      zip.on('error', reject);
      zip.on('end', () => resolve(files));
      zip.on('entry', (entry: yauzl.Entry) => {
        zip.openReadStream(entry, (e, s) => {
          if (e || !s) return reject(e ?? new Error('no stream'));
          const chunks: Buffer[] = [];
          s.on('data', (c: Buffer) => chunks.push(c));
          s.on('error', reject);
          s.on('end', () => {
            files.set(entry.fileName, Buffer.concat(chunks));
            zip.readEntry();
          });
        });
      });
      zip.readEntry();
    });
  });
}

export interface VerifiedPackage {
  files: Map<string, Buffer>;
  manifest: any;
  /** Hex SHA-256 of the enclosed public key (DER SPKI). */
  fingerprint: string;
}

/**
 * Checks an evidence package the way its README tells a recipient to: the signature over
 * SHA256SUMS.sha256 with the enclosed public key, that file against SHA256SUMS, then every file
 * against SHA256SUMS (every file but the three is listed), in Node; and, where the tools exist,
 * literally with openssl and sha256sum.
 */
export function verifyPackage(files: Map<string, Buffer>, workDir: string): VerifiedPackage {
  const signed = files.get('SHA256SUMS.sha256');
  const sig = files.get('SHA256SUMS.sha256.sig');
  const sums = files.get('SHA256SUMS');
  const pem = files.get('public-key.pem');
  if (!signed || !sig || !sums || !pem) throw new Error(`package lacks SHA256SUMS, its digest, signature or the key: ${[...files.keys()].join(', ')}`);
  const pub = createPublicKey(pem);
  if (!verifySignature(null, signed, pub, sig)) throw new Error('the signature over SHA256SUMS.sha256 does not verify');
  if (signed.toString() !== `${sha256(sums)}  SHA256SUMS\n`) throw new Error('SHA256SUMS.sha256 does not hold the digest of SHA256SUMS');
  const listed = new Map(
    sums
      .toString()
      .trim()
      .split('\n')
      .map((l) => {
        const m = /^([0-9a-f]{64}) {2}(.+)$/.exec(l);
        if (!m) throw new Error(`bad SHA256SUMS line: ${l}`);
        return [m[2]!, m[1]!] as const;
      }),
  );
  for (const [name, data] of files) {
    if (name.startsWith('SHA256SUMS')) continue;
    if (listed.get(name) !== sha256(data)) throw new Error(`${name}: not in SHA256SUMS or digest differs`);
  }
  for (const name of listed.keys()) if (!files.has(name)) throw new Error(`${name} is listed but missing`);
  const fingerprint = createHash('sha256').update(pub.export({ type: 'spki', format: 'der' })).digest('hex');

  // The README's commands, as written, when the tools are here.
  const have = (cmd: string) => {
    try {
      execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  };
  if (have('openssl') && have('sha256sum')) {
    mkdirSync(workDir, { recursive: true });
    for (const [name, data] of files) {
      mkdirSync(join(workDir, name, '..'), { recursive: true });
      writeFileSync(join(workDir, name), data);
    }
    const out = execFileSync('openssl', ['pkeyutl', '-verify', '-pubin', '-inkey', 'public-key.pem', '-rawin', '-in', 'SHA256SUMS.sha256', '-sigfile', 'SHA256SUMS.sha256.sig'], { cwd: workDir }).toString();
    if (!/Signature Verified Successfully/.test(out)) throw new Error(`openssl: ${out}`);
    execFileSync('sha256sum', ['-c', '--strict', 'SHA256SUMS.sha256'], { cwd: workDir, stdio: 'pipe' });
    execFileSync('sha256sum', ['-c', '--strict', 'SHA256SUMS'], { cwd: workDir, stdio: 'pipe' });
    const fp = execFileSync('sh', ['-c', 'openssl pkey -pubin -in public-key.pem -outform DER | sha256sum'], { cwd: workDir }).toString().split(' ')[0];
    if (fp !== fingerprint) throw new Error('openssl fingerprint differs');
  }
  return { files, manifest: JSON.parse(files.get('manifest.json')!.toString()), fingerprint };
}
