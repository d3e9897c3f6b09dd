import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { CHROMIUM, CHROMIUM_ARGS } from './support.js';

export const FIREFOX = '/usr/bin/firefox-esr';

/** What a step looks for on the page: a form control by its visible label, a button, a link, a checkbox by accessible name, or CSS. */
export type Target = { label: string } | { button: string } | { link: string } | { checkbox: string } | { css: string };

/**
 * The few things the shared console steps (flow.ts) do with a browser, so that the same steps run
 * in Chromium (playwright-core, CDP) and in Debian's Firefox ESR (puppeteer-core over WebDriver
 * BiDi — playwright-core drives Firefox only with Playwright's patched build). Elements are found
 * by the same in-page query in both, then clicked and typed into with each library's real input
 * events (not synthetic DOM events).
 */
export interface ConsoleDriver {
  readonly browser: 'chromium' | 'firefox';
  goto(url: string): Promise<void>;
  url(): Promise<string>;
  evaluate<T, A>(fn: (arg: A) => T, arg: A): Promise<T>;
  /** Polls fn(arg) in the page until it returns something truthy; returns that. */
  waitFor<T, A>(fn: (arg: A) => T, arg: A, timeoutMs?: number): Promise<T>;
  click(t: Target): Promise<void>;
  fill(t: Target, value: string): Promise<void>;
  /** Clicks t and returns the file the browser saved (a real download, not a captured blob). */
  download(t: Target): Promise<{ name: string; data: Buffer }>;
  screenshot(path: string): Promise<void>;
  close(): Promise<void>;
}

/** Runs in the page: finds the element a Target names (visible ones only). Self-contained: it is serialised. */
export function findTarget(t: Target): HTMLElement | null {
  const text = (e: Element | null) => (e?.textContent ?? '').replace(/\s+/g, ' ').trim();
  const visible = (e: Element | null): e is HTMLElement => !!e && (e as HTMLElement).offsetParent !== null;
  const all = (sel: string) => Array.from(document.querySelectorAll(sel)).filter(visible);
  if ('css' in t) return all(t.css)[0] ?? null;
  if ('button' in t) return all('button').find((b) => text(b) === t.button || b.getAttribute('aria-label') === t.button) ?? null;
  if ('link' in t) return all('a').find((a) => text(a) === t.link) ?? null;
  const name = 'label' in t ? t.label : t.checkbox;
  const byAria = all('input, select, textarea').find((e) => e.getAttribute('aria-label') === name);
  if (byAria) return byAria;
  const label = Array.from(document.querySelectorAll('label')).find((l) => text(l) === name);
  const ctl = label ? (label.htmlFor ? document.getElementById(label.htmlFor) : label.querySelector('input, select, textarea')) : null;
  return visible(ctl) ? ctl : null;
}

const describeTarget = (t: Target) => JSON.stringify(t);

function readIfThere(f: string): Buffer | null {
  try {
    return readFileSync(f);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
}

/** A file that appears (complete) in dir, for browsers that save downloads themselves. */
async function newFile(dir: string, before: Set<string>, timeoutMs: number): Promise<{ name: string; data: Buffer }> {
  const until = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < until) {
    const done = readdirSync(dir).filter((f) => !before.has(f) && !/\.part$|\.crdownload$/.test(f));
    if (done.length) {
      const f = join(dir, done[0]!);
      // Firefox may write under a temporary name and rename it: a file gone between the listing
      // and the stat or the read was one of those (CI saw ENOENT here) — look again.
      const size = statSync(f, { throwIfNoEntry: false })?.size;
      // Written in one go by the browser, but wait for the same name at a stable size anyway.
      const seen = size === undefined ? '' : `${done[0]}:${size}`;
      if (size !== undefined && size > 0 && seen === last) {
        const data = readIfThere(f);
        if (data?.length === size) return { name: done[0]!, data };
      }
      last = seen;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`no download in ${dir} after ${timeoutMs} ms`);
}

/** The in-page observers both drivers install: CSP violations. */
function initScript() {
  document.addEventListener('securitypolicyviolation', (e) => {
    ((window as unknown as { __csp: string[] }).__csp ??= []).push(`${e.violatedDirective} ${e.blockedURI}`);
  });
}

export async function launchChromium(): Promise<ConsoleDriver> {
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true });
  const context = await browser.newContext({ viewport: { width: 1360, height: 900 }, acceptDownloads: true, locale: 'en-GB', timezoneId: 'UTC' });
  await context.addInitScript(initScript);
  const page = await context.newPage();
  page.setDefaultTimeout(15_000);
  const element = async (t: Target) => {
    await page.waitForFunction(findTarget, t, { timeout: 15_000 }).catch(() => {
      throw new Error(`chromium: not found ${describeTarget(t)}`);
    });
    return (await page.evaluateHandle(findTarget, t)).asElement()!;
  };
  return {
    browser: 'chromium',
    goto: async (url) => void (await page.goto(url)),
    url: async () => page.url(),
    evaluate: (fn, arg) => page.evaluate(fn as never, arg) as never,
    waitFor: async (fn, arg, timeoutMs = 15_000) => (await (await page.waitForFunction(fn as never, arg, { timeout: timeoutMs })).jsonValue()) as never,
    click: async (t) => (await element(t)).click(),
    fill: async (t, v) => (await element(t)).fill(v),
    download: async (t) => {
      const el = await element(t);
      const [d] = await Promise.all([page.waitForEvent('download'), el.click()]);
      return { name: d.suggestedFilename(), data: readFileSync((await d.path())!) };
    },
    screenshot: async (path) => void (await page.screenshot({ path, fullPage: true })),
    close: () => browser.close(),
  };
}

/** Whether Firefox can be driven here: Debian's firefox-esr (WebDriver BiDi). Skipped loudly when absent, except under CI=true. */
export function firefoxAvailable(): boolean {
  if (existsSync(FIREFOX)) return true;
  if (process.env.CI === 'true') throw new Error(`${FIREFOX} is required under CI=true (apt-get install firefox-esr; .ci/run does it)`);
  // eslint-disable-next-line no-console
  console.warn(`\n!!! ${FIREFOX} not found: the console's Firefox tests are SKIPPED (apt-get install -y firefox-esr) !!!\n`);
  return false;
}

export async function launchFirefox(): Promise<ConsoleDriver> {
  const { default: puppeteer } = await import('puppeteer-core');
  const downloads = mkdtempSync(join(tmpdir(), 'custodian-ff-dl-'));
  const browser = await puppeteer.launch({
    browser: 'firefox',
    executablePath: FIREFOX,
    headless: true,
    args: ['--width=1360', '--height=900'],
    extraPrefsFirefox: {
      // Save downloads straight into our folder, without asking.
      'browser.download.folderList': 2,
      'browser.download.dir': downloads,
      'browser.download.useDownloadDir': true,
      'browser.download.always_ask_before_handling_new_types': false,
      'browser.download.start_downloads_in_tmp_dir': false,
      'browser.helperApps.neverAsk.saveToDisk': 'application/zip,application/octet-stream,audio/wav',
      'media.autoplay.default': 0,
      // No sound card on a CI machine: without this, playback stops at once with OnMediaSinkAudioError.
      'media.cubeb.force_mock_context': true,
      'intl.locale.requested': 'en-GB',
    },
  });
  const page = await browser.newPage();
  await page.setViewport({ width: 1360, height: 900 });
  await page.evaluateOnNewDocument(initScript);
  page.setDefaultTimeout(15_000);
  const element = async (t: Target) => {
    await page.waitForFunction(findTarget, { timeout: 15_000 }, t).catch(() => {
      throw new Error(`firefox: not found ${describeTarget(t)}`);
    });
    const el = (await page.evaluateHandle(findTarget, t)).asElement();
    if (!el) throw new Error(`firefox: not an element ${describeTarget(t)}`);
    return el as import('puppeteer-core').ElementHandle<HTMLElement>;
  };
  return {
    browser: 'firefox',
    goto: async (url) => void (await page.goto(url)),
    url: async () => page.url(),
    evaluate: (fn, arg) => page.evaluate(fn as never, arg) as never,
    waitFor: async <T, A>(fn: (arg: A) => T, arg: A, timeoutMs = 15_000) => {
      const handle = await page.waitForFunction(fn as (arg: unknown) => unknown, { timeout: timeoutMs }, arg);
      return (await handle.jsonValue()) as T;
    },
    click: async (t) => (await element(t)).click(),
    fill: async (t, v) => {
      const el = await element(t);
      await el.evaluate((e) => {
        (e as HTMLInputElement).value = '';
      });
      await el.type(v);
    },
    download: async (t) => {
      const before = new Set(readdirSync(downloads));
      await (await element(t)).click();
      return newFile(downloads, before, 20_000);
    },
    screenshot: async (path) => void (await page.screenshot({ path: path as `${string}.png`, fullPage: true })),
    close: async () => {
      await browser.close();
      rmSync(downloads, { recursive: true, force: true });
    },
  };
}
