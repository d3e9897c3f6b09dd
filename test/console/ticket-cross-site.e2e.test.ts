import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type Browser, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearer, type TestGateway } from '../support/gateway.js';
import { raw } from '../support/http.js';
import { CHROMIUM, CHROMIUM_ARGS, CONSOLE_KEY, chromiumAvailable, startConsoleGateway } from './support.js';

const RUN = chromiumAvailable();
const json = (r: { body: Buffer }) => JSON.parse(r.body.toString());

/**
 * A media ticket is a bearer secret in a URL: a page of another origin that learnt one must not be
 * able to play it with `<audio src=…>`. Ticket-served answers say `Cross-Origin-Resource-Policy:
 * same-origin`, and a request whose Sec-Fetch-Site is neither same-origin nor none is refused (403,
 * audited in the ticket's tenant). Clients that send no Sec-Fetch-Site (curl, old clients) still play.
 */
describe('media tickets play only for the gateway’s own origin', () => {
  let gw: TestGateway;
  const issue = async (purpose = 'Case 31: QA') => {
    const r = await raw(`${gw.url}/api/v1/media-tickets`, {
      method: 'POST',
      headers: { ...bearer(CONSOLE_KEY), 'content-type': 'application/json' },
      body: JSON.stringify({ ref: 'v_2001', purpose }),
    });
    expect(r.status).toBe(201);
    return json(r) as { ticket_id: string; media_url: string };
  };
  const denials = async (ticketId: string) =>
    (await gw.deps.auditRepo.query({ tenantId: 'acme', action: 'recording.media', limit: 1000 })).items.filter((e) => e.detail?.ticket_id === ticketId && e.outcome === 'denied');

  beforeAll(async () => {
    gw = await startConsoleGateway();
  });
  afterAll(async () => gw?.stop());

  it('refuses another site or origin by Sec-Fetch-Site (403, audited); same-origin, none and no header play; CORP same-origin on every answer', async () => {
    const t = await issue();
    const play = (headers: Record<string, string> = {}) => raw(gw.url + t.media_url, { headers: { range: 'bytes=0-43', ...headers } });
    for (const site of ['cross-site', 'same-site']) {
      const r = await play({ 'sec-fetch-site': site, 'sec-fetch-dest': 'audio', 'sec-fetch-mode': 'no-cors' });
      expect(r.status, site).toBe(403);
      expect(r.headers['content-type']).toBe('application/problem+json');
      expect(json(r).code).toBe('access.cross_site');
      expect(r.headers['cross-origin-resource-policy']).toBe('same-origin');
    }
    for (const headers of [{}, { 'sec-fetch-site': 'same-origin' }, { 'sec-fetch-site': 'none' }] as Record<string, string>[]) {
      const r = await play(headers);
      expect(r.status, JSON.stringify(headers)).toBe(206);
      expect(r.headers['cross-origin-resource-policy']).toBe('same-origin');
    }
    // Refusals of the ticket itself carry it too.
    const forged = await raw(`${gw.url}/api/v1/media-tickets/play?t=mt_${'A'.repeat(80)}`);
    expect(forged.status).toBe(401);
    expect(forged.headers['cross-origin-resource-policy']).toBe('same-origin');
    const invalid = await raw(`${gw.url}/api/v1/media-tickets/play`);
    expect(invalid.status).toBe(422);
    expect(invalid.headers['cross-origin-resource-policy']).toBe('same-origin');

    // In the ticket's tenant's trail, as its principal's denied play, with what asked.
    const denied = await denials(t.ticket_id);
    expect(denied).toHaveLength(2);
    for (const e of denied) expect(e).toMatchObject({ principalId: 'carol', status: 403, errorCode: 'access.cross_site', detail: expect.objectContaining({ via: 'media_ticket', purpose: 'Case 31: QA' }) });
    expect(denied.map((e) => e.detail?.sec_fetch_site).sort()).toEqual(['cross-site', 'same-site']);
  });

  describe.skipIf(!RUN)('in headless Chromium', () => {
    let browser: Browser;
    let other: Server;
    let otherPort: number;
    let page = '';

    beforeAll(async () => {
      browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true });
      // Another origin: a page that embeds whatever media URL it was told.
      other = createServer((_req, res) => {
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
        res.end(page);
      });
      await new Promise<void>((r) => other.listen(0, '127.0.0.1', r));
      otherPort = (other.address() as AddressInfo).port;
    });
    afterAll(async () => {
      await browser?.close();
      await new Promise((r) => other?.close(r));
    });

    /** Loads `origin` with an <audio> of `src`; resolves with what the element did. */
    async function embed(origin: string, src: string): Promise<{ event: string; duration: number; error: number | null }> {
      page = `<!doctype html><title>embed</title><audio id="a" preload="auto" src="${src}"></audio>`;
      const ctx = await browser.newContext();
      try {
        const p = await ctx.newPage();
        await p.goto(origin);
        return await p.evaluate(
          () =>
            new Promise<{ event: string; duration: number; error: number | null }>((resolve) => {
              const a = document.getElementById('a') as HTMLAudioElement;
              const done = (event: string) => resolve({ event, duration: a.duration, error: a.error?.code ?? null });
              if (a.readyState >= 1) return done('loadedmetadata');
              if (a.error) return done('error');
              a.addEventListener('loadedmetadata', () => done('loadedmetadata'));
              a.addEventListener('error', () => done('error'));
              setTimeout(() => done('timeout'), 10_000);
            }),
        );
      } finally {
        await ctx.close();
      }
    }

    it('a page on another site (localhost) or another origin of the same site cannot play a ticket; the gateway’s own origin can', async () => {
      const gwPort = new URL(gw.url).port;
      for (const origin of [`http://localhost:${otherPort}/`, `http://127.0.0.1:${otherPort}/`]) {
        const t = await issue();
        const seen = await embed(origin, `http://127.0.0.1:${gwPort}${t.media_url}`);
        expect(seen.event, origin).toBe('error');
        // Refused by the gateway (not merely unreadable by the page): audited as a denied play, no bytes served.
        expect((await denials(t.ticket_id)).length, origin).toBeGreaterThan(0);
        const served = (await gw.deps.auditRepo.query({ tenantId: 'acme', action: 'recording.media', limit: 1000 })).items.filter((e) => e.detail?.ticket_id === t.ticket_id && e.outcome === 'allowed');
        expect(served, origin).toHaveLength(0);
      }
      // The control: the same element on a page of the gateway's origin plays (the console's own player: console.e2e.test.ts).
      const own = await issue();
      const ctx = await browser.newContext();
      try {
        const p = await ctx.newPage();
        await p.goto(`${gw.url}/openapi.json`);
        const seen = await p.evaluate(
          (src) =>
            new Promise<{ event: string; duration: number }>((resolve) => {
              const a = document.createElement('audio');
              a.preload = 'auto';
              a.addEventListener('loadedmetadata', () => resolve({ event: 'loadedmetadata', duration: a.duration }));
              a.addEventListener('error', () => resolve({ event: 'error', duration: NaN }));
              a.src = src;
              document.body.append(a);
              setTimeout(() => resolve({ event: 'timeout', duration: NaN }), 10_000);
            }),
          own.media_url,
        );
        expect(seen.event).toBe('loadedmetadata');
        expect(seen.duration).toBeGreaterThan(1);
      } finally {
        await ctx.close();
      }
    });
  });
});
