import { mkdtempSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { LocalStaging } from './staging.js';
import { JobWorker } from './worker.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'custodian-staging-'));
  dirs.push(d);
  return d;
};
const write = (s: Writable, b: Buffer) => new Promise<void>((resolve, reject) => s.write(b, (e) => (e ? reject(e) : resolve())));

describe('LocalStaging', () => {
  it('two writers of one key (a shared directory, two instances) each write a file of their own: one cannot corrupt what the other published', async () => {
    const dir = tmp();
    const one = new LocalStaging(dir);
    const two = new LocalStaging(dir);
    const a = await one.writer('job_1');
    await write(a.stream, Buffer.alloc(1000, 1));
    const b = await two.writer('job_1');
    await write(b.stream, Buffer.alloc(600, 2));
    expect(await b.commit()).toBe(600);
    // The writer that lost the race keeps writing, then gives up: the published file is untouched.
    await write(a.stream, Buffer.alloc(1000, 3));
    await a.abort();
    expect(readFileSync(join(dir, 'job_1'))).toEqual(Buffer.alloc(600, 2));
    expect(readdirSync(dir)).toEqual(['job_1']);
  });

  it('an aborted writer leaves nothing, a committed one only its final name', async () => {
    const dir = tmp();
    const s = new LocalStaging(dir);
    const w = await s.writer('job_2');
    await write(w.stream, Buffer.alloc(10, 1));
    await w.abort();
    expect(readdirSync(dir)).toEqual([]);
    const v = await s.writer('job_2');
    await write(v.stream, Buffer.alloc(10, 1));
    await new Promise<void>((r) => v.stream.end(r));
    expect(await v.commit()).toBe(10);
    expect(readdirSync(dir)).toEqual(['job_2']);
  });
});

describe('JobWorker.purgeLeftovers', () => {
  it('removes job files of attempts cut by a crash once untouched for twice the TTL, and nothing else', async () => {
    const dir = tmp();
    const ttl = 60_000;
    const old = (Date.now() - 3 * ttl) / 1000;
    const files = {
      'job_a_1111.0f0e.part': old, // a temp file of an attempt that died mid-stream
      'job_a_2222': old, // staged by an attempt that died before marking its job ready
      'job_b_3333.0f0e.part': Date.now() / 1000, // an attempt still writing
      job_c_4444: (Date.now() - ttl / 2) / 1000, // a ready job's file within its TTL
      evidence_5555: old, // evidence packages: their own purge (console/evidence/jobs.ts)
    };
    for (const [name, t] of Object.entries(files)) {
      writeFileSync(join(dir, name), 'x');
      utimesSync(join(dir, name), t, t);
    }
    const worker = new JobWorker({ staging: new LocalStaging(dir), config: { jobs: { staging_ttl_ms: ttl } } } as never);
    expect(await worker.purgeLeftovers()).toBe(2);
    expect(readdirSync(dir).sort()).toEqual(['evidence_5555', 'job_b_3333.0f0e.part', 'job_c_4444']);
  });
});
