import { createHash } from 'node:crypto';
import { expect } from 'vitest';
import type { TestGateway } from '../support/gateway.js';
import type { ConsoleDriver } from './driver.js';
import { CONSOLE_KEY, unzip, verifyPackage } from './support.js';

/**
 * The console's main flow as steps any ConsoleDriver runs (Chromium and Firefox share them):
 * sign in with an API key, search, play a G.729 recording through the transcoding path, export an
 * evidence package. Each step checks the page and the gateway's audit trail.
 */
export const FLOW_PURPOSE = 'Case 2024-117: billing dispute review';

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const headingIs = (want: string) => document.querySelector('h1')?.textContent === want;

export async function signInWithApiKey(d: ConsoleDriver, gw: TestGateway): Promise<void> {
  await d.goto(`${gw.url}/console/`);
  await d.waitFor(headingIs, 'Sign in to the auditor console');
  await d.fill({ label: 'API key' }, CONSOLE_KEY);
  await d.fill({ label: 'Purpose of access' }, FLOW_PURPOSE);
  await d.click({ button: 'Sign in' });
  await d.waitFor(headingIs, 'Find recordings');
  expect(await d.url()).toBe(`${gw.url}/console/#/find`);
  const st = await d.evaluate(() => ({ key: sessionStorage.getItem('custodian.key'), local: localStorage.length }), null);
  expect(st).toEqual({ key: CONSOLE_KEY, local: 0 });
}

export async function searchByAnyId(d: ConsoleDriver): Promise<void> {
  await d.fill({ label: 'Any id' }, 'CUST-8923');
  await d.click({ button: 'Search' });
  const row = await d.waitFor(() => {
    const rows = document.querySelectorAll('table.data tbody tr');
    return rows.length === 1 ? rows[0]!.textContent : null;
  }, null);
  for (const s of ['Genesys Cloud', 'Legacy archive', 'g729', 'ACTIVE']) expect(row).toContain(s);
}

/** Plays the G.729 recording (ffmpeg transcodes it to PCM WAV); the audio element's duration is the file's. */
export async function playG729(d: ConsoleDriver, gw: TestGateway): Promise<number> {
  await d.click({ link: '2023-10-27T14:30:00Z-8923' });
  await d.waitFor(headingIs, '2023-10-27T14:30:00Z-8923');
  await d.click({ button: 'Play' });
  const duration = await d.waitFor(() => {
    const a = document.querySelector('audio');
    return a && Number.isFinite(a.duration) && a.duration > 0 ? a.duration : 0;
  }, null);
  expect(Math.abs(duration - 8.44)).toBeLessThan(0.1);
  await d.waitFor(() => (document.querySelector('audio')?.currentTime ?? 0) > 0.3, null);
  await d.waitFor(() => document.querySelector('.player-info')?.textContent?.includes('Stored as g729'), null);
  await d.evaluate(() => document.querySelector('audio')?.pause(), null);
  const events = (await gw.deps.auditRepo.query({ tenantId: 'acme', limit: 1000 })).items;
  const plays = events.filter((e) => e.action === 'recording.media' && e.principalId === 'carol');
  expect(plays.length).toBeGreaterThan(0);
  for (const e of plays) expect(e.detail).toMatchObject({ purpose: FLOW_PURPOSE, via: 'media_ticket' });
  // The browser seeks and probes with Range requests, each through the ticket.
  expect(plays.some((e) => typeof (e.detail as { range?: string }).range === 'string')).toBe(true);
  return duration;
}

/** Four recordings: a job with progress, downloaded by the browser, verified like a recipient would. */
export async function exportEvidence(d: ConsoleDriver, gw: TestGateway, workDir: string, screenshot?: string): Promise<void> {
  await d.click({ checkbox: 'Include in the evidence package' });
  await d.click({ css: 'nav a[href="#/evidence"]' });
  await d.waitFor(headingIs, 'Evidence package');
  for (const ref of ['v_2001', 'v_2002', 'ms_1001']) {
    const before = await d.evaluate(() => document.querySelectorAll('table.data tbody tr').length, null);
    await d.fill({ label: 'Add a recording by any id' }, ref);
    await d.click({ button: 'Add' });
    await d.waitFor((n) => document.querySelectorAll('table.data tbody tr').length === n + 1, before);
  }
  await d.waitFor(() => /^[0-9a-f]{64}$/.test(document.querySelector('#key-id')?.textContent ?? ''), null);
  await d.click({ button: 'Build evidence package' });
  await d.waitFor(() => !!document.querySelector('#evidence-progress') || !!document.querySelector('#download-evidence'), null, 30_000);
  await d.waitFor(() => !!document.querySelector('#download-evidence'), null, 60_000);
  const file = await d.download({ css: '#download-evidence' });
  expect(file.name).toMatch(/^evidence-[0-9a-f-]{36}\.zip$/);
  await d.waitFor((sha) => document.querySelector('#zip-sha')?.textContent === sha, sha256(file.data));
  if (screenshot) await d.screenshot(screenshot);
  // The recipient's trusted fingerprint comes from the gateway, not from the package.
  const published = ((await (await fetch(`${gw.url}/api/v1/evidence/public-key`, { headers: { authorization: `Bearer ${CONSOLE_KEY}` } })).json()) as { public_key_sha256: string }).public_key_sha256;
  const { manifest } = verifyPackage(await unzip(file.data), workDir, published);
  expect(manifest).toMatchObject({ purpose: FLOW_PURPOSE, complete: true, created_by: { principal: 'carol', tenant: 'acme' }, audit_chain: { ok: true } });
  expect(manifest.recordings).toHaveLength(4);
  const g729 = manifest.recordings.find((r: { call_id: string }) => r.call_id === '2023-10-27T14:30:00Z-8923');
  expect(g729.playable).toMatchObject({ transcoded_from: 'g729' });
  const exports = (await gw.deps.auditRepo.query({ tenantId: 'acme', limit: 1000 })).items.filter((e) => e.action === 'recording.export' && (e.detail as { package_id?: string })?.package_id === manifest.package_id);
  expect(exports).toHaveLength(4);
  for (const e of exports) expect(e.detail).toMatchObject({ purpose: FLOW_PURPOSE, mode: 'job' });
}

export async function signOutClean(d: ConsoleDriver): Promise<void> {
  await d.click({ button: 'Sign out' });
  await d.waitFor(headingIs, 'Sign in to the auditor console');
  expect(await d.evaluate(() => ({ n: sessionStorage.length, l: localStorage.length, csp: (window as unknown as { __csp?: string[] }).__csp ?? [] }), null)).toEqual({ n: 0, l: 0, csp: [] });
}
