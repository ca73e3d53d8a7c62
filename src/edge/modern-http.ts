import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { ConnectionConfig } from '../config/schema.js';
import type { Identity } from '../core/identity.js';
import { envelopeClient, logLevelKey, metaOf, modernVersions } from '../protocol/envelope.js';
import { ErrorCode, type JsonRpcNotification, type JsonRpcRequest } from '../protocol/jsonrpc.js';
import type { ModernPool, PooledSession } from '../session/modern-pool.js';
import type { SessionOrigin } from '../session/registry.js';
import type { Caller } from './authenticate.js';
import { type HeldTable, ModernExchange, type RoundTable } from './modern-exchange.js';
import { serveListen } from './modern-listen.js';
import { replyRpcError } from './modern-reply.js';
import { openRefusal } from './open-refusal.js';
import { logRefusal, quotedElided, type RefusalPlace } from '../core/refusal-log.js';
import { checkParamHeaders, paramHeaders } from './param-headers.js';
import { checkStandardHeaders, type HeaderValue, type Refusal, unsupportedVersion } from './request-metadata.js';
import { principalOf, requestDigest, RequestStateError, type RequestStateSealer } from './request-state.js';
import type { KeepAlive } from './sse-writer.js';

/** The requests a 2026-07-28 client may make (schema.ts, ClientRequest). Anything else: 404 with -32601. */
export const modernMethods: ReadonlySet<string> = new Set([
  'server/discover',
  'tools/list',
  'tools/call',
  'resources/list',
  'resources/templates/list',
  'resources/read',
  'prompts/list',
  'prompts/get',
  'completion/complete',
  'subscriptions/listen',
]);

/**
 * What `server/discover` advertises: the upstream's capabilities as the modern edge serves them. Tasks are left out:
 * the modern edge answers no `tasks/*` request (404), so a client must not be told it could.
 */
export function modernCapabilities(capabilities: Record<string, unknown> | undefined): Record<string, unknown> {
  const { tasks: _notServed, ...served } = capabilities ?? {};
  return served;
}

/** Pages of tools/list read at most to learn an unlisted tool's definition. */
const maxListPages = 20;

export interface ModernHttpOptions {
  pool: ModernPool;
  keepAlive: KeepAlive;
  log: Logger;
  /** Cacheable results carry at most this ttlMs (sessions.maxResultTtl). */
  ttlCapMs: number;
  /** Whether a connection's results may differ by caller (then they are `cacheScope: private`). */
  variesByCaller: (connection: string) => boolean;
  /** Records a refused request: its text, why, and what it was answered with. */
  recordRefusal: (connection: ConnectionConfig, identity: Identity, origin: SessionOrigin, reason: string, text: string, answer: string) => Promise<void>;
  sealer: RequestStateSealer;
  /** How long an MRTR round waits for the client's retry (sessions.inputTimeout). */
  roundTtlMs: number;
  refuseEarly?: (identity: Identity, at: RefusalPlace) => { message: string; retryAfterSeconds: number } | undefined;
  /** Charges a refused request to the caller's request rate: past it the refusal is a 429, recorded not, logged once per burst. */
  admitRefused?: (identity: Identity, at: RefusalPlace) => { message: string; retryAfterSeconds: number } | undefined;
  /**
   * The approved (pinned) inputSchema of a tool, whose `x-mcp-header` declarations `Mcp-Param-*` headers are checked
   * against; undefined when the connection pins nothing. Without a pin, the definition last listed to a modern client is used.
   */
  pinnedInputSchema?: (connection: ConnectionConfig, tool: string) => Promise<unknown>;
  /**
   * Sends the retry of a round another replica holds to it (src/cluster/replicas.ts); `'gone'` when that replica is not
   * live, undefined when it is not to be forwarded (no peers, or the retry came over the hop). `unreachable` answers
   * when the owner cannot be reached.
   */
  forwardRound?: (
    owner: string,
    req: IncomingMessage,
    res: ServerResponse,
    caller: Caller,
    text: string,
    unreachable: () => void,
  ) => Promise<void> | 'gone' | undefined;
}

/**
 * The modern (MCP 2026-07-28) edge at `/mcp/<connection>`: one JSON-RPC request per POST, checked (version, the
 * metadata headers against the body), then served through a pooled internal session of the caller; the answer is
 * JSON, or SSE when something precedes it, or an MRTR round (`input_required`) when the server asks the client.
 */
export class ModernHttpEdge {
  readonly rounds: RoundTable = new Map();
  readonly held: HeldTable = new Map();
  /** Connection → tool → the inputSchema last listed to a modern client (for `Mcp-Param-*` when nothing is pinned). */
  readonly #listed = new Map<string, Map<string, unknown>>();
  /** The pooled sessions whose tools/list #learnTools has read. */
  readonly #learnedFrom = new WeakSet<PooledSession>();

  constructor(private readonly o: ModernHttpOptions) {}

  /** Serves a POST the era classifier found modern. `text` is its body as received. */
  async post(
    req: IncomingMessage,
    res: ServerResponse,
    connection: ConnectionConfig,
    caller: Caller,
    message: JsonRpcRequest | JsonRpcNotification,
    version: string | undefined,
    text: string,
    headers: Map<string, HeaderValue>,
  ): Promise<void> {
    const origin: SessionOrigin = {
      edge: 'modern',
      remoteAddress: caller.remoteAddress ?? req.socket.remoteAddress,
      access: caller.access,
      ...(caller.grant ? { grant: caller.grant } : {}),
    };
    const id = 'id' in message ? message.id : null;
    const refused = unsupportedVersion(version, id) ?? checkStandardHeaders(message, headers);
    if (refused !== undefined) return this.refuse(res, connection, caller.identity, origin, refused, text, message.method);
    if (id === null) {
      // No client notification means anything on a 2026-07-28 HTTP endpoint (cancellation is closing the stream).
      res.writeHead(202).end();
      return;
    }
    const request = message as JsonRpcRequest;
    if (!modernMethods.has(request.method))
      return this.refuse(
        res,
        connection,
        caller.identity,
        origin,
        { era: 'refused', status: 404, code: ErrorCode.MethodNotFound, message: `Method not found: ${request.method}`, id },
        text,
        request.method,
      );
    // `Mcp-Param-*` against the tool's trusted definition; a tool neither pinned nor listed yet is learned from the
    // upstream's tools/list (through the caller's pooled session, below) before anything is decided on the request.
    let paramCheck: Refusal | undefined | 'unlisted';
    if (request.method === 'tools/call') {
      paramCheck = await this.#checkParamHeaders(connection, request, headers);
      if (paramCheck !== undefined && paramCheck !== 'unlisted') return this.refuse(res, connection, caller.identity, origin, paramCheck, text, message.method);
    }
    const early = this.o.refuseEarly?.(caller.identity, { connection: connection.name, method: request.method });
    if (early !== undefined) {
      res.setHeader('retry-after', String(early.retryAfterSeconds));
      return replyRpcError(res, 429, id, ErrorCode.RateLimited, `Too Many Requests: ${early.message}`);
    }
    const requestState = request.params?.requestState;
    if (requestState !== undefined) return this.#retry(req, res, connection, caller, origin, request, requestState, text);

    // The identical request of the same principal, while the first is held for review, waits on that review.
    const heldKey = `${principalOf(caller.identity)}|${connection.name}|${requestDigest(request.method, request.params)}`;
    const held = this.held.get(heldKey);
    if (held !== undefined) {
      held.refreshIdentity(caller.identity);
      if (held.join(res, request)) return;
    }
    const client = envelopeClient(metaOf(request.params)!);
    let pooled: PooledSession;
    try {
      pooled = await this.o.pool.acquire(connection, caller.identity, origin, client);
    } catch (err) {
      const refusal = openRefusal(err);
      if (!refusal.logged) {
        const refused = { principal: caller.identity.subject, connection: connection.name, method: request.method, reason: refusal.message };
        logRefusal(
          this.o.log,
          refused,
          'pooled session could not open',
          { status: refusal.status, err: (err as Error).message },
          refusal.status >= 500 ? 'warn' : 'info',
        );
      }
      for (const [k, v] of Object.entries(refusal.headers)) res.setHeader(k, v);
      return replyRpcError(res, refusal.status, id, refusal.code, refusal.message);
    }
    // The client left while its session opened: its 'close' is past, so a stream started now would never be ended by it.
    if (res.destroyed) return;
    if (paramCheck === 'unlisted') {
      await this.#learnTools(pooled, connection.name);
      const checked = await this.#checkParamHeaders(connection, request, headers);
      // Still unknown (the caller is not shown it: policy refuses the call below, or the server hides it): a request that
      // carries Mcp-Param headers cannot have them checked, and is refused; one without has nothing to disagree with.
      if (checked === 'unlisted' && [...headers.keys()].some((h) => h.startsWith('mcp-param-'))) {
        const tool = String(request.params?.name).slice(0, 100);
        return this.refuse(
          res,
          connection,
          caller.identity,
          origin,
          {
            era: 'refused',
            status: 400,
            code: ErrorCode.InvalidParams,
            message: `Invalid params: the tool ${JSON.stringify(tool)} is not in the tools/list of connection '${connection.name}', so its Mcp-Param headers cannot be checked`,
            id,
          },
          text,
          request.method,
        );
      }
      if (checked !== undefined && checked !== 'unlisted') return this.refuse(res, connection, caller.identity, origin, checked, text, message.method);
      if (res.destroyed) return;
    }
    if (request.method === 'server/discover') return this.#discover(res, pooled, request, connection.name);
    if (request.method === 'subscriptions/listen')
      return serveListen(res, pooled, request, this.o.keepAlive, this.o.log.child({ connection: connection.name }));
    const exchange = new ModernExchange({
      pooled,
      request,
      connection: connection.name,
      principal: principalOf(caller.identity),
      variesByCaller: this.o.variesByCaller(connection.name),
      ttlCapMs: this.o.ttlCapMs,
      sealer: this.o.sealer,
      roundTtlMs: this.o.roundTtlMs,
      rounds: this.rounds,
      held: this.held,
      heldKey,
      keepAlive: this.o.keepAlive,
      log: this.o.log,
      logLevel: metaOf(request.params)?.[logLevelKey] as string | undefined,
      ...traceOf(request, req),
      ...(request.method === 'tools/list' ? { listed: (tools: unknown) => this.#remember(connection.name, tools) } : {}),
    });
    exchange.start(res);
  }

  /** The retry of a request with the `requestState` of an MRTR round: verified, then the round's server requests are answered. */
  async #retry(
    req: IncomingMessage,
    res: ServerResponse,
    connection: ConnectionConfig,
    caller: Caller,
    origin: SessionOrigin,
    request: JsonRpcRequest,
    state: unknown,
    text: string,
  ): Promise<void> {
    const refuse = (why: string) =>
      this.refuse(
        res,
        connection,
        identity,
        origin,
        { era: 'refused', status: 400, code: ErrorCode.InvalidParams, message: `Invalid params: ${why}`, id: request.id },
        text,
        request.method,
      );
    const identity = caller.identity;
    if (typeof state !== 'string' || state.length > 8192) return refuse('requestState must be the string the gateway returned');
    let claims: Awaited<ReturnType<RequestStateSealer['open']>>;
    try {
      claims = await this.o.sealer.open(state);
    } catch (err) {
      if (err instanceof RequestStateError) return refuse(err.message);
      throw err;
    }
    if (claims.principal !== principalOf(identity)) return refuse('the requestState was issued to another principal');
    if (claims.connection !== connection.name) return refuse('the requestState was issued for another connection');
    if (claims.digest !== requestDigest(request.method, request.params)) return refuse('the requestState was issued for another request');
    const unusable = () => refuse('the round of this requestState has already been answered or has expired');
    if (claims.instance !== this.o.sealer.instance) {
      // The round is held by the replica that opened it: the retry goes there; a replica that is gone took it along.
      const forwarded = this.o.forwardRound?.(claims.instance, req, res, caller, text, () => void unusable());
      if (forwarded === 'gone') return unusable();
      if (forwarded !== undefined) return forwarded;
      return refuse('the requestState was issued by another gateway instance');
    }
    const exchange = this.rounds.get(claims.round);
    if (exchange === undefined || !exchange.awaits(claims.n)) return unusable();
    exchange.refreshIdentity(identity);
    exchange.resume(res, request);
  }

  /**
   * `Mcp-Param-*` against the tool's trusted definition: the pinned one, else the one last listed to a modern client;
   * `unlisted` when there is neither (fail closed: the caller lists the tools, then checks again).
   */
  async #checkParamHeaders(
    connection: ConnectionConfig,
    request: JsonRpcRequest,
    headers: Map<string, HeaderValue>,
  ): Promise<Refusal | undefined | 'unlisted'> {
    const tool = request.params?.name;
    if (typeof tool !== 'string') return undefined;
    const pinned = await this.o.pinnedInputSchema?.(connection, tool);
    const listed = this.#listed.get(connection.name);
    if ((pinned === undefined || pinned === null) && !listed?.has(tool)) return 'unlisted';
    const schema = pinned ?? listed?.get(tool);
    const declared = schema === undefined || schema === null ? undefined : paramHeaders(schema);
    if (declared !== undefined && 'invalid' in declared)
      // Its headers cannot be checked, so it is not called: a 2026-07-28 client drops such a tool from tools/list.
      return {
        era: 'refused',
        status: 400,
        code: ErrorCode.InvalidParams,
        message: `Invalid params: the tool ${JSON.stringify(tool.slice(0, 100))} cannot be called over HTTP: its definition is invalid (${declared.invalid})`,
        id: request.id,
      };
    if (declared === undefined || declared.length === 0) return undefined;
    return checkParamHeaders(declared, request.params?.arguments, headers, request.id);
  }

  /**
   * Reads the tools/list the caller's pooled session gets (after its pipeline), every page, and remembers the
   * definitions. Once per pooled session: calls to a tool it does not list would otherwise each cost a whole listing
   * (a cheap request turned into a dear one); a list that changes later reaches #remember through the client's own
   * tools/list, which a 2026-07-28 client sends on list_changed.
   */
  async #learnTools(pooled: PooledSession, connection: string): Promise<void> {
    if (this.#learnedFrom.has(pooled)) return;
    this.#learnedFrom.add(pooled);
    let cursor: string | undefined;
    for (let page = 0; page < maxListPages; page++) {
      const r = await pooled.call('tools/list', cursor === undefined ? {} : { cursor });
      const result = r.result as { tools?: unknown; nextCursor?: unknown } | undefined;
      if (result === undefined) return;
      this.#remember(connection, result.tools);
      if (typeof result.nextCursor !== 'string' || result.nextCursor === '') return;
      cursor = result.nextCursor;
    }
  }

  #remember(connection: string, tools: unknown): void {
    if (!Array.isArray(tools)) return;
    const known = this.#listed.get(connection) ?? new Map<string, unknown>();
    for (const t of tools as Array<{ name?: unknown; inputSchema?: unknown }>) if (typeof t?.name === 'string') known.set(t.name, t.inputSchema);
    this.#listed.set(connection, known);
  }

  #discover(res: ServerResponse, pooled: PooledSession, request: JsonRpcRequest, connection: string): void {
    const facts = pooled.facts;
    const result: Record<string, unknown> = {
      resultType: 'complete',
      supportedVersions: [...modernVersions],
      capabilities: modernCapabilities(facts.capabilities),
      ...(facts.instructions !== undefined ? { instructions: facts.instructions } : {}),
      ...(facts.serverInfo !== undefined ? { _meta: { 'io.modelcontextprotocol/serverInfo': facts.serverInfo } } : {}),
      ttlMs: Math.min(this.o.ttlCapMs, 0),
      // The capabilities come from this caller's pooled session, after the stages that may filter them per caller.
      cacheScope: this.o.variesByCaller(connection) ? 'private' : 'public',
    };
    const body = JSON.stringify({ jsonrpc: '2.0', id: request.id, result });
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  }

  /** Answers a refused request and records it (its text and the answer) with the caller and the reason. */
  async refuse(
    res: ServerResponse,
    connection: ConnectionConfig,
    identity: Identity,
    origin: SessionOrigin,
    r: Refusal,
    text: string,
    method: string,
  ): Promise<void> {
    const over = this.o.admitRefused?.(identity, { connection: connection.name, method });
    if (over !== undefined) {
      res.setHeader('retry-after', String(over.retryAfterSeconds));
      return replyRpcError(res, 429, r.id, ErrorCode.RateLimited, `Too Many Requests: ${over.message}`);
    }
    const answer = JSON.stringify({ jsonrpc: '2.0', id: r.id, error: { code: r.code, message: r.message, ...(r.data === undefined ? {} : { data: r.data }) } });
    logRefusal(this.o.log, { principal: identity.subject, connection: connection.name, method, reason: quotedElided(r.message) }, 'modern request refused', {
      code: r.code,
    });
    await this.o.recordRefusal(connection, identity, origin, r.message, text, answer);
    replyRpcError(res, r.status, r.id, r.code, r.message, r.data);
  }
}

/** The client's W3C trace context: a 2026-07-28 request's `_meta.traceparent`, else the HTTP `traceparent` header. */
function traceOf(request: JsonRpcRequest, req: IncomingMessage): { traceparent?: string } {
  const meta = metaOf(request.params)?.traceparent;
  const traceparent = typeof meta === 'string' ? meta : req.headers.traceparent;
  return typeof traceparent === 'string' ? { traceparent } : {};
}
