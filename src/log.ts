import { createRequire } from 'node:module';
import { pino, type DestinationStream, type Logger } from 'pino';
import type { CredentialScrubber } from './scrub/credential-scrubber.js';

/** `auto`: pretty on a terminal, JSON lines anywhere else (a file, a pipe, a log collector). */
export type LogFormat = 'auto' | 'json' | 'pretty';
export const logFormats: readonly LogFormat[] = ['auto', 'json', 'pretty'];

/** Where log lines go: a file descriptor (stderr by default), or any stream that takes whole lines (a test's buffer). */
export type LogDestination = NodeJS.WritableStream | { fd: number; isTTY?: boolean };

/**
 * Structured logs on stderr, so stdout stays free for the banner and for the stdio bridge's protocol. Known
 * credential-bearing fields are redacted wherever they appear. With a `scrubber` (the credentials the process injects
 * into its upstreams), every line is scrubbed as it is written: a last line of defence behind the scrubbing where
 * upstream text enters, for a log line that carries such text some other way.
 *
 * `format` decides how a line looks, never what it says: the line is built, redacted and scrubbed as JSON first, and
 * only then, when pretty, rendered for people. So both formats carry the same (scrubbed) content.
 */
export function createLogger(level: string, destination: LogDestination = process.stderr, scrubber?: CredentialScrubber, format: LogFormat = 'auto'): Logger {
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
    outputFor(destination, resolveFormat(format, destination)),
  );
}

/** The format `auto` stands for on this destination: pretty only for a person at a terminal. */
export function resolveFormat(format: LogFormat, destination: LogDestination = process.stderr): 'json' | 'pretty' {
  if (format !== 'auto') return format;
  return (destination as { isTTY?: boolean }).isTTY === true ? 'pretty' : 'json';
}

/**
 * The stream pino writes each finished line to. Synchronous in both formats: log volume is per session, not per
 * message, and a line written just before exit must not be lost. (pino-pretty's own stream is an asynchronous
 * transform, so the pretty output here renders each line itself and writes it synchronously.)
 */
function outputFor(destination: LogDestination, format: 'json' | 'pretty'): DestinationStream {
  const fd = (destination as { fd?: unknown }).fd;
  const sink: DestinationStream & { flush?: (cb?: (err?: Error) => void) => void } =
    typeof fd === 'number' ? pino.destination({ dest: fd, sync: true }) : (destination as NodeJS.WritableStream as DestinationStream);
  if (format === 'json') return sink;
  const render = prettyRenderer((destination as { isTTY?: boolean }).isTTY === true && !process.env.NO_COLOR);
  return {
    write: (line: string) => {
      sink.write(render(line));
    },
    ...(sink.flush === undefined ? {} : { flush: (cb?: (err?: Error) => void) => sink.flush!(cb) }),
  } as DestinationStream;
}

/**
 * pino-pretty's line renderer, loaded only when a pretty log is asked for: a JSON log (production) never loads it.
 * One line per entry (its fields after the message), the service name left out (every line has it), the time local,
 * as a person at the terminal reads it.
 */
function prettyRenderer(colorize: boolean): (line: string) => string {
  const { prettyFactory } = createRequire(import.meta.url)('pino-pretty') as typeof import('pino-pretty');
  return prettyFactory({ colorize, ignore: 'pid,hostname,service', translateTime: 'SYS:HH:MM:ss.l', singleLine: true });
}

/**
 * Sends process warnings (deprecations, a dependency's warnings) to the log as log lines, instead of Node's default
 * plain-text lines on stderr that would break the log's format. For processes whose stderr is the log.
 */
export function logProcessWarnings(log: Logger): void {
  // Node's own printer is a 'warning' listener added at start-up: replacing it is what stops the plain text.
  process.removeAllListeners('warning');
  process.on('warning', (w: Error & { code?: string }) => {
    log.warn({ warning: { name: w.name, message: w.message, ...(w.code ? { code: w.code } : {}) } }, `process warning: ${w.name}`);
  });
}
