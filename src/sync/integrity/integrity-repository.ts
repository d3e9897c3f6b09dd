import { type Kysely, type Selectable, sql } from 'kysely';
import type { Database, IntegrityChecksTable } from '../../catalog/tables.js';

export const VERDICTS = ['identical', 'match', 'mismatch', 'unreadable'] as const;
export type Verdict = (typeof VERDICTS)[number];

/** One side of a compared pair. */
export interface SideResult {
  copyId: string | null;
  durationMs: number | null;
  pcmSha256: string | null;
}

/** A stored verdict (one row of integrity_checks). */
export interface IntegrityCheck {
  id: string;
  tenantId: string;
  recordingPk: string;
  verdict: Verdict;
  similarity: number | null;
  offsetMs: number | null;
  legacy: SideResult;
  cloud: SideResult;
  errorCode: string | null;
  detail: Record<string, unknown>;
  trigger: 'on_demand' | 'sample';
  checkedBy: string;
  checkedAt: string;
}

/**
 * Recordings of the tenant holding a legacy copy and a cloud copy that exist: a DELETED copy (the
 * sync keeps a vanished copy so, never removes it) is no side of a pair, as in the migration
 * report's `both` and its integrity counts (report.ts). An ERROR copy still exists and counts.
 */
function pairs(db: Kysely<Database>, tenantId: string) {
  return db
    .selectFrom('recording_copies')
    .select('recording_pk')
    .where('tenant_id', '=', tenantId)
    .where('state', '!=', 'DELETED')
    .groupBy('recording_pk')
    .having(sql<boolean>`sum(case when origin = 'GENESYS_CLOUD' then 1 else 0 end) > 0 and sum(case when origin = 'GENESYS_CLOUD' then 0 else 1 end) > 0`);
}

/** All SQL of the integrity checks; every statement is scoped by tenant. */
export class IntegrityRepository {
  constructor(private readonly db: Kysely<Database>) {}

  async insert(c: IntegrityCheck): Promise<void> {
    await this.db
      .insertInto('integrity_checks')
      .values({
        id: c.id,
        tenant_id: c.tenantId,
        recording_pk: c.recordingPk,
        verdict: c.verdict,
        similarity: c.similarity,
        offset_ms: c.offsetMs,
        legacy_copy_id: c.legacy.copyId,
        cloud_copy_id: c.cloud.copyId,
        legacy_duration_ms: c.legacy.durationMs,
        cloud_duration_ms: c.cloud.durationMs,
        legacy_pcm_sha256: c.legacy.pcmSha256,
        cloud_pcm_sha256: c.cloud.pcmSha256,
        error_code: c.errorCode,
        detail: JSON.stringify(c.detail),
        trigger: c.trigger,
        checked_by: c.checkedBy,
        checked_at: c.checkedAt,
      })
      .execute();
  }

  /** The latest verdict of every checked recording of the tenant (older checks stay in the table, unread). */
  async latest(tenantId: string): Promise<Map<string, IntegrityCheck>> {
    const rows = await this.db
      .selectFrom('integrity_checks as c')
      .selectAll()
      .where('c.tenant_id', '=', tenantId)
      .where('c.checked_at', '=', (eb) =>
        eb.selectFrom('integrity_checks as n').select((e) => e.fn.max('n.checked_at').as('m')).where('n.tenant_id', '=', tenantId).whereRef('n.recording_pk', '=', 'c.recording_pk'),
      )
      // Two checks in the same millisecond: the greatest id wins, the same one on every read.
      .orderBy('c.id')
      .execute();
    const out = new Map<string, IntegrityCheck>();
    for (const r of rows) out.set(r.recording_pk, toCheck(r));
    return out;
  }

  /** A recording's checks, newest first. */
  async history(tenantId: string, recordingPk: string, limit = 20): Promise<IntegrityCheck[]> {
    const rows = await this.db
      .selectFrom('integrity_checks')
      .selectAll()
      .where('tenant_id', '=', tenantId)
      .where('recording_pk', '=', recordingPk)
      .orderBy('checked_at', 'desc')
      .orderBy('id', 'desc')
      .limit(limit)
      .execute();
    return rows.map(toCheck);
  }

  /** How many pairs the tenant has, and how many of them were never checked. */
  async pairCounts(tenantId: string): Promise<{ pairs: number; neverChecked: number }> {
    const r = await this.db
      .selectFrom(pairs(this.db, tenantId).as('p'))
      .select((eb) => [
        eb.fn.countAll<number | string>().as('pairs'),
        eb.fn
          .sum<number | string | null>(
            sql`case when exists (select 1 from integrity_checks i where i.tenant_id = ${tenantId} and i.recording_pk = p.recording_pk) then 0 else 1 end`,
          )
          .as('never'),
      ])
      .executeTakeFirstOrThrow();
    return { pairs: Number(r.pairs), neverChecked: Number(r.never ?? 0) };
  }

  /** `n` distinct pairs of the tenant picked at random (random() exists in SQLite and PostgreSQL). */
  async samplePairs(tenantId: string, n: number): Promise<string[]> {
    if (n <= 0) return [];
    const rows = await this.db
      .selectFrom(pairs(this.db, tenantId).as('p'))
      .select('p.recording_pk')
      .orderBy(sql`random()`)
      .limit(n)
      .execute();
    return rows.map((r) => r.recording_pk);
  }
}

function num(v: number | string | null): number | null {
  return v === null ? null : Number(v);
}

function toCheck(r: Selectable<IntegrityChecksTable>): IntegrityCheck {
  return {
    id: r.id,
    tenantId: r.tenant_id,
    recordingPk: r.recording_pk,
    verdict: r.verdict as Verdict,
    similarity: r.similarity === null ? null : Number(r.similarity),
    offsetMs: r.offset_ms === null ? null : Number(r.offset_ms),
    legacy: { copyId: r.legacy_copy_id, durationMs: num(r.legacy_duration_ms), pcmSha256: r.legacy_pcm_sha256 },
    cloud: { copyId: r.cloud_copy_id, durationMs: num(r.cloud_duration_ms), pcmSha256: r.cloud_pcm_sha256 },
    errorCode: r.error_code,
    detail: r.detail ? (JSON.parse(r.detail) as Record<string, unknown>) : {},
    trigger: r.trigger as IntegrityCheck['trigger'],
    checkedBy: r.checked_by,
    checkedAt: r.checked_at,
  };
}
