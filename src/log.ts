import { pino, type Logger } from 'pino';
import type { CredentialScrubber } from './scrub/credential-scrubber.js';

/**
 * Structured logs (JSON lines) on stderr, so stdout stays free for the banner and for the stdio bridge's
 * protocol. Known credential-bearing fields are redacted wherever they appear. With a `scrubber` (the credentials the
 * process injects into its upstreams), every line is scrubbed as it is written: a last line of defence behind the
 * scrubbing where upstream text enters, for a log line that carries such text some other way.
 */
export function createLogger(level: string, destination: NodeJS.WritableStream = process.stderr, scrubber?: CredentialScrubber): Logger {
  return pino(
    {
      level,
      base: { service: 'portcullis' },
      redact: {
        paths: ['authorization', '*.authorization', 'headers.authorization', 'req.headers.authorization', 'req.headers.cookie', 'token', '*.token'],
        censor: '[redacted]',
      },
      ...(scrubber !== undefined && scrubber.size > 0 ? { hooks: { streamWrite: (line: string) => scrubber.scrubJson(line) } } : {}),
    },
    // Synchronous: log volume is per session, not per message, and a line written just before exit must not be lost.
    pino.destination({ dest: (destination as { fd?: number }).fd ?? 2, sync: true }),
  );
}

/**
 * Sends process warnings (deprecations, a dependency's warnings) to the log as JSON lines, instead of Node's
 * default plain-text lines on stderr that would break the log's format. For processes whose stderr is the log.
 */
export function logProcessWarnings(log: Logger): void {
  // Node's own printer is a 'warning' listener added at start-up: replacing it is what stops the plain text.
  process.removeAllListeners('warning');
  process.on('warning', (w: Error & { code?: string }) => {
    log.warn({ warning: { name: w.name, message: w.message, ...(w.code ? { code: w.code } : {}) } }, `process warning: ${w.name}`);
  });
}
