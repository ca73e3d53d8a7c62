import { connect } from 'node:net';
import { UpstreamError } from './upstream.js';

/** How an HTTP upstream's answers break, and how the gateway tells a broken answer from a server that is gone. */

/** A request that failed before its answer began; `code` is the socket error's (ECONNREFUSED, ECONNRESET, …). */
export class LinkError extends UpstreamError {
  constructor(
    message: string,
    readonly code: string | undefined,
  ) {
    // Nothing listens at the server's address: the process that held the session is gone.
    super(message, code === 'ECONNREFUSED');
  }
}

/** An answer whose body stopped before its end: `partial` is what had arrived of it. */
export class CutOffError extends UpstreamError {
  constructor(readonly partial: string) {
    super(`the upstream server's answer broke off after ${Buffer.byteLength(partial)} bytes`, false);
  }
}

/** Where the last complete SSE event in `text` ends (just past its blank line), looking from `from`; -1 if none. */
export function lastEventEnd(text: string, from: number): number {
  let end = -1;
  for (const blank of ['\n\n', '\r\r', '\r\n\r\n']) {
    for (let i = text.indexOf(blank, from); i >= 0; i = text.indexOf(blank, i + 1)) end = Math.max(end, i + blank.length);
  }
  return end;
}

/** Whether leftover SSE text holds part of an event (a field line), not just comments and blank lines. */
export function holdsEvent(text: string): boolean {
  return text.split(/\r\n|\r|\n/).some((line) => line !== '' && !line.startsWith(':'));
}

/** How long the check that the server is still there may take. */
const probeTimeoutMs = 2000;

/**
 * Whether the server's address refuses a TCP connection: nothing listens there (its process died). False when
 * unsure (it connects, or does not answer in time): a server that is merely slow or behind a flaky proxy is not
 * declared gone. A TCP probe, not an MCP request: it puts nothing into the server's session.
 */
export function refusesConnections(url: URL): Promise<boolean> {
  const port = Number(url.port || (url.protocol === 'https:' ? 443 : 80));
  const host = url.hostname.replace(/^\[|\]$/g, '');
  return new Promise((resolve) => {
    const socket = connect({ host, port, timeout: probeTimeoutMs });
    const done = (refused: boolean) => {
      socket.destroy();
      resolve(refused);
    };
    socket.once('connect', () => done(false));
    socket.once('timeout', () => done(false));
    socket.once('error', (err: NodeJS.ErrnoException) => done(err.code === 'ECONNREFUSED'));
  });
}
