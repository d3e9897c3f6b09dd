import { type Browser, type BrowserContext, type Page, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type OidcSimulator, startOidcSimulator } from '../../src/access/oidc-simulator.js';
import { ConfigError, parseConfig } from '../../src/config/load.js';
import type { TestGateway } from '../support/gateway.js';
import { resolve } from 'node:path';
import { CHROMIUM, CHROMIUM_ARGS, ROOT, chromiumAvailable, ensureConsoleBuilt, startConsoleGateway } from './support.js';

const RUN = chromiumAvailable();
const PURPOSE = 'Case 2024-201: complaint review';
const CLIENT_ID = 'custodian-console';

/**
 * Organisation sign-in end to end: the OIDC provider simulator (a real HTTP server: discovery,
 * login form, token endpoint with PKCE, JWKS), the real gateway trusting it through auth.jwt
 * (jwks_url), the built console in headless Chromium doing the code flow with PKCE, then search
 * and play with the access token. Bad input: wrong state, access_denied, an expired token.
 */
describe('console OIDC sign-in', () => {
  let sim: OidcSimulator;
  let gw: TestGateway;

  beforeAll(async () => {
    await ensureConsoleBuilt();
    sim = await startOidcSimulator({
      audience: 'custodian-api',
      clients: [],
      users: [
        { sub: 'dora', name: 'Dora Auditor', tenant: 'acme', scope: 'recordings:read recordings:export audit:read' },
        { sub: 'gina', name: 'Gina Globex', tenant: 'globex', scope: 'recordings:read' },
      ],
    });
    gw = await startConsoleGateway((doc) => {
      doc.auth.jwt = { issuer: sim.issuer, audience: 'custodian-api', algorithms: ['ES256'], jwks_url: `${sim.issuer}/jwks`, clock_tolerance_s: 0 };
      doc.console = { oidc: { issuer: sim.issuer, client_id: CLIENT_ID, scopes: ['openid', 'profile'] } };
    });
    sim.clients.push({ client_id: CLIENT_ID, redirect_uris: [`${gw.url}/console/callback`] });
  }, 60_000);

  afterAll(async () => {
    await gw?.stop();
    await sim?.close();
  });

  it('refuses a console.oidc issuer that auth.jwt does not trust, naming the field', () => {
    const base = { auth: { jwt: { issuer: 'https://idp.example', audience: 'a', jwks_url: 'https://idp.example/jwks' } } };
    const bad = (console: unknown, doc: Record<string, unknown> = base) => {
      try {
        parseConfig({ ...doc, console }, {});
        return '';
      } catch (e) {
        expect(e).toBeInstanceOf(ConfigError);
        return (e as Error).message;
      }
    };
    expect(bad({ oidc: { issuer: 'https://other.example', client_id: 'c' } })).toMatch(/console\.oidc\.issuer.*must be the issuer auth\.jwt trusts/);
    expect(bad({ oidc: { issuer: 'https://idp.example', client_id: 'c' } }, {})).toMatch(/console\.oidc\.issuer.*needs auth\.jwt/);
    expect(bad({ oidc: { issuer: 'http://idp.example', client_id: 'c' } })).toMatch(/console\.oidc\.issuer/);
    expect(bad({ oidc: { issuer: 'https://idp.example', client_id: 'c', scopes: ['profile'] } })).toMatch(/console\.oidc\.scopes.*openid/);
    expect(bad({ oidc: { issuer: 'https://idp.example', client_id: 'c', redirect_path: '/elsewhere' } })).toMatch(/console\.oidc\.redirect_path/);
    expect(bad({ oidc: { issuer: 'https://idp.example/', client_id: 'c' } })).toBe('');
  });

  it('publishes the public settings and lets the page reach the provider (CSP connect-src), nothing else', async () => {
    const cfg = await fetch(`${gw.url}/api/v1/console/config`);
    expect(cfg.headers.get('cache-control')).toBe('no-store');
    expect(await cfg.json()).toEqual({ oidc: { issuer: sim.issuer, client_id: CLIENT_ID, scopes: ['openid', 'profile'], redirect_path: '/console/callback' }, idle_logoff_ms: 900_000 });
    const page = await fetch(`${gw.url}/console/`);
    expect(page.headers.get('content-security-policy')).toContain(`connect-src 'self' ${sim.issuer};`);
    const cb = await fetch(`${gw.url}/console/callback?code=abc&state=def`);
    expect(cb.status).toBe(200);
    expect(cb.headers.get('cache-control')).toBe('no-store');
    expect(await cb.text()).toContain('<div id="app">');
  });

  it('answers an expired or foreign token with 401 problem+json', async () => {
    const expired = await sim.mintAccessToken({ sub: 'dora', tenant: 'acme', scope: 'recordings:read' }, -5);
    const res = await fetch(`${gw.url}/api/v1/whoami`, { headers: { Authorization: `Bearer ${expired}` } });
    expect(res.status).toBe(401);
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(await res.json()).toMatchObject({ code: 'auth.expired_token', status: 401 });
    const other = await startOidcSimulator({ audience: 'custodian-api', clients: [], users: [] });
    try {
      const forged = await other.mintAccessToken({ sub: 'dora', tenant: 'acme', scope: 'admin' });
      const r2 = await fetch(`${gw.url}/api/v1/whoami`, { headers: { Authorization: `Bearer ${forged}` } });
      expect(r2.status).toBe(401);
      expect(await r2.json()).toMatchObject({ code: 'auth.invalid_token' });
    } finally {
      await other.close();
    }
  });

  describe.skipIf(!RUN)('in headless Chromium', () => {
    let browser: Browser;
    let context: BrowserContext;
    let page: Page;
    const urls: string[] = [];

    beforeAll(async () => {
      browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true });
    }, 60_000);
    afterAll(() => browser?.close());

    async function fresh(): Promise<void> {
      await context?.close();
      context = await browser.newContext({ viewport: { width: 1280, height: 860 }, locale: 'en-GB', timezoneId: 'UTC' });
      await context.addInitScript(() => {
        document.addEventListener('securitypolicyviolation', (e) => {
          ((window as unknown as { __csp: string[] }).__csp ??= []).push(`${e.violatedDirective} ${e.blockedURI}`);
        });
      });
      page = await context.newPage();
      page.setDefaultTimeout(15_000);
      page.on('framenavigated', (f) => {
        if (f === page.mainFrame()) urls.push(f.url());
      });
    }

    /** The console's sign-in page up to the provider's login form. */
    async function toProvider(shot?: string): Promise<void> {
      await page.goto(`${gw.url}/console/`);
      await page.getByLabel('Purpose of access').fill(PURPOSE);
      await page.getByRole('button', { name: 'Sign in with your organisation' }).waitFor();
      if (shot && process.env.CONSOLE_SCREENSHOTS) await page.screenshot({ path: resolve(ROOT, process.env.CONSOLE_SCREENSHOTS, shot), fullPage: true });
      await page.getByRole('button', { name: 'Sign in with your organisation' }).click();
      await page.waitForURL((u) => u.origin === sim.issuer);
      await expect.poll(() => page.locator('h1').textContent()).toBe('OIDC simulator');
    }

    it('without a purpose of access the organisation sign-in stays on the page and says why', async () => {
      await fresh();
      await page.goto(`${gw.url}/console/`);
      await page.getByRole('button', { name: 'Sign in with your organisation' }).click();
      await expect.poll(() => page.getByRole('alert').textContent()).toContain('Give a purpose of access');
      expect(await page.getByLabel('Purpose of access').getAttribute('aria-invalid')).toBe('true');
      expect(new URL(page.url()).origin).toBe(new URL(gw.url).origin);
    });

    it('signs in through the provider (code + PKCE), then searches and plays a G.729 recording with the access token', async () => {
      await fresh();
      await toProvider('07-sign-in-oidc.png');
      const authorize = new URL(page.url());
      expect(Object.fromEntries(authorize.searchParams)).toMatchObject({ client_id: CLIENT_ID, response_type: 'code', code_challenge_method: 'S256', scope: 'openid profile', redirect_uri: `${gw.url}/console/callback` });
      expect(authorize.searchParams.get('code_challenge')).toMatch(/^[A-Za-z0-9_-]{43}$/);
      expect(authorize.searchParams.get('state')).toBeTruthy();
      expect(authorize.searchParams.get('nonce')).toBeTruthy();
      await page.getByLabel('User').selectOption('dora');
      await page.getByRole('button', { name: 'Sign in', exact: true }).click();
      await page.waitForURL(/\/console\/#\/find$/);
      await expect.poll(() => page.locator('h1').textContent()).toBe('Find recordings');
      expect(await page.locator('.who-name').textContent()).toBe('dora @ acme');
      expect(sim.tokenLog.at(-1)).toEqual({ status: 200 });

      // The token: in this tab's sessionStorage only; the code left the address bar and the history.
      const st = await page.evaluate(() => ({ key: sessionStorage.getItem('custodian.key'), via: sessionStorage.getItem('custodian.via'), pending: sessionStorage.getItem('custodian.oidc.pending'), local: localStorage.length, href: location.href, hist: history.length }));
      expect(st.key).toMatch(/^eyJ[\w-]+\.[\w-]+\.[\w-]+$/);
      expect(st).toMatchObject({ via: 'oidc', pending: null, local: 0, href: `${gw.url}/console/#/find` });
      const callbackUrl = urls.find((u) => u.includes('/console/callback?'))!;
      expect(callbackUrl).toContain('code=');
      const code = new URL(callbackUrl).searchParams.get('code')!;

      const who = (await gw.deps.auditRepo.query({ tenantId: 'acme', limit: 1000 })).items.find((e) => e.action === 'auth.whoami' && e.principalId === 'dora');
      expect(who).toMatchObject({ principalKind: 'jwt', outcome: 'completed' });

      await page.getByLabel('Any id').fill('CUST-8923');
      await page.getByRole('button', { name: 'Search' }).click();
      await expect.poll(() => page.locator('table.data tbody tr').count()).toBe(1);
      await page.getByRole('link', { name: '2023-10-27T14:30:00Z-8923' }).click();
      await page.getByRole('button', { name: 'Play' }).click();
      await page.waitForFunction(() => {
        const a = document.querySelector('audio');
        return !!a && Number.isFinite(a.duration) && a.duration > 0;
      });
      expect(Math.abs((await page.locator('audio').evaluate((a: HTMLAudioElement) => a.duration)) - 8.44)).toBeLessThan(0.1);
      const plays = (await gw.deps.auditRepo.query({ tenantId: 'acme', limit: 1000 })).items.filter((e) => e.action === 'recording.media' && e.principalId === 'dora');
      expect(plays.length).toBeGreaterThan(0);
      expect(plays[0]).toMatchObject({ principalKind: 'jwt', detail: expect.objectContaining({ purpose: PURPOSE }) });

      // Neither the code nor the token reached the gateway's logs.
      const logs = gw.logs.join('\n');
      expect(logs).not.toContain(code);
      expect(logs).not.toContain(st.key!.split('.')[2]!);
      expect(await page.evaluate(() => (window as unknown as { __csp?: string[] }).__csp ?? [])).toEqual([]);

      await page.getByRole('button', { name: 'Sign out' }).click();
      await expect.poll(() => page.locator('h1').textContent()).toBe('Sign in to the auditor console');
      expect(await page.evaluate(() => ({ n: sessionStorage.length, l: localStorage.length }))).toEqual({ n: 0, l: 0 });
    });

    it('refuses an answer whose state is not the one this tab sent', async () => {
      await fresh();
      await toProvider();
      const sent = new URL(page.url()).searchParams.get('state');
      await page.goto(`${gw.url}/console/callback?code=stolen-code&state=not-${sent}`);
      await expect.poll(() => page.getByRole('alert').textContent()).toContain('state mismatch');
      expect(page.url()).toBe(`${gw.url}/console/#/signin`);
      expect(await page.evaluate(() => sessionStorage.length)).toBe(0);
      // The code was never exchanged.
      expect(sim.tokenLog.at(-1)).toEqual({ status: 200 });
    });

    it('says so when the user (or the provider) refuses: error=access_denied', async () => {
      await fresh();
      await toProvider();
      await page.getByRole('button', { name: 'Deny' }).click();
      await page.waitForURL(/\/console\/#\/signin$/);
      await expect.poll(() => page.getByRole('alert').textContent()).toContain('The identity provider refused the sign-in (access_denied: The user refused the sign-in)');
      expect(await page.evaluate(() => sessionStorage.getItem('custodian.key'))).toBeNull();
    });

    it('signs out with a clear message when the token expires, and when the API answers 401 auth.expired_token', async () => {
      await fresh();
      sim.knobs.accessTokenTtlS = 3;
      try {
        await toProvider();
        await page.getByRole('button', { name: 'Sign in', exact: true }).click();
        await page.waitForURL(/#\/find$/);
        // The console knows expires_in and signs out on time.
        await expect.poll(() => page.getByRole('status').first().textContent(), { timeout: 10_000 }).toContain('Your organisation sign-in has expired');
        expect(await page.evaluate(() => sessionStorage.getItem('custodian.key'))).toBeNull();
      } finally {
        sim.knobs.accessTokenTtlS = 3600;
      }
      // A token the page believes valid but the gateway finds expired: the 401 problem signs out too.
      await toProvider();
      await page.getByRole('button', { name: 'Sign in', exact: true }).click();
      await page.waitForURL(/#\/find$/);
      const expired = await sim.mintAccessToken({ sub: 'dora', tenant: 'acme', scope: 'recordings:read' }, -5);
      await page.evaluate((t) => {
        sessionStorage.setItem('custodian.key', t);
        sessionStorage.removeItem('custodian.expires_at');
      }, expired);
      await page.getByRole('button', { name: 'Search' }).click();
      await expect.poll(() => page.locator('.notice').first().textContent()).toContain('Your sign-in has expired (the gateway answered auth.expired_token)');
      expect(page.url()).toMatch(/#\/signin$/);
    });
  });
});
