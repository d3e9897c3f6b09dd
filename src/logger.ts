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

export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      base: { service: 'custodian' },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination,
  );
}
