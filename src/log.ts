import { pino, type Logger } from 'pino';

/**
 * Structured logs (JSON lines) on stderr, so stdout stays free for the banner and for the stdio bridge's
 * protocol. Known credential-bearing fields are redacted wherever they appear.
 */
export function createLogger(level: string, destination: NodeJS.WritableStream = process.stderr): Logger {
  return pino(
    {
      level,
      base: { service: 'portcullis' },
      redact: {
        paths: ['authorization', '*.authorization', 'headers.authorization', 'req.headers.authorization', 'req.headers.cookie', 'token', '*.token'],
        censor: '[redacted]',
      },
    },
    // Synchronous: log volume is per session, not per message, and a line written just before exit must not be lost.
    pino.destination({ dest: (destination as { fd?: number }).fd ?? 2, sync: true }),
  );
}
