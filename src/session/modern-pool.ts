import { logRefusal } from '../core/refusal-log.js';
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { ConnectionConfig } from '../config/schema.js';
import type { Identity } from '../core/identity.js';
import type { VerdictEvent } from '../core/verdict-event.js';
import { canonicalJson } from '../protocol/canonical-json.js';
import type { EnvelopeClient } from '../protocol/envelope.js';
import {
  errorResponse,
  ErrorCode,
  isNotification,
  isRequest,
  isResponse,
  type JsonRpcMessage,
  type JsonRpcNotification,
  type JsonRpcRequest,
  type JsonRpcResponse,
  type RequestId,
} from '../protocol/jsonrpc.js';
import { latestProtocolVersion } from '../protocol/versions.js';
import type { ClientSink } from '../exchange/sink.js';
import type { SessionOrigin, SessionRegistry } from './registry.js';
import type { Session, SessionObserver } from './session.js';

/**
 * What one modern request sees of its pooled session: the messages that belong to it (its notifications, the
 * server's requests made for it, its response), a hold, its end.
 */
export interface ExchangeHandler {
  message(message: JsonRpcMessage, text: string): void;
  /** A stage holds the request (a review): the response should show life until the answer comes. */
  hold(): void;
  /** The request will get no response (cancelled). */
  abandoned(): void;
  /** A stage rewrote or answered something of this exchange toward the client (filtered, masked): not for shared caches. */
  filtered?(): void;
}

/** A `subscriptions/listen` stream: the session's notifications that belong to no request, and its end. */
export interface Listener {
  notification(message: JsonRpcNotification, text: string): void;
  closed(reason: string): void;
}

export interface ModernPoolOptions {
  /** The registry that creates the pooled sessions (a function: the pool observes the sessions the registry makes). */
  registry: () => SessionRegistry;
  /** A pooled session unused this long is closed (sessions.modernIdleTimeout). */
  idleMs: number;
  /** Sessions per key at most; past it requests share the least busy one (sessions.modernPoolSize). */
  maxPerKey: number;
  log: Logger;
}

/** What the pooled session's initialize was answered with, after the pipeline: the facts server/discover gives. */
export interface UpstreamFacts {
  capabilities: Record<string, unknown>;
  serverInfo?: unknown;
  instructions?: string;
}

let sequence = 0;
const instancePrefix = randomBytes(6).toString('base64url');

/** A request id nobody else uses: the gateway's, unique across the pooled session's concurrent modern requests. */
function gatewayId(): string {
  return `pc-${instancePrefix}-${++sequence}`;
}

/**
 * One pooled internal session: the ClientSink of a legacy Session whose "client" is the gateway's modern edge. It
 * routes each message to the modern request it belongs to, and refuses server requests that belong to none.
 */
export class PooledSession implements ClientSink {
  readonly #exchanges = new Map<RequestId, ExchangeHandler>();
  /** `subscriptions/listen` streams on this session: they receive the notifications that belong to no request. */
  readonly #listeners = new Set<Listener>();
  #facts: UpstreamFacts | undefined;
  #closed = false;
  lastUsed = Date.now();

  constructor(
    readonly session: Session,
    readonly key: string,
    private readonly log: Logger,
    private readonly onClose: (p: PooledSession) => void,
  ) {}

  get facts(): UpstreamFacts {
    return this.#facts!;
  }

  get busy(): number {
    return this.#exchanges.size;
  }

  /** Whether a listen stream is open on it (it is then not closed for being idle). */
  get listened(): boolean {
    return this.#listeners.size > 0;
  }

  /** Adds a listen stream; returns its removal. */
  listen(listener: Listener): () => void {
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
      this.lastUsed = Date.now();
    };
  }

  get isOpen(): boolean {
    return !this.#closed && this.session.isOpen;
  }

  /** Sends a request through the session (and its pipeline) on the gateway's behalf; resolves with its response. */
  call(method: string, params: Record<string, unknown>): Promise<JsonRpcResponse> {
    return new Promise<JsonRpcResponse>((resolve) => {
      const id = this.submit(method, params, {
        message: (m) => {
          if (isResponse(m)) resolve(m);
        },
        hold() {},
        abandoned: () => resolve(errorResponse(id, ErrorCode.UpstreamUnavailable, `${method} abandoned`)),
      });
    });
  }

  /** Initializes the upstream session as the client of the envelope, the gateway speaking its initialize. */
  async initialize(client: EnvelopeClient): Promise<void> {
    const params = { protocolVersion: latestProtocolVersion, capabilities: client.capabilities, clientInfo: client.clientInfo };
    const r = await this.call('initialize', params);
    if (r.result === undefined) throw new Error(`the upstream refused initialize: ${r.error?.message ?? 'no result'}`);
    this.#facts = {
      capabilities: (r.result.capabilities as Record<string, unknown> | undefined) ?? {},
      ...(r.result.serverInfo !== undefined ? { serverInfo: r.result.serverInfo } : {}),
      ...(typeof r.result.instructions === 'string' ? { instructions: r.result.instructions } : {}),
    };
    this.session.receive({ jsonrpc: '2.0', method: 'notifications/initialized' }, '{"jsonrpc":"2.0","method":"notifications/initialized"}');
  }

  /** Hands a request to the session under a fresh gateway id; what belongs to it goes to `handler`. Returns that id. */
  submit(method: string, params: Record<string, unknown> | undefined, handler: ExchangeHandler, traceparent?: string): string {
    const id = gatewayId();
    this.#exchanges.set(id, handler);
    this.lastUsed = Date.now();
    // Progress is told apart by the gateway's id, never the client's token: two clients of one principal sharing this
    // session may both count their tokens from 1 (the exchange gives each its own token back).
    const meta = params?._meta as Record<string, unknown> | undefined;
    if (meta !== undefined && meta !== null && typeof meta === 'object' && meta.progressToken !== undefined)
      params = { ...params, _meta: { ...meta, progressToken: id } };
    const request: JsonRpcRequest = { jsonrpc: '2.0', id, method, ...(params === undefined ? {} : { params }) };
    this.session.receive(request, JSON.stringify(request), traceparent);
    return id;
  }

  /** Answers a server request the session delivered (by the id the session gave it). */
  answerServer(message: JsonRpcMessage): void {
    this.session.receive(message, JSON.stringify(message));
  }

  /** The modern client went away: the request is cancelled upstream. */
  cancel(id: string, reason: string): void {
    if (!this.#exchanges.has(id)) return;
    const note = { jsonrpc: '2.0' as const, method: 'notifications/cancelled', params: { requestId: id, reason } };
    this.session.receive(note, JSON.stringify(note));
    this.#exchanges.delete(id);
  }

  /** The exchange is over (its response was delivered): later messages for it are not its. */
  finish(id: string): void {
    this.#exchanges.delete(id);
    this.lastUsed = Date.now();
  }

  verdict(event: VerdictEvent): void {
    if (event.direction !== 'toClient' || event.messageId === undefined || event.action === 'pass') return;
    this.#exchanges.get(event.messageId)?.filtered?.();
  }

  // ClientSink

  get connected(): boolean {
    // The pool reaps its sessions itself; the registry's reaper leaves them alone.
    return !this.#closed;
  }

  send(message: JsonRpcMessage, related: RequestId | undefined, _text: string): void {
    const handler = related === undefined ? undefined : this.#exchanges.get(related);
    if (handler !== undefined) {
      if (isResponse(message) && message.id === related) this.#exchanges.delete(related!);
      handler.message(message, _text);
      return;
    }
    if (isNotification(message)) {
      for (const l of this.#listeners) l.notification(message, _text);
      return;
    }
    if (isRequest(message)) {
      // A server request made outside any modern request (or while several are in flight): a modern client has no
      // stream to receive it on. Refused, and the refusal is recorded like any answer to the server.
      const reason = 'a server request outside any modern request has no client stream to go to';
      const refusal = { principal: this.session.identity.subject, connection: this.session.connection, method: message.method, reason };
      logRefusal(this.log, refusal, 'server request outside a modern request refused', { direction: 'toClient' });
      this.answerServer(
        errorResponse(
          message.id,
          ErrorCode.InvalidRequest,
          'the gateway cannot relay this request: it was made outside a single pending client request (MCP 2026-07-28 clients answer server requests only within their own request)',
        ),
      );
    }
  }

  abandon(clientId: RequestId): void {
    const handler = this.#exchanges.get(clientId);
    this.#exchanges.delete(clientId);
    handler?.abandoned();
  }

  hold(clientId: RequestId): void {
    this.#exchanges.get(clientId)?.hold();
  }

  close(reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    this.onClose(this);
    for (const [id, handler] of this.#exchanges) {
      handler.message(errorResponse(id, ErrorCode.UpstreamUnavailable, `Session ended before the server answered: ${reason}`), '');
    }
    this.#exchanges.clear();
    for (const l of [...this.#listeners]) l.closed(reason);
    this.#listeners.clear();
  }
}

/**
 * Pooled internal sessions for modern (2026-07-28) clients: per (connection, principal, declared client
 * capabilities), a few legacy Sessions, initialized by the gateway with the client's envelope, reused by later
 * requests of the same key, closed after sitting idle, and replaced when their upstream dies.
 */
export class ModernPool implements SessionObserver {
  readonly #byKey = new Map<string, PooledSession[]>();
  readonly #creating = new Map<string, Promise<PooledSession>[]>();
  readonly #bySession = new WeakMap<Session, PooledSession>();
  readonly #timer: NodeJS.Timeout;

  constructor(private readonly o: ModernPoolOptions) {
    this.#timer = setInterval(() => this.reapIdle(), Math.max(200, Math.min(30_000, o.idleMs / 4)));
    this.#timer.unref();
  }

  static key(connection: string, identity: Identity, capabilities: Record<string, unknown>): string {
    return canonicalJson([connection, identity.issuer, identity.subject, capabilities]);
  }

  /** A pooled session for the caller, created (and initialized) when none of the key is free. */
  async acquire(connection: ConnectionConfig, identity: Identity, origin: SessionOrigin, client: EnvelopeClient): Promise<PooledSession> {
    const key = ModernPool.key(connection.name, identity, client.capabilities);
    const open = (this.#byKey.get(key) ?? []).filter((p) => p.isOpen);
    const idle = open.find((p) => p.busy === 0);
    const creating = this.#creating.get(key) ?? [];
    let chosen: PooledSession;
    if (idle !== undefined) chosen = idle;
    else if (open.length + creating.length < this.o.maxPerKey) {
      try {
        chosen = await this.#create(key, connection, identity, origin, client);
      } catch (err) {
        // One more session is refused (a session limit, an upstream that will not start): share an open one if any.
        const fallback = open.filter((p) => p.isOpen).reduce<PooledSession | undefined>((a, b) => (a === undefined || b.busy < a.busy ? b : a), undefined);
        if (fallback === undefined) throw err;
        chosen = fallback;
      }
    } else if (open.length > 0) chosen = open.reduce((a, b) => (b.busy < a.busy ? b : a));
    else chosen = await creating[0]!;
    chosen.session.refreshIdentity(identity);
    chosen.lastUsed = Date.now();
    return chosen;
  }

  #create(key: string, connection: ConnectionConfig, identity: Identity, origin: SessionOrigin, client: EnvelopeClient): Promise<PooledSession> {
    const creating = (async () => {
      const session = await this.o.registry().create(connection, identity, origin);
      const pooled = new PooledSession(session, key, this.o.log.child({ session: session.id }), (p) => this.#remove(p));
      this.#bySession.set(session, pooled);
      session.attach(pooled);
      try {
        await pooled.initialize(client);
      } catch (err) {
        await session.close(`pooled session could not initialize: ${(err as Error).message}`);
        throw err;
      }
      const list = this.#byKey.get(key) ?? [];
      list.push(pooled);
      this.#byKey.set(key, list);
      return pooled;
    })();
    const list = this.#creating.get(key) ?? [];
    list.push(creating);
    this.#creating.set(key, list);
    const done = () => {
      const l = (this.#creating.get(key) ?? []).filter((p) => p !== creating);
      if (l.length === 0) this.#creating.delete(key);
      else this.#creating.set(key, l);
    };
    creating.then(done, done);
    return creating;
  }

  #remove(p: PooledSession): void {
    const list = (this.#byKey.get(p.key) ?? []).filter((x) => x !== p);
    if (list.length === 0) this.#byKey.delete(p.key);
    else this.#byKey.set(p.key, list);
  }

  /** Closes pooled sessions unused for the idle time; returns how many. */
  reapIdle(now = Date.now()): number {
    let reaped = 0;
    for (const list of this.#byKey.values()) {
      for (const p of list) {
        if (p.busy === 0 && !p.listened && p.session.pendingRequests === 0 && now - p.lastUsed >= this.o.idleMs) {
          reaped++;
          void p.session.close('pooled session idle');
        }
      }
    }
    return reaped;
  }

  get size(): number {
    let n = 0;
    for (const list of this.#byKey.values()) n += list.length;
    return n;
  }

  // SessionObserver: verdicts of pooled sessions reach the exchange they are about.
  verdict(session: Session, event: VerdictEvent): void {
    this.#bySession.get(session)?.verdict(event);
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}
