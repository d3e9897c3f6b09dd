/**
 * nginx as the reference: a static origin (sendfile) and a proxy_pass in front of it, one nginx
 * master started by the benchmark with its own prefix and config, stopped by its pid.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { sleep } from './common.js';

function which(cmd: string): string | null {
  for (const dir of ['/usr/sbin', '/usr/bin', '/usr/local/sbin', '/usr/local/bin', ...(process.env.PATH ?? '').split(':')]) {
    try {
      execFileSync('test', ['-x', join(dir, cmd)]);
      return join(dir, cmd);
    } catch {
      /* next */
    }
  }
  return null;
}

/** nginx's path, installing it with apt-get when missing (we run as root on the bench machine). */
export function ensureNginx(): string {
  const found = which('nginx');
  if (found) return found;
  console.log('nginx is not installed: apt-get install -y nginx');
  const install = () => execFileSync('apt-get', ['install', '-y', 'nginx'], { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  try {
    install();
  } catch {
    execFileSync('apt-get', ['update'], { stdio: ['ignore', 'ignore', 'inherit'] });
    install();
  }
  const after = which('nginx');
  if (!after) throw new Error('nginx could not be installed; the stream benchmark needs it as its reference');
  return after;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

async function waitForPort(port: number, ms: number): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    const ok = await new Promise<boolean>((r) => {
      const c = connect(port, '127.0.0.1');
      c.once('connect', () => {
        c.destroy();
        r(true);
      });
      c.once('error', () => r(false));
    });
    if (ok) return;
    if (Date.now() > end) throw new Error(`nothing listens on 127.0.0.1:${port}`);
    await sleep(50);
  }
}

export interface NginxPair {
  /** http://127.0.0.1:<origin> — static files (sendfile). */
  originUrl: string;
  /** http://127.0.0.1:<proxy> — proxy_pass to the origin (keep-alive upstream). */
  proxyUrl: string;
  originPort: number;
  proxyPort: number;
  /** The same proxy_pass with Debian's default proxy buffers (8 × one memory page): the calibration. */
  proxyDefaultsUrl: string;
  pid: number;
  config: string;
  stop(): Promise<void>;
}

/**
 * The proxy's buffering, as one would set it for large media: 64 KiB buffers (custodian moves
 * 64 KiB chunks) instead of the defaults (proxy_buffers 8 4k|8k, one memory page each), which
 * made nginx copy a large body in 4 KiB pieces — a handicapped reference. 'off' passes each
 * upstream read (up to proxy_buffer_size, 64k) straight to the client.
 */
export type ProxyBuffering = 'on' | 'off';

/** The faster of the two in a narrowed run on this host (docs/BENCHMARKS.md, method changes of stop 19). */
export const DEFAULT_PROXY_BUFFERING: ProxyBuffering = 'on';

export function proxyBufferingConfig(mode: ProxyBuffering): string {
  // the same buffer sizes either way (nginx checks proxy_busy_buffers_size against proxy_buffers even with buffering off)
  return `proxy_buffering ${mode};\n      proxy_buffer_size 64k;\n      proxy_buffers 8 64k;\n      proxy_busy_buffers_size 128k;`;
}

/**
 * Serves `root` at /archive/ (so /archive/recordings/x.wav is <root>/x.wav, and every
 * /archive/recordings/small-<n>.wav is <root>/small.wav) on one port, and proxies it on another.
 */
export async function startNginx(opts: { dir: string; root: string; workers?: number; proxyBuffering?: ProxyBuffering }): Promise<NginxPair> {
  const nginx = ensureNginx();
  const prefix = join(opts.dir, 'nginx');
  for (const d of ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi', 'logs']) mkdirSync(join(prefix, d), { recursive: true });
  const originPort = await freePort();
  const proxyPort = await freePort();
  const defaultsPort = await freePort();
  const config = `# written by bench/lib/nginx.ts
${process.getuid?.() === 0 ? 'user root;' : ''}
worker_processes ${opts.workers ?? availableParallelism()};
daemon off;
pid ${prefix}/nginx.pid;
error_log ${prefix}/logs/error.log warn;
events { worker_connections 8192; }
http {
  access_log off;
  default_type application/octet-stream;
  types { audio/wav wav; }
  sendfile on;
  tcp_nopush on;
  tcp_nodelay on;
  keepalive_timeout 65;
  keepalive_requests 1000000;
  client_body_temp_path ${prefix}/client_body;
  proxy_temp_path ${prefix}/proxy;
  fastcgi_temp_path ${prefix}/fastcgi;
  uwsgi_temp_path ${prefix}/uwsgi;
  scgi_temp_path ${prefix}/scgi;

  upstream origin {
    server 127.0.0.1:${originPort};
    keepalive 512;
  }

  # the origin: static files
  server {
    listen 127.0.0.1:${originPort} backlog=4096;
    root ${opts.root};
    location /archive/ {
      rewrite ^/archive/recordings/small-[0-9]+\\.wav$ /small.wav break;
      rewrite ^/archive/recordings/(.+)$ /$1 break;
    }
  }

  # the reference proxy, configured for large media: 64 KiB proxy buffers (custodian moves 64 KiB
  # chunks; the defaults are 8 × one memory page), no spooling to temp files (custodian does not spool either)
  server {
    listen 127.0.0.1:${proxyPort} backlog=4096;
    location / {
      proxy_pass http://origin;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      ${proxyBufferingConfig(opts.proxyBuffering ?? DEFAULT_PROXY_BUFFERING)}
      proxy_max_temp_file_size 0;
    }
  }

  # the same proxy as Debian's nginx runs it out of the box: no proxy buffer settings (8 × one
  # memory page), the issue's calibration ("nginx proxied a 1 GiB file at about 0.75–1.0 GB/s")
  server {
    listen 127.0.0.1:${defaultsPort} backlog=4096;
    location / {
      proxy_pass http://origin;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
`;
  const confPath = join(prefix, 'nginx.conf');
  writeFileSync(confPath, config);
  const child: ChildProcess = spawn(nginx, ['-p', prefix, '-c', confPath], { stdio: ['ignore', 'ignore', 'inherit'] });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  await Promise.race([
    Promise.all([waitForPort(originPort, 10_000), waitForPort(proxyPort, 10_000), waitForPort(defaultsPort, 10_000)]),
    exited.then(() => {
      throw new Error(`nginx exited at start; see ${prefix}/logs/error.log`);
    }),
  ]);
  return {
    originUrl: `http://127.0.0.1:${originPort}`,
    proxyUrl: `http://127.0.0.1:${proxyPort}`,
    proxyDefaultsUrl: `http://127.0.0.1:${defaultsPort}`,
    originPort,
    proxyPort,
    pid: child.pid!,
    config,
    async stop() {
      if (child.exitCode !== null) return;
      child.kill('SIGQUIT'); // graceful: the master stops its workers
      const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(t);
    },
  };
}
