import pino, { type Logger } from 'pino';

/**
 * Redaction is a second line of defence: secrets are Secret objects that print as "[secret]",
 * media URIs and tokens are never passed to the logger. pino needs exact paths.
 */
export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'headers.authorization',
  'headers.cookie',
  'authorization',
  'password',
  'client_secret',
  'access_token',
  'token',
  'mediaUri',
  'media_uri',
  'url',
  'config.auth',
  'err.config',
];

/** A query parameter's name worth keeping in the log (what was asked); anything else is not a name but data. */
const LOGGABLE_NAME = /^[A-Za-z][A-Za-z0-9_.-]{0,31}$/;
/** A path segment shaped like a media ticket (tickets.ts: mt_ + base64url): a bearer secret, even in the wrong place. */
const TICKET_SEGMENT = /^mt_[A-Za-z0-9_-]{40,}$/;

/**
 * A request URL as the log may keep it: the path, and the query string's parameter names with
 * every value replaced. Query strings carry bearer secrets (a media ticket `t`, an OIDC `code` and
 * `state`) and free text (`purpose`, which may name a patient), and a URL that misses its route by
 * a character is logged before any route could turn its log off — so no value is ever logged.
 * `/api/v1/x?t=mt_…&purpose=…` → `/api/v1/x?t=[redacted]&purpose=[redacted]`.
 */
export function loggableUrl(url: string): string {
  const q = url.indexOf('?');
  const path = (q < 0 ? url : url.slice(0, q))
    .split('/')
    .map((seg) => (TICKET_SEGMENT.test(seg) ? '[redacted]' : seg))
    .join('/');
  if (q < 0) return path;
  const params = url
    .slice(q + 1)
    .split('&')
    .filter((p) => p !== '')
    .map((p) => {
      const eq = p.indexOf('=');
      // A parameter without "=" is all value; a name that is not name-like may be data too.
      return eq > 0 && LOGGABLE_NAME.test(p.slice(0, eq)) ? `${p.slice(0, eq)}=[redacted]` : '[redacted]';
    });
  return `${path}?${params.join('&')}`;
}

interface LoggedRequest {
  method?: string;
  url?: string;
  host?: string;
  ip?: string;
  headers?: Record<string, unknown>;
  socket?: { remotePort?: number };
}

/**
 * The `req` serializer of every request log line (fastify's "incoming request"): fastify's own
 * fields, with the URL as loggableUrl keeps it. app.ts installs it on each request's logger, so it
 * holds whatever logger the gateway was given; createLogger sets it too.
 */
export function requestSerializer(req: LoggedRequest): Record<string, unknown> {
  return {
    method: req.method,
    url: typeof req.url === 'string' ? loggableUrl(req.url) : undefined,
    host: req.host,
    remoteAddress: req.ip,
    remotePort: req.socket?.remotePort,
  };
}

export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      serializers: { req: requestSerializer },
      base: { service: 'custodian' },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination,
  );
}
