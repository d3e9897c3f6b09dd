import type { FastifyPluginAsync } from 'fastify';
import { sql } from 'kysely';
import { ReadinessCache } from '../../cli/doctor.js';
import type { AppDeps } from '../../deps.js';

/** Probes and metrics: no auth, no audit events (they would drown the trail), no recording data. */
export function opsRoutes(deps: AppDeps): FastifyPluginAsync {
  // The same preflight as `custodian doctor`, reused per source for its readiness_cache_ms (default 10 s).
  const readiness = new ReadinessCache();
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
      const failedChecks: Record<string, string[]> = {};
      await Promise.all([
        timed('catalog', () => sql`select 1`.execute(deps.catalog.db)),
        ...deps.sources.all().map(async (c) => {
          const r = await readiness.get(c);
          const failed = r.checks.filter((k) => k.status === 'fail');
          if (failed.length) failedChecks[`source:${c.tenantId}/${c.name}`] = failed.map((k) => `${k.id}: ${k.code ?? k.detail}`);
          checks[`source:${c.tenantId}/${c.name}`] = { ok: r.status !== 'fail', ...(failed[0] ? { error: failed[0].code ?? 'error' } : {}), ms: r.cached ? 0 : r.ms };
        }),
      ]);
      const ok = Object.values(checks).every((c) => c.ok);
      const failing = Object.entries(checks).filter(([, c]) => !c.ok);
      if (failing.length) _req.log.warn({ failing: Object.fromEntries(failing), failed_checks: failedChecks }, 'readiness: checks failing');
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
