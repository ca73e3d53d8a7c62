import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { ErrorCode } from '../protocol/jsonrpc.js';
import { anonymousApiRefusal, apiRefusal, isMachineCaller, type MachineKeys } from '../api/access.js';
import type { Person, SessionsApi } from '../api/sessions.js';
import type { ConnectionConfig } from '../config/schema.js';
import type { ConnectionAccess } from '../identity/access-policy.js';
import { HttpError } from '../core/http-error.js';
import { AuthError, TooManyAttemptsError } from '../identity/auth-error.js';
import type { TrustedIssuer } from '../identity/issuers.js';
import type { AccessRequestsApi } from '../api/access-requests.js';
import type { ReviewsApi } from '../api/reviews.js';
import type { PinsApi } from '../api/pins.js';
import { untrustedPath, untrustedPrefix } from '../core/untrusted-text.js';
import type { AgentHub } from '../agent/hub.js';
import { AgentsApi } from '../api/agents.js';
import type { GatewayMetrics } from '../metrics/gateway-metrics.js';
import type { ConsoleEdge } from '../console/console-edge.js';
import { securityHeaders, type StaticFiles } from '../console/static-files.js';
import type { Identity } from '../core/identity.js';
import { inGroups } from '../identity/roles.js';
import type { AccessRequestRow } from '../store/types.js';
import type { SessionRegistry } from '../session/registry.js';
import { type Authenticated, type Authenticator, bearerChallenge, type Caller, metadataUrl } from '../edge/authenticate.js';
import type { PublicUrls } from '../edge/public-urls.js';
import { gatewayMetadata, protectedResourceMetadata } from '../edge/protected-resource.js';
import { replyApiJson, replyError, replyJson } from '../edge/http-reply.js';
import type { LegacySseEdge } from '../edge/legacy-sse.js';
import { checkHostAndOrigin, type HostPolicy } from '../edge/origin.js';
import type { StreamableHttpEdge } from '../edge/streamable-http.js';
import { capConnections, type ConnectionLimits, timeoutOptions } from '../edge/connection-guard.js';

export interface HttpServerOptions {
  registry: SessionRegistry;
  streamableHttp: StreamableHttpEdge;
  legacySse: LegacySseEdge;
  hostPolicy: HostPolicy;
  log: Logger;
  /** The HTTP API: absent parts answer 503 saying why (recording off); the machine credentials of /api/sessions and /metrics. */
  api: { sessions?: SessionsApi; keys: MachineKeys };
  /** Why the gateway takes no new sessions (draining, recording store unavailable), or undefined when it does. */
  ready: () => string | undefined;
  /** Who sent a request to an MCP endpoint. */
  authenticator: Authenticator;
  /** Who may use each connection. */
  access: (connection: string) => ConnectionAccess;
  /** Just-in-time grants, consulted when no group admits a caller; and their API. Absent when recording is off. */
  grants?: { grantFor(identity: Identity, connection: string): AccessRequestRow | undefined };
  accessRequests?: AccessRequestsApi;
  /** /api/reviews; absent when there is no store (recording off). */
  reviews?: ReviewsApi;
  /** /api/pins; absent when there is no store. */
  pins?: PinsApi;
  /** Agent tunnels: /agent (WebSocket upgrade) and /api/agents; absent when no connection is served by an agent. */
  agents?: { hub: AgentHub; api: AgentsApi };
  /** The web console: its pages, its sign-in and its own API; absent when console.enabled is false or there is no store. */
  console?: { edge: ConsoleEdge; files: StaticFiles };
  /** GET /metrics (Prometheus), for the holders of a machine credential (api.token, the local API key). */
  metrics: GatewayMetrics;
  /** Groups that see every session (roles.auditors), and that administer agents and pins (roles.admins). */
  roles: { auditors: readonly string[]; admins: readonly string[] };
  /** The issuers whose tokens are accepted, for the protected resource metadata. */
  issuers: readonly TrustedIssuer[];
  /** The gateway's own base URLs (audiences, metadata). */
  publicUrls: PublicUrls;
  /** Timeouts for receiving requests, and the cap on open connections (slowloris). */
  connections: ConnectionLimits;
}

const connectionPath = /^\/(mcp|sse)\/([^/]+)(\/messages)?\/?$/;
const metadataPath = /^\/\.well-known\/oauth-protected-resource\/(mcp|sse)\/([^/]+)\/?$/;

/** A connection name from a path segment, or undefined when its %-escapes are malformed. */
function decodeName(raw: string): string | undefined {
  try {
    return decodeURIComponent(raw);
  } catch {
    return undefined;
  }
}

/** The gateway's one HTTP port: routes each path to its edge, and answers health checks. */
export function createHttpServer(o: HttpServerOptions): Server {
  const noAgents = new AgentsApi(undefined, o.roles.admins);
  const server = createServer(timeoutOptions(o.connections), (req, res) => {
    route(req, res).catch((err: unknown) => {
      o.log.error({ err: (err as Error).stack ?? String(err), path: untrustedPath(new URL(req.url ?? '/', 'http://gateway').pathname) }, 'request failed');
      if (!res.headersSent) replyError(res, 500, ErrorCode.InternalError, 'Internal error in the gateway');
      else res.end();
    });
  });

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://gateway');
    const path = url.pathname;
    if (path === '/healthz') return replyJson(res, 200, { status: 'ok' });
    if (path === '/readyz') {
      const notReady = o.ready();
      // A disconnected agent is reported, not made the gateway's unreadiness: its other connections still serve.
      const agents = o.agents ? Object.fromEntries(o.agents.hub.status().map((a) => [a.name, a.connected ? 'connected' : 'disconnected'])) : undefined;
      return replyJson(res, notReady === undefined ? 200 : 503, { status: notReady ?? 'ready', sessions: o.registry.size, ...(agents ? { agents } : {}) });
    }
    if (o.console !== undefined && (path.startsWith('/auth/') || path.startsWith('/api/console/') || o.console.files.serves(path))) {
      const hostRefusal = checkHostAndOrigin(req, o.hostPolicy);
      if (hostRefusal !== undefined) {
        req.resume();
        o.log.warn({ host: req.headers.host, origin: req.headers.origin }, 'foreign host or origin refused');
        return replyJson(res, 403, { error: `Forbidden: ${hostRefusal}` }, securityHeaders);
      }
      if (await o.console.edge.handle(req, res, url)) return;
      if (o.console.files.serves(path)) return o.console.files.serve(req, res, path);
    }
    if (path === '/api' || path.startsWith('/api/')) return api(req, res, url);
    if (path === '/metrics') return metrics(req, res);
    if (path === '/.well-known/oauth-protected-resource') return metadata(req, res);
    const wellKnown = metadataPath.exec(path);
    if (wellKnown !== null) return metadata(req, res, wellKnown[1] as 'mcp' | 'sse', wellKnown[2]!);
    const m = connectionPath.exec(path);
    if (m === null) {
      req.resume();
      return replyError(res, 404, ErrorCode.InvalidRequest, `Not found: ${untrustedPath(path)}; MCP endpoints are /mcp/<connection> and /sse/<connection>`);
    }
    const refusal = checkHostAndOrigin(req, o.hostPolicy);
    if (refusal !== undefined) {
      req.resume();
      o.log.warn({ host: req.headers.host, origin: req.headers.origin }, 'foreign host or origin refused');
      return replyError(res, 403, ErrorCode.InvalidRequest, `Forbidden: ${refusal}`);
    }
    if (o.ready() === 'draining') {
      req.resume();
      return replyError(res, 503, ErrorCode.UpstreamUnavailable, 'Service Unavailable: the gateway is shutting down', null, { 'retry-after': '5' });
    }
    const [, edge, rawName, messages] = m;
    const connection = findConnection(req, res, rawName!);
    if (connection === undefined) return;
    // An attempt to open a session: the legacy SSE stream, or a POST without a session (initialize).
    const opening = edge === 'sse' ? !messages : req.method === 'POST' && req.headers['mcp-session-id'] === undefined;
    const caller = await authenticate(req, res, url, edge as 'mcp' | 'sse', connection, opening);
    if (caller === undefined) return;
    if (edge === 'mcp') {
      if (messages) return replyError(res, 404, ErrorCode.InvalidRequest, 'Not found');
      return o.streamableHttp.handle(req, res, connection, caller);
    }
    if (messages) return o.legacySse.post(req, res, connection, url.searchParams.get('sessionId'), caller.identity);
    return o.legacySse.open(req, res, connection, caller);
  }

  /** The connection a path names, or undefined after replying 400 or 404. */
  function findConnection(req: IncomingMessage, res: ServerResponse, rawName: string): ConnectionConfig | undefined {
    const name = decodeName(rawName);
    if (name === undefined) {
      req.resume();
      o.log.info({ connection: untrustedPrefix(rawName) }, 'malformed connection name in path');
      replyError(res, 400, ErrorCode.InvalidRequest, 'Bad Request: the connection name in the path has a malformed %-escape');
      return undefined;
    }
    const connection = o.registry.connection(name);
    if (connection === undefined) {
      req.resume();
      o.log.info({ connection: untrustedPrefix(name) }, 'unknown connection');
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
      req.resume();
      // limits.unauthenticated: refused before verification, and logged once per burst where it was decided.
      if (err instanceof TooManyAttemptsError) return void replyError(res, 429, ErrorCode.RateLimited, `Too Many Requests: ${err.message}`, null, { 'retry-after': String(err.retryAfterSeconds) });
      o.log.info({ connection: connection.name, status: err.status, reason: err.message, remote: req.socket.remoteAddress }, 'request not authenticated');
      const headers: Record<string, string> = err.status === 401 || err.status === 400 ? { 'www-authenticate': bearerChallenge(challengeUrl, err) } : {};
      if (err.status === 503) headers['retry-after'] = '10';
      replyError(res, err.status, ErrorCode.Unauthorized, `${err.status === 503 ? 'Service Unavailable' : err.status === 400 ? 'Bad Request' : 'Unauthorized'}: ${err.message}`, null, headers);
      return undefined;
    }
    const decision = o.access(connection.name).open(caller.identity);
    if (caller.groupsProblem !== undefined) o.log.warn({ subject: caller.identity.subject, problem: caller.groupsProblem }, 'groups claim unusable: no groups');
    if (decision.allowed) return { identity: caller.identity, access: decision.reason };
    const grant = o.grants?.grantFor(caller.identity, connection.name);
    if (grant !== undefined) {
      const until = new Date(grant.expiresAtUs / 1000).toISOString();
      return { identity: caller.identity, access: `just-in-time grant ${grant.id} approved by ${grant.deciderSubject ?? 'an approver'} until ${until}`, grant: grant.id };
    }
    req.resume();
    o.log.info({ connection: connection.name, subject: caller.identity.subject, reason: decision.reason }, 'access denied');
    if (opening) await o.registry.refuse(connection, caller.identity, { edge: edge === 'mcp' ? 'streamable-http' : 'sse', remoteAddress: req.socket.remoteAddress }, decision.reason);
    const forbidden = new AuthError(403, 'insufficient_scope', `access denied: ${decision.reason}`);
    replyError(res, 403, ErrorCode.Denied, `Forbidden: ${forbidden.message}`, null, { 'www-authenticate': bearerChallenge(challengeUrl, forbidden) });
    return undefined;
  }

  /** /api/access and /api/reviews: the caller is whoever their bearer token (meant for the gateway) says. */
  async function identityApi(
    req: IncomingMessage,
    res: ServerResponse,
    url: URL,
    fail: (status: number, message: string, headers?: Record<string, string>) => void,
    name: 'access requests' | 'reviews' | 'tool pins' | 'agents',
    handler: AccessRequestsApi | ReviewsApi | PinsApi | AgentsApi | undefined,
  ): Promise<void> {
    let caller: Authenticated;
    try {
      // A signed-in console user (their cookie), else the bearer token's holder.
      const user = await o.console?.edge.caller(req);
      caller = user !== undefined ? { identity: user.identity } : await o.authenticator.authenticateGateway(req, url);
    } catch (err) {
      if (!(err instanceof HttpError)) throw err;
      req.resume();
      if (!(err instanceof AuthError)) return fail(err.status, err.message);
      if (err instanceof TooManyAttemptsError) return fail(429, err.message, err.headers);
      o.log.info({ path: untrustedPath(url.pathname), status: err.status, reason: err.message }, 'API request not authenticated');
      const challenge = bearerChallenge(`${o.publicUrls.for(req)}/.well-known/oauth-protected-resource`, err);
      return fail(err.status, err.message, err.status === 503 ? { 'retry-after': '10' } : { 'www-authenticate': challenge });
    }
    if (handler === undefined) {
      req.resume();
      return fail(503, `${name} need the recording store (recording.mode is off)`);
    }
    try {
      return await handler.handle(req, res, url, caller.identity);
    } catch (err) {
      if (err instanceof HttpError) return fail(err.status, err.message, err.status === 503 ? { 'retry-after': '10' } : {});
      if (err instanceof URIError) return fail(400, 'the path has a malformed %-escape');
      throw err;
    }
  }

  /** GET /.well-known/oauth-protected-resource[/<edge>/<connection>]: public, so any origin may read it. */
  function metadata(req: IncomingMessage, res: ServerResponse, edge?: 'mcp' | 'sse', rawName?: string): void {
    req.resume();
    const hostRefusal = checkHostAndOrigin(req, { allowedHosts: o.hostPolicy.allowedHosts, allowedOrigins: [] });
    if (hostRefusal !== undefined && !hostRefusal.startsWith('Origin')) return replyJson(res, 403, { error: `Forbidden: ${hostRefusal}` });
    if (req.method === 'OPTIONS') {
      res.writeHead(204, { 'access-control-allow-origin': '*', 'access-control-allow-methods': 'GET', 'access-control-allow-headers': 'mcp-protocol-version' }).end();
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') return replyJson(res, 405, { error: 'use GET' }, { allow: 'GET' });
    const cors = { 'access-control-allow-origin': '*', 'cache-control': 'max-age=300' };
    if (edge === undefined || rawName === undefined) return replyJson(res, 200, gatewayMetadata(o.publicUrls.for(req), o.issuers), cors);
    const name = decodeName(rawName);
    const connection = name === undefined ? undefined : o.registry.connection(name);
    if (connection === undefined) return replyJson(res, 404, { error: `there is no connection named ${JSON.stringify(untrustedPrefix(name ?? rawName))}` });
    const doc = protectedResourceMetadata(o.publicUrls.for(req), edge, connection, o.issuers);
    return replyJson(res, 200, doc, cors);
  }

  /** GET /metrics: machine credentials only (a Prometheus scrape sends api.token as its bearer token). */
  async function metrics(req: IncomingMessage, res: ServerResponse): Promise<void> {
    req.resume();
    const hostRefusal = checkHostAndOrigin(req, o.hostPolicy);
    const refusal = hostRefusal !== undefined ? { status: 403, message: `Forbidden: ${hostRefusal}` } : apiRefusal(req, o.api.keys);
    if (refusal !== undefined) {
      o.log.info({ remote: req.socket.remoteAddress, reason: refusal.message }, 'metrics request refused');
      return replyJson(res, refusal.status, { error: refusal.message }, refusal.status === 401 ? { 'www-authenticate': 'Bearer realm="portcullis-api"' } : {});
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') return replyJson(res, 405, { error: 'use GET' }, { allow: 'GET' });
    const { contentType, body } = await o.metrics.scrape();
    res.writeHead(200, { 'content-type': contentType, 'cache-control': 'no-store' });
    res.end(req.method === 'HEAD' ? undefined : body);
  }

  /**
   * Whose recordings a request may read. A person (a console sign-in, or their bearer token for the gateway) sees
   * their own sessions, or everyone's with roles.auditors. A machine sees them all: the holder of api.token or of
   * the local API key (the CLI, scripts, on the gateway's host). Nobody else, wherever they connect from: a request
   * with no credential is refused even on loopback. Throws HttpError when none of these.
   */
  async function sessionsScope(req: IncomingMessage, url: URL): Promise<{ all: true } | Person> {
    const person = (identity: Identity) => (inGroups(identity, o.roles.auditors) ? { all: true as const } : { subject: identity.subject, issuer: identity.issuer });
    const user = await o.console?.edge.caller(req);
    if (user !== undefined) return person(user.identity);
    if (isMachineCaller(req, o.api.keys)) return { all: true };
    if (req.headers.authorization !== undefined) {
      try {
        return person((await o.authenticator.authenticateGateway(req, url)).identity);
      } catch (err) {
        if (!(err instanceof AuthError)) throw err;
        if (err instanceof TooManyAttemptsError) throw new HttpError(429, err.message, err.headers);
        o.log.info({ path: untrustedPath(url.pathname), status: err.status, reason: err.message }, 'API request not authenticated');
        throw new HttpError(401, `the bearer token is neither api.token, the local API key, nor a valid token for the gateway: ${err.message}`);
      }
    }
    o.log.info({ path: untrustedPath(url.pathname), remote: req.socket.remoteAddress }, 'API request without a credential refused');
    throw new HttpError(401, anonymousApiRefusal);
  }

  async function api(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    // Only /api/access, /api/reviews and /api/pins read a body; every other API request's body is drained unread.
    const under = (prefix: string) => url.pathname === prefix || url.pathname.startsWith(`${prefix}/`);
    const access = under('/api/access');
    const reviews = under('/api/reviews');
    const pins = under('/api/pins');
    const agents = under('/api/agents');
    if (!access && !reviews && !pins) req.resume();
    const fail = (status: number, message: string, headers: Record<string, string> = {}) => replyApiJson(res, status, { error: message }, headers);
    const hostRefusal = checkHostAndOrigin(req, o.hostPolicy);
    if (hostRefusal !== undefined) {
      req.resume();
      o.log.warn({ host: req.headers.host, origin: req.headers.origin }, 'foreign host or origin refused');
      return fail(403, `Forbidden: ${hostRefusal}`);
    }
    if (access) return identityApi(req, res, url, fail, 'access requests', o.accessRequests);
    if (reviews) return identityApi(req, res, url, fail, 'reviews', o.reviews);
    if (pins) return identityApi(req, res, url, fail, 'tool pins', o.pins);
    try {
      if (agents && isMachineCaller(req, o.api.keys)) return await (o.agents?.api ?? noAgents).handle(req, res, url, 'machine');
      if (agents) return await identityApi(req, res, url, fail, 'agents', o.agents?.api ?? noAgents);
      const scope = await sessionsScope(req, url);
      if (url.pathname === '/api/sessions' || url.pathname.startsWith('/api/sessions/')) {
        if (o.api.sessions === undefined) return fail(503, 'recording is off (recording.mode: off): there are no recordings to serve');
        return await o.api.sessions.handle(req, res, url, 'subject' in scope ? scope : undefined);
      }
      return fail(404, `no API at ${untrustedPath(url.pathname)}; see /api/sessions`);
    } catch (err) {
      // An HttpError becomes its reply here (identityApi answers its own: a bearer challenge, a retry hint). Only
      // the caller's scope refuses with 401, which points a client at the API's bearer realm.
      if (err instanceof HttpError) return fail(err.status, err.message, err.status === 401 ? { 'www-authenticate': 'Bearer realm="portcullis-api"' } : err.headers);
      if (err instanceof URIError) return fail(400, 'the path has a malformed %-escape');
      throw err;
    }
  }

  capConnections(server, o.connections.maxConnections, o.log);

  // Agents dial in here: a WebSocket upgrade on /agent, nothing else upgrades.
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const path = new URL(req.url ?? '/', 'http://gateway').pathname;
    const refuse = (status: string, why: string) => socket.end(`HTTP/1.1 ${status}\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\n${why}\n`);
    if (path !== '/agent' || o.agents === undefined) return refuse('404 Not Found', path === '/agent' ? 'no connection of this gateway is served by an agent' : 'only /agent takes a WebSocket');
    const hostRefusal = checkHostAndOrigin(req, { allowedHosts: o.hostPolicy.allowedHosts, allowedOrigins: [] });
    if (hostRefusal !== undefined) return refuse('403 Forbidden', hostRefusal);
    if (o.ready() === 'draining') return refuse('503 Service Unavailable', 'the gateway is shutting down');
    o.agents.hub.handleUpgrade(req, socket, head).catch((err: unknown) => {
      o.log.error({ err: (err as Error).message }, 'agent tunnel failed to open');
      socket.destroy();
    });
  });

  return server;
}
