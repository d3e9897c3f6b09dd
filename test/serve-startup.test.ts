import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { type AddressInfo, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Served, serve, writeConfig } from './support/serve-process.js';

/**
 * `custodian serve` as one process (server.workers: 1, the default) that cannot start after its
 * catalog, sources and logger are up: it must exit non-zero with one line saying why — a supervisor
 * (systemd Restart=on-failure, a container runtime) must see a failed start, not a live process that
 * never listens. (test/cluster-refusals.test.ts has the same for a cluster.)
 */
describe('custodian serve (one process) that cannot start exits with the reason', { timeout: 120_000 }, () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'custodian-serve-bad-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** The exit code, or null when it is still running after `ms` (then it is killed). */
  async function exitOf(s: Served, ms = 90_000): Promise<number | null> {
    const code = await Promise.race([s.exited, new Promise<'running'>((r) => setTimeout(() => r('running'), ms))]);
    if (code === 'running') {
      s.child.kill('SIGKILL');
      await s.exited;
      return null;
    }
    return code;
  }
  /** What a person reads: the lines that are not the JSON log. */
  const plainLines = (s: Served) =>
    s
      .out()
      .split('\n')
      .filter((l) => l.trim() && !l.startsWith('{'));

  function configIn(name: string, doc: Record<string, unknown>): string {
    const sub = mkdtempSync(join(dir, `${name}-`));
    return writeConfig(sub, { data_dir: join(sub, 'data'), logging: { level: 'warn' }, ...doc });
  }

  it('port already taken → exit 1, one line naming EADDRINUSE', async () => {
    const taken = createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
    try {
      const port = (taken.address() as AddressInfo).port;
      const s = serve(configIn('inuse', { server: { port, shutdown_grace_ms: 500 } }));
      expect(await exitOf(s), s.out()).toBe(1);
      expect(plainLines(s), s.out()).toEqual([expect.stringMatching(/EADDRINUSE.*127\.0\.0\.1:\d+/)]);
    } finally {
      taken.close();
    }
  });

  it('a host that does not resolve → exit 1, one line', async () => {
    const s = serve(configIn('host', { server: { port: 0, host: 'no such host!', allow_insecure_http: true } }));
    expect(await exitOf(s), s.out()).toBe(1);
    expect(plainLines(s), s.out()).toEqual([expect.stringMatching(/no such host!/)]);
  });

  it('a TLS file that cannot be read → exit 78, one line naming the field', async () => {
    const s = serve(configIn('tls-missing', { server: { port: 0, tls: { cert_file: join(dir, 'nope.pem'), key_file: join(dir, 'nope.key') } } }));
    expect(await exitOf(s), s.out()).toBe(78);
    expect(plainLines(s), s.out()).toEqual([expect.stringMatching(/^server\.tls\.cert_file: .*nope\.pem.*ENOENT/)]);
  });

  it('a TLS file that is not a certificate and key → exit 78, one line naming the field', async () => {
    const junk = join(dir, 'junk.pem');
    writeFileSync(junk, 'not a certificate\n');
    const s = serve(configIn('tls-junk', { server: { port: 0, tls: { cert_file: junk, key_file: junk } } }));
    expect(await exitOf(s), s.out()).toBe(78);
    expect(plainLines(s), s.out()).toEqual([expect.stringMatching(/^server\.tls: /)]);
  });

  it('server.trust_proxy that is not an address → exit 78 naming the field, before anything starts', async () => {
    const s = serve(configIn('trust', { server: { port: 0, trust_proxy: 'not-an-ip' } }));
    expect(await exitOf(s), s.out()).toBe(78);
    expect(s.out()).toMatch(/server\.trust_proxy: invalid IP address: not-an-ip/);
    expect(s.out()).not.toMatch(/\n\s+at /);
  });
});
