import type { Logger } from 'pino';
import { ErrorCode } from '../protocol/jsonrpc.js';
import type { Upstream } from '../upstream/upstream.js';

/** How much a session may hold for a client that does not keep up, and for how long. */
export interface FlowLimits {
  /** Bytes on their way to the client (inside the gateway or in its socket) above which the upstream is paused. */
  backlogBytes: number;
  /** How long the upstream may stay paused, the client not catching up, before the session ends. */
  stallTimeoutMs: number;
  /**
   * Bytes past which the session ends at once: what an upstream that cannot be paused (or one read already under
   * way when the pause came) may add. Reached only by upstreams without `pause()`.
   */
  hardCapBytes: number;
}

export interface FlowControl {
  /** Stop reading from the server (a paused pipe or socket fills, and the server waits on its write). */
  pause(): void;
  resume(): void;
  /**
   * The backlog stayed: end the session, saying why. `behind` is who held it: the client (most of it was written to
   * the client and not read) or the gateway (most of it waited in the pipeline or for the recording).
   */
  stalled(reason: string, behind: 'client' | 'gateway'): void;
}

/** How often a paused session looks whether its client has caught up (a socket's drain is not always told). */
const pollMs = 50;

/**
 * Backpressure for one session's messages to its client. Counts the bytes the session holds for the client (in
 * the pipeline, waiting for the recording) plus what the edge has written that the client has not read; above
 * `backlogBytes` the upstream is paused, and it resumes once the count is back under half of that. A client that
 * does not catch up within `stallTimeoutMs` of the pause is told so and its session ends: a slow reader costs at
 * most one backlog of memory, and never holds a server forever.
 */
export class ClientFlow {
  #held = 0;
  #paused = false;
  #pausedAt = 0;
  #poll: NodeJS.Timeout | undefined;
  #stopped = false;

  constructor(
    private readonly limits: FlowLimits,
    /** Bytes the edge has written toward the client and the client has not read yet. */
    private readonly sinkBacklog: () => number,
    private readonly control: FlowControl,
  ) {}

  get paused(): boolean {
    return this.#paused;
  }

  /** Bytes on their way to the client now. */
  get backlog(): number {
    return this.#held + this.sinkBacklog();
  }

  /** A message of `bytes` from the server enters the session; call the function returned once it has left it. */
  admit(bytes: number): () => void {
    this.#held += bytes;
    this.check();
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#held -= bytes;
      this.check();
    };
  }

  /** Pauses or resumes the upstream for the backlog now, and ends a session whose client stayed behind. */
  check(): void {
    if (this.#stopped) return;
    const backlog = this.backlog;
    if (backlog > this.limits.hardCapBytes) {
      return this.#stall(`${backlog} bytes waited for it, over the hard cap of ${this.limits.hardCapBytes} bytes (limits.clientBacklog)`);
    }
    if (!this.#paused) {
      if (backlog <= this.limits.backlogBytes) return;
      this.#paused = true;
      this.#pausedAt = Date.now();
      this.control.pause();
      this.#poll = setInterval(() => this.check(), pollMs);
      this.#poll.unref();
      return;
    }
    if (backlog <= this.limits.backlogBytes / 2) {
      this.#paused = false;
      clearInterval(this.#poll);
      this.#poll = undefined;
      this.control.resume();
      return;
    }
    const waited = Date.now() - this.#pausedAt;
    if (waited > this.limits.stallTimeoutMs) {
      this.#stall(
        `the ${backlog} bytes waiting for it did not go out within ${this.limits.stallTimeoutMs} ms (limits.slowClientTimeout, limits.clientBacklog)`,
      );
    }
  }

  #stall(what: string): void {
    this.stop();
    // Truthful about who is behind: a stalled recording store or stage holds messages in the gateway, not the client.
    const unread = this.sinkBacklog();
    if (unread >= this.#held) this.control.stalled(`the client fell behind: it did not read what was sent; ${what}`, 'client');
    else this.control.stalled(`the gateway fell behind: messages waited in its pipeline or for the recording; ${what}`, 'gateway');
  }

  /** The session is over: no more checks, no timer left behind. */
  stop(): void {
    this.#stopped = true;
    if (this.#poll !== undefined) clearInterval(this.#poll);
    this.#poll = undefined;
  }
}

/** A session's flow toward its client, pausing and resuming `upstream`; a stall ends the session through `end`. */
export function upstreamFlow(
  limits: FlowLimits,
  sinkBacklog: () => number,
  upstream: Upstream,
  log: Logger,
  end: (reason: string, code: number) => void,
): ClientFlow {
  const flow: ClientFlow = new ClientFlow(limits, sinkBacklog, {
    pause: () => {
      log.debug({ backlog: flow.backlog }, 'the client is not keeping up; reading from the server paused');
      upstream.pause?.();
    },
    resume: () => {
      log.debug('the client caught up; reading from the server resumed');
      upstream.resume?.();
    },
    stalled: (reason, behind) => {
      log.warn({ reason }, behind === 'client' ? 'ending the session of a client that stayed behind' : 'ending a session the gateway could not keep up with');
      end(reason, behind === 'client' ? ErrorCode.ClientTooSlow : ErrorCode.InternalError);
    },
  });
  return flow;
}
