import { idKey, type JsonRpcNotification, type JsonRpcRequest, type RequestId } from '../protocol/jsonrpc.js';

/** What keeps the client of a held request waiting: the session's edge and its delivery to the client. */
export interface HoldHooks {
  /** The client's request is held: its stream should show life (an HTTP response switches to SSE keep-alives). */
  hold(clientId: RequestId): void;
  /** Tells the client how its held request is doing (a progress notification for its stream). */
  progress(note: JsonRpcNotification, clientId: RequestId): void;
}

/** A client request a stage holds (a review): how to give up on it, and what keeps its client waiting. */
interface HeldRequest {
  controller?: AbortController;
  /** Why it is held, once a stage said so (a request in an asynchronous stage is not necessarily held). */
  reason?: string | undefined;
  /** The request, while it is in an asynchronous stage: a hold that comes later can keep its client waiting. */
  request?: JsonRpcRequest;
  waiting?: boolean;
  progress?: NodeJS.Timeout;
}

/**
 * The client requests of one session that a stage holds or may still hold (a review, an asynchronous stage): their
 * cancellation signals, and the keep-alive progress that tells a waiting client, now and at an interval, why it waits.
 */
export class HeldRequests {
  /** By idKey of the client's id. */
  readonly #held = new Map<string, HeldRequest>();

  constructor(
    /** How often a held request whose client asked for progress is told it still waits (reviews.progressInterval). */
    private readonly progressMs: number,
    private readonly hooks: HoldHooks,
  ) {}

  get size(): number {
    return this.#held.size;
  }

  /**
   * Aborted when the client cancels the request or the session ends. `ended`: why the session has ended already,
   * when it has (the signal is then aborted at once).
   */
  cancellation(clientId: RequestId, ended?: string): AbortSignal {
    const held = this.#entry(clientId);
    held.controller ??= new AbortController();
    if (ended !== undefined) held.controller.abort(new Error(ended));
    return held.controller.signal;
  }

  /** A stage said it holds the request (a `hold` verdict): its client is kept waiting, once the request is known here. */
  holding(clientId: RequestId, reason: string | undefined): void {
    const held = this.#entry(clientId);
    held.reason = reason;
    if (held.request !== undefined) this.#keepWaiting(held, held.request);
  }

  /** The request went into an asynchronous stage: a hold said before or after it keeps its client waiting. */
  inStage(request: JsonRpcRequest): void {
    const held = this.#entry(request.id);
    held.request = request;
    if (held.reason !== undefined) this.#keepWaiting(held, request);
  }

  /** The stages have decided on the request: it is no longer held. True when its client cancelled it meanwhile. */
  settled(clientId: RequestId): boolean {
    if (this.#held.size === 0) return false;
    const cancelled = this.#held.get(idKey(clientId))?.controller?.signal.aborted === true;
    this.released(clientId);
    return cancelled;
  }

  /** The request is no longer held (decided, or failed): its keep-alive stops. */
  released(clientId: RequestId): void {
    const key = idKey(clientId);
    const held = this.#held.get(key);
    if (held === undefined) return;
    if (held.progress !== undefined) clearInterval(held.progress);
    this.#held.delete(key);
  }

  /**
   * A client's cancellation: when it names a request held here, that request is given up (its stage's signal
   * aborts) and its id returned: the server never saw it, so the cancellation goes no further.
   */
  cancelledByClient(n: JsonRpcNotification): RequestId | undefined {
    if (n.method !== 'notifications/cancelled' || this.#held.size === 0) return undefined;
    const requestId = n.params?.requestId;
    if (typeof requestId !== 'string' && typeof requestId !== 'number') return undefined;
    const held = this.#held.get(idKey(requestId));
    if (held === undefined) return undefined;
    held.controller ??= new AbortController();
    held.controller.abort(new Error('the client cancelled the request'));
    return requestId;
  }

  /** The session ends: every keep-alive stops and every held request's stage is told to give up. */
  close(reason: string): void {
    for (const [, held] of this.#held) {
      if (held.progress !== undefined) clearInterval(held.progress);
      held.controller?.abort(new Error(`session ended: ${reason}`));
    }
  }

  #entry(id: RequestId): HeldRequest {
    const key = idKey(id);
    let held = this.#held.get(key);
    if (held === undefined) this.#held.set(key, (held = {}));
    return held;
  }

  /**
   * Keeps the client of a held request waiting: its HTTP response turns into a stream with keep-alives, and a
   * client that sent a progress token is told, now and at an interval, that the call is waiting and why.
   */
  #keepWaiting(held: HeldRequest, request: JsonRpcRequest): void {
    if (held.waiting) return;
    held.waiting = true;
    this.hooks.hold(request.id);
    const token = (request.params?._meta as { progressToken?: unknown } | undefined)?.progressToken;
    if (typeof token !== 'string' && typeof token !== 'number') return;
    let progress = 0;
    const tell = () => {
      const note: JsonRpcNotification = {
        jsonrpc: '2.0',
        method: 'notifications/progress',
        params: { progressToken: token, progress: ++progress, message: `Waiting: ${held.reason ?? 'held by the gateway'}` },
      };
      this.hooks.progress(note, request.id);
    };
    tell();
    held.progress = setInterval(tell, this.progressMs);
    held.progress.unref();
  }
}
