import { mkdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DeleteObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { catalogRecord } from '../catalog/record.js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type CatalogKind, openTestCatalog, type TestCatalog, usableCatalogs } from '../../test/support/catalogs.js';
import { S3Connector } from '../sources/s3/connector.js';
import { startS3Simulator, type S3Simulator } from '../sources/s3/simulator.js';
import { s3SourceConfig } from '../sources/s3/config.js';
import { withSecretContext } from '../config/secret.js';
import { locationOf } from '../sources/registry.js';
import { drain } from '../sources/genesys/test-helpers.js';
import { runSync, type SyncDeps } from './runner.js';
import { hourFromPath, mapSidecar, parseSidecar } from './sidecar.js';
import { SyncStore } from './store.js';
import { syncDepsFor, tempDir, VERINT_MAPPING, type VerintCall, verintTree } from './test-helpers.js';

const start = Date.parse('2024-02-28T22:00:00Z');
const calls = (n: number, from = 0): VerintCall[] =>
  Array.from({ length: n }, (_, k) => {
    const i = from + k;
    const d = new Date(start + i * 97_000);
    return { id: `v${String(i).padStart(5, '0')}`, start: d, sidecar: { callId: `CALL-${i}`, startTime: d.toISOString(), duration: 30 + (i % 60), contact: { ani: '+1555000', dnis: '+1555999' } } };
  });

describe('sidecars', () => {
  it('reads JSON (dotted paths), CSV (header + first row) and XML (record element), and maps them to columns and facts', () => {
    const json = mapSidecar(parseSidecar('{"callId":"C1","startTime":"2024-03-01T10:00:00Z","duration":"61.5","contact":{"ani":"+1 555"},"retainUntil":1893456000}', { sidecar: 'json', mapping: {} }), VERINT_MAPPING);
    expect(json.record).toEqual({ call_id: 'C1', started_at: '2024-03-01T10:00:00Z', retention_expiry: '2030-01-01T00:00:00.000Z' });
    expect(json.facts).toEqual({ startedAt: '2024-03-01T10:00:00.000Z', durationMs: 61_500, ani: '+1 555', dnis: null });
    const mapping = { call_id: 'call_id', legacy_archive_id: 'inum', duration_ms: 'length_ms', legal_hold: 'hold' };
    const csv = mapSidecar(parseSidecar('inum,call_id,length_ms,hold\r\n8923,2023-10-27T14:30:00Z-8923,60000,yes\r\n', { sidecar: 'csv', mapping }), mapping);
    expect(csv.record).toEqual({ call_id: '2023-10-27T14:30:00Z-8923', legacy_archive_id: '8923', legal_hold: true });
    expect(csv.facts.durationMs).toBe(60_000);
    const xml = mapSidecar(
      parseSidecar('<?xml version="1.0"?><export><recording id="r1"><call_id>X&amp;1</call_id><ani>+1</ani></recording></export>', { sidecar: 'xml', mapping: { call_id: 'call_id', ani: 'ani', legacy_archive_id: 'id' } }),
      { call_id: 'call_id', ani: 'ani', legacy_archive_id: 'id' },
    );
    expect(xml.record).toEqual({ call_id: 'X&1', legacy_archive_id: 'r1' });
    expect(xml.facts.ani).toBe('+1');
    expect(() => parseSidecar('<!DOCTYPE x [<!ENTITY a "b">]><recording/>', { sidecar: 'xml', mapping: { call_id: 'c' } })).toThrow(/refused/);
    expect(() => parseSidecar('{nope', { sidecar: 'json', mapping: {} })).toThrow(/does not parse/);
    expect(hourFromPath('2024/03/01/09/v1.wav')).toBe('2024-03-01T09:00:00.000Z');
    expect(hourFromPath('flat/v1.wav')).toBeNull();
  });
});

describe.each(await usableCatalogs())('legacy archive sync on %s', (kind: CatalogKind) => {
  let cat: TestCatalog;
  let share: ReturnType<typeof tempDir>;
  let deps: SyncDeps & { close(): Promise<void> };

  beforeEach(async () => {
    cat = await openTestCatalog(kind);
    share = tempDir();
  });
  afterEach(async () => {
    await deps?.close();
    await cat.dispose();
    share.dispose();
  });

  const fsDeps = (extra: Record<string, unknown> = {}) =>
    syncDepsFor(cat, {
      sources: [{ name: 'verint-share', type: 'filesystem', root: join(share.dir, 'archive'), source_systems: ['verint'] }],
      sync: { legacy: [{ source: 'verint-share', mapping: VERINT_MAPPING, ...extra }] },
    });

  it('marks files that vanished from the archive DELETED after a complete walk only, audited old → new; a file that returns is AVAILABLE again', async () => {
    const root = join(share.dir, 'archive');
    const written = verintTree(root, calls(450));
    deps = fsDeps();
    expect((await runSync(deps, { crosswalk: false })).runs[0]).toMatchObject({ status: 'succeeded', stats: { added: 450, vanished: 0 } });
    const gone = [written[0]!, written[201]!, written[449]!];
    for (const g of gone) rmSync(join(root, g));
    // A walk that crashes after its first batch (which covered the first vanished file) marks nothing.
    const crashed = await runSync(deps, {
      crosswalk: false,
      since: new Date(0),
      onLegacyPage: () => {
        throw new Error('simulated crash after a batch');
      },
    });
    expect(crashed.runs[0]).toMatchObject({ status: 'failed' });
    expect(await cat.db.selectFrom('recording_copies').select('id').where('state', '=', 'DELETED').execute()).toHaveLength(0);
    const full = await runSync(deps, { crosswalk: false, since: new Date(0) });
    expect(full.runs[0]).toMatchObject({ status: 'succeeded', stats: { added: 0, vanished: 3, changed: 3 } });
    const states = await cat.db.selectFrom('recording_copies').select(['locator', 'state']).where('tenant_id', '=', 'acme').execute();
    // Truth computed here: exactly the removed files are DELETED, every other one AVAILABLE, none removed.
    expect(states).toHaveLength(450);
    for (const r of states) expect(r.state).toBe(gone.includes(r.locator!) ? 'DELETED' : 'AVAILABLE');
    const changed = await cat.db.selectFrom('audit_events').selectAll().where('action', '=', 'sync.mapping.changed').execute();
    expect(changed).toHaveLength(3);
    expect(JSON.parse(changed[0]!.detail!)).toMatchObject({ old: { state: 'AVAILABLE' }, new: { state: 'DELETED' } });
    // Idempotent afterwards; a file put back comes back AVAILABLE.
    expect((await runSync(deps, { crosswalk: false })).runs[0]).toMatchObject({ stats: { added: 0, changed: 0, vanished: 0 } });
    verintTree(root, calls(1, 0));
    expect((await runSync(deps, { crosswalk: false })).runs[0]).toMatchObject({ stats: { changed: 1, vanished: 0 } });
    // An empty tree (an unmounted share) marks nothing.
    rmSync(root, { recursive: true, force: true });
    mkdirSync(root, { recursive: true });
    const empty = await runSync(deps, { crosswalk: false });
    expect(empty.runs[0]).toMatchObject({ status: 'succeeded', stats: { vanished: 0 } });
    expect((empty.runs[0]!.stats as { vanishSkipped?: string }).vanishSkipped).toMatch(/no media file/);
    expect((await deps.auditRepo.verify()).ok).toBe(true);
  });

  it('walks a Verint tree with JSON sidecars, skips and reports bad sidecars, never leaves the root, and is idempotent', async () => {
    const root = join(share.dir, 'archive');
    verintTree(root, calls(40));
    // Without a sidecar: cataloged from the path (id, hour); a broken sidecar: skipped and reported.
    verintTree(root, [{ id: 'bare', start: new Date('2024-03-01T05:00:00Z'), sidecar: null }]);
    verintTree(root, [{ id: 'broken', start: new Date('2024-03-01T05:00:00Z'), sidecar: '{"callId": ' }]);
    writeFileSync(join(root, '2024/03/01/05/notes.txt'), 'not media');
    mkdirSync(join(share.dir, 'outside'), { recursive: true });
    writeFileSync(join(share.dir, 'outside', 'secret.wav'), 'outside the root');
    symlinkSync(join(share.dir, 'outside'), join(root, 'escape'));
    deps = fsDeps();
    const first = await runSync(deps, { crosswalk: false });
    expect(first.runs[0]).toMatchObject({ status: 'succeeded', kind: 'filesystem', stats: { files: 42, added: 41, skipped: 1, withoutSidecar: 2 } });
    expect((first.runs[0]!.stats as { invalid: { origin: string; message: string }[] }).invalid[0]).toMatchObject({ origin: '2024/03/01/05/broken.wav', message: expect.stringContaining('does not parse') });

    const r = await deps.recordings.findByRef('acme', 'CALL-7');
    expect(r).toMatchObject({ callId: 'CALL-7', startedAt: new Date(start + 7 * 97_000).toISOString() });
    // No id mapped: the copy is keyed by its locator; its base name is still a ref (external_tag).
    expect(r?.copies[0]).toMatchObject({ sourceSystem: 'verint', connector: 'verint-share', legacyArchiveId: null, origin: 'LEGACY_ARCHIVE', sizeBytes: 'RIFF-fake-v00007'.length });
    expect(r?.copies[0]?.locator).toMatch(/^2024\/02\/28\/22\/v00007\.wav$/);
    expect((await deps.recordings.findByRef('acme', 'v00007'))?.id).toBe(r?.id);
    expect((await deps.recordings.findByRef('acme', 'bare'))).toMatchObject({ startedAt: '2024-03-01T05:00:00.000Z' });
    expect(await deps.recordings.findByRef('acme', 'secret')).toBeNull();
    const facts = await new SyncStore(cat.db).factsWithRecordings('acme');
    expect(facts.find((f) => f.sourceKey === r?.copies[0]?.locator)).toMatchObject({ durationMs: 37_000, ani: '+1555000' });

    const second = await runSync(deps, { crosswalk: false });
    expect(second.runs[0]).toMatchObject({ status: 'succeeded', stats: { added: 0, changed: 0, inserted: 0, updated: 0, factsChanged: 0, unchanged: 41 } });

    // A file rewritten at the source (new size): the change is audited old → new.
    writeFileSync(join(root, r!.copies[0]!.locator!), 'RIFF-longer-content');
    const third = await runSync(deps, { crosswalk: false });
    expect(third.runs[0]).toMatchObject({ stats: { changed: 1 } });
    const ev = await cat.db.selectFrom('audit_events').selectAll().where('action', '=', 'sync.mapping.changed').executeTakeFirstOrThrow();
    expect(JSON.parse(ev.detail!)).toMatchObject({ old: { size_bytes: 16 }, new: { size_bytes: 19 }, source: 'verint-share' });
  });

  it('a resumed walk that finds nothing (an unmounted share) marks nothing; one whose tree still has media before the cursor marks the tail it lost', async () => {
    const root = join(share.dir, 'archive');
    const written = verintTree(root, calls(450));
    deps = fsDeps();
    expect((await runSync(deps, { crosswalk: false })).runs[0]).toMatchObject({ status: 'succeeded', stats: { added: 450 } });
    const crashAfterBatch1 = async () =>
      expect(
        (
          await runSync(deps, {
            crosswalk: false,
            onLegacyPage: () => {
              throw new Error('simulated crash after batch 1');
            },
          })
        ).runs[0],
      ).toMatchObject({ status: 'failed' });
    const deleted = async () => (await cat.db.selectFrom('recording_copies').select('locator').where('state', '=', 'DELETED').execute()).map((r) => r.locator).sort();
    await crashAfterBatch1();
    // The share is unmounted before the resume: the mount point is an empty directory.
    renameSync(root, join(share.dir, 'away'));
    mkdirSync(root);
    const resumed = await runSync(deps, { crosswalk: false });
    expect(resumed.runs[0]).toMatchObject({ status: 'succeeded', stats: { resumed: true, files: 0, vanished: 0 } });
    expect((resumed.runs[0]!.stats as { vanishSkipped?: string }).vanishSkipped).toMatch(/no media file/);
    expect(await deleted()).toEqual([]);
    // Mounted again, minus its last file: a complete walk marks exactly that file.
    rmSync(root, { recursive: true, force: true });
    renameSync(join(share.dir, 'away'), root);
    rmSync(join(root, written[449]!));
    expect((await runSync(deps, { crosswalk: false })).runs[0]).toMatchObject({ status: 'succeeded', stats: { resumed: false, vanished: 1 } });
    expect(await deleted()).toEqual([written[449]]);
    // A resumed walk that lists nothing after the cursor while the tree still has media before it: the tail really went.
    await crashAfterBatch1();
    for (const w of written.slice(200, 449)) rmSync(join(root, w));
    const tail = await runSync(deps, { crosswalk: false });
    expect(tail.runs[0]).toMatchObject({ status: 'succeeded', stats: { resumed: true, files: 0, vanished: 249 } });
    expect((tail.runs[0]!.stats as { vanishSkipped?: string }).vanishSkipped).toBeUndefined();
    expect(await deleted()).toEqual(written.slice(200).sort());
  });

  it('takes a prefix as a folder: a sibling folder that shares its text (site1 / site10) is neither walked nor marked', async () => {
    const root = join(share.dir, 'archive');
    const site1 = verintTree(join(root, 'site1'), calls(3)).map((l) => `site1/${l}`);
    const site10 = verintTree(join(root, 'site10'), calls(3, 10)).map((l) => `site10/${l}`);
    deps = fsDeps();
    expect((await runSync(deps, { crosswalk: false })).runs[0]).toMatchObject({ status: 'succeeded', stats: { added: 6 } });
    const states = async () => Object.fromEntries((await cat.db.selectFrom('recording_copies').select(['locator', 'state']).execute()).map((r) => [r.locator, r.state]));
    await deps.close();
    deps = fsDeps({ prefix: 'site1' });
    expect((await runSync(deps, { crosswalk: false })).runs[0]).toMatchObject({ status: 'succeeded', stats: { files: 3, vanished: 0, changed: 0 } });
    for (const l of [...site1, ...site10]) expect((await states())[l]).toBe('AVAILABLE');
    // Leading and trailing slashes mean the same folder; a file removed under it is marked.
    await deps.close();
    deps = fsDeps({ prefix: '/site1/' });
    rmSync(join(root, site1[1]!));
    expect((await runSync(deps, { crosswalk: false })).runs[0]).toMatchObject({ status: 'succeeded', stats: { files: 2, vanished: 1 } });
    const after = await states();
    for (const l of [...site1, ...site10]) expect(after[l]).toBe(l === site1[1] ? 'DELETED' : 'AVAILABLE');
  });

  it('keys a copy by its path when the mapping gives no id: same-named files in different folders are different copies, and a second run changes nothing', async () => {
    const root = join(share.dir, 'archive');
    for (let i = 0; i < 450; i++) {
      const d = join(root, 'calls', `C${String(i).padStart(4, '0')}`);
      mkdirSync(d, { recursive: true });
      writeFileSync(join(d, 'recording.wav'), `RIFF-${i}`);
      writeFileSync(join(d, 'recording.json'), JSON.stringify({ callId: `CALL-${i}`, startTime: new Date(Date.UTC(2024, 2, 1, 0, i)).toISOString() }));
    }
    deps = fsDeps();
    const first = await runSync(deps, { crosswalk: false });
    expect(first.runs[0]).toMatchObject({ status: 'succeeded', stats: { files: 450, added: 450, changed: 0, skipped: 0 } });
    expect(await deps.recordings.count('acme')).toBe(450);
    const copies = await cat.db.selectFrom('recording_copies').select(['source_key', 'locator']).execute();
    expect(copies).toHaveLength(450);
    for (const c of copies) expect(c.source_key).toBe(c.locator);
    expect((await deps.recordings.findByRef('acme', 'CALL-7'))?.copies.map((c) => c.locator)).toEqual(['calls/C0007/recording.wav']);
    const second = await runSync(deps, { crosswalk: false });
    expect(second.runs[0]).toMatchObject({ status: 'succeeded', stats: { added: 0, changed: 0, skipped: 0, unchanged: 450 } });
    expect(await cat.db.selectFrom('audit_events').select('id').where('action', '=', 'sync.mapping.changed').execute()).toHaveLength(0);
  });

  it('reports two files whose sidecars give the same id instead of merging them, run after run', async () => {
    const root = join(share.dir, 'archive');
    verintTree(root, [
      { id: 'a', start: new Date('2024-03-01T05:00:00Z'), sidecar: { callId: 'CALL-A', archiveId: 'X-1' } },
      { id: 'b', start: new Date('2024-03-01T06:00:00Z'), sidecar: { callId: 'CALL-B', archiveId: 'X-1' } },
      { id: 'c', start: new Date('2024-03-01T07:00:00Z'), sidecar: { callId: 'CALL-C', archiveId: 'X-2' } },
    ]);
    deps = fsDeps({ mapping: { call_id: 'callId', legacy_archive_id: 'archiveId' } });
    for (let run = 1; run <= 2; run++) {
      const r = await runSync(deps, { crosswalk: false });
      expect(r.runs[0]).toMatchObject({ status: 'succeeded', stats: { files: 3, added: run === 1 ? 2 : 0, changed: 0, skipped: 1, vanished: 0 } });
      expect((r.runs[0]!.stats as { invalid: { origin: string; message: string }[] }).invalid).toEqual([
        { origin: '2024/03/01/06/b.wav', message: expect.stringMatching(/X-1.*2024\/03\/01\/05\/a\.wav/) },
      ]);
    }
    const copies = await cat.db.selectFrom('recording_copies').select(['source_key', 'locator']).orderBy('source_key').execute();
    expect(copies).toEqual([
      { source_key: 'X-1', locator: '2024/03/01/05/a.wav' },
      { source_key: 'X-2', locator: '2024/03/01/07/c.wav' },
    ]);
  });

  it('keeps the key of a copy cataloged under the former default (its base name) at the same path: no duplicate, no change', async () => {
    const root = join(share.dir, 'archive');
    const written = verintTree(root, calls(3));
    // A catalog written before copies were keyed by path: legacy_archive_id = the base name.
    deps = fsDeps();
    await deps.recordings.upsertAll(
      written.map((l, i) =>
        catalogRecord.parse({ tenant_id: 'acme', call_id: `CALL-${i}`, source_system: 'verint', connector: 'verint-share', storage_location: 'LEGACY_ARCHIVE', locator: l, legacy_archive_id: `v${String(i).padStart(5, '0')}`, size_bytes: `RIFF-fake-v${String(i).padStart(5, '0')}`.length }),
      ),
    );
    // A new file with the same base name as an old one, in another folder: its own copy.
    mkdirSync(join(root, 'other'), { recursive: true });
    writeFileSync(join(root, 'other', 'v00001.wav'), 'RIFF-other');
    const r = await runSync(deps, { crosswalk: false });
    expect(r.runs[0]).toMatchObject({ status: 'succeeded', stats: { files: 4, added: 1, changed: 0, skipped: 0, vanished: 0 } });
    const copies = await cat.db.selectFrom('recording_copies').select(['source_key', 'locator', 'state']).orderBy('locator').execute();
    expect(copies).toEqual([
      { source_key: 'v00000', locator: written[0], state: 'AVAILABLE' },
      { source_key: 'v00001', locator: written[1], state: 'AVAILABLE' },
      { source_key: 'v00002', locator: written[2], state: 'AVAILABLE' },
      { source_key: 'other/v00001.wav', locator: 'other/v00001.wav', state: 'AVAILABLE' },
    ].sort((a, b) => (a.locator! < b.locator! ? -1 : 1)));
    expect((await runSync(deps, { crosswalk: false })).runs[0]).toMatchObject({ stats: { added: 0, changed: 0, unchanged: 4 } });
  });

  it('resumes a crashed walk after the last batch written', async () => {
    verintTree(join(share.dir, 'archive'), calls(450));
    deps = fsDeps();
    const crashed = await runSync(deps, {
      crosswalk: false,
      onLegacyPage: (n) => {
        if (n === 1) throw new Error('simulated crash');
      },
    });
    expect(crashed.runs[0]).toMatchObject({ status: 'failed' });
    expect(await deps.recordings.count('acme')).toBe(200);
    const resumed = await runSync(deps, { crosswalk: false });
    expect(resumed.runs[0]).toMatchObject({ status: 'succeeded', stats: { resumed: true, files: 250, added: 250 } });
    expect(await deps.recordings.count('acme')).toBe(450);
    expect((await new SyncStore(cat.db).read('acme', 'verint-share')).cursor).toBeNull();
  });
});

describe.each(await usableCatalogs())('legacy S3 archive sync on %s', (kind: CatalogKind) => {
  let cat: TestCatalog;
  let s3: S3Simulator;
  let deps: SyncDeps & { close(): Promise<void> };
  let share: ReturnType<typeof tempDir>;

  beforeEach(async () => {
    cat = await openTestCatalog(kind);
    s3 = await startS3Simulator({ buckets: ['verint-export'] });
    share = tempDir();
  });
  afterEach(async () => {
    await deps?.close();
    await s3.stop();
    await cat.dispose();
    share.dispose();
  });

  it('lists a Verint layout in a bucket under a prefix, reads the JSON sidecars, and the locators open through the S3 connector', async () => {
    const written = verintTree(share.dir, calls(25));
    const client = new S3Client({ region: 'us-east-1', endpoint: s3.endpoint, forcePathStyle: true, credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey } });
    for (const wav of written) {
      for (const p of [wav, wav.replace(/\.wav$/, '.json')]) {
        await client.send(new PutObjectCommand({ Bucket: 'verint-export', Key: `export/${p}`, Body: readFileSync(join(share.dir, p)) }));
      }
    }
    await client.send(new PutObjectCommand({ Bucket: 'verint-export', Key: 'elsewhere/x.wav', Body: 'not under the prefix' }));
    client.destroy();
    const src = {
      name: 'verint-s3',
      type: 's3',
      bucket: 'verint-export',
      endpoint: s3.endpoint,
      force_path_style: true,
      prefix: 'export/',
      access_key_id: s3.accessKeyId,
      secret_access_key: s3.secretAccessKey,
      source_systems: ['verint'],
    };
    deps = syncDepsFor(cat, { sources: [src], sync: { legacy: [{ source: 'verint-s3', mapping: VERINT_MAPPING }] } });
    const first = await runSync(deps, { crosswalk: false });
    expect(first.runs[0]).toMatchObject({ status: 'succeeded', kind: 's3', stats: { files: 25, added: 25, withoutSidecar: 0 } });
    const rec = await deps.recordings.findByRef('acme', 'CALL-3');
    expect(rec?.copies[0]?.locator).toBe(written[3]);
    const conn = new S3Connector('acme', withSecretContext({ env: {}, allowInline: true }, () => s3SourceConfig.parse(src)));
    const media = await conn.open(locationOf(rec!.copies[0]!, null), { signal: new AbortController().signal });
    expect((await drain(media.body)).toString()).toBe('RIFF-fake-v00003');
    await conn.close();
    const second = await runSync(deps, { crosswalk: false });
    expect(second.runs[0]).toMatchObject({ stats: { added: 0, changed: 0, unchanged: 25 } });
  });

  it('an empty listing of a bucket the catalog has copies of marks nothing; a leading slash in the prefix lists and marks the same keys', async () => {
    const written = verintTree(share.dir, calls(5));
    const client = new S3Client({ region: 'us-east-1', endpoint: s3.endpoint, forcePathStyle: true, credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey } });
    const put = async () => {
      for (const wav of written) {
        for (const p of [wav, wav.replace(/\.wav$/, '.json')]) await client.send(new PutObjectCommand({ Bucket: 'verint-export', Key: `export/${p}`, Body: readFileSync(join(share.dir, p)) }));
      }
    };
    const removeAll = async (locators: string[]) => {
      for (const wav of locators) for (const p of [wav, wav.replace(/\.wav$/, '.json')]) await client.send(new DeleteObjectCommand({ Bucket: 'verint-export', Key: `export/${p}` }));
    };
    await put();
    const src = { name: 'verint-s3', type: 's3', bucket: 'verint-export', endpoint: s3.endpoint, force_path_style: true, prefix: 'export/', access_key_id: s3.accessKeyId, secret_access_key: s3.secretAccessKey, source_systems: ['verint'] };
    const depsWith = (prefix: string) => syncDepsFor(cat, { sources: [src], sync: { legacy: [{ source: 'verint-s3', prefix, mapping: VERINT_MAPPING }] } });
    const deleted = async () => (await cat.db.selectFrom('recording_copies').select('locator').where('state', '=', 'DELETED').execute()).map((r) => r.locator).sort();
    deps = depsWith('/2024/');
    expect((await runSync(deps, { crosswalk: false })).runs[0]).toMatchObject({ status: 'succeeded', stats: { files: 5, added: 5 } });
    await removeAll([written[2]!]);
    expect((await runSync(deps, { crosswalk: false })).runs[0]).toMatchObject({ status: 'succeeded', stats: { files: 4, vanished: 1 } });
    expect(await deleted()).toEqual([written[2]]);
    // The listing returns nothing at all (emptied, or a wrong bucket behind the same name): nothing marked.
    await removeAll(written);
    const empty = await runSync(deps, { crosswalk: false });
    expect(empty.runs[0]).toMatchObject({ status: 'succeeded', stats: { files: 0, vanished: 0 } });
    expect((empty.runs[0]!.stats as { vanishSkipped?: string }).vanishSkipped).toMatch(/no media file/);
    expect(await deleted()).toEqual([written[2]]);
    client.destroy();
  });
});
