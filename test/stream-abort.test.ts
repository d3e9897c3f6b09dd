import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { type Socket, connect } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditEvent } from '../src/audit/event.js';
import { wavHeader } from '../src/media/wav-header.js';
import { usableCatalogs } from './support/catalogs.js';
import { KEYS, startTestGateway, type TestGateway } from './support/gateway.js';

const SIZE = 16 * 1024 * 1024;

/** A WAV whose every byte differs from its neighbours', so a digest names one exact prefix. */
function media(): Buffer {
  const body = Buffer.alloc(SIZE - 44);
  for (let i = 0; i < body.length; i += 4) body.writeUInt32LE((i * 2654435761) >>> 0, i);
  return Buffer.concat([wavHeader({ sampleRate: 8000, channels: 1, bitsPerSample: 16, dataLength: body.length }), body]);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * A client that goes away mid-stream: the audit event says `aborted`, with the number of bytes
 * that actually left the process (handed to the kernel, not merely queued in the gateway) and
 * the SHA-256 of exactly those bytes — a prefix of the file.
 */
describe.each(await usableCatalogs())('a client disconnecting mid-stream, on %s', (kind) => {
  let gw: TestGateway;
  let file: Buffer;
  beforeAll(async () => {
    gw = await startTestGateway({ catalog: kind });
    file = media();
    writeFileSync(join(gw.roots.acme!, 'long.wav'), file);
    await gw.seed([
      { call_id: 'c-long', legacy_archive_id: 'long_1', locator: 'long.wav' },
      { call_id: 'c-g729', legacy_archive_id: 'g729_1', locator: 'call_mono_g729_8k.wav', codec: 'g729' },
    ]);
  });
  afterAll(async () => gw?.stop());

  it('records outcome aborted with the bytes actually sent and their SHA-256', async () => {
    let serverSocket: Socket | undefined;
    gw.app.server.once('connection', (s: Socket) => (serverSocket = s));
    const { hostname, port } = new URL(gw.url);
    const client = connect(Number(port), hostname);
    client.write(`GET /api/v1/recordings/long_1/media?format=original HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${KEYS.acme}\r\nConnection: close\r\n\r\n`);
    // Read the head and some body, then stop reading: the gateway fills the socket and stalls.
    let raw = Buffer.alloc(0);
    await new Promise<void>((resolve) => {
      const onData = (c: Buffer) => {
        raw = Buffer.concat([raw, c]);
        if (raw.length > 256 * 1024) {
          client.off('data', onData);
          client.pause();
          resolve();
        }
      };
      client.on('data', onData);
    });
    const headEnd = raw.indexOf('\r\n\r\n') + 4;
    const head = raw.subarray(0, headEnd).toString('latin1');
    expect(head).toMatch(/^HTTP\/1\.1 200/);
    const allowedId = /x-audit-event-id: (\S+)/i.exec(head)![1]!;
    const received = raw.length - headEnd;

    // Wait until the gateway makes no more progress, then note what the kernel has accepted.
    const s = serverSocket as Socket & { _bytesDispatched: number; _handle: { writeQueueSize: number } | null };
    let last = -1;
    while (s._bytesDispatched !== last) {
      last = s._bytesDispatched;
      await sleep(150);
    }
    const inKernel = s._bytesDispatched - (s._handle?.writeQueueSize ?? 0) - headEnd;
    expect(inKernel).toBeLessThan(SIZE - 44);
    client.destroy();

    let end: AuditEvent | undefined;
    for (let i = 0; i < 100 && !end; i++) {
      await sleep(50);
      end = (await gw.deps.auditRepo.query({ tenantId: 'acme', limit: 1000, action: 'recording.media.end' })).items.find((e) => e.relatedEventId === allowedId);
    }
    expect(end).toMatchObject({ outcome: 'aborted', errorCode: 'client.disconnected', status: 200 });
    const sent = end!.bytesSent!;
    expect(sent).toBeGreaterThanOrEqual(received);
    // Never more than left the process: bytes still queued inside it were not sent.
    expect(sent).toBeLessThanOrEqual(inKernel);
    expect(end!.sha256).toBe(createHash('sha256').update(file.subarray(0, sent)).digest('hex'));
  });

  it('records completed when the client hangs up after every byte it was promised, before the transcoder has exited', async () => {
    // A transcoded WAV has a Content-Length; a client (curl, a player) closes once it has that
    // many bytes, which can be before ffmpeg has exited and the body has ended on the server. The
    // download was whole: it was audited as "aborted, client.disconnected" with every byte sent.
    const { hostname, port } = new URL(gw.url);
    const client = connect(Number(port), hostname);
    client.write(`GET /api/v1/recordings/g729_1/media?format=wav HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${KEYS.acme}\r\n\r\n`);
    let raw = Buffer.alloc(0);
    const { head, body } = await new Promise<{ head: string; body: Buffer }>((resolve) => {
      client.on('data', (c: Buffer) => {
        raw = Buffer.concat([raw, c]);
        const headEnd = raw.indexOf('\r\n\r\n') + 4;
        if (headEnd < 4) return;
        const head = raw.subarray(0, headEnd).toString('latin1');
        const length = Number(/content-length: (\d+)/i.exec(head)?.[1]);
        if (raw.length - headEnd >= length) {
          client.destroy(); // the moment the last promised byte is in, as curl does
          resolve({ head, body: raw.subarray(headEnd, headEnd + length) });
        }
      });
    });
    expect(head).toMatch(/^HTTP\/1\.1 200/);
    expect(head).toMatch(/x-transcoded: true/i);
    const allowedId = /x-audit-event-id: (\S+)/i.exec(head)![1]!;
    let end: AuditEvent | undefined;
    for (let i = 0; i < 100 && !end; i++) {
      await sleep(50);
      end = (await gw.deps.auditRepo.query({ tenantId: 'acme', limit: 1000, action: 'recording.media.end' })).items.find((e) => e.relatedEventId === allowedId);
    }
    expect(end).toMatchObject({ outcome: 'completed', errorCode: null, status: 200, bytesSent: body.length });
    expect(end!.sha256).toBe(createHash('sha256').update(body).digest('hex'));
  });
});
