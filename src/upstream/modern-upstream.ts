import {
  ErrorCode,
  errorResponse,
  idKey,
  isNotification,
  isRequest,
  type JsonRpcMessage,
  type JsonRpcRequest,
  type JsonRpcResponse,
  type RequestId,
} from '../protocol/jsonrpc.js';
import { supportedProtocolVersions } from '../protocol/versions.js';
import { cannotAsk, cannotAskError, isInputRequired, maxInputRounds, PendingRound, readInputRequired, retryParams } from './legacy-shim.js';
import type { ModernConnection, ModernCall } from './modern-connection.js';
import { learnToolHeaders } from './modern-connection.js';
import type { Upstream } from './upstream.js';

const metaVersion = 'io.modelcontextprotocol/protocolVersion';
const metaClientInfo = 'io.modelcontextprotocol/clientInfo';
const metaCapabilities = 'io.modelcontextprotocol/clientCapabilities';
const metaLogLevel = 'io.modelcontextprotocol/logLevel';
const metaSubscription = 'io.modelcontextprotocol/subscriptionId';

/** The legacy version the emulated session speaks: the client's when the gateway knows it, else the newest one. */
function legacyVersion(asked: unknown): string {
  const legacy = supportedProtocolVersions.filter((v) => v < '2026');
  if (typeof asked === 'string' && legacy.includes(asked)) return asked;
  return [...legacy].sort().at(-1) ?? '2025-11-25';
}

interface Exchange {
  /** The request as the session sent it (its id is the session's). */
  request: JsonRpcRequest;
  call?: ModernCall | undefined;
  round?: PendingRound | undefined;
  rounds: number;
  /** The request of the round in flight (the first, or a retry with answers). */
  current?: JsonRpcRequest;
  /** The tool list was read again after a header mismatch (once per request). */
  relisted?: boolean;
}

/**
 * A 2026-07-28 server behind a legacy session: the `Session` above talks as if to a 2025-era server, and this link
 * turns that into stateless requests. `initialize` is answered from the server's `server/discover` result, `initialized`
 * and `ping` are the gateway's own; every other request gets the `_meta` envelope (the client's info and its
 * capabilities as initialize gave them, after policy) and goes out on its own (`ModernConnection.transport`: one POST,
 * or a line on a shared stdio process). An `input_required` result becomes real requests to the client (the legacy
 * shim) and the request is retried with the answers; the server's `requestState` never leaves the gateway. Task ids
 * the server hands out are this session's: another session presenting one is refused. List-changed notifications
 * come from one `subscriptions/listen` per session, opened after `initialized`.
 */
export class ModernUpstream implements Upstream {
  onmessage?: (message: JsonRpcMessage, text: string) => void;
  onclose?: (reason: string) => void;
  onerror?: (error: Error) => void;
  onfailed?: (ids: RequestId[], reason: string) => void;

  readonly #connection: ModernConnection;
  #clientInfo: unknown = { name: 'portcullis', version: '0' };
  #capabilities: Record<string, unknown> = {};
  #logLevel: string | undefined;
  readonly #exchanges = new Map<string, Exchange>();
  /** Questions to the client by the gateway's id → the key of the exchange they belong to. */
  readonly #questions = new Map<string, string>();
  readonly #tasks = new Set<string>();
  readonly #subscribed = new Set<string>();
  #listen: ModernCall | undefined;
  #listenLost = false;
  #nextQuestion = 0;
  #nextRetryId = 0;
  #closed = false;
  #paused = false;

  constructor(connection: ModernConnection) {
    this.#connection = connection;
  }

  async start(): Promise<void> {
    // The connection was discovered before this link was made; nothing to open per session.
  }

  setProtocolVersion(): void {
    // Every request names its version itself.
  }

  async send(message: JsonRpcMessage, _text: string, traceparent?: string): Promise<void> {
    if (this.#closed) return;
    if (isRequest(message)) return this.#request(message, traceparent);
    if (isNotification(message)) {
      if (message.method === 'notifications/initialized') this.#openListen();
      else if (message.method === 'notifications/cancelled') this.#cancelled(message.params?.requestId as RequestId | undefined);
      // Other notifications (roots list_changed…) have no 2026-07-28 counterpart: the server asks when it needs to.
      return;
    }
    this.#answered(message as JsonRpcResponse);
  }

  /**
   * Backpressure from a slow client: this session's calls stop being read (over HTTP the server then waits on its
   * writes). A stdio process is shared by sessions and is never paused for one: the session's hard cap applies there.
   */
  pause(): void {
    this.#paused = true;
    for (const e of this.#exchanges.values()) e.call?.pause?.();
    this.#listen?.pause?.();
  }

  resume(): void {
    this.#paused = false;
    for (const e of this.#exchanges.values()) e.call?.resume?.();
    this.#listen?.resume?.();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#listen?.cancel();
    for (const e of this.#exchanges.values()) e.call?.cancel();
    this.#exchanges.clear();
    this.#questions.clear();
    this.onclose?.('closed by the gateway');
  }

  /**
   * When the server proved not to be the 2026-07-28 one this session was made for (ModernConnection.retired), the session
   * ends (what is in flight fails with it), so that the next one is served in the era the server has now.
   */
  #endIfRetired(): boolean {
    const retired = this.#connection.retired;
    if (retired === undefined || this.#closed) return retired !== undefined;
    this.#closed = true;
    for (const e of this.#exchanges.values()) e.call?.cancel();
    this.#exchanges.clear();
    this.#listen?.cancel();
    this.onclose?.(`the upstream server's era changed (${retired}); a new session is served in its era now`);
    return true;
  }

  #emit(message: JsonRpcMessage, text = JSON.stringify(message)): void {
    if (!this.#closed) this.onmessage?.(message, text);
  }

  #answerLocally(id: RequestId, result: Record<string, unknown>): void {
    queueMicrotask(() => this.#emit({ jsonrpc: '2.0', id, result }));
  }

  #request(request: JsonRpcRequest, traceparent: string | undefined): void {
    if (request.method !== 'initialize' && this.#endIfRetired()) return;
    const p = request.params ?? {};
    switch (request.method) {
      case 'initialize':
        return this.#initialize(request);
      case 'ping':
        return this.#answerLocally(request.id, {});
      case 'logging/setLevel':
        if (typeof p.level === 'string') this.#logLevel = p.level;
        return this.#answerLocally(request.id, {});
      case 'resources/subscribe':
      case 'resources/unsubscribe':
        if (typeof p.uri === 'string') {
          if (request.method === 'resources/subscribe') this.#subscribed.add(p.uri);
          else this.#subscribed.delete(p.uri);
          this.#openListen();
        }
        return this.#answerLocally(request.id, {});
    }
    if (request.method.startsWith('tasks/') && p.taskId !== undefined && (typeof p.taskId !== 'string' || !this.#tasks.has(p.taskId))) {
      // The server knows only the gateway: its binding of tasks to callers binds nothing. This session's binding does.
      // A task id that is not a string is refused too: a server that coerced it would look up someone else's task.
      const refusal = errorResponse(request.id, ErrorCode.InvalidParams, `Unknown task: ${JSON.stringify(String(p.taskId).slice(0, 100))}`);
      return void queueMicrotask(() => this.#emit(refusal));
    }
    if (this.#listenLost) this.#openListen();
    const exchange: Exchange = { request: { ...request, params: this.#envelope(p, traceparent) }, rounds: 0 };
    this.#exchanges.set(idKey(request.id), exchange);
    this.#call(exchange, exchange.request);
  }

  #initialize(request: JsonRpcRequest): void {
    const p = request.params ?? {};
    if (p.clientInfo !== undefined) this.#clientInfo = p.clientInfo;
    if (p.capabilities !== null && typeof p.capabilities === 'object') this.#capabilities = p.capabilities as Record<string, unknown>;
    const d = this.#connection.discover;
    this.#answerLocally(request.id, {
      protocolVersion: legacyVersion(p.protocolVersion),
      capabilities: d.capabilities,
      serverInfo: d.serverInfo,
      ...(d.instructions === undefined ? {} : { instructions: d.instructions }),
    });
  }

  /** The request's params with the envelope of this session's client; the client's own claims are replaced. */
  #envelope(params: Record<string, unknown>, traceparent: string | undefined): Record<string, unknown> {
    const { inputResponses: _r, requestState: _s, ...rest } = params;
    const meta = { ...((params._meta as Record<string, unknown> | undefined) ?? {}) };
    for (const k of [metaVersion, metaClientInfo, metaCapabilities, metaLogLevel, metaSubscription]) delete meta[k];
    meta[metaVersion] = this.#connection.version;
    meta[metaClientInfo] = this.#clientInfo;
    meta[metaCapabilities] = this.#capabilities;
    if (this.#connection.discover.capabilities.logging !== undefined) meta[metaLogLevel] = this.#logLevel ?? 'debug';
    // Tracing on: the gateway's upstream call is the server's parent (the client's own context is what it continues).
    if (traceparent !== undefined) meta.traceparent = traceparent;
    return { ...rest, _meta: meta };
  }

  /** Sends one round of an exchange: the first under the session's id, each retry under an id of its own. */
  #call(exchange: Exchange, request: JsonRpcRequest): void {
    const key = idKey(exchange.request.id);
    exchange.current = request;
    exchange.call = this.#connection.transport.call(request, {
      message: (m, text) => {
        if (this.#exchanges.get(key) !== exchange) return;
        if (isNotification(m)) return this.#emit(m, text);
        if (isRequest(m)) return this.onerror?.(new Error(`the 2026-07-28 server sent a request (${m.method.slice(0, 60)}), which it may not`));
        this.#responded(exchange, m as JsonRpcResponse, text);
        // An answer that refused the 2026-07-28 request as unsupported retires the connection (EraUpstream): this session ends.
        this.#endIfRetired();
      },
      failed: (reason) => {
        if (this.#exchanges.get(key) !== exchange) return;
        this.#exchanges.delete(key);
        this.onfailed?.([exchange.request.id], reason);
        // The failure may have shown the server is no longer modern (its era is asked again): this session ends now.
        this.#endIfRetired();
      },
    });
    if (this.#paused) exchange.call.pause?.();
  }

  #responded(exchange: Exchange, response: JsonRpcResponse, text: string): void {
    const id = exchange.request.id;
    const result = response.result as Record<string, unknown> | undefined;
    if (response.error === undefined && isInputRequired(result)) return this.#inputRound(exchange, result!);
    if (response.error?.code === ErrorCode.HeaderMismatch && exchange.request.method === 'tools/call' && !exchange.relisted) {
      // The tool's x-mcp-header parameters are not known (no tools/list yet) or changed: read them, then try again.
      exchange.relisted = true;
      const again = exchange.current ?? exchange.request;
      return this.#relist(() => {
        if (this.#exchanges.get(idKey(id)) === exchange) this.#call(exchange, again);
      });
    }
    this.#exchanges.delete(idKey(id));
    // A result the link changed (a filtered task list) is sent as it now is, never as the server's text.
    const changed = result !== undefined && this.#learn(exchange.request, result);
    if (response.id === id && !changed) return this.#emit(response, text);
    this.#emit({ ...response, id });
  }

  /** Reads the server's tool list (every page, up to a bound) to learn its header parameters, then `then`. */
  #relist(then: () => void, cursor?: string, page = 0): void {
    const request: JsonRpcRequest = {
      jsonrpc: '2.0',
      id: `portcullis-tools-${++this.#nextQuestion}`,
      method: 'tools/list',
      params: this.#envelope(cursor === undefined ? {} : { cursor }, undefined),
    };
    this.#connection.transport.call(request, {
      message: (m) => {
        if (!('id' in m) || isRequest(m) || isNotification(m)) return;
        const result = (m as JsonRpcResponse).result as { tools?: unknown; nextCursor?: unknown } | undefined;
        if (Array.isArray(result?.tools)) learnToolHeaders(this.#connection, result.tools, (e) => this.onerror?.(e));
        if (typeof result?.nextCursor === 'string' && page < 20) return this.#relist(then, result.nextCursor, page + 1);
        then();
      },
      failed: () => then(),
    });
  }

  /** What the session's results teach: the tools' header parameters, the tasks this session owns. True when it changed `result`. */
  #learn(request: JsonRpcRequest, result: Record<string, unknown>): boolean {
    if (request.method === 'tools/list' && Array.isArray(result.tools)) learnToolHeaders(this.#connection, result.tools, (e) => this.onerror?.(e));
    const task = result.task as { taskId?: unknown } | undefined;
    if (typeof task?.taskId === 'string') this.#tasks.add(task.taskId);
    if (request.method === 'tasks/list' && Array.isArray(result.tasks)) {
      // Only this session's tasks: the server lists every task of the gateway's credential.
      result.tasks = result.tasks.filter((t) => typeof (t as { taskId?: unknown })?.taskId === 'string' && this.#tasks.has((t as { taskId: string }).taskId));
      return true;
    }
    return false;
  }

  /** An `input_required` result: the client is asked, or the request fails with why it cannot be. */
  #inputRound(exchange: Exchange, result: Record<string, unknown>): void {
    const id = exchange.request.id;
    const fail = (response: JsonRpcResponse) => {
      this.#exchanges.delete(idKey(id));
      this.#emit(response);
    };
    exchange.rounds++;
    if (exchange.rounds > maxInputRounds)
      return fail(
        errorResponse(id, ErrorCode.InternalError, `The server asked for input more than ${maxInputRounds} times; the gateway gave up on the request`),
      );
    const round = readInputRequired(result);
    if ('invalid' in round) return fail(errorResponse(id, ErrorCode.InternalError, `The server's input_required result is invalid: ${round.invalid}`));
    for (const r of round.requests) {
      const why = cannotAsk(r, this.#capabilities);
      if (why !== undefined) return fail(cannotAskError(id, why));
    }
    const pending = new PendingRound(exchange.request, exchange.rounds, round.requestState);
    exchange.round = pending;
    exchange.call = undefined;
    if (round.requests.length === 0) return this.#retry(exchange, pending);
    for (const r of round.requests) {
      const gatewayId = `portcullis-input-${++this.#nextQuestion}`;
      pending.asks(gatewayId, r.key);
      this.#questions.set(gatewayId, idKey(id));
      this.#emit({ jsonrpc: '2.0', id: gatewayId, method: r.method, params: r.params });
    }
  }

  /** The client answered one of the shim's questions. */
  #answered(response: JsonRpcResponse): void {
    const gatewayId = String(response.id);
    const key = this.#questions.get(gatewayId);
    if (key === undefined) return;
    this.#questions.delete(gatewayId);
    const exchange = this.#exchanges.get(key);
    const round = exchange?.round;
    if (exchange === undefined || round === undefined) return;
    if (response.error !== undefined) {
      // This question is answered (with a refusal); the others of the round are withdrawn.
      round.answer(gatewayId, undefined);
      this.#withdraw(exchange);
      this.#exchanges.delete(key);
      const e = response.error;
      return this.#emit(errorResponse(exchange.request.id, e.code, `The client refused the server's request for input: ${e.message}`));
    }
    if (round.answer(gatewayId, response.result)) this.#retry(exchange, round);
  }

  #retry(exchange: Exchange, round: PendingRound): void {
    exchange.round = undefined;
    const params = retryParams(exchange.request.params ?? {}, round.responses, round.requestState);
    this.#call(exchange, { ...exchange.request, id: --this.#nextRetryId, params });
  }

  /** The client gave up a request: its call upstream ends, its open questions are withdrawn. */
  #cancelled(requestId: RequestId | undefined): void {
    if (requestId === undefined) return;
    const exchange = this.#exchanges.get(idKey(requestId));
    if (exchange === undefined) return;
    this.#exchanges.delete(idKey(requestId));
    exchange.call?.cancel();
    this.#withdraw(exchange);
  }

  #withdraw(exchange: Exchange): void {
    for (const q of exchange.round?.open ?? []) {
      this.#questions.delete(q);
      this.#emit({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: q, reason: 'the request it was for ended' } });
    }
    exchange.round = undefined;
  }

  /** One `subscriptions/listen` for what the session can be told: list changes the server declares, subscribed resources. */
  #openListen(): void {
    this.#listenLost = false;
    this.#listen?.cancel();
    this.#listen = undefined;
    const caps = this.#connection.discover.capabilities as Record<string, { listChanged?: boolean; subscribe?: boolean } | undefined>;
    const notifications: Record<string, unknown> = {};
    if (caps.tools?.listChanged) notifications.toolsListChanged = true;
    if (caps.prompts?.listChanged) notifications.promptsListChanged = true;
    if (caps.resources?.listChanged) notifications.resourcesListChanged = true;
    if (caps.resources?.subscribe && this.#subscribed.size > 0) notifications.resourceSubscriptions = [...this.#subscribed];
    if (Object.keys(notifications).length === 0 || this.#closed) return;
    const request: JsonRpcRequest = {
      jsonrpc: '2.0',
      id: 'portcullis-listen',
      method: 'subscriptions/listen',
      params: this.#envelope({ notifications }, undefined),
    };
    const call: ModernCall = this.#connection.transport.call(request, {
      message: (m) => {
        if (this.#listen !== call || !isNotification(m) || m.method === 'notifications/subscriptions/acknowledged') return;
        const { [metaSubscription]: _sub, ...meta } = (m.params?._meta as Record<string, unknown> | undefined) ?? {};
        const params = { ...m.params };
        if (Object.keys(meta).length > 0) params._meta = meta;
        else delete params._meta;
        this.#emit({ jsonrpc: '2.0', method: m.method, params });
      },
      failed: (reason) => {
        if (this.#listen !== call) return;
        // Its process died or its stream broke: opened again with the session's next request.
        this.#listen = undefined;
        this.#listenLost = true;
        this.onerror?.(new Error(`the server's change notifications stopped: ${reason}`));
      },
    });
    this.#listen = call;
    if (this.#paused) call.pause?.();
  }
}
