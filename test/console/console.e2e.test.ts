import { createHash, generateKeyPairSync, sign } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { type Browser, type Page, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestGateway } from '../support/gateway.js';
import { AUDIO, bearer } from '../support/gateway.js';
import { raw } from '../support/http.js';
import { CHROMIUM, CHROMIUM_ARGS, CONSOLE_KEY, ROOT, chromiumAvailable, ensureConsoleBuilt, followReadme, readmeToolsAvailable, startConsoleGateway, unzip, verifyPackage } from './support.js';

const RUN = chromiumAvailable();
const PURPOSE = 'Case 2024-117: billing dispute review';
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/**
 * What a forger with the package can do with standard tools: swap a recording, generate a key of
 * their own, write its fingerprint wherever the package names one (README.txt, manifest.json), then
 * rebuild SHA256SUMS and its digest and sign that. Nothing inside the result betrays it.
 */
function resignWithAnotherKey(files: Map<string, Buffer>, oldFingerprint: string): Map<string, Buffer> {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const newFingerprint = sha256(publicKey.export({ type: 'spki', format: 'der' }));
  const out = new Map(files);
  out.set('public-key.pem', Buffer.from(publicKey.export({ type: 'spki', format: 'pem' }).toString()));
  const original = [...out.keys()].find((n) => /^recordings\/[^/]+\/original\./.test(n))!;
  const oldSha = sha256(out.get(original)!);
  out.set(original, readFileSync(join(AUDIO, 'call_mono_pcm16_8k.wav')));
  const newSha = sha256(out.get(original)!);
  for (const n of ['README.txt', 'manifest.json']) out.set(n, Buffer.from(out.get(n)!.toString().replaceAll(oldFingerprint, newFingerprint).replaceAll(oldSha, newSha)));
  const sums = out
    .get('SHA256SUMS')!
    .toString()
    .trim()
    .split('\n')
    .map((l) => l.slice(66))
    .map((n) => `${sha256(out.get(n)!)}  ${n}\n`)
    .join('');
  out.set('SHA256SUMS', Buffer.from(sums));
  out.set('SHA256SUMS.sha256', Buffer.from(`${sha256(Buffer.from(sums))}  SHA256SUMS\n`));
  out.set('SHA256SUMS.sha256.sig', sign(null, out.get('SHA256SUMS.sha256')!, privateKey));
  return out;
}

/**
 * The console end to end: the real gateway with its filesystem archive and ffmpeg, the built
 * console, Debian's Chromium driven by playwright-core. `npm run console:screenshots` writes the
 * screenshots of each page into docs/console/ (otherwise they go to a temporary directory).
 */
describe.skipIf(!RUN)('auditor console in headless Chromium', () => {
  let gw: TestGateway;
  let browser: Browser;
  let page: Page;
  let work: string;
  let shots: string;
  let evidenceZip: Buffer | undefined;
  const cspViolations: string[] = [];
  const consoleErrors: string[] = [];
  const mediaResponses: { status: number; range: string | undefined }[] = [];
  const shot = (name: string) => page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
  const acmeEvents = async () => (await gw.deps.auditRepo.query({ tenantId: 'acme', limit: 1000 })).items;
  const audio = () => page.locator('audio');

  beforeAll(async () => {
    await ensureConsoleBuilt();
    gw = await startConsoleGateway();
    work = mkdtempSync(join(tmpdir(), 'custodian-console-e2e-'));
    shots = process.env.CONSOLE_SCREENSHOTS ? resolve(ROOT, process.env.CONSOLE_SCREENSHOTS) : join(work, 'shots');
    mkdirSync(shots, { recursive: true });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true });
    const context = await browser.newContext({ viewport: { width: 1360, height: 900 }, acceptDownloads: true, locale: 'en-GB', timezoneId: 'UTC' });
    await context.addInitScript(() => {
      document.addEventListener('securitypolicyviolation', (e) => {
        ((window as unknown as { __csp: string[] }).__csp ??= []).push(`${e.violatedDirective} ${e.blockedURI}`);
      });
    });
    page = await context.newPage();
    page.setDefaultTimeout(15_000);
    page.on('console', (m) => {
      if (m.type() === 'error') consoleErrors.push(m.text());
    });
    page.on('response', async (r) => {
      if (r.url().includes('/api/v1/media-tickets/play?')) mediaResponses.push({ status: r.status(), range: (await r.request().allHeaders()).range });
    });
  }, 90_000);

  afterAll(async () => {
    await browser?.close();
    await gw?.stop();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('serves the console with strict security headers and signs in with an API key, by keyboard', async () => {
    const res = await page.goto(`${gw.url}/console/`);
    expect(res?.status()).toBe(200);
    const h = res!.headers();
    expect(h['content-security-policy']).toContain("script-src 'self'");
    expect(h['content-security-policy']).not.toContain('unsafe-inline');
    expect(h['x-frame-options']).toBe('DENY');
    await expect.poll(() => page.locator('h1').textContent()).toBe('Sign in to the auditor console');
    await shot('01-sign-in');

    // No purpose of access: refused by the form, the field marked.
    await page.getByLabel('API key').fill('cst_acme-console_' + 'x'.repeat(32));
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect.poll(() => page.getByRole('alert').textContent()).toContain('Give a purpose of access');
    expect(await page.getByLabel('Purpose of access').getAttribute('aria-invalid')).toBe('true');

    // A wrong key is refused by the gateway, not by the form.
    await page.getByLabel('API key').fill('cst_acme-console_' + 'x'.repeat(32));
    await page.getByLabel('Purpose of access').fill(PURPOSE);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect.poll(() => page.getByRole('alert').textContent()).toContain('refused');

    // Keyboard only: focus the key field, type, Tab to the purpose, Enter submits.
    await page.getByLabel('API key').focus();
    await page.keyboard.press('Control+A');
    await page.keyboard.type(CONSOLE_KEY);
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('signin-purpose');
    await page.keyboard.press('Enter');
    await page.waitForURL(/#\/find$/);
    await expect.poll(() => page.locator('h1').textContent()).toBe('Find recordings');
    const storage = await page.evaluate(() => ({ session: sessionStorage.getItem('custodian.key'), local: localStorage.length, href: location.href }));
    expect(storage).toEqual({ session: CONSOLE_KEY, local: 0, href: expect.not.stringContaining(CONSOLE_KEY) });
    expect((await acmeEvents()).some((e) => e.action === 'auth.whoami' && e.principalId === 'carol')).toBe(true);
  });

  it('finds recordings by any id and by catalog filters, showing origin, codec, retention, legal hold and copies', async () => {
    await page.getByLabel('Source system').fill('verint');
    await page.getByRole('button', { name: 'Search' }).click();
    await expect.poll(() => page.locator('table.data tbody tr').count()).toBe(5);
    const held = page.locator('tr', { hasText: '2024-04-02T09:30:00Z-2003' });
    await expect.poll(() => held.textContent()).toMatch(/LEGAL HOLD.*Legal hold/);
    expect(await held.textContent()).toContain('pcm_s16le');

    await page.getByRole('button', { name: 'Clear' }).click();
    await page.waitForURL(/#\/find$/);
    await page.getByLabel('Any id').fill('CUST-8923');
    await page.getByRole('button', { name: 'Search' }).click();
    await expect.poll(() => page.locator('table.data tbody tr').count()).toBe(1);
    const row = await page.locator('table.data tbody tr').textContent();
    expect(row).toContain('Genesys Cloud');
    expect(row).toContain('Legacy archive');
    expect(row).toContain('g729');
    expect(row).toContain('ACTIVE');

    // Everything, for the screenshot; and a selection for the evidence package later.
    await page.getByRole('button', { name: 'Clear' }).click();
    await page.waitForURL(/#\/find$/);
    await page.getByRole('button', { name: 'Search' }).click();
    await expect.poll(() => page.locator('table.data tbody tr').count()).toBe(8);
    for (const id of ['2024-04-01T10:00:00Z-2001', '2024-04-01T11:00:00Z-2002', '2024-04-02T09:30:00Z-2003']) {
      await page.getByRole('checkbox', { name: `Select ${id} for evidence` }).check();
    }
    await expect.poll(() => page.locator('#sel-count').textContent()).toBe('3');
    await shot('02-find');
    // Filters go to the catalog search; "any id" resolves like the API's refs (a metadata read).
    const evs = await acmeEvents();
    expect(evs.filter((e) => e.action === 'catalog.search' && e.principalId === 'carol').length).toBeGreaterThanOrEqual(2);
    expect(evs.some((e) => e.action === 'recording.metadata' && e.ref === 'CUST-8923')).toBe(true);
  });

  it('plays a G.729 recording through the transcoding path, with Range requests to the gateway', async () => {
    await page.getByRole('link', { name: '2023-10-27T14:30:00Z-8923' }).click();
    await expect.poll(() => page.locator('h1').textContent()).toBe('2023-10-27T14:30:00Z-8923');
    await page.getByRole('button', { name: 'Play' }).click();
    await page.waitForFunction(() => {
      const a = document.querySelector('audio');
      return !!a && Number.isFinite(a.duration) && a.duration > 0;
    });
    const duration = await audio().evaluate((a: HTMLAudioElement) => a.duration);
    expect(Math.abs(duration - 8.44)).toBeLessThan(0.1);
    await page.waitForFunction(() => (document.querySelector('audio')?.currentTime ?? 0) > 0.3);
    await expect.poll(() => page.locator('canvas.lane').count()).toBe(1);
    await expect.poll(() => page.locator('.player-info').textContent()).toContain('Stored as g729');
    // Seek far ahead by the waveform's keyboard control (End), then back.
    await page.locator('.wave').focus();
    await page.keyboard.press('End');
    await page.keyboard.press('ArrowLeft');
    await expect.poll(() => audio().evaluate((a: HTMLAudioElement) => a.currentTime)).toBeGreaterThan(2);
    expect(mediaResponses.length).toBeGreaterThan(0);
    expect(mediaResponses.some((r) => r.status === 206 && r.range?.startsWith('bytes='))).toBe(true);
    await audio().evaluate((a: HTMLAudioElement) => {
      a.pause();
      a.currentTime = 3.1;
    });
    await shot('03-recording-g729');

    const rec = (await acmeEvents()).find((e) => e.action === 'media_ticket.issue')!;
    const plays = (await acmeEvents()).filter((e) => e.action === 'recording.media' && e.recordingPk === rec.recordingPk);
    expect(plays.length).toBeGreaterThan(0);
    for (const e of plays) expect(e).toMatchObject({ principalId: 'carol', outcome: 'allowed', detail: expect.objectContaining({ purpose: PURPOSE, via: 'media_ticket' }) });
    expect(plays.some((e) => e.copyId && e.origin === 'LEGACY_ARCHIVE')).toBe(true);
  });

  it('downloads the original bytes: a download is a different audited event (recording.retrieve) with the purpose', async () => {
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Original bytes' }).click()]);
    const file = readFileSync((await download.path())!);
    expect(sha256(file)).toBe(sha256(readFileSync(join(AUDIO, 'call_mono_g729_8k.wav'))));
    expect(download.suggestedFilename()).toBe('2023-10-27T14_30_00Z-8923.wav');
    await expect.poll(() => page.locator('.notice-ok').first().textContent()).toContain('codec g729');
    const retrieved = (await acmeEvents()).filter((e) => e.action === 'recording.retrieve' && e.principalId === 'carol');
    expect(retrieved).toHaveLength(1);
    expect(retrieved[0]).toMatchObject({ outcome: 'allowed', callerId: 'carol', detail: expect.objectContaining({ purpose: PURPOSE, format: 'original' }) });
    // Played ≠ downloaded: the trail tells them apart.
    expect((await acmeEvents()).some((e) => e.action === 'recording.media' && e.recordingPk === retrieved[0]!.recordingPk)).toBe(true);
    await page.getByLabel('Include in the evidence package').check();
    await expect.poll(() => page.locator('#sel-count').textContent()).toBe('4');
  });

  it('shows both sides of a stereo recording', async () => {
    await page.goto(`${gw.url}/console/#/recording/v_2003`);
    await expect.poll(() => page.locator('h1').textContent()).toBe('2024-04-02T09:30:00Z-2003');
    expect(await page.locator('.badge', { hasText: /^LEGAL HOLD$/ }).count()).toBe(1);
    await page.getByRole('button', { name: 'Play' }).click();
    await expect.poll(() => page.locator('canvas.lane').count()).toBe(2);
    expect(await page.locator('canvas.lane').evaluateAll((cs) => cs.map((c) => c.getAttribute('aria-label')))).toEqual(['Waveform, Left channel (side 1)', 'Waveform, Right channel (side 2)']);
    await expect.poll(() => page.getByLabel('Listen to').isVisible()).toBe(true);
    await page.getByLabel('Listen to').selectOption('left');
    await page.waitForFunction(() => (document.querySelector('audio')?.currentTime ?? 0) > 1);
    await audio().evaluate((a: HTMLAudioElement) => a.pause());
    await shot('04-recording-stereo');
  });

  it('exports an evidence package of four recordings as a job with progress, and its manifest verifies', async () => {
    await page.getByRole('link', { name: /^Evidence/ }).click();
    await expect.poll(() => page.locator('h1').textContent()).toBe('Evidence package');
    await expect.poll(() => page.locator('table.data tbody tr').count()).toBe(4);
    await expect.poll(() => page.locator('#key-id').textContent()).toMatch(/^[0-9a-f]{64}$/);
    const keyId = await page.locator('#key-id').textContent();
    await page.getByRole('button', { name: 'Build evidence package' }).click();
    await page.locator('#evidence-progress').waitFor();
    const dl = page.locator('#download-evidence');
    await dl.waitFor();
    const [download] = await Promise.all([page.waitForEvent('download'), dl.click()]);
    const zip = readFileSync((await download.path())!);
    expect(download.suggestedFilename()).toMatch(/^evidence-[0-9a-f-]{36}\.zip$/);
    expect(await page.locator('#zip-sha').textContent()).toBe(sha256(zip));
    await shot('05-evidence');

    evidenceZip = zip;
    // The key is checked against the fingerprint the gateway publishes, never the one written in the package.
    const published = JSON.parse((await raw(`${gw.url}/api/v1/evidence/public-key`, { headers: bearer(CONSOLE_KEY) })).body.toString()).public_key_sha256;
    const { manifest, fingerprint } = verifyPackage(await unzip(zip), join(work, 'evidence'), published);
    expect(fingerprint).toBe(keyId);
    expect(manifest).toMatchObject({ purpose: PURPOSE, complete: true, created_by: { principal: 'carol', tenant: 'acme' }, audit_chain: { ok: true } });
    const byCall = Object.fromEntries(manifest.recordings.map((r: any) => [r.call_id, r]));
    expect(Object.keys(byCall).sort()).toEqual(['2023-10-27T14:30:00Z-8923', '2024-04-01T10:00:00Z-2001', '2024-04-01T11:00:00Z-2002', '2024-04-02T09:30:00Z-2003']);
    expect(byCall['2023-10-27T14:30:00Z-8923'].playable).toMatchObject({ transcoded_from: 'g729' });
    expect(byCall['2024-04-01T11:00:00Z-2002'].playable).toMatchObject({ transcoded_from: 'gsm_ms' });
    expect(byCall['2024-04-02T09:30:00Z-2003']).toMatchObject({ legal_hold: true, retention_status: 'LEGAL_HOLD', playable: { same_as: 'original' } });
    const exports = (await acmeEvents()).filter((e) => e.action === 'recording.export' && (e.detail as any)?.package_id === manifest.package_id);
    expect(exports).toHaveLength(4);
    for (const e of exports) expect(e.detail).toMatchObject({ purpose: PURPOSE, mode: 'job' });
  });

  it("a recipient following the package's README.txt rejects a package with an added file, and one re-signed with another key", async () => {
    expect(evidenceZip, 'the evidence test above downloads the package').toBeDefined();
    const published = JSON.parse((await raw(`${gw.url}/api/v1/evidence/public-key`, { headers: bearer(CONSOLE_KEY) })).body.toString()).public_key_sha256 as string;
    const files = await unzip(evidenceZip!);
    const readme = files.get('README.txt')!.toString();
    // The fingerprint the package carries is labelled as its own claim, never as the value to compare with.
    expect(readme).toContain('GET /api/v1/evidence/public-key');
    expect(readme).toMatch(/proves nothing by itself/);
    expect(readme).not.toMatch(/must print [0-9a-f]{64}/);
    const tools = readmeToolsAvailable();
    expect(tools || process.env.CI !== 'true', 'bash, openssl and coreutils are needed under CI=true').toBe(true);

    // An added file (a fabricated transcript, a whole fabricated recording): sha256sum -c alone passes them.
    const id = (JSON.parse(files.get('manifest.json')!.toString()).recordings[0] as { id: string }).id;
    const added = new Map(files);
    added.set(`recordings/${id}/transcript.txt`, Buffer.from('Agent: your refund is approved.\n'));
    added.set('recordings/fabricated/original.wav', readFileSync(join(AUDIO, 'call_mono_pcm16_8k.wav')));
    expect(() => verifyPackage(added, join(work, 'added'), published)).toThrow(/transcript\.txt: not in SHA256SUMS/);
    if (tools) {
      // The README's own steps catch it: every sha256sum line says OK, the file-list step does not.
      expect(() => followReadme(added, join(work, 'added-readme'), published)).toThrow(/README step failed \(exit 1\): find \. -type f[^]*< recordings\/[^\n]*transcript\.txt/);
    }

    // Re-signed with another key, its fingerprint written into README.txt and manifest.json: perfect against itself...
    const forged = resignWithAnotherKey(files, published);
    const self = verifyPackage(forged, join(work, 'forged-self'));
    expect(self.fingerprint).not.toBe(published);
    expect(forged.get('README.txt')!.toString()).toContain(self.fingerprint);
    // ...and refused against the fingerprint obtained from the gateway.
    expect(() => verifyPackage(forged, join(work, 'forged'), published)).toThrow(/not the trusted key/);
    if (tools) expect(() => followReadme(forged, join(work, 'forged-readme'), published)).toThrow(/README step failed: the key's fingerprint is [0-9a-f]{64}, the trusted one/);
  });

  it('shows the audit trail of a recording and the chain verdict', async () => {
    await page.goto(`${gw.url}/console/#/recording/avaya_8923`);
    await page.getByRole('link', { name: 'Audit trail of this recording' }).click();
    await expect.poll(() => page.locator('#chain-verdict').textContent()).toContain('Chain intact');
    await expect.poll(() => page.locator('table.events tbody tr').count()).toBeGreaterThan(4);
    const text = await page.locator('table.events').textContent();
    for (const action of ['media_ticket.issue', 'recording.media', 'recording.retrieve', 'recording.export', 'recording.waveform']) expect(text).toContain(action);
    expect(text).toContain(PURPOSE);
    await shot('06-audit');

    await page.getByRole('textbox', { name: 'Recording', exact: true }).fill('');
    await page.getByRole('textbox', { name: 'Principal', exact: true }).fill('carol');
    await page.getByRole('combobox', { name: 'Action', exact: true }).fill('recording.retrieve');
    await page.getByRole('button', { name: 'Show events' }).click();
    await expect.poll(() => page.locator('table.events tbody tr').count()).toBe(1);
    expect((await acmeEvents()).filter((e) => e.action === 'audit.verify' && e.principalId === 'carol').length).toBeGreaterThanOrEqual(1);
  });

  it('signs out, leaving nothing behind; no CSP violation happened on the way', async () => {
    await page.getByRole('button', { name: 'Sign out' }).click();
    await expect.poll(() => page.locator('h1').textContent()).toBe('Sign in to the auditor console');
    expect(await page.evaluate(() => ({ n: sessionStorage.length, l: localStorage.length }))).toEqual({ n: 0, l: 0 });
    expect(await page.evaluate(() => (window as unknown as { __csp?: string[] }).__csp ?? [])).toEqual([]);
    expect(consoleErrors.filter((e) => /Content Security Policy|Trusted Type|TrustedHTML/i.test(e))).toEqual([]);
  });
});
