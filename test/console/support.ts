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
 * Checks an evidence package the way its README tells a recipient to: the enclosed key against a
 * fingerprint obtained outside the package, the signature over SHA256SUMS.sha256 with that key,
 * that file against SHA256SUMS, every file against SHA256SUMS, and that the package holds exactly
 * the files SHA256SUMS lists (besides the three SHA256SUMS files) — in Node, then literally, running
 * the README's own commands (followReadme) where openssl and sha256sum are installed.
 *
 * `trustedFingerprint` is the hex SHA-256 of the gateway's key as published outside the package
 * (GET /api/v1/evidence/public-key, public_key_sha256). A caller that omits it must compare the
 * returned `fingerprint` with such a value itself: the fingerprint written in the package proves nothing.
 */
export function verifyPackage(files: Map<string, Buffer>, workDir: string, trustedFingerprint?: string): VerifiedPackage {
  const signed = files.get('SHA256SUMS.sha256');
  const sig = files.get('SHA256SUMS.sha256.sig');
  const sums = files.get('SHA256SUMS');
  const pem = files.get('public-key.pem');
  if (!signed || !sig || !sums || !pem) throw new Error(`package lacks SHA256SUMS, its digest, signature or the key: ${[...files.keys()].join(', ')}`);
  const pub = createPublicKey(pem);
  const fingerprint = createHash('sha256').update(pub.export({ type: 'spki', format: 'der' })).digest('hex');
  if (trustedFingerprint !== undefined && fingerprint !== trustedFingerprint) throw new Error(`public-key.pem is not the trusted key: fingerprint ${fingerprint}, trusted ${trustedFingerprint}`);
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
    if (SUMS_FILES.has(name)) continue;
    if (listed.get(name) !== sha256(data)) throw new Error(`${name}: not in SHA256SUMS or digest differs`);
  }
  for (const name of listed.keys()) if (!files.has(name)) throw new Error(`${name} is listed but missing`);

  if (readmeToolsAvailable()) followReadme(files, workDir, trustedFingerprint ?? fingerprint);
  return { files, manifest: JSON.parse(files.get('manifest.json')!.toString()), fingerprint };
}

const SUMS_FILES = new Set(['SHA256SUMS', 'SHA256SUMS.sha256', 'SHA256SUMS.sha256.sig']);

/** Whether the README's commands can run here (bash, openssl, sha256sum and the usual coreutils). */
export function readmeToolsAvailable(): boolean {
  try {
    execFileSync('bash', ['-c', 'command -v openssl && command -v sha256sum && command -v diff && command -v find'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/**
 * Follows README.txt literally: unpacks the files into `workDir` (which must not exist yet or be
 * empty), takes every command of its HOW TO VERIFY section (the lines indented by seven spaces) and
 * runs it there with bash, judging its output as the README says: the key's fingerprint must be
 * `trustedFingerprint` (obtained outside the package), the signature must verify, every sha256sum
 * line must say OK (exit 0), and the file-list comparison must print nothing. Every step the README
 * must have is required, and a command this function does not know fails it (the README changed:
 * teach this function what the new step means). Throws naming the failed step.
 */
export function followReadme(files: Map<string, Buffer>, workDir: string, trustedFingerprint: string): void {
  const readme = files.get('README.txt')?.toString();
  if (!readme) throw new Error('package has no README.txt');
  if (!readme.includes('HOW TO VERIFY')) throw new Error('README.txt has no HOW TO VERIFY section');
  const section = readme.slice(readme.indexOf('HOW TO VERIFY'));
  const commands = section
    .split('\n')
    .filter((l) => /^ {7}\S/.test(l))
    .map((l) => l.trim());
  // The README must never present the fingerprint it carries as the value to compare with.
  if (/must print [0-9a-f]{64}/.test(readme)) throw new Error('README.txt tells the recipient to compare the key with a fingerprint printed inside the package');
  mkdirSync(workDir, { recursive: true });
  if (readdirSync(workDir).length) throw new Error(`${workDir} is not empty`);
  for (const [name, data] of files) {
    mkdirSync(join(workDir, name, '..'), { recursive: true });
    writeFileSync(join(workDir, name), data);
  }
  const run = (cmd: string): string => {
    try {
      return execFileSync('bash', ['-c', cmd], { cwd: workDir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (e) {
      const err = e as { status?: number; stdout?: string; stderr?: string };
      throw new Error(`README step failed (exit ${err.status}): ${cmd}\n${err.stdout ?? ''}${err.stderr ?? ''}`);
    }
  };
  const seen = new Set<string>();
  for (const cmd of commands) {
    if (cmd.startsWith('openssl pkey -pubin -in public-key.pem -outform DER | sha256sum')) {
      const fp = run(cmd).split(' ')[0];
      if (fp !== trustedFingerprint) throw new Error(`README step failed: the key's fingerprint is ${fp}, the trusted one ${trustedFingerprint}: ${cmd}`);
      seen.add('key');
    } else if (cmd.startsWith('openssl pkeyutl -verify ')) {
      const out = run(cmd);
      if (!/Signature Verified Successfully/.test(out)) throw new Error(`README step failed: ${cmd}\n${out}`);
      seen.add('signature');
    } else if (cmd === 'sha256sum -c SHA256SUMS.sha256' || cmd === 'sha256sum -c SHA256SUMS') {
      const out = run(cmd);
      if (!out.trim().split('\n').every((l) => / OK$/.test(l))) throw new Error(`README step failed: ${cmd}\n${out}`);
      seen.add(cmd);
    } else if (cmd.startsWith('find . -type f ')) {
      const out = run(cmd);
      if (out !== '') throw new Error(`README step failed: ${cmd}\n${out}`);
      seen.add('files');
    } else {
      throw new Error(`README.txt has a command followReadme does not know: ${cmd}`);
    }
  }
  for (const step of ['key', 'signature', 'sha256sum -c SHA256SUMS.sha256', 'sha256sum -c SHA256SUMS', 'files']) {
    if (!seen.has(step)) throw new Error(`README.txt lacks the step "${step}"; its commands: ${commands.join(' | ')}`);
  }
}
