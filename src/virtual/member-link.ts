import type { Identity } from '../core/identity.js';
import type { ClientSink } from '../exchange/sink.js';
import type { VirtualOrigin } from '../pipeline/stage.js';
import {
  isNotification,
  isRequest,
  type JsonRpcMessage,
  type JsonRpcNotification,
  type JsonRpcRequest,
  type JsonRpcResponse,
  type RequestId,
} from '../protocol/jsonrpc.js';
import { HeldMessages } from './held-messages.js';
import type { MemberSession, OpenMember } from './member-session.js';
import { memberUnavailable } from './member-unavailable.js';
import { KeptLists } from './kept-lists.js';
import { isListChange } from './list-changes.js';
import type { ListMethod } from './merge.js';
import type { MemberNames } from './names.js';
import { isOwnAnswer, OwnRequests } from './own-requests.js';
import { RetryBackoff } from './retry-backoff.js';
import { RoutedRequests } from './routed-requests.js';

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

type State = 'new' | 'opening' | 'up' | 'down' | 'absent' | 'closed';

/** The capability whose `listChanged` says a member announces its changes to a list (so that its page may be kept). */
const announcedBy: Record<ListMethod, string> = {
  'tools/list': 'tools',
  'prompts/list': 'prompts',
  'resources/list': 'resources',
  'resources/templates/list': 'resources',
};

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
  readonly #own: OwnRequests;
  readonly #routed: RoutedRequests;
  #initialize: Record<string, unknown> | undefined;
  #capabilities: Record<string, unknown> = {};
  #initializeResult: Record<string, unknown> | undefined;
  readonly #retry = new RetryBackoff();
  #whenInitialize: (() => void) | undefined;
  /** Whether the caller's token now still lets them open this member (a refreshed token's groups decide, as directly). */
  #permitted = true;
  /** Backpressure: while held, what the member sends for the client waits here. */
  readonly #held = new HeldMessages();
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
  ) {
    this.#own = new OwnRequests(names.connection, (message) => this.#send(message));
    this.#routed = new RoutedRequests(names.connection, origin.server);
  }

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
    this.#retry.reset();
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
    this.#held.drop();
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
    if (this.#state !== 'down') return;
    this.#retry.schedule(() => {
      if (this.#state === 'down') this.#attempt = this.#run();
    });
  }

  #failPending(reason: string): void {
    this.#own.failAll(reason);
    for (const answer of this.#routed.failAll(reason)) this.events.routedAnswer(answer, JSON.stringify(answer));
  }

  /** The virtual initialize stopped waiting for it: what a call to it is told until it is up (it may still come). */
  late(reason: string): void {
    if (this.#state === 'opening' || this.#state === 'new') this.#reason = reason;
  }

  /** Why a call to this member cannot be served now, or undefined when it is up. */
  unavailable(): string | undefined {
    if (this.#state === 'up') return undefined;
    return memberUnavailable(this.connection, this.origin.server, this.#reason);
  }

  /** A client request routed to it (`text`: the JSON sent, `message` as it is). */
  route(message: JsonRpcRequest, text: string): void {
    this.#routed.add(message);
    this.#session!.receive(message, text);
  }

  /** A message for the member as it is (a cancellation, an answer to one of its requests). */
  pass(message: JsonRpcMessage, text: string): void {
    if (this.#state !== 'up') return;
    this.#routed.passed(message);
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
    return this.#own.request(method, params, options.timeoutMs);
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
    this.#retry.cancel();
    this.#whenInitialize?.();
    this.#held.drop();
    this.#own.failAll(reason);
    this.#routed.clear();
    if (session !== undefined) void session.close(reason).catch(() => {});
  }

  /** The virtual session's client does not keep up (backpressure): what the member sends for it waits here. */
  hold(): void {
    this.#held.hold();
  }

  /** The client caught up: what waited goes on, in order, until it is held again. */
  release(): void {
    this.#held.release((message, text) => this.#delivered(message, text));
  }

  /** What the member session delivers to its "client", this link; a session given up on is no longer heard. */
  #sinkFor(session: MemberSession): ClientSink {
    const link = this;
    return {
      connected: true,
      inProcess: true,
      // What waits here for a virtual session that does not keep up: the member session pauses its server past its limit.
      get backlog() {
        return link.#held.bytes;
      },
      send: (received, _related, receivedText) => {
        if (this.#session !== session) return;
        const { message, text } = session.isOpen ? { message: received, text: receivedText } : this.#routed.endedAnswer(received, receivedText);
        // Stale at once, even while the notification waits for a client that does not keep up (and asks again).
        if (isNotification(message) && isListChange(message.method)) this.#kept.changed(message.method);
        // The virtual upstream's own answers (its lists) go on; what is for the client waits while it is held.
        if (this.#held.holding && !isOwnAnswer(message)) {
          this.#held.push(message, text);
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
    if (isOwnAnswer(message)) {
      this.#own.answered(message);
      return;
    }
    const response = message as JsonRpcResponse;
    const id = response.id;
    if (id !== null) this.#routed.settled(id);
    this.events.routedAnswer(response, text);
  }
}
