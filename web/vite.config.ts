import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

/**
 * The auditor console: plain TypeScript, bundled by Vite into static files (web/dist) that the
 * gateway serves under /console/ (src/console/static.ts). `npm run build:console` builds it;
 * `npm start` and `npm test` build it first. `npm run dev:console` serves it with hot reload and
 * proxies /api to a gateway on 127.0.0.1:8080 (npm start).
 */
export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: '/console/',
  logLevel: 'warn',
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    // No inline anything: the gateway's CSP allows scripts, styles and images from its own origin only.
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    sourcemap: false,
    reportCompressedSize: false,
  },
  server: { proxy: { '/api': 'http://127.0.0.1:8080' } },
});
