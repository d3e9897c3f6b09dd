import type { FastifyPluginAsync } from 'fastify';
import { sql } from 'kysely';
import type { AppDeps } from '../../deps.js';

/** Probes and metrics: no auth, no audit events (they would drown the trail), no recording data. */
export function opsRoutes(deps: AppDeps): FastifyPluginAsync {
  return async (app) => {
    app.get('/healthz', { config: { unaudited: true }, schema: { hide: true } }, async () => ({ status: 'ok' }));

    app.get('/readyz', { config: { unaudited: true }, schema: { hide: true } }, async (_req, reply) => {
      const checks: Record<string, { ok: boolean; error?: string; ms: number }> = {};
      const timed = async (name: string, fn: (signal: AbortSignal) => Promise<unknown>) => {
        const t0 = performance.now();
        try {
          await fn(AbortSignal.timeout(5000));
          checks[name] = { ok: true, ms: Math.round(performance.now() - t0) };
        } catch (e) {
          // The code only: messages of source errors can carry host names, never secrets, but keep probes terse.
          checks[name] = { ok: false, error: (e as { code?: string }).code ?? 'error', ms: Math.round(performance.now() - t0) };
        }
      };
      await Promise.all([
        timed('catalog', () => sql`select 1`.execute(deps.catalog.db)),
        ...deps.sources.all().map((c) => timed(`source:${c.tenantId}/${c.name}`, (s) => c.check(s))),
      ]);
      const ok = Object.values(checks).every((c) => c.ok);
      const failing = Object.entries(checks).filter(([, c]) => !c.ok);
      if (failing.length) _req.log.warn({ failing: Object.fromEntries(failing) }, 'readiness: checks failing');
      reply.code(ok ? 200 : 503).header('Cache-Control', 'no-store');
      // Unauthenticated: counts only, so tenant and source names do not leak; the log names them.
      const sources = Object.entries(checks).filter(([k]) => k.startsWith('source:'));
      return {
        status: ok ? 'ready' : 'not_ready',
        catalog: checks.catalog?.ok ?? false,
        sources: { total: sources.length, failing: sources.filter(([, c]) => !c.ok).length },
      };
    });

    app.get('/metrics', { config: { unaudited: true }, schema: { hide: true } }, async (_req, reply) => {
      reply.header('Content-Type', deps.metrics.registry.contentType);
      return deps.metrics.registry.metrics();
    });
  };
}
