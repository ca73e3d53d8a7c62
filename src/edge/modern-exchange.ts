import { randomBytes } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { Identity } from '../core/identity.js';
import {
  errorResponse,
  ErrorCode,
  isNotification,
  isRequest,
  isResponse,
  type JsonRpcMessage,
  type JsonRpcRequest,
  type JsonRpcResponse,
} from '../protocol/jsonrpc.js';
import { xMcpHeaders } from '../protocol/x-mcp-header.js';
import type { ExchangeHandler, PooledSession } from '../session/modern-pool.js';
import { cacheableMethods, ModernReply } from './modern-reply.js';
import { requestDigest, type RequestStateSealer } from './request-state.js';
import type { KeepAlive } from './sse-writer.js';

/** Server requests a modern client answers through an MRTR round (basic/patterns/mrtr.mdx). */
const inputMethods: ReadonlySet<string> = new Set(['elicitation/create', 'sampling/createMessage', 'roots/list']);

const logSeverity = ['debug', 'info', 'notice', 'warning', 'error', 'critical', 'alert', 'emergency'];

/** The exchanges waiting for the retry of an MRTR round, by round id (the id sealed in the round's requestState). */
export type RoundTable = Map<string, ModernExchange>;

export interface ModernExchangeOptions {
  pooled: PooledSession;
  request: JsonRpcRequest;
  connection: string;
  principal: string;
  variesByCaller: boolean;
  ttlCapMs: number;
  sealer: RequestStateSealer;
  roundTtlMs: number;
  rounds: RoundTable;
  keepAlive: KeepAlive;
  log: Logger;
  /** The client's W3C trace context (its `_meta.traceparent`, else the HTTP header): what the exchange's trace continues. */
  traceparent?: string;
  /** The request's `_meta` log level: without one, no log notification is sent for it. */
  logLevel: string | undefined;
  /** Told the tools of a tools/list result as the client receives them. */
  listed?: (tools: unknown) => void;
  /** Held exchanges by (principal, connection, request): the identical request of the same principal attaches there. */
  held: HeldTable;
  /** The key of this exchange in `held`. */
  heldKey: string;
}

/** Held exchanges by principal, connection and request digest. */
export type HeldTable = Map<string, ModernExchange>;

/** A client waiting on a held call besides the first: its own HTTP response, id and progress token. */
interface Watcher {
  reply: ModernReply;
  clientId: JsonRpcRequest['id'];
  progressToken: unknown;
}

let roundSequence = 0;
/**
 * This process's part of every round id: the sequence restarts with the process, so without it a requestState kept
 * from before a restart under the same instance id would name a round of the new process.
 */
const roundBoot = randomBytes(9).toString('base64url');

/** Invalid tool definitions already warned about. */
const warnedTools = new Set<string>();

function metaProgressToken(request: JsonRpcRequest): unknown {
  const meta = request.params?._meta as { progressToken?: unknown } | undefined;
  return meta?.progressToken;
}

/**
 * One modern request served through a pooled session, over one or more HTTP responses: the first POST, then one
 * retry per MRTR round. The upstream request stays pending across the rounds; the server's requests made for it
 * are collected into `inputRequests` and answered with the retry's `inputResponses`.
 */
export class ModernExchange implements ExchangeHandler {
  #reply: ModernReply | undefined;
  #clientId: JsonRpcRequest['id'];
  #gatewayId = '';
  #filtered = false;
  #ended = false;
  /** Server requests made for this request that no round has carried yet. */
  readonly #queued: JsonRpcRequest[] = [];
  /** The open round: its id, number, the server requests it carries by key, and its expiry. */
  #round: { id: string; n: number; asked: Map<string, JsonRpcRequest>; timer: NodeJS.Timeout } | undefined;
  /** The call's answer, come while its client was away answering a round: the round's retry gets it. */
  #settled: JsonRpcResponse | undefined;
  #n = 0;
  /** A round's state is being sealed: the server's requests meanwhile join that round. */
  #opening = false;
  /** A stage holds the request (a review): the stream shows life, and the same request re-sent attaches here. */
  #held = false;
  readonly #watchers: Watcher[] = [];
  /** While held and no client is attached: when the call is given up. */
  #orphaned: NodeJS.Timeout | undefined;

  constructor(private readonly o: ModernExchangeOptions) {
    this.#clientId = o.request.id;
    this.#progressToken = metaProgressToken(o.request);
  }

  /** Sends the request upstream and answers on `res`. */
  start(res: ServerResponse): void {
    this.#attach(res);
    const { id: _id, jsonrpc: _j, method, params } = this.o.request;
    this.#gatewayId = this.o.pooled.submit(method, params, this, this.o.traceparent);
  }

  #attach(res: ServerResponse): void {
    const reply = new ModernReply(res, this.o.keepAlive);
    this.#reply = reply;
    res.on('close', () => {
      if (reply.done || this.#ended || this.#reply !== reply) return;
      if (this.#held) return this.#detach();
      // Closing the response before its end is the client's cancellation (basic/transports, "Cancellation").
      this.#end();
      this.o.pooled.cancel(this.#gatewayId, 'the client closed its request stream');
    });
  }

  /**
   * The same principal sent the identical request while this one is held: it waits on the same review (no second
   * one), on its own response, and gets the same result under its own id.
   */
  join(res: ServerResponse, request: JsonRpcRequest): boolean {
    // Past its review and waiting on an MRTR round: the round is its first client's to answer, this is a new call.
    if (this.#round !== undefined) return false;
    if (this.#reply === undefined) {
      clearTimeout(this.#orphaned);
      this.#orphaned = undefined;
      this.#clientId = request.id;
      this.#progressToken = metaProgressToken(request);
      this.#attach(res);
      this.#reply!.stream();
      if (this.#queued.length > 0 && !this.#opening) void this.#openRound();
      return true;
    }
    const watcher: Watcher = { reply: new ModernReply(res, this.o.keepAlive), clientId: request.id, progressToken: metaProgressToken(request) };
    this.#watchers.push(watcher);
    watcher.reply.stream();
    res.on('close', () => {
      const at = this.#watchers.indexOf(watcher);
      if (at >= 0 && !watcher.reply.done) this.#watchers.splice(at, 1);
    });
    return true;
  }

  /** The first client of a held call went away: another one waiting takes its place, else the call waits for one to come back. */
  #detach(): void {
    const next = this.#watchers.shift();
    if (next !== undefined) {
      this.#reply = next.reply;
      this.#clientId = next.clientId;
      this.#progressToken = next.progressToken;
      return;
    }
    this.#reply = undefined;
    this.#orphaned = setTimeout(() => {
      if (this.#reply !== undefined || this.#ended) return;
      this.#end();
      this.o.pooled.cancel(this.#gatewayId, 'no client came back for the held call');
    }, this.o.roundTtlMs);
    this.#orphaned.unref();
  }

  /** The progress token of the client now attached (the first request's, unless another took its place). */
  #progressToken: unknown;

  // ExchangeHandler

  message(message: JsonRpcMessage, text: string): void {
    if (isResponse(message)) return this.#finish(message);
    if (isRequest(message)) {
      if (!inputMethods.has(message.method)) {
        this.o.pooled.answerServer(
          message.method === 'ping'
            ? { jsonrpc: '2.0', id: message.id, result: {} }
            : errorResponse(message.id, ErrorCode.MethodNotFound, `a 2026-07-28 client cannot be asked ${message.method}`),
        );
        return;
      }
      this.#queued.push(message);
      if (this.#reply !== undefined && this.#round === undefined && !this.#opening) void this.#openRound();
      return;
    }
    if (!isNotification(message) || this.#reply === undefined) return;
    if (message.method === 'notifications/progress') {
      const rewrite = (token: unknown) => JSON.stringify({ ...message, params: { ...message.params, progressToken: token } });
      if (this.#progressToken === message.params?.progressToken) this.#reply.event(text);
      else if (this.#progressToken !== undefined) this.#reply.event(rewrite(this.#progressToken));
      // Each client waiting on a held call hears of it under its own progress token.
      for (const w of this.#watchers) if (w.progressToken !== undefined) w.reply.event(rewrite(w.progressToken));
      return;
    }
    if (message.method === 'notifications/message' && this.#wantsLog(message.params?.level)) this.#reply.event(text);
  }

  hold(): void {
    this.#held = true;
    this.o.held.set(this.o.heldKey, this);
    this.#reply?.stream();
  }

  abandoned(): void {
    if (this.#ended) return;
    this.#reply?.end(errorResponse(this.#clientId, ErrorCode.InternalError, 'the request was cancelled'));
    this.#end('the request was cancelled');
  }

  filtered(): void {
    this.#filtered = true;
  }

  /** The caller's identity as its latest request's token says (a retry, a join): access is decided on it from now. */
  refreshIdentity(identity: Identity): void {
    this.o.pooled.session.refreshIdentity(identity);
  }

  // MRTR

  /** Whether this exchange waits for the retry of round `n`. */
  awaits(n: number): boolean {
    return !this.#ended && this.#round !== undefined && this.#round.n === n && this.#reply === undefined;
  }

  /** The client's retry of the open round: its inputResponses answer the server's requests; `res` carries what comes next. */
  resume(res: ServerResponse, retry: JsonRpcRequest): void {
    const round = this.#round!;
    clearTimeout(round.timer);
    this.o.rounds.delete(round.id);
    this.#round = undefined;
    this.#clientId = retry.id;
    this.#attach(res);
    if (this.#settled !== undefined) return this.#finish(this.#settled);
    const responses = (retry.params?.inputResponses ?? {}) as Record<string, unknown>;
    for (const [key, asked] of round.asked) {
      const answer = responses[key];
      this.o.pooled.answerServer(
        answer !== null && typeof answer === 'object' && !Array.isArray(answer)
          ? { jsonrpc: '2.0', id: asked.id, result: answer as Record<string, unknown> }
          : errorResponse(asked.id, ErrorCode.InvalidRequest, `the client did not answer input request ${key}`),
      );
    }
    if (this.#queued.length > 0) void this.#openRound();
  }

  /**
   * Ends the current HTTP response with an input_required result carrying the server's requests. The state is sealed
   * first, with the response still attached: what arrives meanwhile (the call's result, a server that gave up asking)
   * is delivered on it, and then no round is opened.
   */
  async #openRound(): Promise<void> {
    this.#opening = true;
    const n = ++this.#n;
    const id = `${this.o.sealer.instance}.${roundBoot}.${++roundSequence}`;
    const requestState = await this.o.sealer.seal({
      principal: this.o.principal,
      connection: this.o.connection,
      digest: requestDigest(this.o.request.method, this.o.request.params),
      instance: this.o.sealer.instance,
      round: id,
      n,
    });
    this.#opening = false;
    const reply = this.#reply;
    if (this.#ended || reply === undefined) return;
    this.#reply = undefined;
    const asked = new Map<string, JsonRpcRequest>();
    const inputRequests: Record<string, unknown> = {};
    for (const request of this.#queued.splice(0)) {
      const key = `r${n}-${asked.size + 1}`;
      asked.set(key, request);
      inputRequests[key] = { method: request.method, ...(request.params === undefined ? {} : { params: request.params }) };
    }
    const timer = setTimeout(() => this.#expire(id), this.o.roundTtlMs);
    timer.unref();
    this.#round = { id, n, asked, timer };
    this.o.rounds.set(id, this);
    reply.end({ jsonrpc: '2.0', id: this.#clientId, result: { resultType: 'input_required', inputRequests, requestState } });
  }

  /** Nobody came back for the round: the server's requests get an error and the request is cancelled upstream. */
  #expire(roundId: string): void {
    const round = this.#round;
    if (round === undefined || round.id !== roundId) return;
    this.o.log.info({ connection: this.o.connection, round: roundId }, 'MRTR round expired unanswered; cancelling the request upstream');
    this.#end('the client did not answer in time (MRTR round expired)');
    this.o.pooled.cancel(this.#gatewayId, 'the client did not answer the input requests in time');
  }

  /**
   * The exchange is over. What the server still asks of the client (an open round, requests no round carried yet)
   * is answered with an error: left pending, it would keep the pooled session from ever being reaped.
   */
  #end(why = 'the client request ended before this was answered'): void {
    this.#ended = true;
    clearTimeout(this.#orphaned);
    if (this.o.held.get(this.o.heldKey) === this) this.o.held.delete(this.o.heldKey);
    const unanswered = this.#queued.splice(0);
    if (this.#round !== undefined) {
      clearTimeout(this.#round.timer);
      this.o.rounds.delete(this.#round.id);
      unanswered.unshift(...this.#round.asked.values());
      this.#round = undefined;
    }
    for (const asked of unanswered) this.o.pooled.answerServer(errorResponse(asked.id, ErrorCode.InternalError, why));
    // Clients still waiting on a held call that ends without a result (its round expired, it was cancelled) are told so.
    for (const w of this.#watchers.splice(0)) w.reply.end(errorResponse(w.clientId, ErrorCode.InternalError, why));
  }

  #finish(response: JsonRpcResponse): void {
    this.o.pooled.finish(this.#gatewayId);
    if (this.#ended) return;
    const reply = this.#reply;
    if (reply === undefined && this.#round !== undefined && this.#watchers.length === 0) {
      // The server is done asking: what it asked is answered, and the answer waits for the round's retry (or expiry).
      const unanswered = [...this.#round.asked.values(), ...this.#queued.splice(0)];
      this.#round.asked.clear();
      for (const asked of unanswered) this.o.pooled.answerServer(errorResponse(asked.id, ErrorCode.InternalError, 'the call ended first'));
      this.#settled = response;
      return;
    }
    const watchers = this.#watchers.splice(0);
    this.#end();
    if (response.result !== undefined) {
      this.o.listed?.(response.result.tools);
      if (this.o.request.method === 'tools/list' && Array.isArray(response.result.tools))
        response = { ...response, result: { ...response.result, tools: this.#callableTools(response.result.tools) } };
    }
    const answer = (id: JsonRpcRequest['id']): JsonRpcResponse =>
      response.error !== undefined ? { jsonrpc: '2.0', id, error: response.error } : { jsonrpc: '2.0', id, result: this.#frame(response.result ?? {}) };
    reply?.end(answer(this.#clientId));
    for (const w of watchers) w.reply.end(answer(w.clientId));
  }

  /**
   * The tools a 2026-07-28 client may be shown: one whose `x-mcp-header` declarations are invalid is left out, with a
   * warning, as the spec has clients do (its calls are refused at the edge: its headers cannot be checked).
   */
  #callableTools(tools: unknown[]): unknown[] {
    return tools.filter((t) => {
      const tool = t as { name?: unknown; inputSchema?: unknown } | null;
      const declared = xMcpHeaders(tool?.inputSchema);
      if (!('invalid' in declared)) return true;
      const name = typeof tool?.name === 'string' ? tool.name.slice(0, 100) : '?';
      // Once per connection, tool and reason: every modern tools/list would repeat it.
      const key = `${this.o.connection}\0${name}\0${declared.invalid}`;
      if (warnedTools.has(key)) return false;
      if (warnedTools.size < 1000) warnedTools.add(key);
      this.o.log.warn(
        { connection: this.o.connection, tool: name, reason: declared.invalid },
        'tool left out of tools/list: its x-mcp-header declaration is invalid',
      );
      return false;
    });
  }

  /** A complete result as a 2026-07-28 client reads it: resultType, and for cacheable results ttlMs (capped) and cacheScope. */
  #frame(result: Record<string, unknown>): Record<string, unknown> {
    const framed: Record<string, unknown> = { ...result };
    if (framed.resultType === undefined) framed.resultType = 'complete';
    const method = this.o.request.method;
    if (!cacheableMethods.has(method) || framed.resultType !== 'complete') return framed;
    const ttl = typeof result.ttlMs === 'number' && result.ttlMs >= 0 ? result.ttlMs : 0;
    framed.ttlMs = Math.min(ttl, this.o.ttlCapMs);
    const stated = result.cacheScope === 'public' || result.cacheScope === 'private' ? result.cacheScope : undefined;
    framed.cacheScope = this.#filtered || this.o.variesByCaller ? 'private' : (stated ?? (method === 'resources/read' ? 'private' : 'public'));
    return framed;
  }

  #wantsLog(level: unknown): boolean {
    if (this.o.logLevel === undefined) return false;
    const at = logSeverity.indexOf(typeof level === 'string' ? level : '');
    return at >= logSeverity.indexOf(this.o.logLevel);
  }
}
