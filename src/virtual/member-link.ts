import type { Identity } from '../core/identity.js';
import type { ClientSink } from '../exchange/sink.js';
import type { VirtualOrigin } from '../pipeline/stage.js';
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
import { KeptLists } from './kept-lists.js';
import { isListChange } from './list-changes.js';
import type { ListMethod } from './merge.js';
import type { MemberNames } from './names.js';

/**
 * A member session as a virtual server uses it: the gateway's own Session of the member connection, opened for the
 * virtual session's caller, whose "client" this link is.
 */
export interface MemberSession {
  readonly id: string;
  /** The caller's refreshed identity: access on the member is decided by the caller's groups now. */
  refreshIdentity(identity: Identity): void;
  /** False once it is ending: the answers it still delivers then are its own "ended before the server answered". */
  readonly isOpen: boolean;
  attach(sink: ClientSink): void;
  receive(message: JsonRpcMessage, text: string): void;
  close(reason: string): Promise<void>;
}

/** Opens a member session for the virtual session's caller; undefined when the caller may not open that member. */
export type OpenMember = (member: string, identity: Identity, origin: VirtualOrigin) => Promise<MemberSession | undefined>;

/** What a member link tells its virtual upstream. */
export interface MemberEvents {
  /** The member's answer to a request routed to it (ids as the virtual session sent them: passed through untouched). */
  routedAnswer(message: JsonRpcResponse, text: string): void;
  /** A notification for the client (progress, logging, resources/updated, list_changed). */
  notification(link: MemberLink, message: JsonRpcNotification, text: string): void;
  /** The member asks the client something (elicitation, sampling, roots). */
  serverRequest(link: MemberLink, message: JsonRpcRequest): void;
  /** The member cancelled one of its requests to the client (by its id). */
  serverCancelled(link: MemberLink, serverId: RequestId, message: JsonRpcNotification): void;
  /** The member came up (first time, or back after being down). */
  up(link: MemberLink): void;
  /** The member went down (failed to open, to initialize, in time, or its session ended); `wasUp`: it served until now. */
  down(link: MemberLink, reason: string, wasUp: boolean): void;
}

interface OwnRequest {
  method: string;
  resolve(result: Record<string, unknown>): void;
  reject(err: Error): void;
}

type State = 'new' | 'opening' | 'up' | 'down' | 'absent' | 'closed';

/** The capability whose `listChanged` says a member announces its changes to a list (so that its page may be kept). */
const announcedBy: Record<ListMethod, string> = {
  'tools/list': 'tools',
  'prompts/list': 'prompts',
  'resources/list': 'resources',
  'resources/templates/list': 'resources',
};

let ownSequence = 0;

/** Retries of a member that is down: 1s doubling to 30s. */
const firstRetryMs = 1000;
const lastRetryMs = 30_000;

/**
 * One member of one virtual session: its member Session (opened, initialized with the client's own initialize,
 * reopened in the background after it fails), the requests routed to it, and the virtual upstream's own requests
 * (its initialize, the lists it merges, under `virtual-` ids). Requests routed to it keep the ids the virtual session
 * sent them with, which are unique in that session: their answers go back untouched, without re-serialising them.
 */
export class MemberLink {
  #state: State = 'new';
  #session: MemberSession | undefined;
  /** The attempt in progress; settles when the member is up (or the attempt failed). */
  #attempt: Promise<void> | undefined;
  #reason = 'not opened yet';
  readonly #own = new Map<string, OwnRequest>();
  /** Requests routed to it that it has not answered, by the virtual session's id. */
  readonly #routed = new Map<RequestId, JsonRpcRequest>();
  #initialize: Record<string, unknown> | undefined;
  #capabilities: Record<string, unknown> = {};
  #initializeResult: Record<string, unknown> | undefined;
  #retryMs = firstRetryMs;
  #retryTimer: NodeJS.Timeout | undefined;
  #whenInitialize: (() => void) | undefined;
  /** Whether the caller's token now still lets them open this member (a refreshed token's groups decide, as directly). */
  #permitted = true;
  /** Backpressure: while held, what the member sends for the client waits in `#held`. */
  #holding = false;
  readonly #held: { message: JsonRpcMessage; text: string }[] = [];
  #heldBytes = 0;
  /** Its first pages of the lists, as its member session last answered them for the caller (kept-lists.ts). */
  readonly #kept = new KeptLists();

  constructor(
    readonly index: number,
    readonly names: MemberNames,
    private readonly open: OpenMember,
    /** The caller now (a retry opens the member for who is on the virtual session then). */
    private readonly caller: () => Identity,
    private readonly origin: VirtualOrigin,
    private readonly events: MemberEvents,
    /** How long an attempt may take in the background before it is given up and retried. */
    private readonly attemptTimeoutMs: number,
    /** The member connection's pins version (ToolPins.version): a kept tools/list from another version is stale. */
    private readonly pinsVersion: () => number = () => 0,
  ) {}

  get connection(): string {
    return this.names.connection;
  }

  get isUp(): boolean {
    return this.#state === 'up' && this.#permitted;
  }

  /** Whether the caller may not open this member (now): it is simply not part of their virtual server. */
  get isAbsent(): boolean {
    return this.#state === 'absent' || !this.#permitted;
  }

  /**
   * Whether the caller's refreshed token lets them open this member: while it does not, the member is absent from
   * their lists and its names are unknown (its session stays, as a direct one does, for a token that allows it again).
   * Returns whether that changed.
   */
  permit(allowed: boolean): boolean {
    if (allowed === this.#permitted) return false;
    this.#permitted = allowed;
    this.#kept.forget();
    return true;
  }

  get reason(): string {
    return this.#reason;
  }

  get sessionId(): string | undefined {
    return this.#session?.id;
  }

  get capabilities(): Record<string, unknown> {
    return this.#capabilities;
  }

  get initializeResult(): Record<string, unknown> | undefined {
    return this.#initializeResult;
  }

  /** Opens the member session now (before the client's initialize arrives), so its server starts meanwhile. */
  start(): void {
    if (this.#state !== 'new') return;
    this.#attempt = this.#run();
  }

  /** The client's initialize params: the member is initialized with them once open. Resolves when it is up (or failed). */
  initialize(params: Record<string, unknown>): Promise<void> {
    this.#initialize = params;
    this.#whenInitialize?.();
    this.#whenInitialize = undefined;
    if (this.#state === 'new') this.start();
    return this.#attempt ?? Promise.resolve();
  }

  async #run(): Promise<void> {
    this.#state = 'opening';
    let timer: NodeJS.Timeout | undefined;
    const attempt = this.#openAndInitialize();
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${Math.round(this.attemptTimeoutMs / 1000)}s`)), this.attemptTimeoutMs);
      timer.unref();
    });
    try {
      await Promise.race([attempt, timeout]);
    } catch (err) {
      attempt.catch(() => {});
      // Already handled: closed, not the caller's, or failed by its session's end (which rejected the attempt).
      if ((this.#state as State) !== 'opening') return;
      this.#failed((err as Error).message);
      return;
    } finally {
      clearTimeout(timer);
    }
    if ((this.#state as State) === 'closed' || (this.#state as State) === 'absent') return;
    this.#state = 'up';
    this.#reason = 'up';
    // A new member session: what the last one listed is not its answer.
    this.#kept.forget();
    this.#retryMs = firstRetryMs;
    this.events.up(this);
  }

  async #openAndInitialize(): Promise<void> {
    const session = await this.open(this.connection, this.caller(), this.origin);
    if (session === undefined) {
      this.#state = 'absent';
      this.#reason = 'the caller may not open it';
      return;
    }
    if (this.#state === 'closed') {
      void session.close('the virtual session ended');
      return;
    }
    this.#session = session;
    session.attach(this.#sinkFor(session));
    // The client's initialize may come after the member opened (the member starts with the virtual session).
    while (this.#initialize === undefined) {
      await new Promise<void>((resolve) => (this.#whenInitialize = resolve));
      if ((this.#state as State) === 'closed') return;
    }
    const result = await this.request('initialize', this.#initialize, { opening: true });
    this.#initializeResult = result;
    this.#capabilities = (result.capabilities as Record<string, unknown> | undefined) ?? {};
    this.#send({ jsonrpc: '2.0', method: 'notifications/initialized' });
  }

  #failed(reason: string): void {
    const session = this.#session;
    const wasUp = this.#state === 'up';
    this.#dropHeld();
    this.#kept.forget();
    this.#session = undefined;
    this.#state = 'down';
    this.#reason = reason;
    this.#failPending(reason);
    if (session !== undefined) void session.close(`left out of virtual server '${this.origin.server}': ${reason}`).catch(() => {});
    this.events.down(this, reason, wasUp);
    this.#scheduleRetry();
  }

  #scheduleRetry(): void {
    if (this.#state !== 'down' || this.#retryTimer !== undefined) return;
    const delay = this.#retryMs;
    this.#retryMs = Math.min(this.#retryMs * 2, lastRetryMs);
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      if (this.#state === 'down') this.#attempt = this.#run();
    }, delay);
    this.#retryTimer.unref();
  }

  #failPending(reason: string): void {
    for (const own of this.#own.values()) own.reject(new Error(reason));
    this.#own.clear();
    const routed = [...this.#routed.values()];
    this.#routed.clear();
    for (const r of routed) {
      const answer = errorResponse(
        r.id,
        ErrorCode.InternalError,
        `member '${this.connection}' of virtual server '${this.origin.server}' is unavailable: ${reason}`,
      );
      this.events.routedAnswer(answer, JSON.stringify(answer));
    }
  }

  /** The virtual initialize stopped waiting for it: what a call to it is told until it is up (it may still come). */
  late(reason: string): void {
    if (this.#state === 'opening' || this.#state === 'new') this.#reason = reason;
  }

  /** Why a call to this member cannot be served now, or undefined when it is up. */
  unavailable(): string | undefined {
    if (this.#state === 'up') return undefined;
    return `member '${this.connection}' of virtual server '${this.origin.server}' is unavailable: ${this.#reason}`;
  }

  /** A client request routed to it (`text`: the JSON sent, `message` as it is). */
  route(message: JsonRpcRequest, text: string): void {
    this.#routed.set(message.id, message);
    this.#session!.receive(message, text);
  }

  /** A message for the member as it is (a cancellation, an answer to one of its requests). */
  pass(message: JsonRpcMessage, text: string): void {
    if (this.#state !== 'up') return;
    if (isNotification(message) && message.method === 'notifications/cancelled') this.#routed.delete(message.params?.requestId as RequestId);
    this.#session?.receive(message, text);
  }

  /**
   * The virtual upstream's own request (initialize, a list page): its result; a rejection on an error answer, the
   * member's failure, or `timeoutMs` without an answer (a late answer is then dropped).
   */
  request(
    method: string,
    params: Record<string, unknown> | undefined,
    options: { opening?: boolean; timeoutMs?: number } = {},
  ): Promise<Record<string, unknown>> {
    if (options.opening !== true && this.#state !== 'up') return Promise.reject(new Error(this.unavailable()));
    const id = `virtual-${++ownSequence}`;
    return new Promise((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      if (options.timeoutMs !== undefined) {
        timer = setTimeout(() => {
          this.#own.delete(id);
          const reason = `member '${this.connection}' did not answer ${method} within ${options.timeoutMs}ms`;
          // Its answer is no longer wanted: the member is told, as a client would tell it.
          this.#send({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: id, reason } });
          reject(new Error(reason));
        }, options.timeoutMs);
        timer.unref();
      }
      this.#own.set(id, {
        method,
        resolve: (r) => {
          clearTimeout(timer);
          resolve(r);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.#send({ jsonrpc: '2.0', id, method, ...(params === undefined ? {} : { params }) });
    });
  }

  /**
   * The first page of a list: the one kept from the member session's last answer when nothing can have made it stale
   * since (`keptAt`: when that answer came), else asked for now, and kept when the member announces that list's
   * changes (its capability's `listChanged`: a server that does not may change it unannounced, so it is asked each time).
   */
  async firstPage(method: ListMethod, timeoutMs: number): Promise<{ result: Record<string, unknown>; keptAt?: string }> {
    const pins = method === 'tools/list' ? this.pinsVersion() : 0;
    const kept = this.#kept.get(method, pins);
    if (kept !== undefined && this.#state === 'up') return { result: kept.result, keptAt: kept.at };
    const stamp = this.#kept.stamp(pins);
    const result = await this.request(method, undefined, { timeoutMs });
    const capability = this.#capabilities[announcedBy[method]] as { listChanged?: unknown } | undefined;
    if (capability?.listChanged === true) this.#kept.keep(method, result, stamp);
    return { result };
  }

  /**
   * The caller's identity on the virtual session; `changed`: who they are, or their groups, differ from before, so
   * what each member shows them may differ too.
   */
  refreshIdentity(identity: Identity, changed: boolean): void {
    if (changed) this.#kept.forget();
    this.#session?.refreshIdentity(identity);
  }

  /** Whether a request routed to it (by the virtual session's id) is still waiting for its answer. */
  holds(id: RequestId): boolean {
    return this.#routed.has(id);
  }

  #send(message: JsonRpcMessage): void {
    this.#session?.receive(message, JSON.stringify(message));
  }

  close(reason: string): void {
    if (this.#state === 'closed') return;
    const session = this.#session;
    this.#state = 'closed';
    this.#session = undefined;
    clearTimeout(this.#retryTimer);
    this.#whenInitialize?.();
    this.#dropHeld();
    for (const own of this.#own.values()) own.reject(new Error(reason));
    this.#own.clear();
    this.#routed.clear();
    if (session !== undefined) void session.close(reason).catch(() => {});
  }

  /** The virtual session's client does not keep up (backpressure): what the member sends for it waits here. */
  hold(): void {
    this.#holding = true;
  }

  /** What waited for a member that is gone: its answers are owed as errors (#failPending), its notifications are moot. */
  #dropHeld(): void {
    this.#held.length = 0;
    this.#heldBytes = 0;
  }

  /** The client caught up: what waited goes on, in order, until it is held again. */
  release(): void {
    this.#holding = false;
    while (!this.#holding && this.#held.length > 0) {
      const next = this.#held.shift()!;
      this.#heldBytes -= next.text.length;
      this.#delivered(next.message, next.text);
    }
  }

  /** What the member session delivers to its "client", this link; a session given up on is no longer heard. */
  #sinkFor(session: MemberSession): ClientSink {
    const link = this;
    return {
      connected: true,
      inProcess: true,
      // What waits here for a virtual session that does not keep up: the member session pauses its server past its limit.
      get backlog() {
        return link.#heldBytes;
      },
      send: (received, _related, receivedText) => {
        if (this.#session !== session) return;
        const { message, text } = session.isOpen ? { message: received, text: receivedText } : this.#endedAnswer(received, receivedText);
        // Stale at once, even while the notification waits for a client that does not keep up (and asks again).
        if (isNotification(message) && isListChange(message.method)) this.#kept.changed(message.method);
        const response = !isRequest(message) && !isNotification(message);
        // The virtual upstream's own answers (its lists) go on; what is for the client waits while it is held.
        if (this.#holding && !(response && typeof message.id === 'string' && message.id.startsWith('virtual-'))) {
          this.#held.push({ message, text });
          this.#heldBytes += text.length;
          return;
        }
        this.#delivered(message, text);
      },
      abandon() {},
      close: (reason) => {
        // Its server died or its session was closed by the gateway (idle, a grant that ended): down, and retried.
        if (this.#session === session && this.#state !== 'closed') this.#failed(`its session ended: ${reason}`);
      },
    };
  }

  /**
   * A member session that ends answers the requests it still had with its own error ("Session ended before the server
   * answered: …"); a call routed to it is told what any call to a member that is down is told: the member is unavailable.
   */
  #endedAnswer(message: JsonRpcMessage, text: string): { message: JsonRpcMessage; text: string } {
    if (isRequest(message) || isNotification(message)) return { message, text };
    const response = message as JsonRpcResponse;
    if (response.error === undefined || response.id === null || !this.#routed.has(response.id)) return { message, text };
    const answer = errorResponse(
      response.id,
      ErrorCode.InternalError,
      `member '${this.connection}' of virtual server '${this.origin.server}' is unavailable: ${response.error.message}`,
    );
    return { message: answer, text: JSON.stringify(answer) };
  }

  #delivered(message: JsonRpcMessage, text: string): void {
    if (isRequest(message)) {
      this.events.serverRequest(this, message);
      return;
    }
    if (isNotification(message)) {
      if (message.method === 'notifications/cancelled') {
        const id = message.params?.requestId;
        if (typeof id === 'string' || typeof id === 'number') this.events.serverCancelled(this, id, message);
        return;
      }
      this.events.notification(this, message, text);
      return;
    }
    const response = message as JsonRpcResponse;
    const id = response.id;
    if (typeof id === 'string' && id.startsWith('virtual-')) {
      const own = this.#own.get(id);
      if (own === undefined) return;
      this.#own.delete(id);
      if (response.error !== undefined) own.reject(new Error(`its ${own.method} failed: ${response.error.message}`));
      else own.resolve((response.result ?? {}) as Record<string, unknown>);
      return;
    }
    if (id !== null) this.#routed.delete(id);
    this.events.routedAnswer(response, text);
  }
}
