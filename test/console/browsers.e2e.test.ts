import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, it } from 'vitest';
import type { TestGateway } from '../support/gateway.js';
import { type ConsoleDriver, firefoxAvailable, launchChromium, launchFirefox } from './driver.js';
import { exportEvidence, playG729, searchByAnyId, signInWithApiKey, signOutClean } from './flow.js';
import { ROOT, chromiumAvailable, ensureConsoleBuilt, startConsoleGateway } from './support.js';

/**
 * The same console steps (flow.ts) in Chromium (playwright-core) and Firefox ESR (puppeteer-core,
 * WebDriver BiDi), each against its own gateway. `CONSOLE_SCREENSHOTS=docs/console` also writes
 * the Firefox screenshot of the evidence page (08-evidence-firefox.png).
 */
const BROWSERS = [
  { name: 'chromium', run: chromiumAvailable(), launch: launchChromium },
  { name: 'firefox', run: firefoxAvailable(), launch: launchFirefox },
] as const;

describe.each(BROWSERS)('console main flow in headless $name', ({ name, run, launch }) => {
  let gw: TestGateway;
  let d: ConsoleDriver;
  let work: string;

  beforeAll(async () => {
    if (!run) return;
    await ensureConsoleBuilt();
    gw = await startConsoleGateway();
    work = mkdtempSync(join(tmpdir(), `custodian-${name}-`));
    d = await launch();
  }, 90_000);

  afterAll(async () => {
    await d?.close();
    await gw?.stop();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it.skipIf(!run)('signs in with an API key', () => signInWithApiKey(d, gw));
  it.skipIf(!run)('finds a recording by any id', () => searchByAnyId(d));
  it.skipIf(!run)('plays a G.729 recording (transcoded by the gateway) and reads the audio element duration', () => playG729(d, gw).then(() => undefined));
  it.skipIf(!run)('exports a verified evidence package as a job', () => {
    const shots = process.env.CONSOLE_SCREENSHOTS;
    return exportEvidence(d, gw, join(work, 'evidence'), shots && name === 'firefox' ? resolve(ROOT, shots, '08-evidence-firefox.png') : undefined);
  }, 90_000);
  it.skipIf(!run)('signs out, leaving nothing behind, without a CSP violation', () => signOutClean(d));
});
