import type { Logger } from 'pino';
import {
  errorResponse,
  ErrorCode,
  idKey,
  isNotification,
  isRequest,
  type JsonRpcMessage,
  type JsonRpcRequest,
  type JsonRpcResponse,
  type RequestId,
} from '../protocol/jsonrpc.js';
import { type Upstream, UpstreamError } from './upstream.js';

/** What the link needs of a lease (shared.ts), a client session's Upstream: its callbacks, and where it delivers. */
export interface Lease extends Upstream {
  /** The client session's request id (as a key) → the link's. */
  readonly sent: Map<string, number>;
  /** Hands the client session a message the server sent for it. */
  deliver(message: JsonRpcMessage, text: string): void;
}

/** One shared upstream link of `upstreamSessions: pooled` (shared.ts): its leases' requests multiplexed by id. */

/** What a client session's `initialize` says that decides which link may serve it. */
export interface InitializeFacts {
  protocolVersion: unknown;
  capabilities: unknown;
  clientInfo: unknown;
}

/**
 * One shared upstream session: the gateway initialized it (as the first client session that needed it), and it
 * carries the requests of every lease on it under ids of its own.
 */
export class SharedLink {
  readonly leases = new Set<Lease>();
  /** The link's request id → the lease that sent it, and that lease's id. */
  readonly #pending = new Map<number, { lease: Lease; id: RequestId }>();
  /** The link's progress token → the lease and the token its client chose. */
  readonly #progress = new Map<string, { lease: Lease; token: string | number }>();
  /** Server requests in flight, by the server's id: the lease whose client was asked. */
  readonly #asked = new Map<string, { lease: Lease; id: RequestId }>();
  #next = 0;
  #initialized: { resolve: (r: JsonRpcResponse) => void } | undefined;
  result: Record<string, unknown> | undefined;
  closed = false;
  #idle: NodeJS.Timeout | undefined;

  constructor(
    readonly key: string,
    readonly upstream: Upstream,
    private readonly log: Logger,
    private readonly idleMs: number,
    private readonly onClose: (link: SharedLink) => void,
  ) {
    upstream.onmessage = (m, text) => this.#fromServer(m, text);
    upstream.onclose = (reason, cutOff) => this.#closed(reason, cutOff);
    upstream.onerror = (err) => log.warn({ err: err.message }, 'shared upstream transport problem');
    upstream.onfailed = (ids, reason) => {
      // Requests whose answers are lost: each lease's session answers its own, as the gateway.
      const byLease = new Map<Lease, RequestId[]>();
      for (const id of ids) {
        const p = typeof id === 'number' ? this.#pending.get(id) : undefined;
        if (p === undefined) continue;
        this.#pending.delete(id as number);
        byLease.set(p.lease, [...(byLease.get(p.lease) ?? []), p.id]);
      }
      for (const [lease, lost] of byLease) lease.onfailed?.(lost, reason);
    };
  }

  /** Requests in flight on the link. */
  get busy(): number {
    return this.#pending.size;
  }

  /** Starts the upstream and initializes it with the first client session's initialize. */
  async open(facts: InitializeFacts): Promise<void> {
    await this.upstream.start();
    const answered = new Promise<JsonRpcResponse>((resolve) => (this.#initialized = { resolve }));
    const request: JsonRpcRequest = { jsonrpc: '2.0', id: 'pc-shared-init', method: 'initialize', params: { ...facts } };
    await this.upstream.send(request, JSON.stringify(request));
    const response = await answered;
    if (response.result === undefined) throw new UpstreamError(`the server refused initialize: ${response.error?.message ?? 'no result'}`, true);
    this.result = response.result;
    if (typeof response.result.protocolVersion === 'string') this.upstream.setProtocolVersion(response.result.protocolVersion);
    const note = { jsonrpc: '2.0' as const, method: 'notifications/initialized' };
    await this.upstream.send(note, JSON.stringify(note));
  }

  attach(lease: Lease): void {
    clearTimeout(this.#idle);
    this.#idle = undefined;
    this.leases.add(lease);
  }

  /** The lease's session has ended: what it still has in flight is cancelled upstream; unused, the link closes after a while. */
  detach(lease: Lease): void {
    if (!this.leases.delete(lease)) return;
    for (const [id, p] of this.#pending) if (p.lease === lease) this.#cancel(id, 'the client session ended');
    for (const [token, p] of this.#progress) if (p.lease === lease) this.#progress.delete(token);
    for (const [key, asked] of this.#asked) {
      if (asked.lease !== lease) continue;
      // The server would wait for ever on a client that has gone: it is answered for it.
      this.#asked.delete(key);
      const refusal = errorResponse(asked.id, ErrorCode.InternalError, 'the client session ended before it answered');
      this.upstream.send(refusal, JSON.stringify(refusal)).catch(() => {});
    }
    if (this.leases.size === 0 && !this.closed) {
      this.#idle = setTimeout(() => {
        if (this.leases.size === 0) void this.close('pooled upstream session idle');
      }, this.idleMs);
      this.#idle.unref();
    }
  }

  /** A message of a lease's session toward the server. */
  async send(lease: Lease, message: JsonRpcMessage, text: string, traceparent?: string): Promise<void> {
    if (isRequest(message)) {
      const id = ++this.#next;
      this.#pending.set(id, { lease, id: message.id });
      lease.sent.set(idKey(message.id), id);
      let params = message.params;
      const token = (params?._meta as { progressToken?: unknown } | undefined)?.progressToken;
      if (typeof token === 'string' || typeof token === 'number') {
        // Two clients may both count their tokens from 1: the server is given one of the link's own.
        const own = `pc-${id}`;
        this.#progress.set(own, { lease, token });
        params = { ...params, _meta: { ...(params!._meta as Record<string, unknown>), progressToken: own } };
      }
      const forwarded: JsonRpcRequest = { ...message, id, ...(params === undefined ? {} : { params }) };
      try {
        await this.upstream.send(forwarded, JSON.stringify(forwarded), traceparent);
      } catch (err) {
        this.#forget(id);
        throw err;
      }
      return;
    }
    if (isNotification(message)) {
      if (message.method === 'notifications/initialized') return;
      if (message.method === 'notifications/cancelled') {
        const theirs = message.params?.requestId as RequestId | undefined;
        const id = theirs === undefined ? undefined : lease.sent.get(idKey(theirs));
        if (id === undefined) return;
        this.#forget(id);
        const note = { ...message, params: { ...message.params, requestId: id } };
        return this.upstream.send(note, JSON.stringify(note));
      }
      return this.upstream.send(message, text);
    }
    // The client's answer to a server request: the server's own id, unchanged.
    const response = message as JsonRpcResponse;
    if (response.id !== null) this.#asked.delete(idKey(response.id));
    return this.upstream.send(message, text);
  }

  #cancel(id: number, reason: string): void {
    this.#forget(id);
    const note = { jsonrpc: '2.0' as const, method: 'notifications/cancelled', params: { requestId: id, reason } };
    this.upstream.send(note, JSON.stringify(note)).catch(() => {});
  }

  #forget(id: number): void {
    const p = this.#pending.get(id);
    this.#pending.delete(id);
    this.#progress.delete(`pc-${id}`);
    if (p !== undefined) p.lease.sent.delete(idKey(p.id));
  }

  #fromServer(message: JsonRpcMessage, text: string): void {
    if (!isRequest(message) && !isNotification(message)) {
      const response = message as JsonRpcResponse;
      if (response.id === 'pc-shared-init' && this.#initialized !== undefined) {
        this.#initialized.resolve(response);
        this.#initialized = undefined;
        return;
      }
      const p = typeof response.id === 'number' ? this.#pending.get(response.id) : undefined;
      if (p === undefined) return; // cancelled, or its session ended: nobody waits for it
      this.#forget(response.id as number);
      const answer = { ...response, id: p.id };
      p.lease.deliver(answer, JSON.stringify(answer));
      return;
    }
    if (isRequest(message)) {
      if (message.method === 'ping') {
        const pong = { jsonrpc: '2.0' as const, id: message.id, result: {} };
        this.upstream.send(pong, JSON.stringify(pong)).catch(() => {});
        return;
      }
      // Over a shared session, a server request is known to be made for a client only when that client's session is
      // the only one with a request in flight (the server names no request it is made for). Anything else is refused.
      const waiting = new Set([...this.#pending.values()].map((p) => p.lease));
      if (waiting.size !== 1) {
        this.log.info({ method: message.method, sessionsWaiting: waiting.size }, 'server request on a pooled session refused: no single client it is made for');
        const refusal = errorResponse(
          message.id,
          ErrorCode.InvalidRequest,
          waiting.size === 0
            ? 'the gateway cannot relay this request: it was made outside any client request on a pooled upstream session (upstreamSessions: pooled)'
            : 'the gateway cannot relay this request: several clients have requests in flight on this pooled upstream session, so it cannot tell which one it is for (upstreamSessions: pooled)',
        );
        this.upstream.send(refusal, JSON.stringify(refusal)).catch(() => {});
        return;
      }
      const [lease] = waiting;
      this.#asked.set(idKey(message.id), { lease: lease!, id: message.id });
      lease!.deliver(message, text);
      return;
    }
    if (message.method === 'notifications/progress') {
      const token = message.params?.progressToken;
      const p = typeof token === 'string' ? this.#progress.get(token) : undefined;
      if (p === undefined) return;
      const note = { ...message, params: { ...message.params, progressToken: p.token } };
      p.lease.deliver(note, JSON.stringify(note));
      return;
    }
    if (message.method === 'notifications/cancelled') {
      // The server withdraws one of its own requests: only the client it asked hears of it.
      const id = message.params?.requestId as RequestId | undefined;
      const asked = id === undefined ? undefined : this.#asked.get(idKey(id));
      if (asked === undefined) return;
      this.#asked.delete(idKey(id!));
      asked.lease.deliver(message, text);
      return;
    }
    // Belongs to no request (list_changed, resources/updated, logging): every client session on the link, each
    // through its own pipeline, which decides what its client may see.
    for (const lease of this.leases) lease.deliver(message, text);
  }

  #closed(reason: string, cutOff?: boolean): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.#idle);
    this.onClose(this);
    this.#initialized?.resolve(errorResponse('pc-shared-init', ErrorCode.UpstreamUnavailable, `upstream closed: ${reason}`));
    for (const lease of [...this.leases]) lease.onclose?.(reason, cutOff);
    this.leases.clear();
  }

  async close(reason: string): Promise<void> {
    if (this.closed) return;
    this.log.info({ reason }, 'pooled upstream session closing');
    this.#closed(reason);
    await this.upstream.close().catch(() => {});
  }
}
