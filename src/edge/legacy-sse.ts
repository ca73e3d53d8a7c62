import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { ConnectionConfig } from '../config/schema.js';
import { type Identity, samePrincipal } from '../core/identity.js';
import { ErrorCode, InvalidMessageError, isRequest, parseBody, type JsonRpcMessage } from '../protocol/jsonrpc.js';
import type { SessionRegistry } from '../session/registry.js';
import type { ClientSink } from '../exchange/sink.js';
import type { Caller } from './authenticate.js';
import { BodyTooLargeError, readBody } from './body.js';
import { hasMediaType, replyError } from './http-reply.js';
import { openRefusal } from './open-refusal.js';
import { httpMethod, methodOf, quotedElided, type RefusalPlace, refusalsFor } from '../core/refusal-log.js';
import { type KeepAlive, sseFrame, sseHeaders } from './sse-writer.js';

export interface LegacySseOptions {
  registry: SessionRegistry;
  keepAlive: KeepAlive;
  maxMessageBytes: number;
  log: Logger;
  /** A caller whose requests are refused before they reach their session (limits), and why. */
  refuseEarly?: (identity: Identity, at: RefusalPlace) => { message: string; retryAfterSeconds: number } | undefined;
}

/** The one SSE stream of a legacy session: every message to the client goes on it. */
class SseStreamSink implements ClientSink {
  constructor(
    private readonly res: ServerResponse,
    private readonly keepAlive: KeepAlive,
  ) {}

  get connected(): boolean {
    return !this.res.writableEnded && !this.res.destroyed;
  }

  get backlog(): number {
    return this.connected ? this.res.writableLength : 0;
  }

  send(_message: JsonRpcMessage, _related: unknown, text: string): void {
    if (this.connected) this.res.write(sseFrame(text));
  }

  abandon(): void {}

  close(): void {
    this.keepAlive.delete(this.res);
    if (!this.res.writableEnded) this.res.end();
  }
}

/**
 * The legacy HTTP+SSE edge (protocol 2024-11-05) for older clients: GET `/sse/<connection>` opens the
 * session and its stream, whose first event names the URL to POST messages to.
 */
export class LegacySseEdge {
  constructor(private readonly o: LegacySseOptions) {}

  async open(req: IncomingMessage, res: ServerResponse, connection: ConnectionConfig, caller: Caller): Promise<void> {
    const log = this.o.log.child({ connection: connection.name, edge: 'sse' });
    const refused = refusalsFor(log, { principal: caller.identity.subject, connection: connection.name });
    if (req.method !== 'GET') {
      req.resume();
      refused(httpMethod(req), 'open the stream with GET', 'HTTP method not allowed');
      return replyError(res, 405, ErrorCode.InvalidRequest, 'Method not allowed: open the stream with GET', null, { allow: 'GET' });
    }
    if (!hasMediaType(req.headers.accept, 'text/event-stream')) {
      refused(httpMethod(req), 'Accept must include text/event-stream', 'GET with unacceptable Accept', { accept: req.headers.accept });
      return replyError(res, 406, ErrorCode.InvalidRequest, 'Not Acceptable: Accept must include text/event-stream');
    }
    let session;
    try {
      session = await this.o.registry.create(connection, caller.identity, {
        edge: 'sse',
        remoteAddress: caller.remoteAddress ?? req.socket.remoteAddress,
        access: caller.access,
        ...(caller.grant ? { grant: caller.grant } : {}),
      });
    } catch (err) {
      const refusal = openRefusal(err);
      if (!refusal.logged)
        refused(
          httpMethod(req),
          refusal.message,
          'session could not open',
          { status: refusal.status, err: (err as Error).message },
          refusal.status >= 500 ? 'warn' : 'info',
        );
      return replyError(res, refusal.status, refusal.code, refusal.message, null, refusal.headers);
    }
    res.writeHead(200, sseHeaders);
    const sink = new SseStreamSink(res, this.o.keepAlive);
    session.attach(sink);
    this.o.keepAlive.add(res);
    res.write(sseFrame(`/sse/${connection.name}/messages?sessionId=${session.id}`, undefined, 'endpoint'));
    res.on('close', () => void session.close('client closed the SSE stream'));
  }

  /** A message for a session; only the identity that opened the session may post to it. */
  /** `body`: the body when it has been read already (a request that came over the internal hop). */
  async post(
    req: IncomingMessage,
    res: ServerResponse,
    connection: ConnectionConfig,
    sessionId: string | null,
    identity: Identity,
    body?: string,
  ): Promise<void> {
    const log = this.o.log.child({ connection: connection.name, edge: 'sse' });
    const refused = refusalsFor(log, { principal: identity.subject, connection: connection.name });
    if (req.method !== 'POST') {
      req.resume();
      refused(httpMethod(req), 'send messages with POST', 'HTTP method not allowed');
      return replyError(res, 405, ErrorCode.InvalidRequest, 'Method not allowed: send messages with POST', null, { allow: 'POST' });
    }
    const session = sessionId === null ? undefined : this.o.registry.get(sessionId);
    if (session === undefined || !session.isOpen || session.connection !== connection.name || !samePrincipal(session.identity, identity)) {
      req.resume();
      refused(httpMethod(req), 'session not found: it has ended or never existed', 'unknown legacy session', { owner: session?.identity.subject });
      return replyError(res, 404, ErrorCode.SessionNotFound, 'Session not found: open a new stream with GET /sse/' + connection.name);
    }
    session.refreshIdentity(identity);
    if (!hasMediaType(req.headers['content-type'], 'application/json')) {
      req.resume();
      refused(httpMethod(req), 'Content-Type must be application/json', 'POST with wrong content type', { contentType: req.headers['content-type'] });
      return replyError(res, 415, ErrorCode.InvalidRequest, 'Unsupported Media Type: Content-Type must be application/json');
    }
    let messages: JsonRpcMessage[];
    let texts: string[];
    try {
      ({ messages, texts } = parseBody(body ?? (await readBody(req, this.o.maxMessageBytes))));
    } catch (err) {
      if (err instanceof BodyTooLargeError) {
        refused(httpMethod(req), err.message, 'message too large', { limit: err.limit }, 'warn');
        return replyError(res, 413, ErrorCode.MessageTooLarge, `Payload Too Large: ${err.message}`);
      }
      const code = err instanceof InvalidMessageError ? err.code : ErrorCode.InvalidRequest;
      refused(httpMethod(req), quotedElided((err as Error).message), 'invalid JSON-RPC message');
      return replyError(res, 400, code, `Invalid message: ${(err as Error).message}`, err instanceof InvalidMessageError ? err.id : null);
    }
    const early = messages.some(isRequest) ? this.o.refuseEarly?.(identity, { connection: connection.name, method: methodOf(messages, req) }) : undefined;
    if (early !== undefined)
      return replyError(res, 429, ErrorCode.RateLimited, `Too Many Requests: ${early.message}`, null, { 'retry-after': String(early.retryAfterSeconds) });
    res.writeHead(202, { 'content-type': 'text/plain' }).end('Accepted');
    const traceparent = typeof req.headers.traceparent === 'string' ? req.headers.traceparent : undefined;
    messages.forEach((m, i) => session.receive(m, texts[i]!, traceparent));
  }
}
