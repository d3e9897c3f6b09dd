import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { collect, FFMPEG, pidAlive, readFixture } from '../../test/support/audio.js';
import { AppError } from '../errors.js';
import { Transcoder, type TranscodeOutput } from './transcoder.js';

const G729 = readFixture('call_mono_g729_8k.g729');
const RAW_G729 = { inputArgs: ['-f', 'g729'], outputArgs: ['-f', 's16le'] };

/** G.729 frames forever, produced only as fast as they are read. */
function endlessG729(): Readable {
  let i = 0;
  return new Readable({
    read() {
      this.push(G729.subarray((i % 845) * 10, (i % 845) * 10 + 1000));
      i += 100;
    },
  });
}

/** A source that never produces a byte and never ends. */
const stalled = (): Readable => new Readable({ read() {} });

const make = (o: Partial<ConstructorParameters<typeof Transcoder>[0]> = {}): Transcoder =>
  new Transcoder({ ffmpegPath: FFMPEG, maxConcurrent: 2, maxQueued: 2, timeoutMs: 15_000, killGraceMs: 500, ...o });

async function firstChunk(out: Readable): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    out.once('data', (c: Buffer) => {
      out.pause();
      resolve(c);
    });
    out.once('error', reject);
  });
}

async function gone(out: TranscodeOutput): Promise<void> {
  await out.exited;
  expect(out.pid).toBeGreaterThan(0);
  expect(pidAlive(out.pid!)).toBe(false);
}

const tmp = mkdtempSync(join(tmpdir(), 'custodian-transcoder-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('Transcoder', () => {
  it('builds a quiet, non-interactive ffmpeg command line', () => {
    expect(Transcoder.argv(RAW_G729)).toEqual(['-nostdin', '-hide_banner', '-loglevel', 'error', '-f', 'g729', '-i', 'pipe:0', '-map', '0:a:0', '-map_metadata', '-1', '-f', 's16le', '-flush_packets', '0', 'pipe:1']);
  });

  it('hands Node the decode in large chunks, not one pipe write per 10 ms codec packet', async () => {
    const out = await make().transcode({ input: Readable.from([G729]), ...RAW_G729 });
    let chunks = 0;
    let bytes = 0;
    for await (const c of out) {
      chunks++;
      bytes += (c as Buffer).length;
    }
    expect(bytes).toBe(845 * 160);
    // 270 400 bytes in ffmpeg's 32 KiB muxer buffers: about 9 writes (845 without -flush_packets 0).
    expect(chunks).toBeLessThan(40);
  });

  it("Debian's ffmpeg has the encoders we use (libmp3lame, libopus)", async () => {
    expect(await make().probe()).toMatchObject({ ok: true, encoders: { libmp3lame: true, libopus: true } });
    expect((await make({ ffmpegPath: '/nonexistent/ffmpeg' }).probe()).ok).toBe(false);
  });

  it('streams a decode through pipes and frees its slot', async () => {
    const t = make();
    const out = await t.transcode({ input: Readable.from([G729]), ...RAW_G729 });
    expect(t.active).toBe(1);
    expect((await collect(out)).length).toBe(845 * 160);
    expect(await out.exited).toEqual({ code: 0, signal: null });
    expect(t.active).toBe(0);
  });

  it('queue full → media.transcoder_busy with Retry-After', async () => {
    const t = make({ maxConcurrent: 1, maxQueued: 0, retryAfterSeconds: 7 });
    const a = await t.transcode({ input: endlessG729(), ...RAW_G729 });
    const err = await t.transcode({ input: Readable.from([G729]), ...RAW_G729 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AppError);
    expect(err).toMatchObject({ code: 'media.transcoder_busy', status: 503, headers: { 'Retry-After': '7' } });
    a.destroy();
    await gone(a);
    expect(t.active).toBe(0);
  });

  it('waiters get the slot in turn; a waiter can be aborted', async () => {
    const t = make({ maxConcurrent: 1, maxQueued: 2 });
    const a = await t.transcode({ input: endlessG729(), ...RAW_G729 });
    const b = t.transcode({ input: Readable.from([G729]), ...RAW_G729 });
    const ac = new AbortController();
    const c = t.transcode({ input: Readable.from([G729]), ...RAW_G729, signal: ac.signal });
    await expect(t.transcode({ input: Readable.from([G729]), ...RAW_G729 })).rejects.toMatchObject({ code: 'media.transcoder_busy' });
    expect(t.queued).toBe(2);
    ac.abort(new Error('client left while queued'));
    await expect(c).rejects.toThrow('client left while queued');
    expect(t.queued).toBe(1);
    a.destroy();
    const bOut = await b;
    expect((await collect(bOut)).length).toBe(845 * 160);
    await bOut.exited;
    expect(t.active).toBe(0);
  });

  it('destroying the output kills ffmpeg and releases the source', async () => {
    const t = make();
    const src = endlessG729();
    const out = await t.transcode({ input: src, ...RAW_G729 });
    expect(pidAlive(out.pid!)).toBe(true);
    await firstChunk(out);
    out.destroy();
    await gone(out);
    expect(src.destroyed).toBe(true);
    expect(t.active).toBe(0);
  });

  it('an abort signal kills ffmpeg and errors the output', async () => {
    const t = make();
    const ac = new AbortController();
    const out = await t.transcode({ input: endlessG729(), ...RAW_G729, signal: ac.signal });
    await firstChunk(out);
    const failed = new Promise((resolve) => out.once('error', resolve));
    ac.abort(new Error('client disconnected'));
    expect(await failed).toMatchObject({ message: 'client disconnected' });
    await gone(out);
  });

  it('timeout: a stalled job is killed and its output errors', async () => {
    const t = make({ timeoutMs: 300 });
    const out = await t.transcode({ input: stalled(), ...RAW_G729 });
    await expect(collect(out)).rejects.toMatchObject({ code: 'media.transcoder_unavailable', message: expect.stringMatching(/300 ms/) });
    await gone(out);
    expect(t.active).toBe(0);
  });

  it('SIGKILL after the grace period when the child ignores SIGTERM', async () => {
    const script = join(tmp, 'stubborn-ffmpeg');
    writeFileSync(script, "#!/bin/sh\ntrap '' TERM\nwhile :; do sleep 0.05; done\n");
    chmodSync(script, 0o755);
    const t = make({ ffmpegPath: script, timeoutMs: 200, killGraceMs: 200 });
    const out = await t.transcode({ input: stalled(), ...RAW_G729 });
    await expect(collect(out)).rejects.toMatchObject({ code: 'media.transcoder_unavailable' });
    expect(await out.exited).toMatchObject({ signal: 'SIGKILL' });
  });

  it('a source that errors midway makes the output error, never end', async () => {
    const t = make();
    let sent = 0;
    const src = new Readable({
      read() {
        if (sent >= 4000) return void this.destroy(new Error('storage connection reset'));
        this.push(G729.subarray(sent, sent + 1000));
        sent += 1000;
      },
    });
    const out = await t.transcode({ input: src, ...RAW_G729 });
    let ended = false;
    out.on('end', () => (ended = true));
    await expect(collect(out)).rejects.toThrow('storage connection reset');
    await gone(out);
    expect(ended).toBe(false);
  });

  it('a source destroyed without an error also fails the output', async () => {
    const t = make();
    const src = new Readable({ read() {} });
    src.push(G729.subarray(0, 2000));
    setTimeout(() => src.destroy(), 50);
    const out = await t.transcode({ input: src, ...RAW_G729 });
    await expect(collect(out)).rejects.toBeDefined();
    await gone(out);
  });

  it('an input that failed while the job waited for its slot fails the output at once', async () => {
    const t = make();
    const src = new Readable({ read() {} });
    src.on('error', () => {});
    src.destroy(new Error('failed while queued'));
    await new Promise((r) => setImmediate(r));
    const out = await t.transcode({ input: src, ...RAW_G729 });
    await expect(collect(out)).rejects.toThrow('failed while queued');
    await gone(out);
  });

  it('non-zero exit → media.undecodable carrying ffmpeg’s complaint', async () => {
    const t = make();
    const out = await t.transcode({ input: Readable.from([Buffer.from('this is not audio\n')]), inputArgs: ['-f', 'wav'], outputArgs: ['-f', 's16le'] });
    const err = await collect(out).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AppError);
    expect(err).toMatchObject({ code: 'media.undecodable', status: 422 });
    expect((await out.exited).code).not.toBe(0);
  });

  it('ffmpeg missing → media.transcoder_unavailable, slot released', async () => {
    const t = make({ ffmpegPath: join(tmp, 'no-such-ffmpeg') });
    const src = Readable.from([G729]);
    await expect(t.transcode({ input: src, ...RAW_G729 })).rejects.toMatchObject({ code: 'media.transcoder_unavailable', status: 503 });
    expect(t.active).toBe(0);
  });

  it('framing: header first, output held to the promised length', async () => {
    const t = make();
    const prefix = Buffer.from('HEAD');
    const exact = await t.transcode({ input: Readable.from([G729]), ...RAW_G729, framing: { prefix, expectedBytes: 845 * 160 } });
    const bytes = await collect(exact);
    expect(bytes.subarray(0, 4).toString()).toBe('HEAD');
    expect(bytes.length).toBe(4 + 845 * 160);
    // Promised one frame more than arrives: padded within tolerance, an error beyond it.
    const padded = await t.transcode({ input: Readable.from([G729]), ...RAW_G729, framing: { expectedBytes: 846 * 160, tolerance: 160 } });
    expect((await collect(padded)).length).toBe(846 * 160);
    const short = await t.transcode({ input: Readable.from([G729]), ...RAW_G729, framing: { expectedBytes: 850 * 160, tolerance: 160 } });
    await expect(collect(short)).rejects.toMatchObject({ code: 'media.undecodable' });
    const long = await t.transcode({ input: Readable.from([G729]), ...RAW_G729, framing: { expectedBytes: 100 * 160, tolerance: 160 } });
    await expect(collect(long)).rejects.toMatchObject({ code: 'media.undecodable' });
    await long.exited;
    expect(t.active).toBe(0);
  });
});
