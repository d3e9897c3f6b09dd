import { randomBytes } from 'node:crypto';
import { truncateSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditEvent } from '../../audit/event.js';
import { wavHeader } from '../../media/wav-header.js';
import { KEYS, startTestGateway, type TestGateway } from '../../../test/support/gateway.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * An archive file cut short while the gateway serves it (an archive job rewriting it, an NFS/SMB
 * export being re-synced): the client must not get a clean end under a longer Content-Length, and
 * the audit trail must not say the transfer completed.
 */
describe('a filesystem archive file that shrinks while it is served, through the gateway', () => {
  let gw: TestGateway;
  const DATA = 32 * 1024 * 1024;
  const CUT = 1024 * 1024;

  beforeAll(async () => {
    gw = await startTestGateway();
    writeFileSync(join(gw.roots.acme!, 'shrinking.wav'), Buffer.concat([wavHeader({ sampleRate: 8000, channels: 1, bitsPerSample: 16, dataLength: DATA }), randomBytes(DATA)]));
    await gw.seed([{ call_id: 'c-shrink', source_system: 'avaya_aura', legacy_archive_id: 'shrink_1', locator: 'shrinking.wav' }]);
  });
  afterAll(async () => gw?.stop());

  it('cuts the connection short of Content-Length and audits the transfer as failed', async () => {
    const { hostname, port } = new URL(gw.url);
    const got = await new Promise<{ head: string; body: number; closed: boolean }>((resolve) => {
      let buf = Buffer.alloc(0);
      let head = '';
      let body = 0;
      const sock = connect(Number(port), hostname, () => {
        sock.write(`GET /api/v1/recordings/shrink_1/media?format=original HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${KEYS.acme}\r\n\r\n`);
      });
      sock.on('data', (c: Buffer) => {
        if (!head) {
          buf = Buffer.concat([buf, c]);
          const i = buf.indexOf('\r\n\r\n');
          if (i < 0) return;
          head = buf.subarray(0, i).toString('latin1');
          body = buf.length - i - 4;
          // The first body bytes are out: the file is now cut under the gateway's feet.
          truncateSync(join(gw.roots.acme!, 'shrinking.wav'), CUT);
        } else body += c.length;
      });
      const timer = setTimeout(() => {
        sock.destroy();
        resolve({ head, body, closed: false });
      }, 10_000);
      // The gateway ends a broken transfer by closing the connection (no keep-alive reuse of it).
      sock.on('close', () => {
        clearTimeout(timer);
        resolve({ head, body, closed: true });
      });
      sock.on('error', () => {});
    });
    expect(got.head).toMatch(/^HTTP\/1\.1 200/);
    const length = Number(/content-length: (\d+)/i.exec(got.head)?.[1]);
    expect(length).toBe(DATA + 44);
    expect(got.closed).toBe(true);
    expect(got.body).toBeLessThan(length);
    expect(got.body).toBeLessThanOrEqual(CUT);

    const allowedId = /x-audit-event-id: (\S+)/i.exec(got.head)?.[1];
    expect(allowedId).toBeDefined();
    let end: AuditEvent | undefined;
    for (let i = 0; i < 100 && !end; i++) {
      end = (await gw.deps.auditRepo.query({ tenantId: 'acme', limit: 1000, action: 'recording.media.end' })).items.find((e) => e.relatedEventId === allowedId);
      if (!end) await sleep(50);
    }
    expect(end).toMatchObject({ outcome: 'failed', errorCode: 'source.unavailable' });
    expect(end!.bytesSent).toBeLessThanOrEqual(CUT);
  });
});
