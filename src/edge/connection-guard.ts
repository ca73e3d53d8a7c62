import { readFileSync } from 'node:fs';
import type { IncomingMessage, Server, ServerOptions, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';

/**
 * Slow and idle clients (slowloris). Node enforces the timeouts: the request head must arrive within
 * `headersMs` (counted from the connection, or from the first byte of a later request on it), head and body
 * within `requestMs`, and a keep-alive socket may wait `idleMs` for its next request; each answered 408 and
 * closed. They end with the request's body: a response that lasts (an SSE stream, a call held for review, an
 * agent's WebSocket) is never cut by them. What they cannot stop is many sockets at once, so connections are
 * also capped: over the cap the oldest socket with no request in progress is shed, and only when every socket
 * is busy is the newcomer refused (503).
 */
export interface ConnectionLimits {
  headersMs: number;
  requestMs: number;
  idleMs: number;
  maxConnections: number;
}

/** The node:http server options that enforce the timeouts. */
export function timeoutOptions(l: ConnectionLimits): ServerOptions {
  return {
    headersTimeout: l.headersMs,
    requestTimeout: l.requestMs,
    keepAliveTimeout: l.idleMs,
    // How often Node looks for expired sockets: often enough that a timeout is kept to within a quarter of itself.
    connectionsCheckingInterval: Math.max(25, Math.min(1000, Math.floor(l.headersMs / 4))),
  };
}

/**
 * The cap when the config sets none: half the process's open-file limit (the rest is for upstream sockets, server
 * processes' pipes and the store), at most 10,000; 512 where the limit cannot be read.
 */
export function defaultMaxConnections(limits = '/proc/self/limits'): number {
  try {
    const m = /^Max open files\s+(\d+|unlimited)/m.exec(readFileSync(limits, 'utf8'));
    if (m === null) return 512;
    const soft = m[1] === 'unlimited' ? Infinity : Number(m[1]);
    return Math.max(16, Math.min(10_000, Math.floor(soft / 2)));
  } catch {
    return 512;
  }
}

interface Tracked {
  /** Requests whose response has not finished; a socket at 0 is idle (waiting for, or still receiving, a head). */
  busy: number;
  /** Taken over by a WebSocket (an agent's tunnel): never idle. */
  upgraded: boolean;
}

const refusal = 'Service Unavailable: the gateway is at its connection limit (http.maxConnections); try again shortly\n';

/** Caps the server's open sockets, shedding idle ones first; returns how many are open, for tests and metrics. */
export function capConnections(server: Server, maxConnections: number, log: Logger): { readonly open: number } {
  // Insertion order is age: the first idle one found is the oldest.
  const sockets = new Map<Socket, Tracked>();
  let lastWarning = 0;
  const warn = (msg: string) => {
    // Under a flood this happens thousands of times a second: one line a second says it.
    const now = Date.now();
    if (now - lastWarning < 1000) return;
    lastWarning = now;
    log.warn({ open: sockets.size, maxConnections }, msg);
  };

  server.on('connection', (socket: Socket) => {
    sockets.set(socket, { busy: 0, upgraded: false });
    socket.once('close', () => sockets.delete(socket));
    if (sockets.size <= maxConnections) return;
    for (const [other, t] of sockets) {
      if (other !== socket && t.busy === 0 && !t.upgraded) {
        warn('connection limit reached: idle connections shed');
        sockets.delete(other);
        other.destroy();
        return;
      }
    }
    warn('connection limit reached and every connection busy: new connections refused');
    sockets.delete(socket);
    socket.end(
      `HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\ncontent-length: ${refusal.length}\r\nretry-after: 5\r\nconnection: close\r\n\r\n${refusal}`,
    );
    socket.destroySoon();
  });
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const t = sockets.get(req.socket as Socket);
    if (t === undefined) return;
    t.busy++;
    res.once('close', () => t.busy--);
  });
  server.on('upgrade', (req: IncomingMessage) => {
    const t = sockets.get(req.socket as Socket);
    if (t !== undefined) t.upgraded = true;
  });
  return {
    get open() {
      return sockets.size;
    },
  };
}
