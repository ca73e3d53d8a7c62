import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { ConnectionConfig } from '../config/schema.js';
import { type Identity, samePrincipal } from '../core/identity.js';
import { ErrorCode, idKey, InvalidMessageError, isRequest, parseBody, type JsonRpcMessage, type RequestId } from '../protocol/jsonrpc.js';
import { isSupportedProtocolVersion, supportedProtocolVersions } from '../protocol/versions.js';
import type { SessionRegistry } from '../session/registry.js';
import type { Session } from '../session/session.js';
import { BodyTooLargeError, readBody } from './body.js';
import type { Caller } from './authenticate.js';
import { HttpSessionStreams } from './http-streams.js';
import { hasMediaType, replyError } from './http-reply.js';
import { openRefusal } from './open-refusal.js';
import type { KeepAlive } from './sse-writer.js';
import { untrustedPrefix } from '../core/untrusted-text.js';
import { httpMethod, methodOf, quotedElided, type RefusalPlace, refusalsFor } from '../core/refusal-log.js';

export interface StreamableHttpOptions {
  registry: SessionRegistry;
  keepAlive: KeepAlive;
  maxMessageBytes: number;
  eventBufferSize: number;
  /** limits.clientBacklog: each stream keeps at most this much for resumption. */
  clientBacklogBytes?: number;
  log: Logger;
  /** A caller whose requests are refused before they reach their session (limits), and why. */
  refuseEarly?: (identity: Identity, at: RefusalPlace) => { message: string; retryAfterSeconds: number } | undefined;
}

/**
 * The Streamable HTTP edge (`/mcp/<connection>`): POST carries client messages and answers with JSON
 * or an SSE stream, GET opens the server's stream (or resumes any stream with Last-Event-ID), DELETE
 * ends the session. It turns HTTP into messages for a session and knows nothing of policy.
 */
export class StreamableHttpEdge {
  readonly #streams = new WeakMap<Session, HttpSessionStreams>();

  constructor(private readonly o: StreamableHttpOptions) {}

  /** Serves one request of `identity`, whom the HTTP server has authenticated and found allowed on the connection. */
  async handle(req: IncomingMessage, res: ServerResponse, connection: ConnectionConfig, caller: Caller, body?: string): Promise<void> {
    switch (req.method) {
      case 'POST':
        return this.#post(req, res, connection, caller, body);
      case 'GET':
      case 'DELETE':
        // Without a session there is no stream to open and nothing to end: a 2026-07-28 client (no sessions) is told
        // 405, as a v2 SDK server tells it; a 2025-era client never sends these before initialize.
        if (req.headers['mcp-session-id'] === undefined) {
          req.resume();
          refusalsFor(this.o.log, { principal: caller.identity.subject, connection: connection.name })(
            httpMethod(req),
            `${req.method} needs the Mcp-Session-Id of a 2025-era session`,
            'HTTP method not allowed without a session',
          );
          return replyError(res, 405, -32000, `Method not allowed: ${req.method} needs the Mcp-Session-Id of a 2025-era session`, null, {
            allow: 'GET, POST, DELETE',
          });
        }
        if (req.method === 'DELETE') return this.#delete(req, res, connection, caller.identity);
        return this.#get(req, res, connection, caller.identity);
      default:
        req.resume();
        refusalsFor(this.o.log, { principal: caller.identity.subject, connection: connection.name })(
          httpMethod(req),
          'the HTTP method is not allowed; use POST, GET or DELETE',
          'HTTP method not allowed',
        );
        return replyError(res, 405, ErrorCode.InvalidRequest, `Method ${req.method} is not allowed; use POST, GET or DELETE`, null, {
          allow: 'GET, POST, DELETE',
        });
    }
  }

  /**
   * The session a request names, or a reply saying why there is none. A session belongs to the identity that
   * opened it: another identity presenting its id is told it does not exist, exactly as for an unknown id.
   */
  #sessionFor(
    req: IncomingMessage,
    res: ServerResponse,
    connection: ConnectionConfig,
    identity: Identity,
    log: Logger,
    id: RequestId | null = null,
    messages: readonly JsonRpcMessage[] = [],
  ): Session | undefined {
    const header = req.headers['mcp-session-id'];
    const refused = refusalsFor(log, { principal: identity.subject, connection: connection.name });
    const method = methodOf(messages, req);
    if (typeof header !== 'string' || header.length === 0) {
      refused(method, 'Mcp-Session-Id header is required (send initialize first)', 'request without Mcp-Session-Id refused');
      replyError(res, 400, ErrorCode.InvalidRequest, 'Bad Request: Mcp-Session-Id header is required (send initialize first)', id);
      return undefined;
    }
    const session = this.o.registry.get(header);
    if (session !== undefined && !samePrincipal(session.identity, identity)) {
      log.warn({ session: untrustedPrefix(header), subject: identity.subject, owner: session.identity.subject }, 'session id presented by another identity');
    }
    if (session === undefined || !session.isOpen || session.connection !== connection.name || !samePrincipal(session.identity, identity)) {
      refused(method, 'session not found: it has ended or never existed', 'unknown session', { session: untrustedPrefix(header) });
      replyError(res, 404, ErrorCode.SessionNotFound, 'Session not found: it has ended or never existed; initialize a new session', id);
      return undefined;
    }
    const version = req.headers['mcp-protocol-version'];
    if (typeof version === 'string' && !isSupportedProtocolVersion(version)) {
      refused(method, 'unsupported MCP-Protocol-Version', 'unsupported protocol version header', { version: version.slice(0, 40) });
      replyError(
        res,
        400,
        ErrorCode.InvalidRequest,
        `Bad Request: unsupported MCP-Protocol-Version ${JSON.stringify(version.slice(0, 40))}; supported: ${supportedProtocolVersions.join(', ')}`,
        id,
      );
      return undefined;
    }
    session.refreshIdentity(identity);
    return session;
  }

  /** `body`: the body when the HTTP server has read it already (to tell the era of a POST without a session). */
  async #post(req: IncomingMessage, res: ServerResponse, connection: ConnectionConfig, caller: Caller, body?: string): Promise<void> {
    const log = this.o.log.child({ connection: connection.name });
    const refused = refusalsFor(log, { principal: caller.identity.subject, connection: connection.name });
    if (!hasMediaType(req.headers['content-type'], 'application/json')) {
      req.resume();
      refused(httpMethod(req), 'Content-Type must be application/json', 'POST with wrong content type', { contentType: req.headers['content-type'] });
      return replyError(res, 415, ErrorCode.InvalidRequest, 'Unsupported Media Type: Content-Type must be application/json');
    }
    const accept = req.headers.accept;
    if (!hasMediaType(accept, 'application/json') || !hasMediaType(accept, 'text/event-stream')) {
      req.resume();
      refused(httpMethod(req), 'Accept must include both application/json and text/event-stream', 'POST with unacceptable Accept', { accept });
      return replyError(res, 406, ErrorCode.InvalidRequest, 'Not Acceptable: Accept must include both application/json and text/event-stream');
    }
    let messages: JsonRpcMessage[];
    let texts: string[];
    let batch: boolean;
    try {
      ({ messages, texts, batch } = parseBody(body ?? (await readBody(req, this.o.maxMessageBytes))));
    } catch (err) {
      if (err instanceof BodyTooLargeError) {
        refused(httpMethod(req), err.message, 'message too large', { limit: err.limit }, 'warn');
        res.setHeader('connection', 'close');
        return replyError(res, 413, ErrorCode.MessageTooLarge, `Payload Too Large: ${err.message}`);
      }
      if (err instanceof InvalidMessageError) {
        refused(httpMethod(req), quotedElided(err.message), 'invalid JSON-RPC message');
        const prefix = err.code === ErrorCode.ParseError ? 'Parse error' : 'Invalid Request';
        return replyError(res, 400, err.code, `${prefix}: ${err.message}`, err.id);
      }
      refused(httpMethod(req), `the body could not be read: ${(err as Error).message}`, 'reading the request failed', {}, 'warn');
      return replyError(res, 400, ErrorCode.InvalidRequest, 'Bad Request: the body could not be read');
    }

    const initialize = messages.find((m) => isRequest(m) && m.method === 'initialize');
    let session: Session | undefined;
    if (initialize !== undefined) {
      if (messages.length > 1) {
        refused('initialize', 'initialize must be sent on its own, not in a batch', 'initialize inside a batch refused');
        return replyError(res, 400, ErrorCode.InvalidRequest, 'Invalid Request: initialize must be sent on its own, not in a batch');
      }
      session = await this.#createSession(req, res, connection, caller, log, initialize);
      if (session === undefined) return;
    } else {
      // An error reply carries the request's id whenever there is exactly one request to name.
      const only = !batch && messages.length === 1 && isRequest(messages[0]!) ? messages[0].id : null;
      session = this.#sessionFor(req, res, connection, caller.identity, log, only, messages);
      if (session === undefined) return;
    }
    const streams = this.#streams.get(session)!;
    const requests = messages.filter(isRequest);
    if (requests.length === 0) {
      messages.forEach((m, i) => session.receive(m, texts[i]!));
      res.writeHead(202, streams.headers).end();
      return;
    }
    const early = initialize === undefined ? this.o.refuseEarly?.(caller.identity, { connection: connection.name, method: requests[0]!.method }) : undefined;
    if (early !== undefined)
      return replyError(res, 429, ErrorCode.RateLimited, `Too Many Requests: ${early.message}`, batch ? null : requests[0]!.id, {
        'retry-after': String(early.retryAfterSeconds),
      });
    const seen = new Set<string>();
    const repeated = requests.find((r) => seen.size === seen.add(idKey(r.id)).size);
    if (repeated !== undefined) {
      refused(repeated.method, 'a request id appears twice in the batch', 'batch repeats a request id', { id: repeated.id });
      return replyError(
        res,
        400,
        ErrorCode.InvalidRequest,
        `Invalid Request: request id ${JSON.stringify(repeated.id)} appears twice in the batch`,
        repeated.id,
      );
    }
    const duplicate = requests.find((r) => streams.isPending(r.id));
    if (duplicate !== undefined) {
      refused(duplicate.method, 'the request id is already in flight on this session', 'request id already in flight', { id: duplicate.id });
      return replyError(
        res,
        409,
        ErrorCode.InvalidRequest,
        `Conflict: request id ${JSON.stringify(duplicate.id)} is already in flight on this session`,
        duplicate.id,
      );
    }
    streams.openPostStream(
      res,
      requests.map((r) => r.id),
      batch,
    );
    const traceparent = typeof req.headers.traceparent === 'string' ? req.headers.traceparent : undefined;
    messages.forEach((m, i) => session.receive(m, texts[i]!, traceparent));
  }

  async #createSession(
    req: IncomingMessage,
    res: ServerResponse,
    connection: ConnectionConfig,
    caller: Caller,
    log: Logger,
    initialize: JsonRpcMessage,
  ): Promise<Session | undefined> {
    const refused = refusalsFor(log, { principal: caller.identity.subject, connection: connection.name });
    let session: Session;
    try {
      session = await this.o.registry.create(connection, caller.identity, {
        edge: 'streamable-http',
        remoteAddress: caller.remoteAddress ?? req.socket.remoteAddress,
        access: caller.access,
        ...(caller.grant ? { grant: caller.grant } : {}),
      });
    } catch (err) {
      const refusal = openRefusal(err);
      if (!refusal.logged)
        refused(
          'initialize',
          refusal.message,
          'session could not open',
          { status: refusal.status, err: (err as Error).message },
          refusal.status >= 500 ? 'warn' : 'info',
        );
      replyError(res, refusal.status, refusal.code, refusal.message, isRequest(initialize) ? initialize.id : null, refusal.headers);
      return undefined;
    }
    const streams = new HttpSessionStreams(session.id, this.o.keepAlive, this.o.eventBufferSize, () => session.protocolVersion, this.o.clientBacklogBytes);
    this.#streams.set(session, streams);
    session.attach(streams);
    return session;
  }

  #get(req: IncomingMessage, res: ServerResponse, connection: ConnectionConfig, identity: Identity): void {
    const log = this.o.log.child({ connection: connection.name });
    if (!hasMediaType(req.headers.accept, 'text/event-stream')) {
      refusalsFor(log, { principal: identity.subject, connection: connection.name })(
        httpMethod(req),
        'Accept must include text/event-stream',
        'GET with unacceptable Accept',
        { accept: req.headers.accept },
      );
      return replyError(res, 406, ErrorCode.InvalidRequest, 'Not Acceptable: Accept must include text/event-stream');
    }
    const session = this.#sessionFor(req, res, connection, identity, log);
    if (session === undefined) return;
    session.lastActivity = Date.now();
    const lastEventId = req.headers['last-event-id'];
    const status = this.#streams.get(session)!.openGetStream(res, typeof lastEventId === 'string' ? lastEventId : undefined);
    if (status === 409) {
      replyError(res, 409, ErrorCode.InvalidRequest, 'Conflict: this session already has an open GET stream');
    }
  }

  async #delete(req: IncomingMessage, res: ServerResponse, connection: ConnectionConfig, identity: Identity): Promise<void> {
    const log = this.o.log.child({ connection: connection.name });
    const session = this.#sessionFor(req, res, connection, identity, log);
    if (session === undefined) return;
    const closed = session.close('client ended the session');
    // Answered once the end is recorded: a stdio server can take seconds to exit, and the client need not wait for it
    // (its place under the limits is held until it has).
    await Promise.race([closed, session.ended]);
    res.writeHead(200).end();
  }
}
