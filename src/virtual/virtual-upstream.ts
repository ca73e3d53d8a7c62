import type { Logger } from 'pino';
import type { Identity } from '../core/identity.js';
import type { VerdictEvent } from '../core/verdict-event.js';
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
import type { VirtualUpstreamConfig } from '../upstream/config.js';
import type { Upstream } from '../upstream/upstream.js';
import { initializeResult } from './initialize.js';
import { isListChange, type ListChange, ListChanges, changedLists } from './list-changes.js';
import { type MemberEvents, MemberLink } from './member-link.js';
import type { OpenMember } from './member-session.js';
import type { MemberHealth } from './member-health.js';
import { isListMethod, type ListMethod } from './merge.js';
import { mergedList } from './merged-list.js';
import { MemberRequests } from './member-requests.js';
import type { NamedKind, VirtualNames } from './names.js';
import { ResourceFinder } from './resource-finder.js';

export interface VirtualUpstreamOptions {
  /** The virtual server's name (its connection's). */
  server: string;
  description?: string | undefined;
  /** The virtual session this link serves, and its caller (when it opened). */
  sessionId: string;
  identity: Identity;
  config: VirtualUpstreamConfig;
  /** The members' names (built once per virtual server). */
  names: VirtualNames;
  open: OpenMember;
  /** Whether a caller may open a member connection (its access.groups or a just-in-time grant), asked again as the caller's token is refreshed. */
  mayOpen: (member: string, identity: Identity) => boolean;
  /** A member connection's pins version (ToolPins.version; 0 without pinning): a tools/list kept from another is stale. */
  pinsVersion?: (member: string) => number;
  health: MemberHealth;
  log: Logger;
  /** The gateway's version, for serverInfo. */
  version: string;
}

/** What of a caller's identity the members' policies decide on: a refreshed token that changes none of it keeps their lists. */
const identityKey = (i: Identity): string => JSON.stringify([i.subject, i.issuer, i.email, i.name, i.groups]);

/** How long an attempt to open a member may go on in the background (past the initialize's wait) before it is retried. */
const attemptTimeoutFactor = 3;

/**
 * The link of a virtual server's session: it speaks the 2025-era protocol to the virtual Session as its server would,
 * and is the client of one member Session per member (opened in-process through the SessionRegistry, with the
 * caller's identity), so every call on a member goes through that member's own pipeline and recording. It answers
 * initialize and ping itself, merges the lists, routes each named request to its member, and brings back what the
 * members send. A member that fails is left out (and retried) while the others go on serving.
 */
export class VirtualUpstream implements Upstream, MemberEvents {
  onmessage?: (message: JsonRpcMessage, text: string) => void;
  onclose?: (reason: string, cutOff?: boolean) => void;
  onerror?: (error: Error) => void;
  onverdict?: (event: VerdictEvent) => void;
  /** Its members' sessions record every message write-ahead before it leaves the gateway (upstream.ts). */
  readonly inProcess = true;

  readonly #o: VirtualUpstreamOptions;
  readonly #links: readonly MemberLink[];
  readonly #changes: ListChanges;
  readonly #resources: ResourceFinder;
  readonly #memberRequests = new MemberRequests();
  /** Whether the client's initialize has been answered: a member that comes up afterwards is announced by list_changed. */
  #answered = false;
  /** The members this session has recorded as left out (and not back since). */
  readonly #leftOut = new Set<string>();
  #closed = false;
  #identity: Identity;
  readonly #log: Logger;

  constructor(options: VirtualUpstreamOptions) {
    this.#o = options;
    this.#identity = options.identity;
    this.#log = options.log.child({ virtualServer: options.server });
    const attemptTimeoutMs = Math.max(options.config.memberTimeoutMs * attemptTimeoutFactor, 30_000);
    this.#links = options.names.members.map((names, i) => {
      const origin: VirtualOrigin = { server: options.server, session: options.sessionId, exposed: (_kind, name) => names.exposedName(name) };
      const pinsVersion = options.pinsVersion;
      const pins = pinsVersion === undefined ? undefined : () => pinsVersion(names.connection);
      return new MemberLink(i, names, options.open, () => this.#identity, origin, this, attemptTimeoutMs, pins);
    });
    this.#changes = new ListChanges((method) => this.#emitNew({ jsonrpc: '2.0', method }));
    this.#resources = new ResourceFinder(this.#links, options.config.memberTimeoutMs);
  }

  /** Opens every member at once (their servers start while the client's initialize is on its way); never fails. */
  async start(): Promise<void> {
    for (const link of this.#links) link.start();
  }

  setProtocolVersion(): void {}

  /**
   * Backpressure: the client does not keep up. What the members send for it waits in their links, whose member
   * sessions then pause their servers past their own limits (each counts what waits as its client's backlog).
   */
  pause(): void {
    for (const link of this.#links) link.hold();
  }

  resume(): void {
    for (const link of this.#links) link.release();
  }

  /**
   * The caller's refreshed token: each member session takes it (the same principal; its groups decide access now), and
   * a member whose access.groups it no longer meets leaves their virtual server (as a direct session of it would refuse
   * the token), or comes back when a later token meets them again; the client is told its lists changed.
   */
  refreshIdentity(identity: Identity): void {
    // Every request brings its token's identity: the same one most of the time, or one that says the same.
    const different = identity !== this.#identity && identityKey(identity) !== identityKey(this.#identity);
    this.#identity = identity;
    let changed = false;
    for (const link of this.#links) {
      link.refreshIdentity(identity, different);
      if (link.permit(this.#o.mayOpen(link.connection, identity))) changed = true;
    }
    if (changed && this.#answered) for (const method of changedLists) this.#changes.changed(method as ListChange);
  }

  async send(message: JsonRpcMessage, text: string): Promise<void> {
    if (this.#closed) return;
    if (isRequest(message)) this.#request(message, text);
    else if (isNotification(message)) this.#notification(message, text);
    else this.#clientAnswer(message as JsonRpcResponse);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#changes.close();
    for (const link of this.#links) link.close('the virtual session ended');
    this.#o.health.ended(this.#o.server, this.#o.sessionId);
  }

  #request(message: JsonRpcRequest, text: string): void {
    switch (message.method) {
      case 'initialize':
        void this.#initialize(message);
        return;
      case 'ping':
        this.#answer(message.id, {});
        return;
      case 'tools/call':
        this.#routeNamed('tool', message, text);
        return;
      case 'prompts/get':
        this.#routeNamed('prompt', message, text);
        return;
      case 'resources/read':
      case 'resources/subscribe':
      case 'resources/unsubscribe':
        void this.#routeUri(message, text);
        return;
      case 'completion/complete':
        void this.#complete(message, text);
        return;
      case 'logging/setLevel':
        void this.#setLevel(message);
        return;
    }
    if (isListMethod(message.method)) {
      void this.#list(message.method, message);
      return;
    }
    this.#error(message.id, ErrorCode.MethodNotFound, `Method not found: ${message.method}`);
  }

  #notification(message: JsonRpcNotification, text: string): void {
    // The members were sent their own notifications/initialized after their initialize.
    if (message.method === 'notifications/initialized') return;
    if (message.method === 'notifications/cancelled') {
      const id = message.params?.requestId as RequestId | undefined;
      const link = id === undefined ? undefined : this.#links.find((l) => l.holds(id));
      link?.pass(message, text);
      return;
    }
    // Roots changed (and anything else the client announces): every member hears it.
    for (const link of this.#links) if (link.isUp) link.pass(message, text);
  }

  /** The client answered a member's request (elicitation, sampling, roots): back to that member under its own id. */
  #clientAnswer(response: JsonRpcResponse): void {
    const back = this.#memberRequests.answered(response);
    back?.link.pass(back.response, JSON.stringify(back.response));
  }

  async #initialize(request: JsonRpcRequest): Promise<void> {
    const params = request.params ?? {};
    const timeoutMs = this.#o.config.memberTimeoutMs;
    let timer: NodeJS.Timeout | undefined;
    // The answer waits for the members at most memberTimeout: those not up by then are left out (and join later).
    await Promise.race([
      Promise.all(this.#links.map((l) => l.initialize(params))),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, timeoutMs);
        timer.unref();
      }),
    ]);
    clearTimeout(timer);
    if (this.#closed) return;
    for (const link of this.#links) {
      if (link.isUp || link.isAbsent || link.reason !== 'not opened yet') continue;
      // Still opening: left out of this answer; it joins (with a list_changed) if it opens in time.
      const reason = `had not started and answered initialize within ${timeoutMs}ms (memberTimeout of virtual server '${this.#o.server}'): left out until it does`;
      link.late(reason);
      this.#memberDown(link, reason);
    }
    this.#answered = true;
    this.#answer(request.id, initializeResult(this.#o, params, this.#links));
  }

  /** A tool call or a prompt: to the member that exposes the name, under the server's own name. */
  #routeNamed(kind: NamedKind, message: JsonRpcRequest, text: string): void {
    const name = message.params?.name;
    const what = kind === 'tool' ? 'tool' : 'prompt';
    if (typeof name !== 'string') return this.#error(message.id, ErrorCode.InvalidParams, `expected params.name, the ${what}'s name`);
    const route = this.#o.names.route(kind, name);
    const link = route === undefined ? undefined : this.#links[route.member];
    // A member the caller may not open is not part of their virtual server: its names are unknown, as hidden ones are.
    if (route === undefined || link === undefined || link.isAbsent) return this.#error(message.id, ErrorCode.InvalidParams, `Unknown ${what}: ${name}`);
    const unavailable = link.unavailable();
    if (unavailable !== undefined) return this.#error(message.id, ErrorCode.InternalError, unavailable);
    if (route.serverName === name) return this.#route(link, message, text, name);
    const renamed: JsonRpcRequest = { ...message, params: { ...message.params, name: route.serverName } };
    this.#route(link, renamed, JSON.stringify(renamed), route.serverName);
  }

  async #routeUri(message: JsonRpcRequest, text: string): Promise<void> {
    const uri = message.params?.uri;
    if (typeof uri !== 'string') return this.#error(message.id, ErrorCode.InvalidParams, "expected params.uri, the resource's URI");
    const link = await this.#resources.memberOf(uri, false);
    if (link === undefined) return this.#error(message.id, ErrorCode.InvalidParams, `Unknown resource: ${uri}`);
    const unavailable = link.unavailable();
    if (unavailable !== undefined) return this.#error(message.id, ErrorCode.InternalError, unavailable);
    this.#route(link, message, text, uri);
  }

  async #complete(message: JsonRpcRequest, text: string): Promise<void> {
    const ref = message.params?.ref as { type?: unknown; name?: unknown; uri?: unknown } | undefined;
    if (ref?.type === 'ref/prompt' && typeof ref.name === 'string') {
      const route = this.#o.names.route('prompt', ref.name);
      const link = route === undefined ? undefined : this.#links[route.member];
      if (route === undefined || link === undefined || link.isAbsent) return this.#error(message.id, ErrorCode.InvalidParams, `Unknown prompt: ${ref.name}`);
      const unavailable = link.unavailable();
      if (unavailable !== undefined) return this.#error(message.id, ErrorCode.InternalError, unavailable);
      if (route.serverName === ref.name) return this.#route(link, message, text, ref.name);
      const renamed: JsonRpcRequest = { ...message, params: { ...message.params, ref: { ...ref, name: route.serverName } } };
      return this.#route(link, renamed, JSON.stringify(renamed), route.serverName);
    }
    if (ref?.type === 'ref/resource' && typeof ref.uri === 'string') {
      const link = await this.#resources.memberOf(ref.uri, true);
      if (link === undefined) return this.#error(message.id, ErrorCode.InvalidParams, `Unknown resource template: ${ref.uri}`);
      const unavailable = link.unavailable();
      if (unavailable !== undefined) return this.#error(message.id, ErrorCode.InternalError, unavailable);
      return this.#route(link, message, text, ref.uri);
    }
    this.#error(message.id, ErrorCode.InvalidParams, 'expected params.ref: a ref/prompt with a name or a ref/resource with a uri');
  }

  async #setLevel(message: JsonRpcRequest): Promise<void> {
    const timeoutMs = this.#o.config.memberTimeoutMs;
    await Promise.all(
      this.#links
        .filter((l) => l.isUp && l.capabilities.logging !== undefined)
        .map((l) => l.request('logging/setLevel', message.params, { timeoutMs }).catch(() => undefined)),
    );
    this.#answer(message.id, {});
  }

  async #list(method: ListMethod, message: JsonRpcRequest): Promise<void> {
    const merged = await mergedList(this.#links, method, message.params?.cursor, this.#o.config.memberTimeoutMs, this.#resources.routes, this.#log);
    if (merged === undefined) return this.#error(message.id, ErrorCode.InvalidParams, 'Invalid cursor: not one this virtual server gave');
    // The recording says whose lists the answer holds (and who was left out of it).
    const from =
      merged.served
        .map((l) => {
          const keptAt = merged.keptAt.get(l);
          return `member '${l.connection}' (session ${l.sessionId}${keptAt === undefined ? '' : `, its answer at ${keptAt}`})`;
        })
        .join(', ') || 'no member';
    const left = merged.leftOut.length === 0 ? '' : `; left out: ${merged.leftOut.map((l) => `'${l.connection}'`).join(', ')} (no answer in time)`;
    this.#verdict(message, `merged from ${from}${left}`);
    this.#answer(message.id, merged.result);
  }

  #route(link: MemberLink, message: JsonRpcRequest, text: string, serverName: string): void {
    if (this.onverdict !== undefined)
      this.#verdict(message, `served by member '${link.connection}' (session ${link.sessionId}) as ${message.method} ${serverName}`);
    link.route(message, text);
  }

  /** Records on the virtual session which members served a request (the session files it under the client's id). */
  #verdict(message: JsonRpcRequest, reason: string): void {
    this.onverdict?.({ stage: 'virtual', action: 'pass', reason, direction: 'toServer', messageId: message.id, method: message.method });
  }

  #answer(id: RequestId, result: Record<string, unknown>): void {
    this.#emitNew({ jsonrpc: '2.0', id, result });
  }

  #error(id: RequestId, code: number, message: string): void {
    this.#emitNew(errorResponse(id, code, message));
  }

  /** A message the link makes itself: delivered asynchronously, never inside the session's own `send`. */
  #emitNew(message: JsonRpcMessage): void {
    const text = JSON.stringify(message);
    queueMicrotask(() => this.#emit(message, text));
  }

  #emit(message: JsonRpcMessage, text: string): void {
    if (!this.#closed) this.onmessage?.(message, text);
  }

  /**
   * A member is left out: the gateway's view (MemberHealth: the log, the console, /metrics), and this session's own
   * recording, once per time it goes down here (a retry that fails again is not recorded again).
   */
  #memberDown(link: MemberLink, reason: string): void {
    this.#o.health.report(this.#o.server, link.connection, { up: false, reason }, this.#o.sessionId);
    if (this.#leftOut.has(link.connection)) return;
    this.#leftOut.add(link.connection);
    this.#recordMember(link, `member '${link.connection}' is unavailable and left out of the lists: ${reason}`);
  }

  /** A member's change of state, as a verdict of the virtual session (on no message: `sessions show` lists it in its place). */
  #recordMember(link: MemberLink, reason: string): void {
    this.onverdict?.({ stage: 'virtual', action: 'pass', reason, direction: 'toClient', details: { member: link.connection } });
  }

  // MemberEvents: what the member links report.

  routedAnswer(message: JsonRpcResponse, text: string): void {
    this.#emit(message, text);
  }

  notification(_link: MemberLink, message: JsonRpcNotification, text: string): void {
    if (isListChange(message.method)) {
      if (this.#answered) this.#changes.changed(message.method);
      return;
    }
    this.#emit(message, text);
  }

  serverRequest(link: MemberLink, message: JsonRpcRequest): void {
    if (message.method === 'ping') {
      const pong = { jsonrpc: '2.0' as const, id: message.id, result: {} };
      link.pass(pong, JSON.stringify(pong));
      return;
    }
    const out = this.#memberRequests.toClient(link, message);
    this.#emit(out, JSON.stringify(out));
  }

  serverCancelled(link: MemberLink, serverId: RequestId, message: JsonRpcNotification): void {
    const out = this.#memberRequests.cancelled(link, serverId, message);
    if (out !== undefined) this.#emit(out, JSON.stringify(out));
  }

  up(link: MemberLink): void {
    this.#o.health.report(this.#o.server, link.connection, { up: true }, this.#o.sessionId);
    if (this.#leftOut.delete(link.connection)) this.#recordMember(link, `member '${link.connection}' is up again and back in the lists`);
    // Back (or late): the client's lists lack it until it asks again.
    if (this.#answered) for (const method of changedLists) this.#changes.changed(method as ListChange);
  }

  down(link: MemberLink, reason: string, wasUp: boolean): void {
    // A member the caller may no longer open (its session ended with their just-in-time grant) is not down: it is no
    // longer part of their virtual server, and says nothing about the member's health.
    if (!this.#o.mayOpen(link.connection, this.#identity)) {
      link.permit(false);
      if (this.#answered && wasUp) for (const method of changedLists) this.#changes.changed(method as ListChange);
      return;
    }
    this.#memberDown(link, reason);
    // Its names leave the lists (a retry that fails again changes nothing the client saw).
    if (this.#answered && wasUp) for (const method of changedLists) this.#changes.changed(method as ListChange);
  }
}
