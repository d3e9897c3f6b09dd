import { type Browser, type BrowserContext, type ElementHandle, type Page, chromium } from 'playwright-core';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../../src/config/load.js';
import type { TestGateway } from '../support/gateway.js';
import { raw } from '../support/http.js';
import { CHROMIUM, CHROMIUM_ARGS, CONSOLE_KEY, chromiumAvailable, ensureConsoleBuilt, startConsoleGateway } from './support.js';

const RUN = chromiumAvailable();
const PURPOSE = 'Case 2024-301: idle logoff check';
const IDLE_MS = 2_000;
const SIGN_IN = 'Sign in to the auditor console';
const HINT = 'console.idle_logoff_ms: must be an integer from 1000 to 900000 (15 minutes, the most PCI DSS allows)';

const issues = (idle_logoff_ms: unknown): string[] => {
  try {
    parseConfig({ console: { idle_logoff_ms } }, {});
  } catch (e) {
    if (e instanceof ConfigError) return e.issues;
    throw e;
  }
  return [];
};

describe('console.idle_logoff_ms', () => {
  it('is 15 minutes by default, 1000 to 900000 ms as given', () => {
    expect(parseConfig({}, {}).console.idle_logoff_ms).toBe(900_000);
    for (const ok of [1_000, 2_000, 300_000, 900_000]) expect(parseConfig({ console: { idle_logoff_ms: ok } }, {}).console.idle_logoff_ms).toBe(ok);
  });

  it('refuses anything else, naming the field and its bounds (PCI DSS: 15 minutes at most)', () => {
    for (const bad of [999, 0, -1, 900_001, 3_600_000, 1500.5, '900000', null, true, [], {}, Number.POSITIVE_INFINITY, Number.NaN]) {
      expect(issues(bad), String(bad)).toEqual([HINT]);
    }
  });
});

/**
 * Automatic logoff (PCI DSS: re-authenticate after 15 idle minutes; HIPAA: automatic logoff) in
 * headless Chromium, with the gateway's idle_logoff_ms at 2 s: no input signs out even while a
 * recording plays; input keeps the session; the clock is timestamps (a reload or a machine that
 * slept does not restart it).
 */
describe.skipIf(!RUN)('console idle logoff in headless Chromium', () => {
  let gw: TestGateway;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;

  beforeAll(async () => {
    await ensureConsoleBuilt();
    gw = await startConsoleGateway((doc) => {
      doc.console = { ...doc.console, idle_logoff_ms: IDLE_MS };
    });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true });
  }, 90_000);

  afterAll(async () => {
    await browser?.close();
    await gw?.stop();
  });

  beforeEach(async () => {
    context = await browser.newContext({ viewport: { width: 1360, height: 900 }, locale: 'en-GB', timezoneId: 'UTC' });
    page = await context.newPage();
    page.setDefaultTimeout(10_000);
  });

  afterEach(async () => {
    await context?.close();
  });

  const h1 = () => page.locator('h1').textContent();
  const storage = () => page.evaluate(() => ({ key: sessionStorage.getItem('custodian.key'), session: sessionStorage.length, local: localStorage.length }));

  async function signIn(): Promise<void> {
    await page.goto(`${gw.url}/console/`);
    await expect.poll(h1).toBe(SIGN_IN);
    await page.getByLabel('API key').fill(CONSOLE_KEY);
    await page.getByLabel('Purpose of access').fill(PURPOSE);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect.poll(h1).toBe('Find recordings');
    expect((await storage()).key).toBe(CONSOLE_KEY);
  }

  /** Within `within` ms: the sign-in page, saying why, and nothing of the session left in the tab. */
  async function expectSignedOutForIdleness(within = IDLE_MS + 3_000): Promise<void> {
    await expect.poll(h1, { timeout: within }).toBe(SIGN_IN);
    await expect.poll(() => page.getByRole('status').first().textContent()).toContain('Signed out after 2 seconds without activity');
    // Nothing of the session is left in the tab: no credential, nothing in localStorage either.
    expect(await storage()).toEqual({ key: null, session: 0, local: 0 });
  }

  interface IssuedTicket {
    ticket_id: string;
    media_url: string;
    /** The page's <audio> element (taken before Play: the logoff removes it from the page). */
    audio: ElementHandle<HTMLAudioElement>;
    /** The page's clock right after the click on Play (the last input without keepActive). */
    /** Page time of the last input event the page saw (the click), as the console's own listeners see it. */
    lastInputAt: number;
  }

  /**
   * Opens v_2001 and plays it; returns the media ticket the console was issued (as the gateway
   * answered it). With `keepActive`, input goes on while the player starts, so the idle logoff
   * cannot come first.
   */
  async function playV2001(keepActive: boolean): Promise<IssuedTicket> {
    await page.goto(`${gw.url}/console/#/recording/v_2001`);
    await expect.poll(h1).toBe('2024-04-01T10:00:00Z-2001');
    const audio = (await page.locator('audio').elementHandle()) as ElementHandle<HTMLAudioElement>;
    const issued = page.waitForResponse((r) => r.url().endsWith('/api/v1/media-tickets') && r.request().method() === 'POST');
    // The click's input time is taken in the page by a capturing listener on the events the console
    // counts, not by an evaluate after click() returns: that one came up to tens of ms after the
    // input on a loaded machine, and the idle check then looked early (1 985 ms of 2 000, CI stop 18).
    await page.evaluate(() => {
      const w = window as unknown as { __lastInputAt: number };
      w.__lastInputAt = 0;
      for (const t of ['pointerdown', 'pointermove', 'keydown', 'wheel', 'touchstart', 'scroll']) window.addEventListener(t, () => (w.__lastInputAt = Date.now()), { capture: true, passive: true });
    });
    await page.getByRole('button', { name: 'Play' }).click();
    const lastInputAt = await page.evaluate(() => (window as unknown as { __lastInputAt: number }).__lastInputAt);
    expect(lastInputAt).toBeGreaterThan(0);
    const ticket: IssuedTicket = { ...((await (await issued).json()) as Pick<IssuedTicket, 'ticket_id' | 'media_url'>), lastInputAt, audio };
    expect(ticket.ticket_id).toMatch(/\S/);
    const played = async () => (await gw.deps.auditRepo.query({ tenantId: 'acme', action: 'recording.media', limit: 1000 })).items.some((e) => (e.detail as { ticket_id?: string } | null)?.ticket_id === ticket.ticket_id);
    for (let i = 0; ; i++) {
      if (await page.evaluate(() => (document.querySelector('audio')?.currentTime ?? 0) > 0.2)) break;
      // On a loaded machine the transcoder may take longer to start than the idle limit: the logoff
      // then comes while the player is still loading what the ticket serves — the same case.
      if (!keepActive && (await h1()) === SIGN_IN && (await played())) break;
      if (i > 150) throw new Error('the recording did not start playing');
      if (keepActive) await page.mouse.move(100 + (i % 7) * 40, 200 + (i % 5) * 30);
      await page.waitForTimeout(100);
    }
    expect(await played()).toBe(true);
    // The ticket plays, with no credential but itself (unless the idle logoff already came).
    if (keepActive) expect((await raw(gw.url + ticket.media_url, { headers: { range: 'bytes=0-99' } })).status).toBe(206);
    return ticket;
  }

  /** The console revoked the ticket on its way out: the trail says so, and the ticket no longer plays. */
  async function expectRevoked(ticket: IssuedTicket): Promise<void> {
    const revocations = async () => (await gw.deps.auditRepo.query({ tenantId: 'acme', action: 'media_ticket.revoke', limit: 1000 })).items.filter((e) => (e.detail as { ticket_id?: string } | null)?.ticket_id === ticket.ticket_id);
    await expect.poll(revocations, { timeout: 5_000 }).toHaveLength(1);
    expect((await revocations())[0]).toMatchObject({ principalId: 'carol', status: 204 });
    const replay = await raw(gw.url + ticket.media_url);
    expect(replay.status).toBe(401);
    expect(JSON.parse(replay.body.toString()).code).toBe('auth.invalid_token');
  }

  it('the gateway publishes the setting to the console', async () => {
    const cfg = (await (await fetch(`${gw.url}/api/v1/console/config`)).json()) as Record<string, unknown>;
    expect(cfg).toEqual({ oidc: null, idle_logoff_ms: IDLE_MS });
  });

  it('signs out after idle_logoff_ms without input, stopping the player and revoking its media ticket, though a recording was playing', async () => {
    await signIn();
    const ticket = await playV2001(false);
    const lastInput = ticket.lastInputAt;
    // Playing is not input: the session ends all the same, and the player with it.
    await expectSignedOutForIdleness();
    // The ticket that was playing is revoked with the credential, before the credential was cleared.
    await expectRevoked(ticket);
    const signedOutAfter = (await page.evaluate(() => Date.now())) - lastInput;
    expect(signedOutAfter).toBeGreaterThanOrEqual(IDLE_MS);
    expect(await page.locator('audio').count()).toBe(0);
    expect(await ticket.audio.evaluate((a: HTMLAudioElement) => ({ paused: a.paused, src: a.getAttribute('src') }))).toEqual({ paused: true, src: null });
    // Going back to a signed-in page leads to the sign-in page, not to data.
    await page.goto(`${gw.url}/console/#/find`);
    await expect.poll(h1).toBe(SIGN_IN);
  });

  it('"Sign out" while a recording plays revokes its media ticket before the credential is gone', async () => {
    await signIn();
    const ticket = await playV2001(true);
    await page.getByRole('button', { name: 'Sign out' }).click();
    await expect.poll(h1).toBe(SIGN_IN);
    expect(await storage()).toEqual({ key: null, session: 0, local: 0 });
    await expectRevoked(ticket);
  });

  it('keeps the session while there is input (mouse moves and key presses every 500 ms for 1.75 times the limit)', async () => {
    await signIn();
    const until = Date.now() + IDLE_MS + 1_500;
    for (let i = 0; Date.now() < until; i++) {
      if (i % 2) await page.keyboard.press('Shift');
      else await page.mouse.move(100 + (i % 7) * 40, 200 + (i % 5) * 30);
      await page.waitForTimeout(500);
    }
    expect(await h1()).toBe('Find recordings');
    expect((await storage()).key).toBe(CONSOLE_KEY);
  });

  it('counts time across a reload: the last input is remembered in the tab, not restarted', async () => {
    await signIn();
    // As if the last input was 10 s ago and the tab was then reloaded (or discarded and restored).
    await page.evaluate(() => sessionStorage.setItem('custodian.active_at', String(Date.now() - 10_000)));
    await page.reload();
    // At once, not IDLE_MS after the reload.
    await expectSignedOutForIdleness(IDLE_MS / 2);
  });

  it('after the machine slept (the clock jumped, no timer ran), the first input signs out instead of renewing', async () => {
    await signIn();
    // In one task, so no interval check runs in between: 10 s pass, then the first pointer move.
    await page.evaluate(() => {
      const real = Date.now.bind(Date);
      Date.now = () => real() + 10_000;
      window.dispatchEvent(new PointerEvent('pointermove'));
    });
    // Input going on does not bring the session back.
    for (let i = 0; i < 3; i++) {
      await page.mouse.move(300 + i * 20, 300);
      await page.waitForTimeout(200);
    }
    await expectSignedOutForIdleness(IDLE_MS / 2);
  });
});
