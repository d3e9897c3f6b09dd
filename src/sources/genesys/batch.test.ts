import { request } from 'undici';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AppError } from '../../errors.js';
import { GenesysConnector } from './connector.js';
import { startGenesysSimulator, type GenesysSimulator } from './simulator.js';
import { bytesOf, configFor, errorCodeOf } from './test-helpers.js';

/** Batch download (POST/GET /api/v2/recording/batchrequests) against the simulator. */

const MEDIA = bytesOf(4_096, 3);
let sim: GenesysSimulator;
const open: GenesysConnector[] = [];
const signal = () => new AbortController().signal;
const FAST = { initial_ms: 10, max_ms: 40, budget_ms: 5_000 };

function connector(over: Record<string, unknown> = {}): GenesysConnector {
  const c = new GenesysConnector('tenant-a', configFor(sim, { batch_poll: FAST, ...over }));
  open.push(c);
  return c;
}

const conv = (i: number) => `c0000000-0000-4000-8000-${String(i).padStart(12, '0')}`;
const posts = () => sim.requests.filter((e) => e.method === 'POST' && e.path === '/api/v2/recording/batchrequests');
const polls = () => sim.requests.filter((e) => e.method === 'GET' && e.path.startsWith('/api/v2/recording/batchrequests/'));

beforeEach(async () => {
  sim = await startGenesysSimulator({ batchPolls: 1 });
  for (let i = 0; i < 250; i++) sim.addRecording({ conversationId: conv(i), recordingId: `r-${i}`, bytes: MEDIA, contentType: 'audio/wav' });
  sim.addRecording({ conversationId: 'c-two', recordingId: 'r-two-a', bytes: 'A' });
  sim.addRecording({ conversationId: 'c-two', recordingId: 'r-two-b', bytes: 'B' });
  sim.addRecording({ conversationId: 'c-arch', recordingId: 'r-arch', bytes: 'x', fileState: 'ARCHIVED', archiveDate: '2025-01-01T00:00:00.000Z' });
  sim.addRecording({ conversationId: 'c-del', recordingId: 'r-del', fileState: 'DELETED' });
});

afterEach(async () => {
  await Promise.all(open.splice(0).map((c) => c.close()));
  await sim.close();
});

describe('GenesysConnector.batchDownload', () => {
  it('splits 250 items into jobs of at most 100 and returns each item’s link, in order', async () => {
    const c = connector();
    const items = Array.from({ length: 250 }, (_, i) => ({ conversationId: conv(i), recordingId: `r-${i}` }));
    const out = await c.batchDownload(items, signal());
    expect(out).toHaveLength(250);
    expect(sim.batchJobs).toBe(3);
    expect(posts().map((e) => (JSON.parse(e.body) as { batchDownloadRequestList: unknown[] }).batchDownloadRequestList.length)).toEqual([100, 100, 50]);
    expect(new Set(out.map((o) => o.jobId)).size).toBe(3);
    out.forEach((o, i) => {
      expect(o.item).toEqual(items[i]);
      expect(o.errors).toEqual([]);
      expect(o.results).toHaveLength(1);
      expect(o.results[0]).toMatchObject({ recordingId: `r-${i}`, contentType: 'audio/wav' });
    });
    // The links serve the original bytes, with no credentials of ours.
    const res = await request(out[7]!.results[0]!.resultUrl);
    expect(Buffer.from(await res.body.arrayBuffer()).equals(MEDIA)).toBe(true);
    const media = sim.requests.filter((e) => e.role === 'media');
    expect(media.every((e) => e.headers.authorization === undefined)).toBe(true);
  });

  it('reports per-item errors: archived and deleted recordings carry Genesys’ errorMsg, unknown ids too; a conversation yields all its recordings', async () => {
    const c = connector();
    const out = await c.batchDownload(
      [
        { conversationId: 'c-arch', recordingId: 'r-arch' },
        { conversationId: 'c-two' },
        { conversationId: 'c-del', recordingId: 'r-del' },
        { conversationId: 'c-none', recordingId: 'r-none' },
        { conversationId: conv(1), recordingId: 'r-1' },
      ],
      signal(),
    );
    expect(out[0]).toMatchObject({ results: [], errors: [expect.stringMatching(/archived/i)] });
    expect(out[1]!.errors).toEqual([]);
    expect(out[1]!.results.map((r) => r.recordingId).sort()).toEqual(['r-two-a', 'r-two-b']);
    expect(out[2]).toMatchObject({ results: [], errors: [expect.stringMatching(/deleted/i)] });
    expect(out[3]).toMatchObject({ results: [], errors: [expect.stringMatching(/not found/i)] });
    expect(out[4]!.results).toHaveLength(1);
    expect(sim.batchJobs).toBe(1);
  });

  it('polls with backoff until Completed, and gives partial results plus an error when the budget runs out', async () => {
    sim.set({ batchPolls: 3 });
    const c = connector();
    const out = await c.batchDownload([{ conversationId: conv(1), recordingId: 'r-1' }], signal());
    expect(out[0]!.results).toHaveLength(1);
    expect(polls()).toHaveLength(4);
    const gaps = polls()
      .slice(1)
      .map((e, i) => e.at - polls()[i]!.at);
    expect(gaps.every((g) => g >= 8)).toBe(true);

    sim.set({ batchPolls: 10_000 });
    sim.clearLog();
    const slow = await c.batchDownload([{ conversationId: conv(2), recordingId: 'r-2' }, { conversationId: 'c-two' }], signal(), { budget_ms: 150 });
    expect(slow[0]).toMatchObject({ results: [], errors: [expect.stringMatching(/did not complete within 150 ms/)] });
    expect(slow[1]!.errors).toEqual([expect.stringMatching(/did not complete/)]);
    expect(polls().length).toBeGreaterThanOrEqual(2);
  });

  it('only the submitting client may read the results', async () => {
    sim.set({ clients: [...sim.knobs.clients, { id: 'someone-else', secret: 'their-secret' }] });
    const mine = connector();
    const jobId = await mine.api.submitBatchDownload([{ conversationId: conv(3), recordingId: 'r-3' }], signal());
    const theirs = connector({ client_id: 'someone-else', client_secret: 'their-secret' });
    const e = await theirs.api.getBatchDownload(jobId, signal()).catch((x: unknown) => x as AppError);
    expect(errorCodeOf(e)).toBe('source.auth_failed');
    expect((e as AppError).extra).toMatchObject({ genesys_status: 403, genesys_code: 'batch.download.permission.denied' });
    expect((await mine.api.getBatchDownload(jobId, signal())).jobId).toBe(jobId);
  });

  it('shares the 429 gate: a rate-limited poll waits Retry-After and the batch still completes', async () => {
    const c = connector();
    await c.check(signal());
    sim.rateLimitNext(2, 1);
    const t0 = Date.now();
    const out = await c.batchDownload([{ conversationId: conv(4), recordingId: 'r-4' }], signal());
    expect(out[0]!.results).toHaveLength(1);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(900);
    expect(c.stats().rateLimited).toBe(2);
  });

  it('missing rights fail the whole call with source.auth_failed and the Genesys code', async () => {
    sim.set({ clients: [{ id: 'custodian-sim', secret: 'custodian-sim-secret', permissions: ['analytics:conversationDetail:view'] }] });
    const c = connector();
    const e = await c.batchDownload([{ conversationId: conv(5) }], signal()).catch((x: unknown) => x as AppError);
    expect(errorCodeOf(e)).toBe('source.auth_failed');
    expect((e as AppError).extra).toMatchObject({ genesys_status: 403, genesys_code: 'missing.any.permissions' });
  });

  it('an abort stops polling at once', async () => {
    sim.set({ batchPolls: 10_000 });
    const c = connector();
    const ac = new AbortController();
    const p = c.batchDownload([{ conversationId: conv(6), recordingId: 'r-6' }], ac.signal);
    setTimeout(() => ac.abort(), 100);
    await expect(p).rejects.toBeDefined();
    const n = polls().length;
    await new Promise((r) => setTimeout(r, 150));
    expect(polls().length).toBe(n);
  });

  it('nothing to do: no request; an item without a conversationId is refused before any request', async () => {
    const c = connector();
    expect(await c.batchDownload([], signal())).toEqual([]);
    await expect(c.batchDownload([{ conversationId: '' }], signal())).rejects.toMatchObject({ code: 'request.invalid' });
    expect(sim.requests).toHaveLength(0);
  });
});
