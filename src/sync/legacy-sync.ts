import { lstat, open, readdir, realpath } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { identifier } from '../catalog/record.js';
import { AppError } from '../errors.js';
import { checkLocator } from '../sources/filesystem/connector.js';
import type { FilesystemSourceConfig } from '../sources/filesystem/config.js';
import type { S3SourceConfig } from '../sources/s3/config.js';
import { checkKey } from '../sources/s3/check-key.js';
import { destroyLazy, type S3Handle, s3Client } from '../sources/s3/client.js';
import { addResults, type ApplyItem, type ApplyResult, applyRecords, emptyResult, type SyncContext } from './apply.js';
import type { LegacySyncSource, SyncTenantConfig } from './config.js';
import type { Progress } from './progress.js';
import { copiesInLocatorRange, deletedItems, type GoneCopy, locatorRef } from './vanish.js';
import { hourFromPath, mapSidecar, parseSidecar, SidecarError } from './sidecar.js';

/** One media object of an archive: its locator (relative to the source root / key prefix) and size. */
export interface MediaEntry {
  locator: string;
  size: number | null;
}

/** What a legacy sync needs from an archive: a sorted walk (resumable after a locator) and reads of small files. */
export interface ArchiveLister {
  /** Media and sidecar objects under `prefix`, in lexicographic order of locator, strictly after `after`. */
  walk(prefix: string, after: string | null, signal: AbortSignal): AsyncIterable<MediaEntry>;
  /** A small object's text, or null when it does not exist. */
  readSmall(locator: string, maxBytes: number, signal: AbortSignal): Promise<string | null>;
  close(): void;
}

export interface LegacyCursor {
  kind: 'legacy';
  /** The last locator written; the walk resumes after it. */
  after: string;
}

export interface LegacyRunStats extends ApplyResult {
  resumed: boolean;
  files: number;
  withoutSidecar: number;
  /** Copies the catalog held under the walked tree that the walk no longer found: marked DELETED at the end of a complete walk. */
  vanished: number;
  /** Why vanished copies were not marked (a walk that found no media at all under a tree the catalog has copies of). */
  vanishSkipped?: string;
}

const BATCH = 200;

/** Filesystem walk inside the source's root (the connector's jail rules: no `..`, no absolute paths, symlinks not followed). */
export function filesystemLister(cfg: FilesystemSourceConfig): ArchiveLister {
  let rootP: Promise<string> | undefined;
  const root = () =>
    (rootP ??= realpath(cfg.root).catch((e: NodeJS.ErrnoException) => {
      throw new AppError('source.unavailable', `archive root is not reachable (${e.code ?? 'error'})`);
    }));
  async function* walkDir(base: string, rel: string, after: string | null, signal: AbortSignal): AsyncGenerator<MediaEntry> {
    let entries;
    try {
      entries = await readdir(join(base, rel), { withFileTypes: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT' && rel !== '') return;
      throw new AppError('source.unavailable', `cannot list the archive (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
    }
    // Byte order, the same as S3 listings, so a cursor means the same thing in both.
    // A directory sorts as "name/" so the walk order is the order of the full paths.
    const sortKey = (d: { name: string; isDirectory(): boolean }) => (d.isDirectory() ? `${d.name}/` : d.name);
    entries.sort((a, b) => (sortKey(a) < sortKey(b) ? -1 : sortKey(a) > sortKey(b) ? 1 : 0));
    for (const d of entries) {
      if (signal.aborted) return;
      const p = rel ? `${rel}/${d.name}` : d.name;
      if (d.isSymbolicLink()) continue;
      if (d.isDirectory()) {
        // Skip whole sub-trees that sort entirely before the cursor.
        if (after !== null && after >= p + '/' && !after.startsWith(p + '/')) continue;
        yield* walkDir(base, p, after, signal);
      } else if (d.isFile() && (after === null || p > after)) {
        const st = await lstat(join(base, p)).catch(() => null);
        if (st?.isFile()) yield { locator: p, size: st.size };
      }
    }
  }
  return {
    async *walk(prefix, after, signal) {
      const base = await root();
      const start = prefix.replace(/^\/+|\/+$/g, '');
      if (start) checkLocator(start);
      for await (const e of walkDir(base, start, after, signal)) yield e;
    },
    async readSmall(locator, maxBytes) {
      checkLocator(locator);
      const base = await root();
      let h;
      try {
        h = await open(join(base, locator), 'r');
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
        throw e;
      }
      try {
        const st = await h.stat();
        if (st.size > maxBytes) throw new SidecarError(`the sidecar is larger than ${maxBytes} bytes`);
        return (await h.readFile()).toString('utf8');
      } finally {
        await h.close();
      }
    },
    close() {},
  };
}

/**
 * S3 listing with the source's own credentials (a credential never crosses sources): its own client
 * from the shared factory, made on first use so that building the lister does not load the SDK, and
 * destroyed by close(). Every attempt is bounded by the source's timeout_ms (connect, and silence on
 * the socket); the SDK retries a timed-out attempt before the call fails with source.timeout.
 */
export function s3Lister(cfg: S3SourceConfig): ArchiveLister {
  let handle: Promise<S3Handle> | undefined;
  const s3 = () => (handle ??= s3Client(cfg, { connectionTimeoutMs: cfg.timeout_ms, socketTimeoutMs: cfg.timeout_ms }));
  // The HTTP handler also names ECONNRESET/EPIPE "TimeoutError"; only a real timeout is source.timeout (as in the connector).
  const timeoutOf = (e: unknown) => {
    const err = (e ?? {}) as { name?: string; code?: string };
    return err.name === 'TimeoutError' && (err.code === undefined || err.code === 'ETIMEDOUT')
      ? new AppError('source.timeout', `the source did not answer within ${cfg.timeout_ms} ms`, { cause: e })
      : e;
  };
  const sseKey = cfg.sse.mode === 'sse-c' ? cfg.sse.customer_key : undefined;
  return {
    async *walk(prefix, after, signal) {
      const listPrefix = cfg.prefix + prefix.replace(/^\/+/, '');
      const { client, sdk } = await s3();
      let token: string | undefined;
      do {
        const out = await client.send(
          new sdk.ListObjectsV2Command({
            Bucket: cfg.bucket,
            Prefix: listPrefix,
            ...(token ? { ContinuationToken: token } : after !== null ? { StartAfter: cfg.prefix + after } : {}),
          }),
          { abortSignal: signal },
        ).catch((e: unknown) => {
          throw timeoutOf(e);
        });
        for (const o of out.Contents ?? []) {
          if (!o.Key || !o.Key.startsWith(cfg.prefix)) continue;
          const locator = o.Key.slice(cfg.prefix.length);
          if (after !== null && locator <= after) continue;
          yield { locator, size: o.Size ?? null };
        }
        token = out.IsTruncated ? out.NextContinuationToken : undefined;
      } while (token);
    },
    async readSmall(locator, maxBytes, signal) {
      const key = cfg.prefix + locator;
      checkKey(key);
      const { client, sdk } = await s3();
      try {
        const out = await client.send(
          new sdk.GetObjectCommand({
            Bucket: cfg.bucket,
            Key: key,
            ...(sseKey ? { SSECustomerAlgorithm: 'AES256', SSECustomerKey: sseKey.reveal() } : {}),
          }),
          { abortSignal: signal },
        );
        if ((out.ContentLength ?? 0) > maxBytes) {
          (out.Body as { destroy?: () => void } | undefined)?.destroy?.();
          throw new SidecarError(`the sidecar is larger than ${maxBytes} bytes`);
        }
        return (await out.Body?.transformToString('utf8')) ?? '';
      } catch (e) {
        const err = e as { name?: string; $metadata?: { httpStatusCode?: number } };
        if (err.name === 'NoSuchKey' || err.$metadata?.httpStatusCode === 404) return null;
        throw timeoutOf(e);
      }
    },
    close() {
      void destroyLazy(handle);
    },
  };
}

const extOf = (p: string) => {
  const b = posix.basename(p);
  const i = b.lastIndexOf('.');
  return i > 0 ? b.slice(i + 1).toLowerCase() : '';
};
const stemOf = (p: string) => {
  const b = posix.basename(p);
  const i = b.lastIndexOf('.');
  return i > 0 ? b.slice(0, i) : b;
};

/** One media file and its sidecar → a catalog item (or a skipped item with its reason). */
export async function itemOf(lister: ArchiveLister, src: LegacySyncSource, e: MediaEntry, signal: AbortSignal): Promise<{ item: ApplyItem; sidecar: boolean }> {
  const sidecarPath = src.sidecar === 'none' ? null : `${e.locator.slice(0, e.locator.length - extOf(e.locator).length - 1)}.${src.sidecar}`;
  let mapped = { record: {} as Record<string, unknown>, facts: { startedAt: null as string | null, durationMs: null as number | null, ani: null as string | null, dnis: null as string | null } };
  let hasSidecar = false;
  let problem: string | null = null;
  if (sidecarPath) {
    try {
      const text = await lister.readSmall(sidecarPath, src.max_sidecar_bytes, signal);
      if (text !== null) {
        mapped = mapSidecar(parseSidecar(text, src), src.mapping);
        hasSidecar = true;
      } else if (src.require_sidecar) problem = `no sidecar ${sidecarPath}`;
    } catch (e) {
      if (!(e instanceof SidecarError)) throw e;
      problem = `${sidecarPath}: ${e.message}`;
    }
  }
  // Without a mapped legacy_archive_id the copy is keyed by its locator (unique per source; the
  // catalog keys a copy by recording_id ?? legacy_archive_id ?? locator): a base name such as
  // recording.wav or 0001.wav names many files. The base name stays findable, and usable by the
  // crosswalk's external_tag rule (Verint ids), as an external_tag ref when the sidecar gives none.
  const stem = stemOf(e.locator);
  const record: Record<string, unknown> = {
    source_system: src.source_system,
    connector: src.source,
    storage_location: 'LEGACY_ARCHIVE',
    locator: e.locator,
    ...(mapped.record.legacy_archive_id === undefined && mapped.record.external_tag === undefined && identifier.safeParse(stem).success ? { external_tag: stem } : {}),
    ...(e.size !== null ? { size_bytes: e.size } : {}),
    ...mapped.record,
  };
  if (record.started_at === undefined) {
    const hour = hourFromPath(e.locator);
    if (hour) record.started_at = hour;
  }
  return {
    // A sidecar that cannot be read makes the item invalid (reported), never a half-true catalog row.
    item: { origin: e.locator, record, facts: { ...mapped.facts, archiveDate: null }, present: true, ...(problem ? { problem } : {}) },
    sidecar: hasSidecar,
  };
}

/**
 * The one meaning of a legacy sync's `prefix`, given to the walk and to the vanish range alike.
 * Filesystem: a folder under the root — `site1`, `/site1` and `site1/` are all `site1/`, so the
 * copies of `site10/` are never in its range. S3: a key prefix, as S3 lists it (`2024/0` lists
 * `2024/01/…` and `2024/02/…`); only leading slashes are dropped, as the listing drops them.
 */
export function legacyPrefix(kind: SyncContext['kind'], prefix: string): string {
  const p = prefix.replace(/^\/+/, '');
  if (kind !== 'filesystem') return p;
  const folder = p.replace(/\/+$/, '');
  return folder ? `${folder}/` : '';
}

/**
 * Copies cataloged before copies were keyed by locator have `legacy_archive_id` = `source_key` =
 * the file's base name. A file listed at exactly such a copy's locator keeps that key (the item
 * gets `legacy_archive_id` = its base name): the same copy row, no duplicate, no churn. Any other
 * file is keyed by its locator.
 */
async function keepFormerKeys(ctx: SyncContext, src: LegacySyncSource, items: ApplyItem[]): Promise<void> {
  const unkeyed = new Map<string, ApplyItem>();
  for (const it of items) if (!it.problem && it.record.legacy_archive_id === undefined) unkeyed.set(it.record.locator as string, it);
  const locators = [...unkeyed.keys()];
  for (let i = 0; i < locators.length; i += 500) {
    // Through copies_locator (byte-order collation on PostgreSQL, as in vanish.ts).
    const rows = await ctx.db
      .selectFrom('recording_copies as c')
      .select(['c.source_key', 'c.legacy_archive_id', 'c.locator'])
      .where('c.tenant_id', '=', ctx.tenantId)
      .where('c.source_system', '=', src.source_system)
      .where('c.connector', '=', ctx.source)
      .where('c.locator', 'is not', null)
      .where(locatorRef(ctx.db), 'in', locators.slice(i, i + 500))
      .execute();
    for (const r of rows) {
      const stem = stemOf(r.locator!);
      if (r.source_key === stem && r.legacy_archive_id === stem) unkeyed.get(r.locator!)!.record.legacy_archive_id = stem;
    }
  }
}

/**
 * Walks a legacy archive (Verint-style `yyyy/mm/dd/hh/<id>.wav` + `<id>.json`, or any tree of
 * media files with CSV/JSON/XML sidecars), maps each sidecar to catalog columns and upserts the
 * copies in batches. The cursor is the last locator written: a crashed run resumes after it.
 */
export async function syncLegacy(
  ctx: SyncContext,
  opts: { lister: ArchiveLister; src: LegacySyncSource; cfg: SyncTenantConfig; leaseOwner: string; fresh?: boolean; progress?: Progress; onPage?: (pagesDone: number) => void | Promise<void> },
): Promise<LegacyRunStats> {
  const { lister, src } = opts;
  const prefix = legacyPrefix(ctx.kind, src.prefix);
  const stored = await ctx.store.read(ctx.tenantId, ctx.source);
  const c = stored.cursor as LegacyCursor | null;
  const after = !opts.fresh && c?.kind === 'legacy' ? c.after : null;
  const stats: LegacyRunStats = { ...emptyResult(), resumed: after !== null, files: 0, withoutSidecar: 0, vanished: 0 };
  // Each batch covers a contiguous range of locators (the walk is ordered): copies of that range
  // the batch did not list are gone. They are marked only once the whole walk has ended well.
  const gone: GoneCopy[] = [];
  let rangeAfter = after;
  let batchLocators = new Set<string>();
  const exts = new Set(src.media_extensions);
  opts.progress?.start(0, `${ctx.kind} ${ctx.source}`);
  let batch: ApplyItem[] = [];
  let lastLocator: string | null = null;
  let pages = 0;
  // Copy key → the first locator that gave it in this run: a second file with the same key is
  // skipped and reported, never merged into the first one's copy (nor moving it back and forth).
  const keys = new Map<string, string>();
  const flush = async () => {
    if (!batch.length || lastLocator === null) return;
    await keepFormerKeys(ctx, src, batch);
    for (const it of batch) {
      if (it.problem) continue;
      const locator = it.record.locator as string;
      const key = it.record.legacy_archive_id === undefined || it.record.legacy_archive_id === null ? locator : String(it.record.legacy_archive_id);
      const first = keys.get(key);
      if (first === undefined) keys.set(key, locator);
      else if (first !== locator) it.problem = `duplicate legacy_archive_id ${key}: ${first} has it too (kept); not merged`;
    }
    addResults(stats, await applyRecords(ctx, batch));
    for (const g of await copiesInLocatorRange(ctx, src.source_system, prefix, rangeAfter, lastLocator)) if (!batchLocators.has(g.locator!)) gone.push(g);
    rangeAfter = lastLocator;
    batchLocators = new Set();
    batch = [];
    pages++;
    ctx.metrics?.pages.inc({ kind: ctx.kind });
    await ctx.store.saveCursor(ctx.tenantId, ctx.source, opts.leaseOwner, { kind: 'legacy', after: lastLocator } satisfies LegacyCursor);
    if (!(await ctx.store.heartbeat(ctx.tenantId, ctx.source, opts.leaseOwner, opts.cfg.lease_ms))) throw new AppError('sync.busy', 'the sync lost its lease to another instance');
    await opts.onPage?.(pages);
  };
  for await (const e of lister.walk(prefix, after, ctx.signal)) {
    if (!exts.has(extOf(e.locator))) continue;
    const { item, sidecar } = await itemOf(lister, src, e, ctx.signal);
    stats.files++;
    if (!sidecar) stats.withoutSidecar++;
    batch.push(item);
    batchLocators.add(e.locator);
    lastLocator = e.locator;
    opts.progress?.tick(1);
    if (batch.length >= BATCH) await flush();
  }
  if (ctx.signal.aborted) throw new AppError('source.unavailable', 'sync aborted');
  await flush();
  gone.push(...(await copiesInLocatorRange(ctx, src.source_system, prefix, rangeAfter, null)));
  // An empty walk of a tree the catalog knows is far likelier an unmounted share (or an emptied
  // listing) than a deleted archive. A resumed walk that found nothing after its cursor marks only
  // when the tree still has media before it: that proves the tree is there and only its tail went.
  const treeHasMedia = async () => {
    for await (const e of lister.walk(prefix, null, ctx.signal)) if (exts.has(extOf(e.locator))) return true;
    if (ctx.signal.aborted) throw new AppError('source.unavailable', 'sync aborted');
    return false;
  };
  if (gone.length && stats.files === 0 && !(stats.resumed && (await treeHasMedia()))) {
    stats.vanishSkipped = `the ${stats.resumed ? 'resumed walk found no media file after its cursor nor before it' : 'walk found no media file'} but the catalog holds ${gone.length} copies of this tree; none marked DELETED`;
  } else {
    for (let i = 0; i < gone.length; i += BATCH) {
      const r = await applyRecords(ctx, deletedItems(ctx, gone.slice(i, i + BATCH), 'no longer in the archive'));
      addResults(stats, r);
      stats.vanished += r.changed;
    }
  }
  return stats;
}
