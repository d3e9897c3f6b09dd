import { SqliteAdapter, sql } from 'kysely';
import { writeTransaction } from '../catalog/database.js';
import { filterOnly } from '../catalog/filter-only.js';
import { moveIntegrityChecks, moveJobs } from '../catalog/recording-repository.js';
import { AppError } from '../errors.js';
import { HoldRepository } from '../holds/hold-repository.js';
import type { SyncContext } from './apply.js';
import type { SyncTenantConfig } from './config.js';
import type { Facts, Finding } from './store.js';

export interface CrosswalkStats {
  linked: number;
  ambiguous: number;
  conflicts: number;
  integrityMatches: number;
  integrityMismatches: number;
  findingsChanged: number;
  /**
   * Pairs not merged because they stopped being a pair after the candidates were read: one side
   * merged away by another run, or a legacy side that got a cloud copy / a cloud side that got a
   * legacy copy (a sync page, a self-heal). No event, no finding; the next run reads them afresh.
   */
  skipped: number;
}

type Rule = 'call_id' | 'external_tag' | 'sip_call_id' | 'time_ani_dnis_duration';

/** Which ref kinds of a legacy-only recording meet which ref kinds of a cloud-only one, per key rule. */
const KEY_RULES: Record<Exclude<Rule, 'time_ani_dnis_duration'>, { legacy: string[]; cloud: string[] }> = {
  // The legacy call id, carried by Genesys as the conversation's externalTag (or imported as its call id).
  call_id: { legacy: ['call_id'], cloud: ['call_id', 'external_tag'] },
  // The legacy archive id attached to the conversation as externalTag during the migration.
  external_tag: { legacy: ['legacy_archive_id', 'external_tag'], cloud: ['external_tag'] },
  sip_call_id: { legacy: ['sip_call_id'], cloud: ['sip_call_id'] },
};

interface Evidence {
  rule: Rule;
  value: string;
}

const digits = (v: string | null) => (v ? v.replace(/^(tel|sip):/i, '').replace(/[^0-9]/g, '') : '');

/**
 * Links the legacy copy and the cloud copy of the same call into one logical recording. A pair is
 * linked only when each side has exactly one candidate (by the exact keys first; the fuzzy time +
 * ANI/DNIS + duration rule only for what the keys leave unmatched). Everything else is kept apart
 * and listed as a finding; nothing is dropped. Then the durations of linked pairs are compared
 * from the sources' metadata; comparing their decoded audio means reading both copies, so it is
 * done on demand or by sampling (integrity/check.ts, `custodian verify integrity`), not here.
 */
/** The run's lease (SyncStore.keepLease): `check()` throws `sync.busy` once it is lost. */
export interface CrosswalkLease {
  check(): void;
}

const NO_LEASE: CrosswalkLease = { check: () => {} };

/** Stops an aborted run (shutdown, a cancelled CLI run) between steps, as the source runs do: the run ends failed, what was merged stays merged. */
function stopIfAborted(ctx: SyncContext): void {
  if (ctx.signal.aborted) throw new AppError('source.unavailable', 'sync aborted');
}

export async function runCrosswalk(ctx: SyncContext, cfg: SyncTenantConfig, lease: CrosswalkLease = NO_LEASE): Promise<CrosswalkStats> {
  const stats: CrosswalkStats = { linked: 0, ambiguous: 0, conflicts: 0, integrityMatches: 0, integrityMismatches: 0, findingsChanged: 0, skipped: 0 };
  stopIfAborted(ctx);
  const t = ctx.tenantId;
  const originsOf = async () => {
    const rows = await ctx.db.selectFrom('recording_copies').select(['recording_pk', 'origin']).distinct().where('tenant_id', '=', t).execute();
    const m = new Map<string, { legacy: boolean; cloud: boolean }>();
    for (const r of rows) {
      const o = m.get(r.recording_pk) ?? { legacy: false, cloud: false };
      if (r.origin === 'GENESYS_CLOUD') o.cloud = true;
      else o.legacy = true;
      m.set(r.recording_pk, o);
    }
    return m;
  };
  let origins = await originsOf();
  const legacyOnly = (pk: string) => !!origins.get(pk)?.legacy && !origins.get(pk)?.cloud;
  const cloudOnly = (pk: string) => !!origins.get(pk)?.cloud && !origins.get(pk)?.legacy;

  // Candidates in both directions, with the evidence of each pair.
  const l2c = new Map<string, Map<string, Evidence>>();
  const c2l = new Map<string, Map<string, Evidence>>();
  const add = (l: string, c: string, ev: Evidence) => {
    if (!l2c.has(l)) l2c.set(l, new Map());
    if (!c2l.has(c)) c2l.set(c, new Map());
    if (!l2c.get(l)!.has(c)) l2c.get(l)!.set(c, ev);
    if (!c2l.get(c)!.has(l)) c2l.get(c)!.set(l, ev);
  };
  for (const key of cfg.crosswalk.keys) {
    stopIfAborted(ctx);
    const rule = KEY_RULES[key];
    const pairs = await ctx.db
      .selectFrom('recording_refs as a')
      .innerJoin('recording_refs as b', (j) => j.onRef('b.tenant_id', '=', 'a.tenant_id').onRef('b.value', '=', 'a.value'))
      .select(['a.recording_pk as l', 'b.recording_pk as c', 'a.value as value'])
      .where('a.tenant_id', '=', t)
      .where('a.kind', 'in', rule.legacy)
      .where('b.kind', 'in', rule.cloud)
      .whereRef('a.recording_pk', '!=', 'b.recording_pk')
      .execute();
    for (const p of pairs) if (legacyOnly(p.l) && cloudOnly(p.c)) add(p.l, p.c, { rule: key, value: p.value });
  }

  stopIfAborted(ctx);
  const facts = await ctx.store.factsWithRecordings(t);
  if (cfg.crosswalk.rule) {
    const r = cfg.crosswalk.rule;
    const usable = (f: Facts & { recordingPk: string }) => f.startedAt !== null && f.durationMs !== null;
    const legacy = facts.filter((f) => usable(f) && legacyOnly(f.recordingPk) && !l2c.has(f.recordingPk));
    const cloud = facts.filter((f) => usable(f) && cloudOnly(f.recordingPk) && !c2l.has(f.recordingPk)).map((f) => ({ ...f, t: Date.parse(f.startedAt!) }));
    cloud.sort((a, b) => a.t - b.t);
    for (const l of legacy) {
      const lt = Date.parse(l.startedAt!);
      let lo = 0;
      let hi = cloud.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (cloud[mid]!.t < lt - r.start_tolerance_ms) lo = mid + 1;
        else hi = mid;
      }
      for (let i = lo; i < cloud.length && cloud[i]!.t <= lt + r.start_tolerance_ms; i++) {
        const c = cloud[i]!;
        if (r.match_ani && (!digits(l.ani) || digits(l.ani) !== digits(c.ani))) continue;
        if (r.match_dnis && (!digits(l.dnis) || digits(l.dnis) !== digits(c.dnis))) continue;
        if (Math.abs(l.durationMs! - c.durationMs!) > r.duration_tolerance_ms) continue;
        add(l.recordingPk, c.recordingPk, { rule: 'time_ani_dnis_duration', value: `${l.startedAt}~${c.startedAt}` });
      }
    }
  }

  const findings: Finding[] = [];
  const ambiguousPks = new Set<string>();
  const pairs: { l: string; c: string; ev: Evidence }[] = [];
  for (const [l, cs] of l2c) {
    const [c, ev] = [...cs.entries()][0]!;
    if (cs.size === 1 && c2l.get(c)!.size === 1) pairs.push({ l, c, ev });
    else ambiguousPks.add(l);
  }
  for (const [c, ls] of c2l) if (ls.size > 1 || [...ls.keys()].some((l) => l2c.get(l)!.size > 1)) ambiguousPks.add(c);
  for (const pk of ambiguousPks) {
    const cands = l2c.get(pk) ?? c2l.get(pk)!;
    findings.push({
      kind: 'ambiguous',
      recordingPk: pk,
      candidates: [...cands.keys()].sort(),
      rule: [...new Set([...cands.values()].map((e) => e.rule))].sort().join(','),
      detail: { side: l2c.has(pk) ? 'legacy' : 'cloud', evidence: [...cands.entries()].map(([other, e]) => ({ recording: other, rule: e.rule, value: e.value })) },
    });
  }
  stats.ambiguous = ambiguousPks.size;

  // Pairs another run merged (or a sync changed) since the candidates were read: skipped, no finding.
  for (const p of pairs) {
    // No merge once another instance may hold the crosswalk's lease, nor once the run is aborted.
    lease.check();
    stopIfAborted(ctx);
    const outcome = await link(ctx, p.l, p.c, p.ev);
    if (outcome.linked) stats.linked++;
    else if ('skipped' in outcome) stats.skipped++;
    else {
      stats.conflicts++;
      for (const [pk, other] of [
        [p.l, p.c],
        [p.c, p.l],
      ] as const) {
        findings.push({ kind: 'conflict', recordingPk: pk, candidates: [other], rule: p.ev.rule, detail: { reason: outcome.reason, value: p.ev.value } });
      }
    }
  }
  ctx.metrics?.crosswalk.inc({ result: 'linked' }, stats.linked);
  ctx.metrics?.crosswalk.inc({ result: 'ambiguous' }, stats.ambiguous);
  ctx.metrics?.crosswalk.inc({ result: 'conflict' }, stats.conflicts);

  // Integrity of the pairs (every recording with both kinds of copy): durations compared.
  const moved = stats.linked > 0 || stats.skipped > 0;
  if (moved) origins = await originsOf();
  const factsNow = moved ? await ctx.store.factsWithRecordings(t) : facts;
  const byRec = new Map<string, { legacy: number[]; cloud: number[] }>();
  for (const f of factsNow) {
    if (f.durationMs === null) continue;
    const o = origins.get(f.recordingPk);
    if (!o?.legacy || !o.cloud) continue;
    const e = byRec.get(f.recordingPk) ?? { legacy: [], cloud: [] };
    (f.origin === 'GENESYS_CLOUD' ? e.cloud : e.legacy).push(f.durationMs);
    byRec.set(f.recordingPk, e);
  }
  for (const [pk, d] of byRec) {
    if (!d.legacy.length || !d.cloud.length) continue;
    const worst = Math.max(...d.legacy.flatMap((l) => d.cloud.map((c) => Math.abs(l - c))));
    const ok = worst <= cfg.crosswalk.duration_tolerance_ms;
    if (ok) stats.integrityMatches++;
    else stats.integrityMismatches++;
    findings.push({
      kind: ok ? 'integrity_match' : 'integrity_mismatch',
      recordingPk: pk,
      candidates: [],
      rule: 'duration',
      detail: { legacy_duration_ms: d.legacy.sort((a, b) => a - b), cloud_duration_ms: d.cloud.sort((a, b) => a - b), tolerance_ms: cfg.crosswalk.duration_tolerance_ms },
    });
  }
  ctx.metrics?.crosswalk.inc({ result: 'mismatch' }, stats.integrityMismatches);

  lease.check();
  // An aborted run writes no findings: they would be computed from a walk it did not finish.
  stopIfAborted(ctx);
  const res = await ctx.store.replaceFindings(t, ['ambiguous', 'conflict', 'integrity_match', 'integrity_mismatch'], findings);
  stats.findingsChanged = res.changed;
  if (res.changed) {
    const brief = (fs: Finding[]) => fs.slice(0, 100).map((f) => ({ kind: f.kind, recording: f.recordingPk, candidates: f.candidates }));
    await ctx.audit.append({
      tenantId: t,
      principalId: ctx.principalId,
      principalKind: 'system',
      action: 'sync.crosswalk.findings',
      outcome: 'completed',
      detail: { run_id: ctx.runId, changed: res.changed, added: brief(res.added), removed: brief(res.removed) },
    });
  }
  return stats;
}

/**
 * Merges two recordings into one: the one with a call id survives (else the legacy one), the
 * other's copies, refs (its own id included, so it still resolves) and holds move over, and the
 * move is audited copy by copy. Different call ids or conversation ids on the two sides are a
 * conflict: nothing is merged. Both recordings are read inside the merge's transaction (on
 * PostgreSQL locked, in id order; SQLite's BEGIN IMMEDIATE serialises writers), and so are their
 * copies' origins: a pair that is no pair any more — one side merged away by another crosswalk, a
 * legacy side that got a cloud copy or a cloud side that got a legacy copy (a sync page, a
 * self-heal) since the candidates were read — is `skipped`, not a conflict, and has no event.
 */
async function link(ctx: SyncContext, legacyPk: string, cloudPk: string, ev: Evidence): Promise<{ linked: true } | { linked: false; skipped: string } | { linked: false; reason: string }> {
  const t = ctx.tenantId;
  const postgres = !(ctx.db.getExecutor().adapter instanceof SqliteAdapter);
  const now = new Date().toISOString();
  const maxIso = (a: string | null, b: string | null) => (a && b ? (a > b ? a : b) : (a ?? b));
  const out = await writeTransaction(ctx.db, async (trx) => {
    const recs = await trx
      .selectFrom('recordings')
      .selectAll()
      .where('tenant_id', '=', t)
      .where('id', 'in', [legacyPk, cloudPk])
      .orderBy('id')
      .$if(postgres, (q) => q.forUpdate())
      .execute();
    const L = recs.find((r) => r.id === legacyPk);
    const C = recs.find((r) => r.id === cloudPk);
    if (!L || !C) return { linked: false, skipped: 'merged away' } as const;
    // Read after the recordings' row locks: a copy filed on either since (its insert or move takes
    // a key-share lock on the recording row) has committed by now, or waits for this merge.
    // By copies_recording; the tenant only filters (filter-only.ts).
    const kinds = await trx
      .selectFrom('recording_copies')
      .select(['recording_pk', 'origin'])
      .where(filterOnly(trx, 'tenant_id'), '=', t)
      .where('recording_pk', 'in', [legacyPk, cloudPk])
      .execute();
    const has = (pk: string, origin: string) => kinds.some((k) => k.recording_pk === pk && k.origin === origin);
    const legacyOnly = has(legacyPk, 'LEGACY_ARCHIVE') && !has(legacyPk, 'GENESYS_CLOUD');
    const cloudOnly = has(cloudPk, 'GENESYS_CLOUD') && !has(cloudPk, 'LEGACY_ARCHIVE');
    if (!legacyOnly || !cloudOnly) return { linked: false, skipped: 'no longer legacy-only and cloud-only' } as const;
    if (L.call_id && C.call_id && L.call_id !== C.call_id) return { linked: false, reason: `different call ids (${L.call_id} / ${C.call_id})` } as const;
    if (L.conversation_id && C.conversation_id && L.conversation_id !== C.conversation_id) return { linked: false, reason: 'different Genesys conversation ids' } as const;
    const [S, A] = C.call_id && !L.call_id ? [C, L] : [L, C];
    const copies = await trx.selectFrom('recording_copies').select(['id', 'source_system', 'source_key', 'origin']).where('tenant_id', '=', t).where('recording_pk', '=', A.id).execute();
    await trx.updateTable('recording_copies').set({ recording_pk: S.id, updated_at: now }).where('tenant_id', '=', t).where('recording_pk', '=', A.id).execute();
    await sql`insert into recording_refs (tenant_id, value, kind, recording_pk)
      select tenant_id, value, kind, cast(${S.id} as text) from recording_refs where tenant_id = ${t} and recording_pk = ${A.id}
      on conflict do nothing`.execute(trx);
    // A legal hold follows the logical recording (holds are never deleted, nor lifted by a merge;
    // one of a matter the survivor also holds keeps its own, renamed: HoldRepository.moveHolds).
    // By holds_recording; as `tenant_id = ?` SQLite without statistics walked every hold of the tenant per merge (filter-only.ts).
    await HoldRepository.moveHolds(trx, A.id, S.id, t);
    // So do its retrieval jobs: a queued one would otherwise fail for want of its recording.
    await moveJobs(trx, A.id, S.id, t);
    // And its integrity checks, or a check of a pair this merge reunites could no longer be read.
    await moveIntegrityChecks(trx, A.id, S.id, t);
    await trx.deleteFrom('recordings').where('id', '=', A.id).execute();
    await trx
      .updateTable('recordings')
      .set({
        call_id: S.call_id ?? A.call_id,
        customer_ref: S.customer_ref ?? A.customer_ref,
        conversation_id: S.conversation_id ?? A.conversation_id,
        started_at: L.started_at ?? C.started_at,
        retention_expiry: maxIso(S.retention_expiry, A.retention_expiry),
        // No legal_hold: what holds a recording is its hold records (moved above); the column stays 0 (migration 0014).
        updated_at: now,
      })
      .where('id', '=', S.id)
      .execute();
    // The merge and its evidence commit together (the chain's lock is held from here to the commit).
    const event = await ctx.audit.appendIn(trx, {
      tenantId: t,
      principalId: ctx.principalId,
      principalKind: 'system',
      action: 'sync.crosswalk.linked',
      outcome: 'completed',
      ref: A.id,
      recordingPk: S.id,
      detail: {
        run_id: ctx.runId,
        reason: `legacy and cloud copies of one call, matched by ${ev.rule}`,
        rule: ev.rule,
        value: ev.value,
        survivor: S.id,
        absorbed: A.id,
        moved: copies.map((c) => ({ copy_id: c.id, source_system: c.source_system, source_key: c.source_key, origin: c.origin, old_recording: A.id, new_recording: S.id })),
      },
    });
    return { linked: true, event } as const;
  });
  if (!out.linked) return out;
  ctx.audit.published([out.event]);
  return { linked: true };
}
