import pino, { type DestinationStream, type Logger } from 'pino';

/**
 * Where a secret could reach a log line: tokens and authorization headers (never logged on
 * purpose, redacted in case an error carries one), and URLs, which often carry a secret in their
 * path or query (webhook URLs do: Slack's, for one) or credentials (DATABASE_URL). A URL is shown
 * as its origin only: enough to know which service, nothing to replay.
 */
export const REDACTED_PATHS = [
  'token',
  'tokens',
  'authorization',
  '*.authorization',
  'headers.authorization',
  '*.headers.authorization',
  'password',
  'url',
  'webhookUrl',
  'databaseUrl',
  '*.url',
  '*.webhookUrl',
  '*.databaseUrl',
];

/** `https://hooks.example/T0/B1/secret?x=1` → `https://hooks.example`; anything else → [redacted]. */
export function urlOrigin(value: unknown): string {
  if (typeof value !== 'string') return '[redacted]';
  try {
    const origin = new URL(value).origin;
    return origin === 'null' ? '[redacted]' : origin;
  } catch {
    return '[redacted]';
  }
}

export function createLogger(level: pino.LevelWithSilent, destination?: DestinationStream): Logger {
  const options: pino.LoggerOptions = {
    level,
    redact: {
      paths: REDACTED_PATHS,
      censor: (value, path) => (/url$/i.test(path[path.length - 1] ?? '') ? urlOrigin(value) : '[redacted]'),
    },
  };
  return destination ? pino(options, destination) : pino(options);
}
