import { closeSync, openSync, writeSync, ftruncateSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { wavHeader } from '../src/media/wav-header.js';
import { KEYS, bearer, startTestGateway, type TestGateway } from './support/gateway.js';

const GiB = 1024 * 1024 * 1024;

/**
 * Streams, not buffers: a 1 GiB archive file to a client that keeps pausing must not grow the
 * gateway's memory. The gateway runs in this process, so this process's RSS is its RSS.
 */
describe('memory while streaming a 1 GiB file to a slow client', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startTestGateway();
    // A sparse file: 1 GiB on paper, no disk used; a PCM WAV header so it sniffs as playable.
    const fd = openSync(join(gw.roots.acme!, 'huge.wav'), 'w');
    writeSync(fd, wavHeader({ sampleRate: 8000, channels: 1, bitsPerSample: 16, dataLength: GiB - 44 }));
    ftruncateSync(fd, GiB);
    closeSync(fd);
    await gw.seed([{ call_id: 'c-huge', legacy_archive_id: 'huge_1', locator: 'huge.wav' }]);
  });
  afterAll(async () => gw?.stop());

  it('keeps RSS growth under 64 MiB and delivers every byte', { timeout: 120_000 }, async () => {
    global.gc?.();
    const baseline = process.memoryUsage().rss;
    let peak = baseline;
    const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 50);
    const received = await new Promise<number>((resolve, reject) => {
      const req = httpRequest(`${gw.url}/api/v1/recordings/huge_1/media?format=original`, { headers: bearer(KEYS.acme) }, (res) => {
        let n = 0;
        let sincePause = 0;
        res.on('data', (c: Buffer) => {
          n += c.length;
          sincePause += c.length;
          // A slow client: stop reading for a while every 8 MiB, so the gateway must hold back.
          if (sincePause >= 8 * 1024 * 1024) {
            sincePause = 0;
            res.pause();
            setTimeout(() => res.resume(), 25);
          }
        });
        res.on('end', () => resolve(n));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end();
    });
    clearInterval(sampler);
    expect(received).toBe(GiB);
    const growth = (peak - baseline) / (1024 * 1024);
    expect(growth, `RSS grew ${growth.toFixed(1)} MiB`).toBeLessThan(64);
  });
});
