import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { ErrorCode } from '../protocol/jsonrpc.js';
import type { ConnectionConfig } from '../config/schema.js';
import type { ConnectionAccess } from '../identity/access-policy.js';
import { AuthError, TooManyAttemptsError } from '../identity/auth-error.js';
import { untrustedPath, untrustedPrefix } from '../core/untrusted-text.js';
import { httpMethod, logRefusal, quotedElided, type RefusalPlace, unauthenticatedPrincipal } from '../core/refusal-log.js';
import type { Identity } from '../core/identity.js';
import type { AccessRequestRow } from '../store/access-types.js';
import { type Authenticated, bearerChallenge, type Caller, metadataUrl } from '../edge/authenticate.js';
import { replyError } from '../edge/http-reply.js';
import type { LegacySseEdge } from '../edge/legacy-sse.js';
import { checkHostAndOrigin } from '../edge/origin.js';
import type { StreamableHttpEdge } from '../edge/streamable-http.js';
import { BodyTooLargeError, readBody } from '../edge/body.js';
import { eraOfBody, mayBeModern } from '../edge/era.js';
import type { ModernHttpEdge } from '../edge/modern-http.js';
import { replyRpcError } from '../edge/modern-reply.js';
import { capConnections, type ConnectionLimits, timeoutOptions } from '../edge/connection-guard.js';
import { type ControlPlaneOptions, controlPlane, decodeName } from './control-plane.js';
import { type HopRefusal, hopRefusedHeader, keepSigned } from '../cluster/hop-auth.js';
import { hopPrefix, markHopped } from '../cluster/hop.js';
import { relayPrefix } from '../agent/relay.js';
import type { Replicas } from '../cluster/replicas.js';
import { replicaForwarding } from './replica-forwarding.js';

/** The control plane's options (control-plane.ts), and what the MCP data path needs besides. */
export interface HttpServerOptions extends ControlPlaneOptions {
  streamableHttp: StreamableHttpEdge;
  /** The MCP 2026-07-28 edge at the same /mcp/<name> URL; absent: every request goes to the legacy edge. */
  modernHttp?: ModernHttpEdge;
  /** limits.maxMessageSize: a POST read to tell its era is refused past it. */
  maxMessageBytes: number;
  legacySse: LegacySseEdge;
  /** Who may use each connection. */
  access: (connection: string) => ConnectionAccess;
  /** Just-in-time grants, consulted when no group admits a caller; and their API. Absent when recording is off. */
  grants?: { grantFor(identity: Identity, connection: string): AccessRequestRow | undefined };
  /** Charges a refused attempt to the caller's request rate; past it a 403 is answered but no longer recorded. */
  admitRefused?: (identity: Identity, at: RefusalPlace) => unknown;
  /** Timeouts for receiving requests, and the cap on open connections (slowloris). */
  connections: ConnectionLimits;
  /** Session ownership and the internal hop between replicas (src/cluster); absent: hops are refused. */
  replicas?: Replicas;
  /** Shutting down past the drain delay: MCP requests and agent tunnels are refused (503). */
  closing: () => boolean;
}

/** Who a refused unauthenticated request is recorded as. */
const unauthenticated: Identity = { subject: '(unauthenticated)', issuer: '(none)', groups: [] };

const connectionPath = /^\/(mcp|sse)\/([^/]+)(\/messages)?\/?$/;

/**
 * The gateway's one HTTP port. The MCP data path (/mcp/<name>, /sse/<name>, the /agent upgrade) is dispatched here,
 * on node:http directly, so that it pays nothing for a router; every other path goes to the control plane
 * (control-plane.ts: health, metadata, metrics, the API and the console).
 */
export function createHttpServer(o: HttpServerOptions): Server {
  const control = controlPlane(o);
  const server = createServer(timeoutOptions(o.connections), (req, res) => {
    // Not ready, still serving (the drain delay): each connection closes after its response, so none is idle when the
    // port closes. Past it, a connection busy at the close stays open to be told 503 and Retry-After for what it sends.
    if (o.ready() === 'draining' && !o.closing()) res.shouldKeepAlive = false;
    const url = new URL(req.url ?? '/', 'http://gateway');
    if (url.pathname.startsWith(`${hopPrefix}/`)) {
      hop(req, res, url).catch((err: unknown) => {
        o.log.error({ err: (err as Error).stack ?? String(err), path: untrustedPath(url.pathname) }, 'hop request failed');
        if (!res.headersSent) replyError(res, 500, ErrorCode.InternalError, 'Internal error in the gateway');
        else res.end();
      });
      return;
    }
    const m = connectionPath.exec(url.pathname);
    if (m === null) {
      void control(req, res);
      return;
    }
    mcp(req, res, url, m).catch((err: unknown) => {
      o.log.error({ err: (err as Error).stack ?? String(err), path: untrustedPath(url.pathname) }, 'request failed');
      if (!res.headersSent) replyError(res, 500, ErrorCode.InternalError, 'Internal error in the gateway');
      else res.end();
    });
  });

  /**
   * A request forwarded by another replica (src/cluster/hop.ts): served as if it came to /mcp/<connection> directly,
   * by the caller the hop carries, once its signature under cluster.secret checks out. Anything else is refused here,
   * before any edge sees it: nothing is recorded of it, and the identity it claims is never looked at.
   */
  async function hop(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const inner = url.pathname.slice(hopPrefix.length);
    const m = connectionPath.exec(inner);
    // Only what is forwarded: the MCP endpoint, and the message POSTs of a legacy SSE session (its stream never moves).
    if (m === null || (m[1] === 'mcp') === (m[3] !== undefined)) {
      req.resume();
      return replyError(res, 404, ErrorCode.InvalidRequest, 'Not found');
    }
    if (o.replicas?.hopAuth === undefined) {
      req.resume();
      const reason = 'cluster.secret is not set on this gateway';
      const refusal = { principal: unauthenticatedPrincipal, connection: untrustedPrefix(m[2]!), method: httpMethod(req), reason };
      logRefusal(o.log, refusal, 'internal hop refused', { remote: req.socket.remoteAddress }, 'warn');
      return replyError(res, 403, ErrorCode.Unauthorized, 'Forbidden: this gateway takes no internal hop', null, { [hopRefusedHeader]: 'no-secret' });
    }
    const target = inner + url.search;
    // The sender learns why (hop-refusal.ts): not for this replica (its owner is gone) or not authenticated.
    const refuse = ({ refused: reason, code }: HopRefusal) => {
      req.resume();
      const refusal = { principal: unauthenticatedPrincipal, connection: untrustedPrefix(m[2]!), method: httpMethod(req), reason };
      logRefusal(o.log, refusal, 'internal hop refused', { remote: req.socket.remoteAddress }, 'warn');
      replyError(res, 401, ErrorCode.Unauthorized, `Unauthorized: internal hop refused (${code})`, null, { [hopRefusedHeader]: code });
    };
    const early = o.replicas.hopAuth.precheck(req.headers);
    if (early !== undefined) return refuse(early);
    let body = '';
    if (req.method === 'POST') {
      const read = await readWhole(req, res);
      if (read === undefined) return;
      body = read;
    }
    const verdict = o.replicas.hopAuth.verify(req.method ?? 'GET', target, req.headers, body);
    if ('refused' in verdict) return refuse(verdict);
    keepSigned(req, verdict.signed);
    // Taken: the sender's head timeout (cluster.hopHeadTimeout) ends here, however long the answer itself then takes.
    res.writeProcessing();
    markHopped(req);
    return mcp(req, res, new URL(target, 'http://gateway'), m, verdict.caller, req.method === 'POST' ? body : undefined);
  }

  /**
   * A request to an MCP endpoint: /mcp/<connection>, /sse/<connection>, /sse/<connection>/messages. `hopCaller`: the
   * request came over the internal hop, whose sender checked the Host and Origin and authenticated the caller; its
   * body, already read to check the hop's signature, is `hopBody`.
   */
  async function mcp(req: IncomingMessage, res: ServerResponse, url: URL, m: RegExpExecArray, hopCaller?: Caller, hopBody?: string): Promise<void> {
    const refusal = hopCaller === undefined ? checkHostAndOrigin(req, o.hostPolicy) : undefined;
    if (refusal !== undefined) {
      req.resume();
      const refused = { principal: unauthenticatedPrincipal, connection: untrustedPrefix(m[2]!), method: httpMethod(req), reason: refusal };
      logRefusal(o.log, refused, 'foreign host or origin refused', { host: req.headers.host, origin: req.headers.origin }, 'warn');
      return replyError(res, 403, ErrorCode.InvalidRequest, `Forbidden: ${refusal}`);
    }
    if (o.closing()) {
      req.resume();
      return shuttingDown(req, res);
    }
    const [, edge, rawName, messages] = m;
    const connection = findConnection(req, res, rawName!);
    if (connection === undefined) return;
    // An attempt to open a session: the legacy SSE stream, or a POST without a session (initialize).
    const opening = edge === 'sse' ? !messages : req.method === 'POST' && req.headers['mcp-session-id'] === undefined;
    const caller = hopCaller ?? (await authenticate(req, res, url, edge as 'mcp' | 'sse', connection, opening));
    if (caller === undefined) return;
    if (edge === 'mcp') {
      if (messages) return replyError(res, 404, ErrorCode.InvalidRequest, 'Not found');
      const forwarded = forwardSession(req, res, url, connection.name, caller, req.headers['mcp-session-id']);
      if (forwarded !== undefined) return forwarded;
      if (o.modernHttp === undefined || !mayBeModern(req)) {
        if (opening && draining()) return openElsewhere(req, res, url, connection.name, caller, hopBody);
        return o.streamableHttp.handle(req, res, connection, caller, hopBody);
      }
      return byEra(req, res, url, connection, caller, o.modernHttp, hopBody);
    }
    if (messages) {
      const forwarded = forwardSession(req, res, url, connection.name, caller, url.searchParams.get('sessionId'));
      if (forwarded !== undefined) return forwarded;
      return o.legacySse.post(req, res, connection, url.searchParams.get('sessionId'), caller.identity, hopBody);
    }
    if (draining()) {
      // A 2024-11-05 session lives as long as its GET stream, and a stream carried through this replica would end
      // with it: the client is told to retry (by then the load balancer sends it to a replica that stays).
      req.resume();
      logRefusal(
        o.log,
        { principal: caller.identity.subject, connection: connection.name, method: httpMethod(req), reason: 'draining' },
        'new session refused while draining',
      );
      return shuttingDown(req, res);
    }
    return o.legacySse.open(req, res, connection, caller);
  }

  const { forwardSession, openElsewhere, shuttingDown } = replicaForwarding({ replicas: o.replicas, log: o.log, readWhole });

  /** Not ready because shutdown began (the drain delay): new sessions are not opened here, requests of existing ones are served. */
  function draining(): boolean {
    return o.ready() === 'draining';
  }

  /** A request's body up to limits.maxMessageSize, or undefined after answering 413. */
  async function readWhole(req: IncomingMessage, res: ServerResponse): Promise<string | undefined> {
    try {
      return await readBody(req, o.maxMessageBytes);
    } catch (err) {
      if (!(err instanceof BodyTooLargeError)) throw err;
      res.setHeader('connection', 'close');
      replyError(res, 413, ErrorCode.MessageTooLarge, `Payload Too Large: ${err.message}`);
      return undefined;
    }
  }

  /** A POST without a session: its body says its era; a modern one goes to the modern edge, anything else to the legacy one. */
  async function byEra(
    req: IncomingMessage,
    res: ServerResponse,
    url: URL,
    connection: ConnectionConfig,
    caller: Caller,
    modern: ModernHttpEdge,
    body?: string,
  ): Promise<void> {
    const text = body ?? (await readWhole(req, res));
    if (text === undefined) return;
    const verdict = eraOfBody(req, text);
    if (verdict.era === 'legacy') {
      if (draining()) return openElsewhere(req, res, url, connection.name, caller, text);
      return o.streamableHttp.handle(req, res, connection, caller, text);
    }
    if (verdict.era === 'modern') return modern.post(req, res, connection, caller, verdict.message, verdict.version, text, verdict.headers);
    if (verdict.code === ErrorCode.ParseError) {
      const refusal = { principal: caller.identity.subject, connection: connection.name, method: httpMethod(req), reason: quotedElided(verdict.message) };
      logRefusal(o.log, refusal, 'invalid JSON-RPC message', { status: verdict.status });
      return replyRpcError(res, verdict.status, verdict.id, verdict.code, verdict.message);
    }
    const origin = { edge: 'modern' as const, remoteAddress: caller.remoteAddress ?? req.socket.remoteAddress, access: caller.access };
    return modern.refuse(res, connection, caller.identity, origin, verdict, text, httpMethod(req));
  }

  /**
   * A 2026-07-28 request refused for want of credentials is recorded (its text and why), under no identity: a modern
   * client has no session whose opening could be refused, and this is the only trace of what it asked for. The token
   * is never part of it (it is a header). limits.unauthenticated bounds how many get here.
   */
  async function recordUnauthenticated(req: IncomingMessage, connection: ConnectionConfig, reason: string): Promise<void> {
    if (!mayBeModern(req)) return;
    const text = await readBody(req, o.maxMessageBytes).catch(() => undefined);
    if (text === undefined || eraOfBody(req, text).era !== 'modern') return;
    await o.registry.refuse(
      connection,
      unauthenticated,
      { edge: 'modern', remoteAddress: req.socket.remoteAddress },
      `not authenticated: ${reason}`,
      'access',
      {
        text,
      },
    );
  }

  /** The connection a path names, or undefined after replying 400 or 404. */
  function findConnection(req: IncomingMessage, res: ServerResponse, rawName: string): ConnectionConfig | undefined {
    const name = decodeName(rawName);
    if (name === undefined) {
      req.resume();
      const reason = 'the connection name in the path has a malformed %-escape';
      logRefusal(
        o.log,
        { principal: unauthenticatedPrincipal, connection: untrustedPrefix(rawName), method: httpMethod(req), reason },
        'malformed connection name in path',
      );
      replyError(res, 400, ErrorCode.InvalidRequest, 'Bad Request: the connection name in the path has a malformed %-escape');
      return undefined;
    }
    const connection = o.registry.connection(name);
    if (connection === undefined) {
      req.resume();
      const refusal = {
        principal: unauthenticatedPrincipal,
        connection: untrustedPrefix(name),
        method: httpMethod(req),
        reason: 'no connection has this name',
      };
      logRefusal(o.log, refusal, 'unknown connection');
      replyError(res, 404, ErrorCode.InvalidRequest, `Not found: there is no connection named ${JSON.stringify(untrustedPrefix(name))}`);
    }
    return connection;
  }

  /**
   * Who is calling, and whether they may use the connection; else undefined after replying 400, 401 (with the
   * challenge that leads a client to the IdP), 403 or 503. A refused attempt to open a session is recorded.
   */
  async function authenticate(
    req: IncomingMessage,
    res: ServerResponse,
    url: URL,
    edge: 'mcp' | 'sse',
    connection: ConnectionConfig,
    opening: boolean,
  ): Promise<Caller | undefined> {
    const base = o.publicUrls.for(req);
    const challengeUrl = metadataUrl(base, edge, connection.name);
    let caller: Authenticated;
    try {
      caller = await o.authenticator.authenticate(req, url, connection);
    } catch (err) {
      if (!(err instanceof AuthError)) throw err;
      // limits.unauthenticated: refused before verification, and logged once per burst where it was decided.
      if (err instanceof TooManyAttemptsError) {
        req.resume();
        return void replyError(res, 429, ErrorCode.RateLimited, `Too Many Requests: ${err.message}`, null, { 'retry-after': String(err.retryAfterSeconds) });
      }
      const refusal = { principal: unauthenticatedPrincipal, connection: connection.name, method: httpMethod(req), reason: err.message };
      logRefusal(o.log, refusal, 'request not authenticated', { status: err.status, remote: req.socket.remoteAddress });
      if (err.status === 401 && edge === 'mcp' && opening) await recordUnauthenticated(req, connection, err.message);
      req.resume();
      const headers: Record<string, string> = err.status === 401 || err.status === 400 ? { 'www-authenticate': bearerChallenge(challengeUrl, err) } : {};
      if (err.status === 503) headers['retry-after'] = '10';
      replyError(
        res,
        err.status,
        ErrorCode.Unauthorized,
        `${err.status === 503 ? 'Service Unavailable' : err.status === 400 ? 'Bad Request' : 'Unauthorized'}: ${err.message}`,
        null,
        headers,
      );
      return undefined;
    }
    const decision = o.access(connection.name).open(caller.identity);
    if (caller.groupsProblem !== undefined) o.log.warn({ subject: caller.identity.subject, problem: caller.groupsProblem }, 'groups claim unusable: no groups');
    if (decision.allowed) return { identity: caller.identity, access: decision.reason };
    const grant = o.grants?.grantFor(caller.identity, connection.name);
    if (grant !== undefined) {
      const until = new Date(grant.expiresAtUs / 1000).toISOString();
      return {
        identity: caller.identity,
        access: `just-in-time grant ${grant.id} approved by ${grant.deciderSubject ?? 'an approver'} until ${until}`,
        grant: grant.id,
      };
    }
    logRefusal(o.log, { principal: caller.identity.subject, connection: connection.name, method: httpMethod(req), reason: decision.reason }, 'access denied', {
      status: 403,
    });
    const forbidden = new AuthError(403, 'insufficient_scope', `access denied: ${decision.reason}`);
    if (opening && o.admitRefused?.(caller.identity, { connection: connection.name, method: httpMethod(req) }) === undefined) {
      // A refused POST without a session is kept with its text: a modern request says here what it asked for.
      const text = edge === 'mcp' && req.method === 'POST' ? await readBody(req, o.maxMessageBytes).catch(() => undefined) : undefined;
      const era = text !== undefined && mayBeModern(req) ? eraOfBody(req, text).era : 'legacy';
      await o.registry.refuse(
        connection,
        caller.identity,
        { edge: edge === 'sse' ? 'sse' : era === 'legacy' ? 'streamable-http' : 'modern', remoteAddress: req.socket.remoteAddress },
        decision.reason,
        'access',
        text === undefined ? undefined : { text },
      );
    }
    req.resume();
    replyError(res, 403, ErrorCode.Denied, `Forbidden: ${forbidden.message}`, null, { 'www-authenticate': bearerChallenge(challengeUrl, forbidden) });
    return undefined;
  }

  capConnections(server, o.connections.maxConnections, o.log);

  // Agents dial in here: a WebSocket upgrade on /agent; and another replica's relay of a tunnel held here (signed like
  // every hop, so neither Host nor Origin is looked at: the signature names this replica). Nothing else upgrades.
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const path = new URL(req.url ?? '/', 'http://gateway').pathname;
    const refuse = (status: string, why: string) => socket.end(`HTTP/1.1 ${status}\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\n${why}\n`);
    if (path.startsWith(relayPrefix)) {
      if (o.agents === undefined) return refuse('404 Not Found', 'no connection of this gateway is served by an agent');
      if (o.closing()) return refuse('503 Service Unavailable', 'the gateway is shutting down');
      return o.agents.relay.handleUpgrade(req, socket, head);
    }
    if (path !== '/agent' || o.agents === undefined)
      return refuse('404 Not Found', path === '/agent' ? 'no connection of this gateway is served by an agent' : 'only /agent takes a WebSocket');
    const hostRefusal = checkHostAndOrigin(req, { allowedHosts: o.hostPolicy.allowedHosts, allowedOrigins: [] });
    if (hostRefusal !== undefined) return refuse('403 Forbidden', hostRefusal);
    if (o.closing()) return refuse('503 Service Unavailable', 'the gateway is shutting down');
    o.agents.hub.handleUpgrade(req, socket, head).catch((err: unknown) => {
      o.log.error({ err: (err as Error).message }, 'agent tunnel failed to open');
      socket.destroy();
    });
  });

  return server;
}
