import { mkdtempSync, rmSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SIGNATURE_FILE, SIGNED_FILE } from '../../src/console/evidence/package.js';
import { bearer, type TestGateway } from '../support/gateway.js';
import { raw } from '../support/http.js';
import { CONSOLE_KEY, startConsoleGateway, unzip, verifyPackage } from './support.js';

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/**
 * manifest.json accounts for every entry of the package. `files` lists, with size and SHA-256,
 * every entry whose bytes exist before the manifest is written; the four written from the manifest's
 * own bytes (the manifest, SHA256SUMS which holds its digest, the digest of SHA256SUMS and the
 * signature over that) cannot carry a digest in it, and the manifest names them instead. Before,
 * nothing in the manifest said SHA256SUMS or manifest.json was part of the package at all, and
 * README.txt claimed "every file" was listed with its SHA-256.
 */
describe('evidence package manifest', () => {
  let gw: TestGateway;
  let work: string;
  beforeAll(async () => {
    gw = await startConsoleGateway();
    work = mkdtempSync(join(tmpdir(), 'custodian-evidence-manifest-'));
  });
  afterAll(async () => {
    await gw?.stop();
    rmSync(work, { recursive: true, force: true });
  });

  it.each([
    ['transcoded, same_as original, and a copy that cannot be read', ['avaya_8923', 'v_2001', 'v_2003', 'rec_archived_3001']],
  ])('lists every entry of the package: %s', async (_name, refs) => {
    const r = await raw(`${gw.url}/api/v1/evidence`, {
      method: 'POST',
      headers: { ...bearer(CONSOLE_KEY), 'content-type': 'application/json' },
      body: JSON.stringify({ refs, purpose: 'Case 90: manifest completeness', mode: 'stream' }),
    });
    expect(r.status, r.body.toString().slice(0, 500)).toBe(200);
    const entries = await unzip(r.body);
    // The package still checks out the way its README.txt says (the README's own commands are run).
    const { manifest } = verifyPackage(entries, join(work, 'pkg'));
    expect(manifest.problems.length, 'the fixture exercises a copy that cannot be read').toBeGreaterThan(0);

    const listed = new Map<string, { path: string; sha256: string; bytes: number }>(manifest.files.map((f: { path: string; sha256: string; bytes: number }) => [f.path, f]));
    expect(listed.size, 'no path listed twice').toBe(manifest.files.length);
    const derived = ['manifest.json', 'SHA256SUMS', SIGNED_FILE, SIGNATURE_FILE];
    // Each of the four is named, with why it carries no digest here.
    expect(manifest.files_not_listed?.map((f: { path: string }) => f.path)).toEqual(derived);
    for (const f of manifest.files_not_listed) expect(f.reason).toEqual(expect.any(String));

    // Every entry of the ZIP: listed with its exact size and SHA-256, or one of the four named.
    for (const [name, data] of entries) {
      if (derived.includes(name)) {
        expect(listed.has(name), `${name} cannot hold a digest of the manifest`).toBe(false);
        continue;
      }
      expect(listed.get(name), `${name} is in the package but not in manifest.files`).toEqual({ path: name, sha256: sha256(data), bytes: data.length });
    }
    // …and nothing listed or named that the package does not hold.
    for (const path of [...listed.keys(), ...derived]) expect(entries.has(path), `${path} is in the manifest but not in the package`).toBe(true);
    // The README's account of manifest.json is true: not "every file".
    expect(entries.get('README.txt')!.toString()).not.toMatch(/manifest\.json\s+who, when, why; every file with/);
  });
});
