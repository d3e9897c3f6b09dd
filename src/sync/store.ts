import { randomUUID } from 'node:crypto';
import type { Kysely, Selectable } from 'kysely';
import { filterOnly } from '../catalog/filter-only.js';
import type { CatalogRecord } from '../catalog/record.js';
import { lockChunkKeys, sourceKeyOf } from '../catalog/recording-repository.js';
import { AppError } from '../errors.js';
import type { Database, RecordingCopiesTable, SyncFactsTable } from '../catalog/tables.js';

export interface CursorRow {
  /** Where an unfinished run stands; null once it finished. */
  cursor: unknown;
  /**
   * What a source's runs hand on to the next, finished or not (the Genesys sync: the conversations
   * a 403 made it skip, to retry). Stored in the cursor column beside the position (`carry`), and
   * kept there when a run succeeds; undefined when there is none.
   */
  carry: unknown;
  syncedUntil: string | null;
  lastSuccessAt: string | null;
}

export interface Finding {
  kind: 'ambiguous' | 'conflict' | 'integrity_match' | 'integrity_mismatch';
  recordingPk: string;
  candidates: string[];
  rule: string | null;
  detail: Record<string, unknown> | null;
}

export interface Facts {
  sourceSystem: string;
  sourceKey: string;
  startedAt: string | null;
  durationMs: number | null;
  ani: string | null;
  dnis: string | null;
  archiveDate: string | null;
}

const FACT_BATCH = 200;

export type CopyRow = Selectable<RecordingCopiesTable>;
/** A copy's natural key within a tenant, as one map key. */
export const natKey = (sourceSystem: string, sourceKey: string) => `${sourceSystem}\u0000${sourceKey}`;
/** The copy key the catalog files a record under. */
export { sourceKeyOf };

/** All SQL of the sync's own tables. Every statement is scoped by tenant. */
export class SyncStore {
  constructor(private readonly db: Kysely<Database>) {}

  /**
   * Takes the lease of (tenant, source) for `leaseMs` with one atomic UPDATE: free, expired or
   * already ours. Another instance holding a live lease gets `sync.busy`.
   */
  async claim(tenantId: string, source: string, owner: string, leaseMs: number): Promise<void> {
    const now = new Date();
    await this.db
      .insertInto('sync_cursors')
      .values({ tenant_id: tenantId, source, cursor: null, synced_until: null, last_success_at: null, lease_owner: null, lease_until: null, run_id: null, updated_at: now.toISOString() })
      .onConflict((oc) => oc.doNothing())
      .execute();
    const r = await this.db
      .updateTable('sync_cursors')
      .set({ lease_owner: owner, lease_until: new Date(now.getTime() + leaseMs).toISOString(), updated_at: now.toISOString() })
      .where('tenant_id', '=', tenantId)
      .where('source', '=', source)
      .where((eb) => eb.or([eb('lease_owner', 'is', null), eb('lease_until', '<', now.toISOString()), eb('lease_owner', '=', owner)]))
      .executeTakeFirst();
    if (Number(r.numUpdatedRows) !== 1) throw new AppError('sync.busy', `a sync of source "${source}" for tenant "${tenantId}" is already running`);
  }

  /** Extends the lease; false when another owner took it over (ours had expired). */
  async heartbeat(tenantId: string, source: string, owner: string, leaseMs: number): Promise<boolean> {
    const r = await this.db
      .updateTable('sync_cursors')
      .set({ lease_until: new Date(Date.now() + leaseMs).toISOString() })
      .where('tenant_id', '=', tenantId)
      .where('source', '=', source)
      .where('lease_owner', '=', owner)
      .executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  }

  /**
   * Keeps a lease for a step that saves no cursor as it goes (the crosswalk): a heartbeat every
   * third of `leaseMs` on a timer. `check()` throws `sync.busy`, as a source run that loses its
   * lease does, once a heartbeat found the lease taken by another owner, or when none has succeeded
   * for `leaseMs` since `since` (the claim): the database was unreachable or the event loop stalled
   * for that long, so another instance may hold the lease by now. `stop()` ends the timer and waits
   * for a heartbeat in flight (call it before releasing).
   */
  keepLease(tenantId: string, source: string, owner: string, leaseMs: number, since = Date.now()): { check(): void; stop(): Promise<void> } {
    let lastOk = since;
    let lost = false;
    let inFlight: Promise<void> | undefined;
    const beat = () => {
      if (inFlight || lost) return;
      const sentAt = Date.now();
      inFlight = this.heartbeat(tenantId, source, owner, leaseMs)
        .then(
          (held) => {
            if (held) lastOk = Math.max(lastOk, sentAt);
            else lost = true;
          },
          () => {}, // counted by lastOk: check() fails once no heartbeat has succeeded for leaseMs
        )
        .finally(() => (inFlight = undefined));
    };
    const timer = setInterval(beat, Math.max(50, Math.floor(leaseMs / 3)));
    timer.unref();
    return {
      check: () => {
        if (lost || Date.now() - lastOk >= leaseMs) throw new AppError('sync.busy', 'the sync lost its lease to another instance');
      },
      stop: async () => {
        clearInterval(timer);
        await inFlight;
      },
    };
  }

  async release(tenantId: string, source: string, owner: string): Promise<void> {
    await this.db
      .updateTable('sync_cursors')
      .set({ lease_owner: null, lease_until: null })
      .where('tenant_id', '=', tenantId)
      .where('source', '=', source)
      .where('lease_owner', '=', owner)
      .execute();
  }

  async read(tenantId: string, source: string): Promise<CursorRow> {
    const r = await this.db.selectFrom('sync_cursors').selectAll().where('tenant_id', '=', tenantId).where('source', '=', source).executeTakeFirst();
    const { cursor, carry } = splitCursor(r?.cursor ?? null);
    return { cursor, carry, syncedUntil: r?.synced_until ?? null, lastSuccessAt: r?.last_success_at ?? null };
  }

  /**
   * Saves the position of a run, and with `carry` what the next runs must be handed, only while the
   * lease is ours (a run that lost its lease must stop). Without `carry`, none is kept.
   */
  async saveCursor(tenantId: string, source: string, owner: string, cursor: unknown, carry?: unknown): Promise<void> {
    const stored = carry === undefined ? cursor : { ...(cursor as object | null), carry };
    const r = await this.db
      .updateTable('sync_cursors')
      .set({ cursor: stored === null ? null : JSON.stringify(stored), updated_at: new Date().toISOString() })
      .where('tenant_id', '=', tenantId)
      .where('source', '=', source)
      .where('lease_owner', '=', owner)
      .executeTakeFirst();
    if (Number(r.numUpdatedRows) !== 1) throw new AppError('sync.busy', 'the sync lost its lease to another instance');
  }

  /** Ends a run well: the position is dropped, its `carry` kept for the next run. */
  async succeed(tenantId: string, source: string, owner: string, syncedUntil: string | null): Promise<void> {
    const now = new Date().toISOString();
    const row = await this.db.selectFrom('sync_cursors').select('cursor').where('tenant_id', '=', tenantId).where('source', '=', source).where('lease_owner', '=', owner).executeTakeFirst();
    const { carry } = splitCursor(row?.cursor ?? null);
    await this.db
      .updateTable('sync_cursors')
      .set({ cursor: carry === undefined ? null : JSON.stringify({ carry }), ...(syncedUntil ? { synced_until: syncedUntil } : {}), last_success_at: now, updated_at: now })
      .where('tenant_id', '=', tenantId)
      .where('source', '=', source)
      .where('lease_owner', '=', owner)
      .execute();
  }

  async startRun(tenantId: string, source: string, kind: string, range: { from?: string; to?: string }): Promise<string> {
    const id = randomUUID();
    await this.db
      .insertInto('sync_runs')
      .values({ id, tenant_id: tenantId, source, kind, status: 'running', started_at: new Date().toISOString(), finished_at: null, range_from: range.from ?? null, range_to: range.to ?? null, stats: null, error: null })
      .execute();
    return id;
  }

  async finishRun(id: string, status: 'succeeded' | 'failed', stats: object, error?: string): Promise<void> {
    await this.db
      .updateTable('sync_runs')
      .set({ status, finished_at: new Date().toISOString(), stats: JSON.stringify(stats), error: error ?? null })
      .where('id', '=', id)
      .execute();
  }

  async runs(tenantId: string, limit = 20): Promise<{ id: string; source: string; kind: string; status: string; startedAt: string; finishedAt: string | null; stats: unknown; error: string | null }[]> {
    const rows = await this.db.selectFrom('sync_runs').selectAll().where('tenant_id', '=', tenantId).orderBy('started_at', 'desc').limit(limit).execute();
    return rows.map((r) => ({ id: r.id, source: r.source, kind: r.kind, status: r.status, startedAt: r.started_at, finishedAt: r.finished_at, stats: r.stats ? JSON.parse(r.stats) : null, error: r.error }));
  }

  /** Writes the facts that differ from the stored ones; returns how many changed. */
  async putFacts(tenantId: string, facts: Facts[]): Promise<number> {
    let changed = 0;
    for (let i = 0; i < facts.length; i += FACT_BATCH) {
      const batch = facts.slice(i, i + FACT_BATCH);
      const keys = [...new Set(batch.map((f) => f.sourceKey))];
      const systems = [...new Set(batch.map((f) => f.sourceSystem))];
      // The whole key (tenant, source_system, source_key): with source_key alone beside the
      // tenant, every batch read all the facts of the tenant (27 ms a batch at 100 000, now 2.5 ms).
      const stored = await this.db.selectFrom('sync_facts').selectAll().where('tenant_id', '=', tenantId).where('source_system', 'in', systems).where('source_key', 'in', keys).execute();
      const byKey = new Map(stored.map((s) => [`${s.source_system}\u0000${s.source_key}`, s]));
      const now = new Date().toISOString();
      const rows = new Map<string, Selectable<SyncFactsTable>>();
      for (const f of batch) {
        const k = `${f.sourceSystem}\u0000${f.sourceKey}`;
        const s = byKey.get(k);
        const row = { started_at: f.startedAt, duration_ms: f.durationMs, ani: f.ani, dnis: f.dnis, archive_date: f.archiveDate };
        if (s && s.started_at === row.started_at && num(s.duration_ms) === row.duration_ms && s.ani === row.ani && s.dnis === row.dnis && s.archive_date === row.archive_date) continue;
        rows.set(k, { tenant_id: tenantId, source_system: f.sourceSystem, source_key: f.sourceKey, ...row, updated_at: now });
      }
      if (!rows.size) continue;
      changed += rows.size;
      await this.db
        .insertInto('sync_facts')
        .values([...rows.values()])
        .onConflict((oc) =>
          oc.columns(['tenant_id', 'source_system', 'source_key']).doUpdateSet((eb) => ({
            started_at: eb.ref('excluded.started_at'),
            duration_ms: eb.ref('excluded.duration_ms'),
            ani: eb.ref('excluded.ani'),
            dnis: eb.ref('excluded.dnis'),
            archive_date: eb.ref('excluded.archive_date'),
            updated_at: eb.ref('excluded.updated_at'),
          })),
        )
        .execute();
    }
    return changed;
  }

  /** Facts of every copy of the tenant, with the recording each copy belongs to now. */
  async factsWithRecordings(tenantId: string): Promise<(Facts & { recordingPk: string; origin: string })[]> {
    const rows = await this.db
      .selectFrom('sync_facts as f')
      .innerJoin('recording_copies as c', (j) => j.onRef('c.tenant_id', '=', 'f.tenant_id').onRef('c.source_system', '=', 'f.source_system').onRef('c.source_key', '=', 'f.source_key'))
      .select(['f.source_system', 'f.source_key', 'f.started_at', 'f.duration_ms', 'f.ani', 'f.dnis', 'f.archive_date', 'c.recording_pk', 'c.origin'])
      .where('f.tenant_id', '=', tenantId)
      .execute();
    return rows.map((r) => ({
      sourceSystem: r.source_system,
      sourceKey: r.source_key,
      startedAt: r.started_at,
      durationMs: num(r.duration_ms),
      ani: r.ani,
      dnis: r.dnis,
      archiveDate: r.archive_date,
      recordingPk: r.recording_pk,
      origin: r.origin,
    }));
  }

  /**
   * PostgreSQL, inside the caller's write transaction: takes the locks the catalog's upsert of
   * these records takes (recording-repository.ts lockChunkKeys; re-entrant, counted once), before
   * the page reads what it will diff against. Under READ COMMITTED a read earlier in the
   * transaction sees no lock: a self-heal or an import writing the same copy could commit between
   * that read and the page's write, and the audited `old` values would be the ones from before
   * that commit. SQLite: nothing, its BEGIN IMMEDIATE already serialises writers.
   */
  async lockForUpsert(records: CatalogRecord[]): Promise<void> {
    await lockChunkKeys(this.db, records);
  }

  /** The tenant's copies with these natural keys, by natKey. */
  async copiesByKey(tenantId: string, systems: string[], keys: string[]): Promise<Map<string, CopyRow>> {
    const out = new Map<string, CopyRow>();
    for (let i = 0; i < keys.length; i += 500) {
      const part = keys.slice(i, i + 500);
      // All three columns of copies_natural_key: with source_key alone beside the tenant, SQLite
      // read every copy of the tenant, twice a page (with the recordings read below: 150 ms a page
      // of 200 at 150 000 copies, now 27 ms).
      const rows = await this.db
        .selectFrom('recording_copies')
        .selectAll()
        .where('tenant_id', '=', tenantId)
        .where('source_system', 'in', systems)
        .where('source_key', 'in', part)
        .execute();
      for (const r of rows) out.set(natKey(r.source_system, r.source_key), r);
    }
    return out;
  }

  /** The recording-level fields a sync never overwrites once known, of these recordings, by id. */
  async knownRecordingFields(tenantId: string, ids: string[]): Promise<Map<string, { started_at: string | null; retention_expiry: string | null; customer_ref: string | null }>> {
    const out = new Map<string, { started_at: string | null; retention_expiry: string | null; customer_ref: string | null }>();
    for (let i = 0; i < ids.length; i += 500) {
      // The ids drive the search (primary key), the tenant only filters: as `tenant_id = ?`
      // SQLite without statistics read every recording of the tenant instead (filter-only.ts).
      const rows = await this.db
        .selectFrom('recordings')
        .select(['id', 'started_at', 'retention_expiry', 'customer_ref'])
        .where(filterOnly(this.db, 'tenant_id'), '=', tenantId)
        .where('id', 'in', ids.slice(i, i + 500))
        .execute();
      for (const r of rows) out.set(r.id, r);
    }
    return out;
  }

  async findings(tenantId: string): Promise<Finding[]> {
    const rows = await this.db.selectFrom('crosswalk_findings').selectAll().where('tenant_id', '=', tenantId).orderBy('kind').orderBy('recording_pk').execute();
    return rows.map((r) => ({
      kind: r.kind as Finding['kind'],
      recordingPk: r.recording_pk,
      candidates: JSON.parse(r.candidates) as string[],
      rule: r.rule,
      detail: r.detail ? (JSON.parse(r.detail) as Record<string, unknown>) : null,
    }));
  }

  /**
   * Makes the stored findings of the given kinds equal to `next`: inserts new ones, rewrites
   * changed ones, deletes resolved ones. Returns the number of rows changed (0 when nothing moved).
   */
  async replaceFindings(tenantId: string, kinds: Finding['kind'][], next: Finding[]): Promise<{ added: Finding[]; removed: Finding[]; changed: number }> {
    const current = (await this.findings(tenantId)).filter((f) => kinds.includes(f.kind));
    const key = (f: Finding) => `${f.kind}\u0000${f.recordingPk}`;
    const ser = (f: Finding) => JSON.stringify([f.candidates, f.rule, f.detail]);
    const cur = new Map(current.map((f) => [key(f), f]));
    const nxt = new Map(next.map((f) => [key(f), f]));
    const added: Finding[] = [];
    const removed: Finding[] = [];
    let changed = 0;
    const now = new Date().toISOString();
    for (const [k, f] of nxt) {
      const c = cur.get(k);
      if (c && ser(c) === ser(f)) continue;
      changed++;
      if (!c) added.push(f);
      const row = { candidates: JSON.stringify(f.candidates), rule: f.rule, detail: f.detail ? JSON.stringify(f.detail) : null };
      await this.db
        .insertInto('crosswalk_findings')
        .values({ tenant_id: tenantId, kind: f.kind, recording_pk: f.recordingPk, ...row, created_at: now })
        .onConflict((oc) => oc.columns(['tenant_id', 'kind', 'recording_pk']).doUpdateSet(row))
        .execute();
    }
    for (const [k, c] of cur) {
      if (nxt.has(k)) continue;
      changed++;
      removed.push(c);
      await this.db.deleteFrom('crosswalk_findings').where('tenant_id', '=', tenantId).where('kind', '=', c.kind).where('recording_pk', '=', c.recordingPk).execute();
    }
    return { added, removed, changed };
  }
}

/** The stored cursor column: a run's position (null when none) and the `carry` beside it. */
function splitCursor(text: string | null): { cursor: unknown; carry: unknown } {
  if (!text) return { cursor: null, carry: undefined };
  const parsed = JSON.parse(text) as unknown;
  if (!parsed || typeof parsed !== 'object' || !('carry' in parsed)) return { cursor: parsed, carry: undefined };
  const { carry, ...rest } = parsed as { carry: unknown };
  return { cursor: Object.keys(rest).length ? rest : null, carry };
}

function num(v: number | string | null): number | null {
  return v === null ? null : Number(v);
}
