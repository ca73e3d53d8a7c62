import { connect as netConnect, isIP, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import type { Logger } from 'pino';

/**
 * One TCP (or TLS) connection to a syslog receiver, reopened when it fails, that says when frames may be taken as
 * delivered. TCP syslog has no acknowledgement, so "delivered" is the best this side can tell:
 *
 *  - A write is done when its callback fired (the kernel took every byte) and the connection has not failed.
 *  - A fresh connection is trusted only once it stayed up for `confirmMs` after its first write: a receiver that
 *    takes the connection and drops it (a TLS 1.3 server refusing the client certificate after the handshake, a
 *    receiver over its session limit) is noticed before anything written on it is acknowledged.
 *  - What was written in the last `resendWindowMs` is kept; when the connection fails, it is written again first
 *    on the next one (a receiver stopped or restarted drops what sat unread in its socket buffer). It is kept
 *    until a new connection confirmed it, however long that takes.
 *
 * So delivery is at least once: a receiver that restarts gets the last moments again. What is not covered: a
 * receiver host that vanishes without a reset (power loss, a partition) is noticed only when TCP gives up (keep-alive
 * or retransmission timeouts, minutes); what was acknowledged more than `resendWindowMs` before that is not re-sent.
 */

export interface SyslogTarget {
  host: string;
  port: number;
  /** Absent: plain TCP. Present: TLS (RFC 5425), the server's certificate checked against `ca` (or the system's CAs). */
  tls?: { ca?: string; cert?: string; key?: string; serverName?: string };
  connectTimeoutMs: number;
  /** A write the receiver has not taken within this long (it stopped reading) drops the connection; the write is retried. */
  writeTimeoutMs: number;
  confirmMs: number;
  resendWindowMs: number;
  /** Caps what is kept for re-sending (in characters of the frames; the oldest goes first), whatever its age. */
  resendMaxBytes: number;
}

interface Written {
  at: number;
  frame: string;
}

export class SyslogStream {
  #socket: Socket | undefined;
  /** Whether the current connection is past its confirmation. */
  #confirmed = false;
  /** Frames acknowledged on the current connection within the resend window, oldest first. */
  #recent: Written[] = [];
  #recentBytes = 0;
  /** Frames of a failed connection, to be written first on the next one. */
  #resend: string[] = [];
  #queue: Promise<void> = Promise.resolve();
  #closed = false;

  constructor(
    private readonly target: SyslogTarget,
    private readonly log: Logger,
  ) {}

  get address(): string {
    return `${this.target.host.includes(':') ? `[${this.target.host}]` : this.target.host}:${this.target.port}`;
  }

  /** How many frames wait to be written again after a failed connection. */
  get pendingResend(): number {
    return this.#resend.length;
  }

  /** Writes `frames` (one after another, after any earlier call's); resolves once they count as delivered. */
  deliver(frames: readonly string[]): Promise<void> {
    const run = this.#queue.then(() => this.#deliver(frames));
    this.#queue = run.catch(() => {});
    return run;
  }

  async #deliver(frames: readonly string[]): Promise<void> {
    if (this.#closed) throw new Error('the syslog connection is closed');
    const socket = this.#socket ?? (await this.#connect());
    const all = this.#resend.length === 0 ? frames : [...this.#resend, ...frames];
    await written(socket, all.join(''), this.target.writeTimeoutMs);
    if (!this.#confirmed) {
      await stillUp(socket, this.target.confirmMs);
      this.#confirmed = true;
      if (this.#resend.length > 0)
        this.log.info({ frames: this.#resend.length, address: this.address }, 'syslog: re-sent what the failed connection may have lost');
      this.#resend = [];
    }
    this.#keep(all);
  }

  #keep(frames: readonly string[]): void {
    const now = Date.now();
    for (const frame of frames) {
      this.#recent.push({ at: now, frame });
      this.#recentBytes += frame.length;
    }
    let drop = 0;
    let bytes = this.#recentBytes;
    while (drop < this.#recent.length && (this.#recent[drop]!.at < now - this.target.resendWindowMs || bytes > this.target.resendMaxBytes)) {
      bytes -= this.#recent[drop]!.frame.length;
      drop++;
    }
    if (drop > 0) this.#recent = this.#recent.slice(drop);
    this.#recentBytes = bytes;
  }

  /** The connection failed: what it took recently goes again on the next one. */
  #lost(socket: Socket, why: string): void {
    if (this.#socket !== socket) return;
    this.#socket = undefined;
    const cutoff = Date.now() - this.target.resendWindowMs;
    const recent = this.#recent.filter((w) => w.at >= cutoff).map((w) => w.frame);
    this.#resend = [...this.#resend, ...recent];
    this.#recent = [];
    this.#recentBytes = 0;
    if (!this.#closed) this.log.warn({ address: this.address, reason: why, resend: this.#resend.length }, 'syslog: the connection to the receiver failed');
  }

  #connect(): Promise<Socket> {
    const { host, port, tls, connectTimeoutMs } = this.target;
    return new Promise((resolve, reject) => {
      const socket = tls
        ? tlsConnect({
            host,
            port,
            ...(tls.ca !== undefined ? { ca: tls.ca } : {}),
            ...(tls.cert !== undefined ? { cert: tls.cert } : {}),
            ...(tls.key !== undefined ? { key: tls.key } : {}),
            // The name the certificate must carry (and SNI, which cannot be an IP address).
            ...(tls.serverName !== undefined || isIP(host) === 0 ? { servername: tls.serverName ?? host } : {}),
          })
        : netConnect({ host, port });
      const timer = setTimeout(() => socket.destroy(new Error(`no connection within ${connectTimeoutMs} ms`)), connectTimeoutMs);
      const fail = (err: Error) => {
        clearTimeout(timer);
        socket.destroy();
        reject(new Error(`cannot reach the syslog receiver at ${this.address}: ${err.message}`));
      };
      socket.once('error', fail);
      socket.once(tls ? 'secureConnect' : 'connect', () => {
        clearTimeout(timer);
        socket.off('error', fail);
        socket.setNoDelay(true);
        // An idle connection to a receiver that vanished is noticed by keep-alive probes, not only by the next write.
        socket.setKeepAlive(true, 15_000);
        socket.on('error', (err) => this.#lost(socket, err.message));
        socket.on('close', () => this.#lost(socket, 'closed by the receiver'));
        // A syslog receiver sends nothing; anything it does is read and dropped so it cannot fill a buffer.
        socket.resume();
        this.#socket = socket;
        this.#confirmed = false;
        this.log.info({ address: this.address, tls: tls !== undefined }, 'syslog: connected to the receiver');
        resolve(socket);
      });
    });
  }

  /** Ends the connection after the writes under way; what waits to be re-sent is reported, since it may be lost. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#queue;
    if (this.#resend.length > 0)
      this.log.warn({ address: this.address, frames: this.#resend.length }, 'syslog: closing with frames not confirmed by a new connection');
    const socket = this.#socket;
    if (socket === undefined) return;
    this.#socket = undefined;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => socket.destroy(), 2000);
      socket.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
      socket.end();
    });
  }
}

/** Resolves once the kernel took every byte; rejects when the connection fails first or the write is not taken within `ms`. */
function written(socket: Socket, data: string, ms: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const onClose = () => reject(new Error('the connection closed before the write finished'));
    socket.once('close', onClose);
    const timer = setTimeout(() => socket.destroy(new Error(`the receiver did not take a write within ${ms} ms`)), ms);
    socket.write(data, (err) => {
      clearTimeout(timer);
      socket.off('close', onClose);
      if (err) reject(err);
      else if (socket.destroyed) reject(new Error('the connection failed during the write'));
      else resolve();
    });
  });
}

/** Resolves if the connection is still up after `ms`; rejects as soon as it fails. */
function stillUp(socket: Socket, ms: number): Promise<void> {
  return new Promise((resolve, reject) => {
    if (socket.destroyed) {
      reject(new Error('the receiver dropped the connection'));
      return;
    }
    const onClose = () => {
      clearTimeout(timer);
      reject(new Error('the receiver dropped the connection right after taking it'));
    };
    const timer = setTimeout(() => {
      socket.off('close', onClose);
      resolve();
    }, ms);
    socket.once('close', onClose);
  });
}
