import { createHash, randomBytes } from 'node:crypto';
import { appendFileSync, mkdirSync, mkdtempSync, readdirSync, readlinkSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AppError } from '../../errors.js';
import { locatorOf } from '../locator.js';
import type { CopyLocation, OpenOptions } from '../port.js';
import { filesystemSourceConfig } from './config.js';
import { checkLocator, FilesystemConnector } from './connector.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const signal = () => new AbortController().signal;

async function readAll(body: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of body) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

async function appError(p: Promise<unknown>): Promise<AppError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(AppError);
  return e as AppError;
}

function copy(fields: Partial<CopyLocation> = {}): CopyLocation {
  return { copyId: 'c1', locator: null, sourceSystem: 'avaya_aura', genesysRecordingId: null, conversationId: null, legacyArchiveId: null, sizeBytes: null, ...fields };
}

/** File descriptors of this process that point at `path` (Linux /proc). */
function fdsOn(path: string): string[] {
  const out: string[] = [];
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      if (readlinkSync(`/proc/self/fd/${fd}`) === path) out.push(fd);
    } catch {
      // closed meanwhile
    }
  }
  return out;
}

const base = mkdtempSync(join(tmpdir(), 'custodian-fs-'));
const root = join(base, 'archive');
const outside = mkdtempSync(join(tmpdir(), 'custodian-fs-outside-'));
const BIG = randomBytes(300 * 1024 + 17);
const SMALL = Buffer.from('RIFF....WAVEfmt small file');

function connector(fields: Record<string, unknown> = {}): FilesystemConnector {
  return new FilesystemConnector('acme', filesystemSourceConfig.parse({ name: 'archive', type: 'filesystem', root, ...fields }));
}

beforeAll(() => {
  mkdirSync(join(root, 'avaya/2023/10'), { recursive: true });
  writeFileSync(join(root, 'avaya/2023/10/big.wav'), BIG);
  writeFileSync(join(root, 'small.wav'), SMALL);
  writeFileSync(join(root, 'empty.wav'), Buffer.alloc(0));
  writeFileSync(join(root, 'inum-778899.wav'), SMALL);
  writeFileSync(join(root, '..hidden.wav'), SMALL);
  mkdirSync(join(root, 'a-directory'));
  writeFileSync(join(outside, 'secret.txt'), 'not yours');
  symlinkSync(join(outside, 'secret.txt'), join(root, 'escape.wav'));
  symlinkSync(outside, join(root, 'escape-dir'));
  symlinkSync(join(root, 'small.wav'), join(root, 'alias.wav'));
  symlinkSync('avaya/2023', join(root, 'by-year'));
  symlinkSync(join(root, 'loop-b'), join(root, 'loop-a'));
  symlinkSync(join(root, 'loop-a'), join(root, 'loop-b'));
  symlinkSync(join(root, 'nowhere.wav'), join(root, 'dangling.wav'));
});
afterAll(() => {
  rmSync(base, { recursive: true, force: true });
  rmSync(outside, { recursive: true, force: true });
});

describe('FilesystemConnector', () => {
  it('reads a whole file, with its size', async () => {
    const m = await connector().open(copy({ locator: 'avaya/2023/10/big.wav' }), { signal: signal() });
    expect(m.totalSize).toBe(BIG.length);
    expect(m.range).toBeUndefined();
    const got = await readAll(m.body);
    expect(got.length).toBe(BIG.length);
    expect(sha(got)).toBe(sha(BIG));
  });

  it('reads byte ranges', async () => {
    const c = connector();
    const read = async (range: OpenOptions['range']) => {
      const m = await c.open(copy({ locator: 'avaya/2023/10/big.wav' }), { signal: signal(), ...(range ? { range } : {}) });
      return { m, bytes: await readAll(m.body) };
    };
    const mid = await read({ start: 1000, end: 70_000 });
    expect(mid.m.range).toEqual({ start: 1000, end: 70_000 });
    expect(mid.m.totalSize).toBe(BIG.length);
    expect(mid.bytes.equals(BIG.subarray(1000, 70_001))).toBe(true);
    const open = await read({ start: BIG.length - 10 });
    expect(open.m.range).toEqual({ start: BIG.length - 10, end: BIG.length - 1 });
    expect(open.bytes.equals(BIG.subarray(BIG.length - 10))).toBe(true);
    const past = await read({ start: 5, end: BIG.length + 1000 });
    expect(past.m.range).toEqual({ start: 5, end: BIG.length - 1 });
    expect(past.bytes.length).toBe(BIG.length - 5);
    const one = await read({ start: 0, end: 0 });
    expect(one.bytes.equals(BIG.subarray(0, 1))).toBe(true);
    const last = await read({ start: BIG.length - 1, end: BIG.length - 1 });
    expect(last.bytes.equals(BIG.subarray(BIG.length - 1))).toBe(true);
  });

  it('refuses a range past the end with 416 and Content-Range: bytes */size', async () => {
    const before = fdsOn(join(root, 'small.wav')).length;
    const e = await appError(connector().open(copy({ locator: 'small.wav' }), { signal: signal(), range: { start: SMALL.length } }));
    expect(e.code).toBe('range.not_satisfiable');
    expect(e.status).toBe(416);
    expect(e.headers['Content-Range']).toBe(`bytes */${SMALL.length}`);
    expect((await appError(connector().open(copy({ locator: 'small.wav' }), { signal: signal(), range: { start: 10, end: 5 } }))).code).toBe('range.not_satisfiable');
    // The file handle opened to learn the size is closed again.
    expect(fdsOn(join(root, 'small.wav')).length).toBe(before);
  });

  it('serves a zero-byte file as an empty body, and refuses any range of it', async () => {
    const m = await connector().open(copy({ locator: 'empty.wav' }), { signal: signal() });
    expect(m.totalSize).toBe(0);
    expect((await readAll(m.body)).length).toBe(0);
    const e = await appError(connector().open(copy({ locator: 'empty.wav' }), { signal: signal(), range: { start: 0 } }));
    expect(e.code).toBe('range.not_satisfiable');
    expect(e.headers['Content-Range']).toBe('bytes */0');
    await new Promise((r) => setTimeout(r, 20));
    expect(fdsOn(join(root, 'empty.wav'))).toEqual([]);
  });

  it.each([
    ['..', 'a .. segment'],
    ['../archive/small.wav', 'climbing out and back in'],
    ['a/../../etc/passwd', 'climbing out through a subfolder'],
    ['avaya/../small.wav', 'a .. segment that stays inside'],
    ['avaya\\..\\..\\etc\\passwd', 'backslash separators'],
    ['/etc/passwd', 'an absolute path'],
    ['C:\\Windows\\win.ini', 'a Windows drive path'],
    ['c:/x', 'a Windows drive path with /'],
    ['\\\\fileserver\\share\\x.wav', 'a UNC path'],
    ['small.wav\u0000.txt', 'a NUL byte'],
  ])('refuses the locator %j (%s) without touching the filesystem', async (locator) => {
    expect(() => checkLocator(locator)).toThrow(AppError);
    // A connector whose root does not exist: a refusal proves nothing was looked up.
    const ghost = new FilesystemConnector('acme', filesystemSourceConfig.parse({ name: 'ghost', type: 'filesystem', root: join(base, 'no-such-root') }));
    const e = await appError(ghost.open(copy({ locator }), { signal: signal() }));
    expect(e.code).toBe('source.path_refused');
    expect((await appError(connector().open(copy({ locator }), { signal: signal() }))).code).toBe('source.path_refused');
  });

  it('accepts names that only look like climbing', async () => {
    const m = await connector().open(copy({ locator: '..hidden.wav' }), { signal: signal() });
    expect((await readAll(m.body)).equals(SMALL)).toBe(true);
    expect(() => checkLocator('a..b/c...wav')).not.toThrow();
  });

  it('refuses a symlink inside the root that points outside it', async () => {
    expect((await appError(connector().open(copy({ locator: 'escape.wav' }), { signal: signal() }))).code).toBe('source.path_refused');
    expect((await appError(connector().open(copy({ locator: 'escape-dir/secret.txt' }), { signal: signal() }))).code).toBe('source.path_refused');
    expect(fdsOn(join(outside, 'secret.txt'))).toEqual([]);
  });

  it('follows a symlink that stays inside the root', async () => {
    const m = await connector().open(copy({ locator: 'alias.wav' }), { signal: signal() });
    expect((await readAll(m.body)).equals(SMALL)).toBe(true);
    const viaDir = await connector().open(copy({ locator: 'by-year/10/big.wav' }), { signal: signal() });
    expect(sha(await readAll(viaDir.body))).toBe(sha(BIG));
  });

  it('refuses a symlink loop with a clear error', async () => {
    const e = await appError(connector().open(copy({ locator: 'loop-a' }), { signal: signal() }));
    expect(e.code).toBe('source.path_refused');
    expect(e.message).toMatch(/loop/);
  });

  it('refuses a locator whose name or path is longer than the filesystem allows (ENAMETOOLONG), not as an outage', async () => {
    for (const locator of [`${'n'.repeat(300)}.wav`, `avaya/${'n'.repeat(300)}/x.wav`, `avaya/2023/10/${'n'.repeat(256)}`]) {
      const e = await appError(connector().open(copy({ locator }), { signal: signal() }));
      expect(e.code).toBe('source.path_refused');
      expect(e.message).toMatch(/longer than the filesystem allows/);
      expect(e.status).toBe(502);
      expect(e.headers?.['Retry-After']).toBeUndefined();
    }
  });

  it('reports a missing file, a dangling link or a directory as source.object_missing', async () => {
    for (const locator of ['absent.wav', 'avaya/2099/absent.wav', 'small.wav/child', 'dangling.wav', 'a-directory', 'avaya']) {
      const e = await appError(connector().open(copy({ locator }), { signal: signal() }));
      expect(e.code, locator).toBe('source.object_missing');
      expect(e.status).toBe(502);
    }
    // A copy with neither locator nor the fields the template needs.
    expect((await appError(connector().open(copy({}), { signal: signal() }))).code).toBe('source.object_missing');
  });

  it('derives the locator from path_template when the copy has none', async () => {
    const c = connector({ path_template: '{legacy_archive_id}.wav' });
    const m = await c.open(copy({ legacyArchiveId: 'inum-778899' }), { signal: signal() });
    expect((await readAll(m.body)).equals(SMALL)).toBe(true);
    // A catalog locator wins over the template.
    const explicit = await c.open(copy({ legacyArchiveId: 'inum-778899', locator: 'small.wav' }), { signal: signal() });
    expect((await readAll(explicit.body)).equals(SMALL)).toBe(true);
    // A derived path is as hostile as a given one.
    expect((await appError(c.open(copy({ legacyArchiveId: '../../etc/passwd' }), { signal: signal() }))).code).toBe('source.path_refused');
    expect((await appError(c.open(copy({ legacyArchiveId: 'nope' }), { signal: signal() }))).code).toBe('source.object_missing');
  });

  it('stops reading and closes the file when the request is aborted', async () => {
    const path = join(root, 'avaya/2023/10/big.wav');
    const ac = new AbortController();
    const m = await connector().open(copy({ locator: 'avaya/2023/10/big.wav' }), { signal: ac.signal });
    expect(fdsOn(path).length).toBe(1);
    const first = await new Promise<Buffer>((resolve) => m.body.once('data', resolve));
    expect(first.length).toBeGreaterThan(0);
    const closed = new Promise<void>((resolve) => m.body.once('close', () => resolve()));
    ac.abort();
    await closed;
    expect(m.body.destroyed).toBe(true);
    expect(fdsOn(path)).toEqual([]);
  });

  it('a file that shrinks while it is served errors (source.unavailable, no path) instead of ending short, and is closed', async () => {
    const path = join(root, 'shrinking.wav');
    const FULL = 4 * 1024 * 1024;
    writeFileSync(path, randomBytes(FULL));
    const m = await connector().open(copy({ locator: 'shrinking.wav' }), { signal: signal() });
    expect(m.totalSize).toBe(FULL);
    truncateSync(path, 100_000); // the archive rewrites the file after the stat the client was promised
    const e = await appError(readAll(m.body));
    expect(e.code).toBe('source.unavailable');
    expect(e.message).toBe(`the archive file ended after 100000 of ${FULL} bytes`);
    expect(JSON.stringify({ m: e.message, e })).not.toContain('shrinking');
    expect(JSON.stringify({ m: e.message, e })).not.toContain(root);
    await new Promise((r) => setTimeout(r, 20));
    expect(fdsOn(path)).toEqual([]);

    // A range counts against its own length.
    writeFileSync(path, randomBytes(FULL));
    const r = await connector().open(copy({ locator: 'shrinking.wav' }), { range: { start: 50_000, end: 3_000_000 }, signal: signal() });
    truncateSync(path, 100_000);
    expect((await appError(readAll(r.body))).message).toBe('the archive file ended after 50000 of 2950001 bytes');

    // A file that grows meanwhile still gives exactly what was promised.
    writeFileSync(path, randomBytes(FULL));
    const g = await connector().open(copy({ locator: 'shrinking.wav' }), { signal: signal() });
    appendFileSync(path, randomBytes(1000));
    expect((await readAll(g.body)).length).toBe(FULL);
  });

  it('refuses to start when the signal is already aborted, closing what it opened', async () => {
    const ac = new AbortController();
    ac.abort();
    const e = await appError(connector().open(copy({ locator: 'small.wav' }), { signal: ac.signal }));
    expect(e.code).toBe('source.unavailable');
    await new Promise((r) => setTimeout(r, 20));
    expect(fdsOn(join(root, 'small.wav'))).toEqual([]);
  });

  it('check() passes for a readable root and reports a missing root as source.unavailable', async () => {
    await expect(connector().check()).resolves.toBeUndefined();
    const missing = new FilesystemConnector('acme', filesystemSourceConfig.parse({ name: 'gone', type: 'filesystem', root: join(base, 'gone') }));
    const e = await appError(missing.check());
    expect(e.code).toBe('source.unavailable');
    expect(e.status).toBe(503);
    expect((await appError(missing.open(copy({ locator: 'small.wav' }), { signal: signal() }))).code).toBe('source.unavailable');
    // A root that is a file is not an archive.
    const fileRoot = new FilesystemConnector('acme', filesystemSourceConfig.parse({ name: 'file', type: 'filesystem', root: join(root, 'small.wav') }));
    expect((await appError(fileRoot.check())).code).toBe('source.unavailable');
    // The root appearing later (a mount coming up) is noticed: failures are not cached.
    mkdirSync(join(base, 'gone'));
    await expect(missing.check()).resolves.toBeUndefined();
  });
});

describe('locatorOf', () => {
  it('fills path templates and gives null when a field is missing', () => {
    expect(locatorOf(copy({ legacyArchiveId: 'inum-1' }), '{legacy_archive_id}.wav')).toBe('inum-1.wav');
    expect(locatorOf(copy({ genesysRecordingId: 'r', conversationId: 'c' }), '{conversation_id}/{recording_id}.opus')).toBe('c/r.opus');
    expect(locatorOf(copy({ legacyArchiveId: 'x' }), 'static/name.wav')).toBe('static/name.wav');
    expect(locatorOf(copy({ legacyArchiveId: 'x' }), '{recording_id}.wav')).toBeNull();
    expect(locatorOf(copy({ legacyArchiveId: '' }), '{legacy_archive_id}.wav')).toBeNull();
    expect(locatorOf(copy({ locator: 'given.wav', legacyArchiveId: 'x' }), '{legacy_archive_id}.wav')).toBe('given.wav');
    // Replacement patterns in ids are taken literally.
    expect(locatorOf(copy({ legacyArchiveId: '$&$1' }), 'a/{legacy_archive_id}')).toBe('a/$&$1');
    // Unknown placeholders are left as they are.
    expect(locatorOf(copy({ legacyArchiveId: 'x' }), '{yyyy}/{legacy_archive_id}')).toBe('{yyyy}/x');
  });
});
