import type { Logger } from 'pino';
import type { Pipeline } from '../pipeline/pipeline.js';
import type { Direction, Identity, MessageContext, Outcome, SessionInfo, VerdictEvent } from '../pipeline/stage.js';
import {
  ErrorCode,
  errorResponse,
  isNotification,
  isRequest,
  type JsonRpcMessage,
  type JsonRpcNotification,
  type JsonRpcRequest,
  type JsonRpcResponse,
  type RequestId,
} from '../protocol/jsonrpc.js';
import type { Upstream } from '../upstream/upstream.js';
import { UpstreamError } from '../upstream/upstream.js';
import { RequestIdMap } from './id-map.js';
import { type ClientSink, detachedSink } from './sink.js';

/** Sees everything a session does: the recorder (next issue), metrics, debug logs. */
export interface SessionObserver {
  opened?(session: Session): void;
  /** A message crossed a boundary: `received` from its sender, `delivered` to its receiver (after the pipeline). */
  message?(session: Session, direction: Direction, boundary: 'received' | 'delivered', message: JsonRpcMessage): void;
  verdict?(session: Session, event: VerdictEvent): void;
  closed?(session: Session, reason: string): void;
}

export interface SessionOptions {
  id: string;
  connection: string;
  identity: Identity;
  upstream: Upstream;
  /** Builds the session's pipeline; handed the verdict sink so observers see every decision. */
  pipeline: (onVerdict: (event: VerdictEvent) => void) => Pipeline;
  log: Logger;
  observers?: readonly SessionObserver[];
}

type State = 'new' | 'open' | 'closed';

function progressTokenOf(request: JsonRpcRequest): string | undefined {
  const meta = request.params?._meta as { progressToken?: unknown } | undefined;
  const token = meta?.progressToken;
  return typeof token === 'string' || typeof token === 'number' ? `${typeof token}:${token}` : undefined;
}

/**
 * One client's session with one connection: binds the client's edge, the upstream link and the
 * pipeline, maps request ids both ways and routes what the server sends back to the right client request.
 */
export class Session implements SessionInfo {
  readonly id: string;
  readonly connection: string;
  readonly identity: Identity;
  readonly createdAt = Date.now();
  lastActivity = Date.now();
  /** Filled in from the initialize exchange. */
  protocolVersion?: string;
  clientInfo?: unknown;
  serverInfo?: unknown;
  closeReason?: string;

  readonly #upstream: Upstream;
  readonly #pipeline: Pipeline;
  readonly #log: Logger;
  readonly #observers: readonly SessionObserver[];
  #sink: ClientSink = detachedSink;
  #state: State = 'new';
  /** Client requests on their way to the server, by the id the server sees. */
  readonly #toServer = new RequestIdMap();
  /** Server requests on their way to the client, by the id the client sees. */
  readonly #toClient = new RequestIdMap();
  /** Progress tokens of pending client requests → the client's request id, to route progress to its stream. */
  readonly #progressTokens = new Map<string, RequestId>();
  /** Messages to the client wait here while an earlier one is still in an asynchronous stage: order is kept. */
  #toClientTail: Promise<void> | undefined;
  #markClosed!: () => void;
  /** Settles once close() has finished; a second close() waits on it. */
  readonly #closed = new Promise<void>((resolve) => (this.#markClosed = resolve));

  constructor(options: SessionOptions) {
    this.id = options.id;
    this.connection = options.connection;
    this.identity = options.identity;
    this.#upstream = options.upstream;
    this.#log = options.log;
    this.#observers = options.observers ?? [];
    this.#pipeline = options.pipeline((event) => {
      for (const o of this.#observers) o.verdict?.(this, event);
    });
    this.#upstream.onmessage = (m) => this.#fromServer(m);
    this.#upstream.onclose = (reason) => void this.close(`upstream closed: ${reason}`);
    this.#upstream.onerror = (err) => this.#log.warn({ err: err.message }, 'upstream transport problem');
  }

  get isOpen(): boolean {
    return this.#state === 'open';
  }

  get pendingRequests(): number {
    return this.#toServer.size + this.#toClient.size;
  }

  get sink(): ClientSink {
    return this.#sink;
  }

  /** Whether the session has nothing going on and no client listening (for idle reaping). */
  isIdleSince(cutoff: number): boolean {
    return this.lastActivity < cutoff && this.pendingRequests === 0 && !this.#sink.connected;
  }

  /** The edge that serves this session's client attaches its sink. */
  attach(sink: ClientSink): void {
    this.#sink = sink;
  }

  /** Starts the upstream link; rejects with an UpstreamError when the server cannot be reached. */
  async open(): Promise<void> {
    if (this.#state !== 'new') throw new Error('session already opened');
    try {
      await this.#upstream.start();
    } catch (err) {
      this.#state = 'closed';
      this.closeReason = `upstream failed to start: ${(err as Error).message}`;
      this.#markClosed();
      throw err instanceof UpstreamError ? err : new UpstreamError((err as Error).message, true);
    }
    if ((this.#state as State) === 'closed') throw new UpstreamError(this.closeReason ?? 'upstream closed while starting', true);
    this.#state = 'open';
    for (const o of this.#observers) o.opened?.(this);
  }

  /** A message from the client. Never throws: every failure becomes a JSON-RPC error to the client or a log line. */
  receive(message: JsonRpcMessage): void {
    this.lastActivity = Date.now();
    for (const o of this.#observers) o.message?.(this, 'toServer', 'received', message);
    if (this.#state !== 'open') {
      if (isRequest(message)) this.#answerClient(errorResponse(message.id, ErrorCode.SessionNotFound, 'Session has ended'));
      return;
    }
    const ctx = this.#context('toServer', isRequest(message) ? undefined : this.#requestAnsweredByClient(message));
    const outcome = this.#pipeline.run(message, ctx);
    if (outcome instanceof Promise) {
      outcome.then(
        (o) => this.#afterClientPipeline(message, o),
        (err) => this.#stageFailed(message, err),
      );
    } else {
      this.#afterClientPipeline(message, outcome);
    }
  }

  #requestAnsweredByClient(message: JsonRpcMessage): JsonRpcRequest | undefined {
    if (isNotification(message)) return undefined;
    return this.#toClient.peek((message as JsonRpcResponse).id)?.request;
  }

  #afterClientPipeline(original: JsonRpcMessage, outcome: Outcome): void {
    if (outcome.action === 'answer') {
      if (isRequest(original) && outcome.message) this.#answerClient(outcome.message);
      return;
    }
    const message = outcome.message;
    if (this.#state === 'closed') {
      // The session ended while a stage held this message: nothing may reach the server now.
      if (isRequest(message)) this.#answerClient(errorResponse(message.id, ErrorCode.SessionNotFound, `Session ended: ${this.closeReason}`));
      return;
    }
    if (isRequest(message)) {
      const mappedId = this.#toServer.add(message);
      const token = progressTokenOf(message);
      if (token !== undefined) this.#progressTokens.set(token, message.id);
      this.#forwardToServer({ ...message, id: mappedId }, message.id);
      return;
    }
    if (isNotification(message)) {
      this.#forwardToServer(this.#mapClientNotification(message));
      return;
    }
    // A client's response to a server request: back to the server's own id.
    const response = message as JsonRpcResponse;
    const pending = this.#toClient.take(response.id);
    if (pending === undefined) {
      this.#log.debug({ id: response.id }, 'client answered an unknown request; dropped');
      return;
    }
    this.#forwardToServer({ ...response, id: pending.originalId });
  }

  #mapClientNotification(n: JsonRpcNotification): JsonRpcNotification {
    if (n.method !== 'notifications/cancelled') return n;
    const requestId = n.params?.requestId as RequestId | undefined;
    if (requestId === undefined) return n;
    const pending = this.#toServer.forget(requestId);
    if (pending === undefined) return n;
    this.#forgetProgress(pending.request);
    this.#sink.abandon(requestId);
    return { ...n, params: { ...n.params, requestId: pending.mappedId } };
  }

  #forwardToServer(message: JsonRpcMessage, clientRequestId?: RequestId): void {
    for (const o of this.#observers) o.message?.(this, 'toServer', 'delivered', message);
    this.#upstream.send(message).catch((err: unknown) => {
      const e = err instanceof UpstreamError ? err : new UpstreamError(String(err), false);
      this.#log.warn({ err: e.message, sessionLost: e.sessionLost }, 'upstream send failed');
      if (clientRequestId !== undefined && 'id' in message && typeof message.id === 'number') {
        const pending = this.#toServer.take(message.id);
        if (pending) {
          this.#forgetProgress(pending.request);
          this.#answerClient(errorResponse(clientRequestId, ErrorCode.UpstreamUnavailable, `Upstream server error: ${e.message}`));
        }
      }
      if (e.sessionLost) void this.close(`upstream session lost: ${e.message}`);
    });
  }

  #fromServer(message: JsonRpcMessage): void {
    if (this.#state === 'closed') return;
    this.lastActivity = Date.now();
    for (const o of this.#observers) o.message?.(this, 'toClient', 'received', message);
    if (isRequest(message)) return this.#serverRequest(message);
    if (isNotification(message)) return this.#toClientThroughPipeline(message, undefined, this.#relatedToNotification(message));
    const response = message as JsonRpcResponse;
    const pending = this.#toServer.take(response.id);
    if (pending === undefined) {
      this.#log.debug({ id: response.id }, 'server answered an unknown or cancelled request; dropped');
      return;
    }
    this.#forgetProgress(pending.request);
    const clientResponse: JsonRpcResponse = { ...response, id: pending.originalId };
    if (pending.request.method === 'initialize') this.#learnFromInitialize(pending.request, clientResponse);
    this.#toClientThroughPipeline(clientResponse, pending.request, pending.originalId);
  }

  #serverRequest(request: JsonRpcRequest): void {
    // Sampling, elicitation and roots requests are made for the call in flight, when there is only one.
    this.#toClientThroughPipeline(request, undefined, this.#toServer.single()?.originalId);
  }

  /**
   * Which client request a notification belongs to: progress by its token; a log message to the only
   * request in flight (servers log what a call is doing). Anything else (list_changed, resource
   * updates) belongs to no request and goes on the session's own stream.
   */
  #relatedToNotification(n: JsonRpcNotification): RequestId | undefined {
    if (n.method === 'notifications/progress') {
      const token = n.params?.progressToken;
      if (typeof token === 'string' || typeof token === 'number') {
        const id = this.#progressTokens.get(`${typeof token}:${token}`);
        if (id !== undefined) return id;
      }
      return this.#toServer.single()?.originalId;
    }
    if (n.method === 'notifications/message') return this.#toServer.single()?.originalId;
    return undefined;
  }

  #toClientThroughPipeline(message: JsonRpcMessage, request: JsonRpcRequest | undefined, related: RequestId | undefined): void {
    const run = (): void | Promise<void> => {
      const outcome = this.#pipeline.run(message, this.#context('toClient', request));
      if (outcome instanceof Promise) {
        return outcome.then(
          (o) => this.#afterServerPipeline(message, o, related),
          (err) => this.#stageFailed(message, err),
        );
      }
      this.#afterServerPipeline(message, outcome, related);
    };
    if (this.#toClientTail === undefined) {
      const result = run();
      if (result instanceof Promise) this.#toClientTail = this.#trackTail(result);
    } else {
      this.#toClientTail = this.#trackTail(this.#toClientTail.then(run));
    }
  }

  #trackTail(p: Promise<void>): Promise<void> {
    const tail = p.finally(() => {
      if (this.#toClientTail === tail) this.#toClientTail = undefined;
    });
    return tail;
  }

  #afterServerPipeline(original: JsonRpcMessage, outcome: Outcome, related: RequestId | undefined): void {
    if (this.#state === 'closed') return;
    if (outcome.action === 'answer') {
      // A stage answered a server request itself (e.g. refused a sampling request): reply upstream.
      if (isRequest(original) && outcome.message) this.#forwardToServer(outcome.message);
      return;
    }
    let message = outcome.message;
    if (isRequest(message)) {
      message = { ...message, id: this.#toClient.add(message) };
    } else if (isNotification(message) && message.method === 'notifications/cancelled') {
      // The server cancels one of its own requests: name it by the id the client knows.
      const serverId = message.params?.requestId as RequestId | undefined;
      const pending = serverId === undefined ? undefined : this.#toClient.forget(serverId);
      if (pending !== undefined) message = { ...message, params: { ...message.params, requestId: pending.mappedId } };
    }
    this.#deliver(message, related);
  }

  #deliver(message: JsonRpcMessage, related: RequestId | undefined): void {
    for (const o of this.#observers) o.message?.(this, 'toClient', 'delivered', message);
    this.#sink.send(message, related);
  }

  #answerClient(response: JsonRpcResponse): void {
    this.#deliver(response, response.id ?? undefined);
  }

  #stageFailed(message: JsonRpcMessage, err: unknown): void {
    this.#log.error({ err: (err as Error).message }, 'a pipeline stage failed; refusing the message');
    if (isRequest(message)) {
      const error = errorResponse(message.id, ErrorCode.InternalError, 'The gateway could not process this request');
      if (this.#toServer.mappedIdOf(message.id) === undefined) this.#answerClient(error);
    }
  }

  #learnFromInitialize(request: JsonRpcRequest, response: JsonRpcResponse): void {
    this.clientInfo = request.params?.clientInfo;
    const result = response.result as { protocolVersion?: unknown; serverInfo?: unknown } | undefined;
    if (typeof result?.protocolVersion === 'string') {
      this.protocolVersion = result.protocolVersion;
      this.#upstream.setProtocolVersion(result.protocolVersion);
    }
    this.serverInfo = result?.serverInfo;
  }

  #forgetProgress(request: JsonRpcRequest): void {
    const token = progressTokenOf(request);
    if (token !== undefined) this.#progressTokens.delete(token);
  }

  #context(direction: Direction, request: JsonRpcRequest | undefined): MessageContext {
    return request === undefined ? { session: this, direction } : { session: this, direction, request };
  }

  /** Ends the session: every pending client request gets an error, the upstream closes, the edge closes its streams. */
  async close(reason: string): Promise<void> {
    if (this.#state === 'closed') return this.#closed;
    const wasOpen = this.#state === 'open';
    this.#state = 'closed';
    this.closeReason = reason;
    for (const pending of this.#toServer.drain()) {
      this.#deliver(
        errorResponse(pending.originalId, ErrorCode.UpstreamUnavailable, `Session ended before the server answered: ${reason}`),
        pending.originalId,
      );
    }
    this.#toClient.drain();
    this.#progressTokens.clear();
    this.#log.info({ reason }, 'session closed');
    try {
      await this.#upstream.close();
    } catch (err) {
      this.#log.warn({ err: (err as Error).message }, 'upstream did not close cleanly');
    }
    this.#sink.close(reason);
    if (wasOpen) for (const o of this.#observers) o.closed?.(this, reason);
    this.#markClosed();
  }
}
