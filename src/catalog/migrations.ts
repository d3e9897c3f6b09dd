import { randomUUID } from 'node:crypto';
import { type Kysely, type Migration, type MigrationProvider, Migrator, sql } from 'kysely';
import type { Dialect } from './database.js';

/**
 * Migrations are code, ordered by name, identical for SQLite and PostgreSQL except where a
 * dialect needs its own words (identity column, triggers). Never edit a released migration; add one.
 */
function migrations(dialect: Dialect): Record<string, Migration> {
  return {
    '0001_catalog': {
      async up(db: Kysely<any>) {
        await db.schema
          .createTable('recordings')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('tenant_id', 'text', (c) => c.notNull())
          .addColumn('call_id', 'text')
          .addColumn('customer_ref', 'text')
          .addColumn('conversation_id', 'text')
          .addColumn('started_at', 'text')
          .addColumn('retention_expiry', 'text')
          .addColumn('legal_hold', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('created_at', 'text', (c) => c.notNull())
          .addColumn('updated_at', 'text', (c) => c.notNull())
          .execute();
        // One logical recording per call id within a tenant: imports group copies by it.
        await db.schema.createIndex('recordings_tenant_started').on('recordings').columns(['tenant_id', 'started_at']).execute();
        await sql`create unique index recordings_tenant_call on recordings (tenant_id, call_id) where call_id is not null`.execute(db);

        await db.schema
          .createTable('recording_copies')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('recording_pk', 'text', (c) => c.notNull().references('recordings.id').onDelete('cascade'))
          .addColumn('tenant_id', 'text', (c) => c.notNull())
          .addColumn('source_system', 'text', (c) => c.notNull())
          .addColumn('origin', 'text', (c) => c.notNull())
          .addColumn('connector', 'text')
          .addColumn('storage_location', 'text')
          .addColumn('locator', 'text')
          .addColumn('genesys_recording_id', 'text')
          .addColumn('legacy_archive_id', 'text')
          .addColumn('source_key', 'text', (c) => c.notNull())
          .addColumn('state', 'text', (c) => c.notNull().defaultTo('AVAILABLE'))
          .addColumn('codec', 'text')
          .addColumn('size_bytes', 'bigint')
          .addColumn('sha256', 'text')
          .addColumn('encryption_status', 'text')
          .addColumn('key_id', 'text')
          .addColumn('source_retention_expiry', 'text')
          .addColumn('created_at', 'text', (c) => c.notNull())
          .addColumn('updated_at', 'text', (c) => c.notNull())
          .execute();
        await db.schema.createIndex('copies_natural_key').unique().on('recording_copies').columns(['tenant_id', 'source_system', 'source_key']).execute();
        await db.schema.createIndex('copies_recording').on('recording_copies').column('recording_pk').execute();

        await db.schema
          .createTable('recording_refs')
          .addColumn('tenant_id', 'text', (c) => c.notNull())
          .addColumn('value', 'text', (c) => c.notNull())
          .addColumn('kind', 'text', (c) => c.notNull())
          .addColumn('recording_pk', 'text', (c) => c.notNull().references('recordings.id').onDelete('cascade'))
          .addPrimaryKeyConstraint('recording_refs_pk', ['tenant_id', 'value', 'kind', 'recording_pk'])
          .execute();
        await db.schema.createIndex('refs_recording').on('recording_refs').column('recording_pk').execute();
        await db.schema.createIndex('refs_value').on('recording_refs').column('value').execute();

        await db.schema
          .createTable('api_keys')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('tenant_id', 'text', (c) => c.notNull())
          .addColumn('principal_id', 'text', (c) => c.notNull())
          .addColumn('scopes', 'text', (c) => c.notNull())
          .addColumn('key_hash', 'text', (c) => c.notNull())
          .addColumn('description', 'text')
          .addColumn('created_at', 'text', (c) => c.notNull())
          .addColumn('revoked_at', 'text')
          .execute();

        await db.schema
          .createTable('retrieve_requests')
          .addColumn('tenant_id', 'text', (c) => c.notNull())
          .addColumn('request_id', 'text', (c) => c.notNull())
          .addColumn('body_hash', 'text', (c) => c.notNull())
          .addColumn('recording_pk', 'text')
          .addColumn('created_at', 'text', (c) => c.notNull())
          .addPrimaryKeyConstraint('retrieve_requests_pk', ['tenant_id', 'request_id'])
          .execute();
      },
    },
    '0002_audit': {
      async up(db: Kysely<any>) {
        await db.schema
          .createTable('audit_events')
          .addColumn('seq', dialect === 'postgres' ? 'bigint' : 'integer', (c) =>
            dialect === 'postgres' ? c.primaryKey().generatedAlwaysAsIdentity() : c.primaryKey().autoIncrement(),
          )
          .addColumn('id', 'text', (c) => c.notNull().unique())
          .addColumn('occurred_at', 'text', (c) => c.notNull())
          .addColumn('tenant_id', 'text')
          .addColumn('principal_id', 'text')
          .addColumn('principal_kind', 'text')
          .addColumn('caller_id', 'text')
          .addColumn('request_id', 'text')
          .addColumn('audit_log_id', 'text')
          .addColumn('http_request_id', 'text')
          .addColumn('action', 'text', (c) => c.notNull())
          .addColumn('ref', 'text')
          .addColumn('recording_pk', 'text')
          .addColumn('copy_id', 'text')
          .addColumn('origin', 'text')
          .addColumn('outcome', 'text', (c) => c.notNull())
          .addColumn('status', 'integer')
          .addColumn('error_code', 'text')
          .addColumn('bytes_sent', 'bigint')
          .addColumn('sha256', 'text')
          .addColumn('client_ip', 'text')
          .addColumn('user_agent', 'text')
          .addColumn('related_event_id', 'text')
          .addColumn('detail', 'text')
          .addColumn('prev_hash', 'text', (c) => c.notNull())
          .addColumn('hash', 'text', (c) => c.notNull())
          .execute();
        await db.schema.createIndex('audit_tenant_time').on('audit_events').columns(['tenant_id', 'occurred_at']).execute();
        await db.schema.createIndex('audit_recording').on('audit_events').columns(['recording_pk']).execute();
        await db.schema.createIndex('audit_principal').on('audit_events').columns(['principal_id']).execute();

        // The trail is append-only at the database too, not only by convention in our code.
        if (dialect === 'postgres') {
          await sql`create or replace function audit_events_append_only() returns trigger language plpgsql as $$
            begin raise exception 'audit_events is append-only'; end $$`.execute(db);
          await sql`create trigger audit_events_no_change before update or delete on audit_events
            for each row execute function audit_events_append_only()`.execute(db);
          await sql`create trigger audit_events_no_truncate before truncate on audit_events
            for each statement execute function audit_events_append_only()`.execute(db);
        } else {
          await sql`create trigger audit_events_no_update before update on audit_events
            begin select raise(abort, 'audit_events is append-only'); end`.execute(db);
          await sql`create trigger audit_events_no_delete before delete on audit_events
            begin select raise(abort, 'audit_events is append-only'); end`.execute(db);
        }
      },
    },
    '0003_jobs': {
      async up(db: Kysely<any>) {
        await db.schema
          .createTable('jobs')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('tenant_id', 'text', (c) => c.notNull())
          .addColumn('principal_id', 'text', (c) => c.notNull())
          .addColumn('caller_id', 'text')
          .addColumn('request_id', 'text')
          .addColumn('audit_log_id', 'text')
          .addColumn('ref', 'text', (c) => c.notNull())
          .addColumn('recording_pk', 'text', (c) => c.notNull())
          .addColumn('format', 'text', (c) => c.notNull())
          .addColumn('status', 'text', (c) => c.notNull())
          .addColumn('origin', 'text')
          .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('max_attempts', 'integer', (c) => c.notNull())
          .addColumn('run_after', 'text', (c) => c.notNull())
          .addColumn('lease_owner', 'text')
          .addColumn('lease_until', 'text')
          .addColumn('bytes_done', 'bigint', (c) => c.notNull().defaultTo(0))
          .addColumn('bytes_total', 'bigint')
          .addColumn('error_code', 'text')
          .addColumn('error_detail', 'text')
          .addColumn('source_state', 'text')
          .addColumn('copy_id', 'text')
          .addColumn('content_type', 'text')
          .addColumn('codec', 'text')
          .addColumn('transcoded', 'integer')
          .addColumn('sha256', 'text')
          .addColumn('staging_key', 'text')
          .addColumn('dek_key_id', 'text')
          .addColumn('dek_wrapped', 'text')
          .addColumn('expires_at', 'text')
          .addColumn('created_at', 'text', (c) => c.notNull())
          .addColumn('updated_at', 'text', (c) => c.notNull())
          .execute();
        await sql`create unique index jobs_tenant_request on jobs (tenant_id, request_id) where request_id is not null`.execute(db);
        await db.schema.createIndex('jobs_claim').on('jobs').columns(['status', 'run_after']).execute();
      },
    },
    '0004_evidence': {
      async up(db: Kysely<any>) {
        // Signed statements "the chain had N events and its head at seq S was H"; append-only like the events.
        await db.schema
          .createTable('audit_checkpoints')
          .addColumn('id', dialect === 'postgres' ? 'bigint' : 'integer', (c) =>
            dialect === 'postgres' ? c.primaryKey().generatedAlwaysAsIdentity() : c.primaryKey().autoIncrement(),
          )
          .addColumn('last_seq', 'bigint', (c) => c.notNull().unique())
          .addColumn('last_hash', 'text', (c) => c.notNull())
          .addColumn('event_count', 'bigint', (c) => c.notNull())
          .addColumn('created_at', 'text', (c) => c.notNull())
          .addColumn('key_id', 'text', (c) => c.notNull())
          .addColumn('algorithm', 'text', (c) => c.notNull())
          .addColumn('signature', 'text', (c) => c.notNull())
          .execute();
        if (dialect === 'postgres') {
          await sql`create or replace function audit_checkpoints_append_only() returns trigger language plpgsql as $$
            begin raise exception 'audit_checkpoints is append-only'; end $$`.execute(db);
          await sql`create trigger audit_checkpoints_no_change before update or delete on audit_checkpoints
            for each row execute function audit_checkpoints_append_only()`.execute(db);
          await sql`create trigger audit_checkpoints_no_truncate before truncate on audit_checkpoints
            for each statement execute function audit_checkpoints_append_only()`.execute(db);
        } else {
          await sql`create trigger audit_checkpoints_no_update before update on audit_checkpoints
            begin select raise(abort, 'audit_checkpoints is append-only'); end`.execute(db);
          await sql`create trigger audit_checkpoints_no_delete before delete on audit_checkpoints
            begin select raise(abort, 'audit_checkpoints is append-only'); end`.execute(db);
        }

        // Legal holds are records of their own: who placed one, why, and who (two people) lifted it.
        await db.schema
          .createTable('legal_holds')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('tenant_id', 'text', (c) => c.notNull())
          // No cascade: a recording under hold cannot be deleted from the catalog.
          .addColumn('recording_pk', 'text', (c) => c.notNull().references('recordings.id'))
          .addColumn('matter', 'text', (c) => c.notNull())
          .addColumn('reason', 'text', (c) => c.notNull())
          .addColumn('created_by', 'text', (c) => c.notNull())
          .addColumn('created_at', 'text', (c) => c.notNull())
          .addColumn('released_by', 'text')
          .addColumn('released_at', 'text')
          .addColumn('release_requested_by', 'text')
          .addColumn('release_requested_at', 'text')
          .execute();
        await db.schema.createIndex('holds_recording').on('legal_holds').columns(['recording_pk', 'released_at']).execute();
        await db.schema.createIndex('holds_tenant_created').on('legal_holds').columns(['tenant_id', 'created_at', 'id']).execute();
        await sql`create unique index holds_active_matter on legal_holds (tenant_id, recording_pk, matter) where released_at is null`.execute(db);
        // A hold is released, never deleted.
        if (dialect === 'postgres') {
          await sql`create or replace function legal_holds_no_delete() returns trigger language plpgsql as $$
            begin raise exception 'legal_holds are released, never deleted'; end $$`.execute(db);
          await sql`create trigger legal_holds_no_delete before delete on legal_holds
            for each row execute function legal_holds_no_delete()`.execute(db);
          await sql`create trigger legal_holds_no_truncate before truncate on legal_holds
            for each statement execute function legal_holds_no_delete()`.execute(db);
        } else {
          await sql`create trigger legal_holds_no_delete before delete on legal_holds
            begin select raise(abort, 'legal_holds are released, never deleted'); end`.execute(db);
        }
      },
    },
    '0006_sync': {
      async up(db: Kysely<any>) {
        // Migration sync (src/sync/): lease + resume cursor per (tenant, source), run history,
        // copy facts the catalog has no column for, and crosswalk findings.
        await db.schema
          .createTable('sync_cursors')
          .addColumn('tenant_id', 'text', (c) => c.notNull())
          .addColumn('source', 'text', (c) => c.notNull())
          .addColumn('cursor', 'text')
          .addColumn('synced_until', 'text')
          .addColumn('last_success_at', 'text')
          .addColumn('lease_owner', 'text')
          .addColumn('lease_until', 'text')
          .addColumn('run_id', 'text')
          .addColumn('updated_at', 'text', (c) => c.notNull())
          .addPrimaryKeyConstraint('sync_cursors_pk', ['tenant_id', 'source'])
          .execute();
        await db.schema
          .createTable('sync_runs')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('tenant_id', 'text', (c) => c.notNull())
          .addColumn('source', 'text', (c) => c.notNull())
          .addColumn('kind', 'text', (c) => c.notNull())
          .addColumn('status', 'text', (c) => c.notNull())
          .addColumn('started_at', 'text', (c) => c.notNull())
          .addColumn('finished_at', 'text')
          .addColumn('range_from', 'text')
          .addColumn('range_to', 'text')
          .addColumn('stats', 'text')
          .addColumn('error', 'text')
          .execute();
        await db.schema.createIndex('sync_runs_tenant_source').on('sync_runs').columns(['tenant_id', 'source', 'started_at']).execute();
        await db.schema
          .createTable('sync_facts')
          .addColumn('tenant_id', 'text', (c) => c.notNull())
          .addColumn('source_system', 'text', (c) => c.notNull())
          .addColumn('source_key', 'text', (c) => c.notNull())
          .addColumn('started_at', 'text')
          .addColumn('duration_ms', 'bigint')
          .addColumn('ani', 'text')
          .addColumn('dnis', 'text')
          .addColumn('archive_date', 'text')
          .addColumn('updated_at', 'text', (c) => c.notNull())
          .addPrimaryKeyConstraint('sync_facts_pk', ['tenant_id', 'source_system', 'source_key'])
          .execute();
        await db.schema
          .createTable('crosswalk_findings')
          .addColumn('tenant_id', 'text', (c) => c.notNull())
          .addColumn('kind', 'text', (c) => c.notNull())
          .addColumn('recording_pk', 'text', (c) => c.notNull())
          .addColumn('candidates', 'text', (c) => c.notNull())
          .addColumn('rule', 'text')
          .addColumn('detail', 'text')
          .addColumn('created_at', 'text', (c) => c.notNull())
          .addPrimaryKeyConstraint('crosswalk_findings_pk', ['tenant_id', 'kind', 'recording_pk'])
          .execute();
      },
    },
    '0008_integrity': {
      async up(db: Kysely<any>) {
        // Decoded-audio comparison of a recording's legacy and cloud copies (src/sync/integrity/):
        // one row per check, kept as history; the latest per recording is the verdict.
        await db.schema
          .createTable('integrity_checks')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('tenant_id', 'text', (c) => c.notNull())
          .addColumn('recording_pk', 'text', (c) => c.notNull())
          .addColumn('verdict', 'text', (c) => c.notNull())
          .addColumn('similarity', 'double precision')
          .addColumn('offset_ms', 'integer')
          .addColumn('legacy_copy_id', 'text')
          .addColumn('cloud_copy_id', 'text')
          .addColumn('legacy_duration_ms', 'bigint')
          .addColumn('cloud_duration_ms', 'bigint')
          .addColumn('legacy_pcm_sha256', 'text')
          .addColumn('cloud_pcm_sha256', 'text')
          .addColumn('error_code', 'text')
          .addColumn('detail', 'text')
          .addColumn('trigger', 'text', (c) => c.notNull())
          .addColumn('checked_by', 'text', (c) => c.notNull())
          .addColumn('checked_at', 'text', (c) => c.notNull())
          .execute();
        await db.schema.createIndex('integrity_checks_recording').on('integrity_checks').columns(['tenant_id', 'recording_pk', 'checked_at']).execute();
      },
    },
    '0009_evidence_jobs': {
      async up(db: Kysely<any>) {
        // Evidence package jobs of the console (src/console/evidence/): their own queue, not the
        // retrieval job table (whose rows are single-recording fetches its worker runs). Any
        // instance claims, reports progress and serves the staged ZIP.
        await db.schema
          .createTable('evidence_jobs')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('tenant_id', 'text', (c) => c.notNull())
          .addColumn('principal_id', 'text', (c) => c.notNull())
          .addColumn('principal_json', 'text', (c) => c.notNull())
          .addColumn('purpose', 'text', (c) => c.notNull())
          .addColumn('input_json', 'text', (c) => c.notNull())
          .addColumn('status', 'text', (c) => c.notNull())
          .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('lease_owner', 'text')
          .addColumn('lease_until', 'text')
          .addColumn('progress_json', 'text', (c) => c.notNull())
          .addColumn('size', 'bigint')
          .addColumn('sha256', 'text')
          .addColumn('problems', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('staging_key', 'text')
          .addColumn('dek_key_id', 'text')
          .addColumn('dek_wrapped', 'text')
          .addColumn('error_code', 'text')
          .addColumn('error_detail', 'text')
          .addColumn('request_event_id', 'text', (c) => c.notNull())
          .addColumn('http_request_id', 'text', (c) => c.notNull())
          .addColumn('created_at', 'text', (c) => c.notNull())
          .addColumn('updated_at', 'text', (c) => c.notNull())
          .addColumn('finished_at', 'text')
          .addColumn('expires_at', 'text')
          .execute();
        await db.schema.createIndex('evidence_jobs_claim').on('evidence_jobs').columns(['status', 'created_at']).execute();
        // Media tickets are sealed (AES-GCM) rather than stored, so any instance can check one; what
        // must be shared is the sealing key (wrapped by the key service, never in clear) and revocations.
        await db.schema
          .createTable('console_keys')
          .addColumn('name', 'text', (c) => c.primaryKey())
          .addColumn('key_id', 'text', (c) => c.notNull())
          .addColumn('wrapped', 'text', (c) => c.notNull())
          .addColumn('created_at', 'text', (c) => c.notNull())
          .execute();
        await db.schema
          .createTable('media_ticket_revocations')
          .addColumn('ticket_id', 'text', (c) => c.notNull())
          .addColumn('tenant_id', 'text', (c) => c.notNull())
          .addColumn('revoked_by', 'text', (c) => c.notNull())
          .addColumn('admin', 'integer', (c) => c.notNull())
          .addColumn('expires_at', 'text', (c) => c.notNull())
          .addColumn('created_at', 'text', (c) => c.notNull())
          .addPrimaryKeyConstraint('media_ticket_revocations_pk', ['ticket_id', 'tenant_id', 'revoked_by'])
          .execute();
      },
    },
    '0010_refs_by_value': {
      async up(db: Kysely<any>) {
        // recording_refs keyed by (value, tenant_id, kind, recording_pk): every read of the table
        // starts from the value (a lookup: value + tenant; the cross-tenant audit read: value
        // alone), so the key serves them all and the separate index on value (refs_value, a copy
        // of every value) goes. On SQLite the table becomes WITHOUT ROWID: the refs are that one
        // B-tree instead of a rowid table plus a key index plus refs_value — an import wrote
        // every ref three times, now once (refs_recording, for cascades and merges, stays).
        if (dialect === 'postgres') {
          await sql`alter table recording_refs drop constraint recording_refs_pk`.execute(db);
          await sql`alter table recording_refs add constraint recording_refs_pk primary key (value, tenant_id, kind, recording_pk)`.execute(db);
          await sql`drop index refs_value`.execute(db);
          return;
        }
        // Kysely runs SQLite migrations outside a transaction: the savepoint makes the swap all or
        // nothing (a crash between the DROP and the RENAME must not leave a catalog without refs).
        await sql`savepoint refs_by_value`.execute(db);
        try {
          await refsByValueSqlite(db);
          await sql`release refs_by_value`.execute(db);
        } catch (e) {
          await sql`rollback to refs_by_value`.execute(db);
          await sql`release refs_by_value`.execute(db);
          throw e;
        }
      },
    },
    '0011_tenant_order_indexes': {
      async up(db: Kysely<any>) {
        // A tenant's rows in the order its pages are read. Without them every page of the audit
        // query and of a tenant's audit export (ORDER BY seq), and of the recording search and
        // `iterate` (ORDER BY id), read and sorted all of the tenant's rows (SQLite, 100 000 of
        // them: 16 ms a page of audit events, 28 ms a page of recordings, now under 1 ms; a whole
        // tenant export 8.5 s → 1.8 s, `iterate` 32 s → 3.4 s). Each audit append writes one more
        // index entry (about +10 % per event).
        await db.schema.createIndex('audit_tenant_seq').on('audit_events').columns(['tenant_id', 'seq']).execute();
        await db.schema.createIndex('recordings_tenant_id').on('recordings').columns(['tenant_id', 'id']).execute();
        // A legacy search's window of start times (vanish.ts copiesStartedIn) read all the facts of
        // the source system for each window: 29 ms a window at 100 000 facts, now 0.4 ms.
        await db.schema.createIndex('sync_facts_started').on('sync_facts').columns(['tenant_id', 'source_system', 'started_at']).execute();
      },
    },
    '0012_copies_locator': {
      async up(db: Kysely<any>) {
        // A legacy walk's batch looks for the copies of its locator range the listing no longer has
        // (vanish.ts copiesInLocatorRange); without an index on locator each batch read every copy of
        // the source system, and a whole walk was quadratic (100 000 copies: 42-50 ms a batch on
        // SQLite, 30-33 ms on PostgreSQL, now 1-1.5 ms; a whole walk's range reads 22-25 s → 0.6-1 s).
        // Locators compare in byte order: SQLite's BINARY collation is that; on PostgreSQL the
        // query says collate "C", which only an index in that collation serves. Partial: the query
        // says `locator is not null`, and copies without a locator (Genesys) get no entry.
        const locator = dialect === 'postgres' ? sql`locator collate "C"` : sql`locator`;
        await sql`create index copies_locator on recording_copies (tenant_id, source_system, ${locator}) where locator is not null`.execute(db);
      },
    },
    '0013_jobs_include_metadata': {
      async up(db: Kysely<any>) {
        // A job's content carries the headers of a direct retrieval, X-Recording-Metadata too when
        // the request asked for it (product.md): the job remembers that. 0 for jobs made before.
        await db.schema.alterTable('jobs').addColumn('include_metadata', 'integer', (c) => c.notNull().defaultTo(0)).execute();
      },
    },
    '0014_imported_holds': {
      async up(db: Kysely<any>) {
        // An imported `legal_hold: true` was a column no release could clear (the four-eyes release
        // lifts hold records): a flagged recording stayed LEGAL_HOLD past its retention forever.
        // Each flag becomes the hold record an import now places (HoldRepository.placeImported,
        // IMPORTED_HOLD: matter "imported", by "catalog-import"), released like any other, and the
        // flag is cleared; the column stays (0) and holds nothing. A recording that already has an
        // active hold of that matter keeps it. On SQLite (no transaction around a migration) in a
        // savepoint: all of it or none.
        if (dialect === 'postgres') return importedHolds(db);
        await sql`savepoint imported_holds`.execute(db);
        try {
          await importedHolds(db);
          await sql`release imported_holds`.execute(db);
        } catch (e) {
          await sql`rollback to imported_holds`.execute(db);
          await sql`release imported_holds`.execute(db);
          throw e;
        }
      },
    },
    '0015_jobs_source_detail': {
      async up(db: Kysely<any>) {
        // A job's content is audited as a direct retrieval is, the source's own statements about
        // the bytes included (SourceMedia.auditDetail: Genesys's sensitive_data): the staging
        // attempt hears them, the download that is audited comes later, so the job keeps them.
        // Null for jobs staged before, and for sources that state nothing.
        await db.schema.alterTable('jobs').addColumn('source_detail', 'text').execute();
      },
    },
  };
}

/**
 * 0014: the flagged recordings in id order, a page at a time (by the primary key: one pass over
 * the table), each page's holds in one insert and its flags cleared in one update. The hold's
 * words are those of IMPORTED_HOLD (src/holds/hold-repository.ts) when this was written, kept
 * here as they were: a migration does not change with the code.
 */
async function importedHolds(db: Kysely<any>): Promise<void> {
  const now = new Date().toISOString();
  const PAGE = 500;
  let after = '';
  for (;;) {
    const page: { id: string; tenant_id: string }[] = await db
      .selectFrom('recordings')
      .select(['id', 'tenant_id'])
      .where('id', '>', after)
      .where('legal_hold', '!=', 0)
      .orderBy('id')
      .limit(PAGE)
      .execute();
    if (!page.length) return;
    const ids = page.map((r) => r.id);
    const held = new Set(
      (await db.selectFrom('legal_holds').select('recording_pk').where('recording_pk', 'in', ids).where('matter', '=', 'imported').where('released_at', 'is', null).execute()).map(
        (r: { recording_pk: string }) => r.recording_pk,
      ),
    );
    const holds = page
      .filter((r) => !held.has(r.id))
      .map((r) => ({
        id: randomUUID(),
        tenant_id: r.tenant_id,
        recording_pk: r.id,
        matter: 'imported',
        reason: "the imported catalog record's legal_hold flag (converted by migration 0014)",
        created_by: 'catalog-import',
        created_at: now,
        released_by: null,
        released_at: null,
        release_requested_by: null,
        release_requested_at: null,
      }));
    if (holds.length) await db.insertInto('legal_holds').values(holds).execute();
    await db.updateTable('recordings').set({ legal_hold: 0 }).where('id', 'in', ids).execute();
    after = ids[ids.length - 1]!;
  }
}

/** 0010 on SQLite: a WITHOUT ROWID copy of the table in key order, swapped in for the old one. */
async function refsByValueSqlite(db: Kysely<any>): Promise<void> {
  await sql`create table recording_refs_by_value (
      tenant_id text not null,
      value text not null,
      kind text not null,
      recording_pk text not null references recordings (id) on delete cascade,
      constraint recording_refs_pk primary key (value, tenant_id, kind, recording_pk)
    ) without rowid`.execute(db);
  await sql`insert into recording_refs_by_value (tenant_id, value, kind, recording_pk)
    select tenant_id, value, kind, recording_pk from recording_refs order by value, tenant_id, kind, recording_pk`.execute(db);
  await sql`drop table recording_refs`.execute(db);
  await sql`alter table recording_refs_by_value rename to recording_refs`.execute(db);
  await sql`create index refs_recording on recording_refs (recording_pk)`.execute(db);
}

class StaticProvider implements MigrationProvider {
  constructor(private readonly dialect: Dialect) {}
  async getMigrations(): Promise<Record<string, Migration>> {
    return migrations(this.dialect);
  }
}

/** Brings the schema to the latest version; safe to run on every start and from several instances. */
export async function migrateToLatest(db: Kysely<any>, dialect: Dialect): Promise<string[]> {
  const migrator = new Migrator({ db, provider: new StaticProvider(dialect) });
  const { error, results } = await migrator.migrateToLatest();
  if (error) throw error instanceof Error ? error : new Error(String(error));
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}

/** Brings the schema up to the named migration (and no further): tests of a migration start from the schema before it. */
export async function migrateTo(db: Kysely<any>, dialect: Dialect, name: string): Promise<void> {
  const migrator = new Migrator({ db, provider: new StaticProvider(dialect) });
  const { error } = await migrator.migrateTo(name);
  if (error) throw error instanceof Error ? error : new Error(String(error));
}
