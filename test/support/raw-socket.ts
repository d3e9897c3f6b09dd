import { connect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';

/** One HTTP/1.1 answer read off a raw connection. */
export interface RawAnswer {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

/** What came back on one connection: every complete answer in order, and whether the server closed it. */
export interface Exchange {
  answers: RawAnswer[];
  /** Bytes after the last complete answer (a torn or unframed one). */
  rest: Buffer;
  closedByServer: boolean;
}

function dechunk(b: Buffer): { body: Buffer; used: number } | null {
  const out: Buffer[] = [];
  let i = 0;
  for (;;) {
    const nl = b.indexOf('\r\n', i);
    if (nl < 0) return null;
    const n = parseInt(b.subarray(i, nl).toString('latin1').split(';')[0]!, 16);
    if (Number.isNaN(n)) return null;
    if (n === 0) {
      const end = b.indexOf('\r\n\r\n', nl);
      return end < 0 ? null : { body: Buffer.concat(out), used: end + 4 };
    }
    if (b.length < nl + 2 + n + 2) return null;
    out.push(b.subarray(nl + 2, nl + 2 + n));
    i = nl + 2 + n + 2;
  }
}

/** Splits a byte stream into HTTP/1.1 answers (Content-Length or chunked framing; none for 204/304 or answers to HEAD). */
export function parseAnswers(all: Buffer, headRequests = false): { answers: RawAnswer[]; rest: Buffer } {
  const answers: RawAnswer[] = [];
  let b = all;
  for (;;) {
    const he = b.indexOf('\r\n\r\n');
    if (he < 0) break;
    const lines = b.subarray(0, he).toString('latin1').split('\r\n');
    const status = Number(lines[0]!.split(' ')[1]);
    const headers: Record<string, string> = {};
    for (const l of lines.slice(1)) {
      const c = l.indexOf(':');
      const k = l.slice(0, c).trim().toLowerCase();
      headers[k] = headers[k] === undefined ? l.slice(c + 1).trim() : `${headers[k]}, ${l.slice(c + 1).trim()}`;
    }
    const after = b.subarray(he + 4);
    let body: Buffer;
    let used: number;
    if (headRequests || status === 204 || status === 304) {
      body = Buffer.alloc(0);
      used = 0;
    } else if (/chunked/i.test(headers['transfer-encoding'] ?? '')) {
      const d = dechunk(after);
      if (!d) break;
      ({ body, used } = d);
    } else {
      const n = Number(headers['content-length'] ?? 0);
      if (after.length < n) break;
      body = after.subarray(0, n);
      used = n;
    }
    answers.push({ status, headers, body });
    b = after.subarray(used);
  }
  return { answers, rest: b };
}

/** Writes raw bytes on a fresh connection (TLS with `tls`, any certificate) and reads until the server closes it (or `timeoutMs`, then closes it itself). */
export function exchange(port: number, data: Buffer | string, opts: { timeoutMs?: number; head?: boolean; tls?: boolean } = {}): Promise<Exchange> {
  return new Promise((resolve, reject) => {
    const sock = opts.tls ? tlsConnect({ port, host: '127.0.0.1', rejectUnauthorized: false }) : connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let closedByServer = true;
    const timer = setTimeout(() => {
      closedByServer = false;
      sock.destroy();
    }, opts.timeoutMs ?? 10_000);
    sock.on('data', (c: Buffer) => chunks.push(c));
    sock.on('error', (e: NodeJS.ErrnoException) => {
      // A reset after the answers were read is still a close by the server.
      if (e.code !== 'ECONNRESET') reject(e);
    });
    sock.on('close', () => {
      clearTimeout(timer);
      resolve({ ...parseAnswers(Buffer.concat(chunks), opts.head), closedByServer });
    });
    sock.write(data);
  });
}
