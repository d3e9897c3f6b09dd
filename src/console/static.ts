import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { extname, join, normalize, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyPluginAsync, FastifyReply } from 'fastify';
import { AppError } from '../errors.js';

/** Where `npm run build:console` (Vite) writes the console. */
export const DEFAULT_WEB_DIR = fileURLToPath(new URL('../../web/dist/', import.meta.url));

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.json': 'application/json',
  '.txt': 'text/plain; charset=utf-8',
};

/**
 * No inline script or style, nothing from elsewhere, no framing; media and API calls go to this
 * origin only — plus, with OIDC sign-in, the identity provider's origin(s), which the page calls
 * for discovery and the token exchange. Trusted Types: the console never writes HTML from strings.
 */
export function consoleCsp(connectOrigins: readonly string[] = []): string {
  return [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "media-src 'self'",
    ["connect-src 'self'", ...connectOrigins].join(' '),
    "font-src 'self'",
    "manifest-src 'self'",
    "form-action 'self'",
    "base-uri 'none'",
    "frame-ancestors 'none'",
    "require-trusted-types-for 'script'",
    "trusted-types 'none'",
  ].join('; ');
}

export const CONSOLE_CSP = consoleCsp();

function withSecurityHeaders(reply: FastifyReply, csp: string): FastifyReply {
  return reply
    .header('Content-Security-Policy', csp)
    .header('X-Frame-Options', 'DENY')
    .header('X-Content-Type-Options', 'nosniff')
    .header('Referrer-Policy', 'no-referrer')
    .header('Cross-Origin-Opener-Policy', 'same-origin')
    .header('Cross-Origin-Resource-Policy', 'same-origin')
    .header('Permissions-Policy', 'camera=(), microphone=(), geolocation=(), payment=(), usb=()');
}

/**
 * Serves the built console (static files) under /console/. Static files are not data: they are
 * not audited, like the probes; everything the console does afterwards goes through the audited API.
 */
export interface ConsoleStaticOptions {
  /** Origins the page may call besides its own (the OIDC provider's). */
  connectOrigins?: readonly string[];
  /** The OIDC redirect path: serves the page, with its request log off (its URL carries the code and state). */
  callbackPath?: string;
}

export function consoleStatic(webDir: string, opts: ConsoleStaticOptions = {}): FastifyPluginAsync {
  const root = normalize(webDir.endsWith(sep) ? webDir : webDir + sep);
  const csp = consoleCsp(opts.connectOrigins);
  const securityHeaders = (reply: FastifyReply) => withSecurityHeaders(reply, csp);
  return async (app) => {
    app.get('/console', { config: { unaudited: true }, schema: { hide: true } }, async (_req, reply) => securityHeaders(reply).redirect('/console/', 301));

    if (opts.callbackPath) {
      app.get(opts.callbackPath, { logLevel: 'warn', config: { unaudited: true }, schema: { hide: true } }, async (_req, reply) => {
        const file = join(root, 'index.html');
        const st = await stat(file).catch(() => null);
        if (!st?.isFile()) {
          securityHeaders(reply).code(503).header('Content-Type', 'text/plain; charset=utf-8').header('Cache-Control', 'no-store');
          return reply.send('The console is not built. Run: npm run build:console\n');
        }
        securityHeaders(reply).header('Content-Type', TYPES['.html']!).header('Content-Length', st.size).header('Cache-Control', 'no-store');
        return reply.send(createReadStream(file));
      });
    }

    app.get('/console/*', { config: { unaudited: true }, schema: { hide: true } }, async (req, reply) => {
      const rel = (req.params as { '*': string })['*'] || 'index.html';
      if (rel.length > 200 || !/^[A-Za-z0-9._/-]+$/.test(rel) || rel.split('/').some((s) => s === '' || s.startsWith('.'))) throw new AppError('request.not_found');
      const file = normalize(join(root, rel));
      if (!file.startsWith(root)) throw new AppError('request.not_found');
      const st = await stat(file).catch(() => null);
      if (!st?.isFile()) {
        const built = await stat(join(root, 'index.html')).catch(() => null);
        if (!built) {
          securityHeaders(reply).code(503).header('Content-Type', 'text/plain; charset=utf-8').header('Cache-Control', 'no-store');
          return reply.send('The console is not built. Run: npm run build:console\n');
        }
        throw new AppError('request.not_found');
      }
      securityHeaders(reply)
        .header('Content-Type', TYPES[extname(file)] ?? 'application/octet-stream')
        .header('Content-Length', st.size)
        // Hashed asset names never change content; the page itself is revalidated so a new build shows at once.
        .header('Cache-Control', rel.startsWith('assets/') ? 'public, max-age=31536000, immutable' : 'no-cache');
      return reply.send(createReadStream(file));
    });
  };
}
