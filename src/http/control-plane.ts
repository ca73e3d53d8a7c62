import { gatewayApi, httpMethod, logRefusal, unauthenticatedPrincipal } from '../core/refusal-log.js';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { getRequestListener, RequestError } from '@hono/node-server';
import { Hono, type MiddlewareHandler } from 'hono';
import type { Logger } from 'pino';
import { apiRefusal, type MachineKeys } from '../api/access.js';
import type { SessionsApi } from '../api/sessions.js';
import type { AgentHub } from '../agent/hub.js';
import type { TunnelRelay } from '../agent/relay.js';
import type { ConsoleEdge } from '../console/console-edge.js';
import type { StaticFiles } from '../console/static-files.js';
import { HttpError } from '../core/http-error.js';
import { untrustedPath, untrustedPrefix } from '../core/untrusted-text.js';
import type { Authenticator } from '../edge/authenticate.js';
import { replyApiJson, replyError, replyJson } from '../edge/http-reply.js';
import { checkHostAndOrigin, type HostPolicy } from '../edge/origin.js';
import { gatewayMetadata, protectedResourceMetadata } from '../edge/protected-resource.js';
import type { PublicUrls } from '../edge/public-urls.js';
import type { TrustedIssuer } from '../identity/issuers.js';
import type { GatewayMetrics } from '../metrics/gateway-metrics.js';
import { ErrorCode } from '../protocol/jsonrpc.js';
import type { SessionRegistry } from '../session/registry.js';
import { apiAuth } from './api-auth.js';
import {
  apiErrorReply,
  type ControlEnv,
  type ErrorReply,
  drainUnreadBodies,
  errorsAs,
  hostGuard,
  type MountedApi,
  plainErrorReply,
  requestUrl,
  sent,
} from './kit/route.js';

/**
 * The control plane of the gateway's one port: /healthz, /readyz, /.well-known/oauth-protected-resource, /metrics,
 * /api/..., and the console (/auth/..., /api/console/..., its pages). A Hono app: middleware guards Host and Origin,
 * drains bodies nobody reads, and says who is calling; a route throws HttpError for what it refuses, and `onError`
 * below is the one place such an error becomes a reply. The MCP data path never comes here (http-server.ts).
 */
export interface ControlPlaneOptions {
  registry: SessionRegistry;
  hostPolicy: HostPolicy;
  log: Logger;
  /** The HTTP API: absent parts answer 503 saying why (recording off); the machine credentials of /api/sessions and /metrics. */
  api: { sessions?: SessionsApi; keys: MachineKeys };
  /** Why a load balancer should send no new work here (draining, recording store unavailable), or undefined when it may. */
  ready: () => string | undefined;
  /** Who sent a request (a bearer token for the gateway). */
  authenticator: Authenticator;
  /** The APIs the features add under /api (their modules' `api`), in registration order. */
  apis: readonly MountedApi[];
  /** Agent tunnels: /agent (WebSocket upgrade); absent when no connection is served by an agent. */
  agents?: { hub: AgentHub; relay: TunnelRelay };
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
}

/** The APIs a person uses (access, reviews, pins, agents): a store that cannot write now (503) says when to retry. */
const personApiError: ErrorReply = (res, err) =>
  replyApiJson(res, err.status, { error: err.message }, err.status === 503 ? { 'retry-after': '10', ...err.headers } : { ...err.headers });

const metadataPath = /^\/\.well-known\/oauth-protected-resource\/(mcp|sse)\/([^/]+)\/?$/;

/** The control plane as a node request listener, for the paths the data path does not take. */
export function controlPlane(o: ControlPlaneOptions): (req: IncomingMessage, res: ServerResponse) => Promise<void> {
  const app = new Hono<ControlEnv>({ strict: false });
  const auth = apiAuth({
    authenticator: o.authenticator,
    keys: o.api.keys,
    console: o.console?.edge,
    publicUrls: o.publicUrls,
    auditors: o.roles.auditors,
    log: o.log,
  });

  // The one place an error becomes a reply: an HttpError in its area's form, anything else a logged 500.
  app.onError((err, c) => {
    const res = c.env.outgoing;
    const refusal = err instanceof HttpError ? err : err instanceof URIError ? new HttpError(400, 'the path has a malformed %-escape') : undefined;
    if (refusal === undefined || res.headersSent) {
      o.log.error({ err: err.stack ?? String(err), path: untrustedPath(requestUrl(c).pathname) }, 'request failed');
      if (!res.headersSent) replyError(res, 500, ErrorCode.InternalError, 'Internal error in the gateway');
      else res.end();
      return sent;
    }
    c.env.incoming.resume();
    // Who was refused what: authorization refusals (a 401 is logged where authentication failed, api-auth.ts).
    if (refusal.status === 403 && c.get('refusalLogged') !== true) {
      // The person as api-auth identified them; a refusal decided before that (a console page's CSRF check) names none.
      const principal = c.get('identity')?.subject ?? (c.get('machine') === true ? '(machine credential)' : '(not identified)');
      const refused = { principal, connection: gatewayApi, method: httpMethod(c.env.incoming), reason: refusal.message };
      logRefusal(o.log, refused, 'API request refused', { path: untrustedPath(requestUrl(c).pathname), status: 403 });
    }
    (c.get('errorReply') ?? apiErrorReply)(res, refusal);
    return sent;
  });
  app.notFound((c) => {
    c.env.incoming.resume();
    replyError(
      c.env.outgoing,
      404,
      ErrorCode.InvalidRequest,
      `Not found: ${untrustedPath(requestUrl(c).pathname)}; MCP endpoints are /mcp/<connection> and /sse/<connection>`,
    );
    return sent;
  });

  app.all('/healthz', (c) => {
    replyJson(c.env.outgoing, 200, { status: 'ok' });
    return sent;
  });
  app.all('/readyz', (c) => {
    const notReady = o.ready();
    // A disconnected agent is reported, not made the gateway's unreadiness: its other connections still serve.
    const agents = o.agents ? Object.fromEntries(o.agents.hub.status().map((a) => [a.name, a.connected ? 'connected' : 'disconnected'])) : undefined;
    replyJson(c.env.outgoing, notReady === undefined ? 200 : 503, { status: notReady ?? 'ready', sessions: o.registry.size, ...(agents ? { agents } : {}) });
    return sent;
  });

  if (o.console !== undefined) app.route('/', o.console.edge.routes(o.hostPolicy));

  // GET /.well-known/oauth-protected-resource[/<edge>/<connection>]: public, so any origin may read it.
  const metadataGuard: MiddlewareHandler<ControlEnv> = async (c, next) => {
    const req = c.env.incoming;
    req.resume();
    const hostRefusal = checkHostAndOrigin(req, { allowedHosts: o.hostPolicy.allowedHosts, allowedOrigins: [] });
    if (hostRefusal !== undefined && !hostRefusal.startsWith('Origin')) throw new HttpError(403, `Forbidden: ${hostRefusal}`);
    if (req.method === 'OPTIONS') {
      c.env.outgoing
        .writeHead(204, { 'access-control-allow-origin': '*', 'access-control-allow-methods': 'GET', 'access-control-allow-headers': 'mcp-protocol-version' })
        .end();
      return sent;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') throw new HttpError(405, 'use GET', { allow: 'GET' });
    await next();
  };
  const cors = { 'access-control-allow-origin': '*', 'cache-control': 'max-age=300' };
  app.all('/.well-known/oauth-protected-resource', errorsAs(plainErrorReply), metadataGuard, (c) => {
    replyJson(c.env.outgoing, 200, gatewayMetadata(o.publicUrls.for(c.env.incoming), o.issuers), cors);
    return sent;
  });
  app.all('/.well-known/oauth-protected-resource/:edge{mcp|sse}/:name', errorsAs(plainErrorReply), metadataGuard, (c) => {
    // The raw name, so that a malformed %-escape names no connection (Hono would keep the escape as text).
    const [, edge, rawName] = metadataPath.exec(requestUrl(c).pathname) as unknown as [string, 'mcp' | 'sse', string];
    const name = decodeName(rawName);
    const connection = name === undefined ? undefined : o.registry.connection(name);
    if (connection === undefined) throw new HttpError(404, `there is no connection named ${JSON.stringify(untrustedPrefix(name ?? rawName))}`);
    replyJson(c.env.outgoing, 200, protectedResourceMetadata(o.publicUrls.for(c.env.incoming), edge, connection, o.issuers), cors);
    return sent;
  });

  // GET /metrics: machine credentials only (a Prometheus scrape sends api.token as its bearer token).
  app.all('/metrics', errorsAs(plainErrorReply), async (c) => {
    const req = c.env.incoming;
    req.resume();
    const hostRefusal = checkHostAndOrigin(req, o.hostPolicy);
    const refusal = hostRefusal !== undefined ? { status: 403, message: `Forbidden: ${hostRefusal}` } : apiRefusal(req, o.api.keys);
    if (refusal !== undefined) {
      const refused = { principal: unauthenticatedPrincipal, connection: gatewayApi, method: httpMethod(req), reason: refusal.message };
      logRefusal(o.log, refused, 'metrics request refused', { path: '/metrics', status: refusal.status, remote: req.socket.remoteAddress });
      c.set('refusalLogged', true);
      throw new HttpError(refusal.status, refusal.message, refusal.status === 401 ? { 'www-authenticate': 'Bearer realm="portcullis-api"' } : {});
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') throw new HttpError(405, 'use GET', { allow: 'GET' });
    const { contentType, body } = await o.metrics.scrape();
    c.env.outgoing.writeHead(200, { 'content-type': contentType, 'cache-control': 'no-store' });
    c.env.outgoing.end(req.method === 'HEAD' ? undefined : body);
    return sent;
  });

  // /api: Host and Origin first; only the APIs that read a body keep it, every other request's is drained unread.
  const readers = o.apis.filter((a) => a.mount.readsBody).map((a) => a.mount.path);
  app.use('/api/*', drainUnreadBodies(readers), hostGuard(o.hostPolicy, o.log));

  // The features' APIs, each behind its caller's authentication; a feature that is off answers 503 saying why.
  for (const { mount, routes } of o.apis) {
    const caller = mount.caller === 'person' ? auth.person : auth.machineOrPerson;
    if (routes === undefined) {
      app.all(`${mount.path}/*`, caller, () => {
        throw new HttpError(503, mount.whenOff);
      });
      continue;
    }
    app.use(`${mount.path}/*`, caller, errorsAs(personApiError));
    app.route(mount.path, routes);
  }

  // Everything else under /api reads recordings: its caller decides whose.
  app.use('/api/*', auth.sessionsReader);
  if (o.api.sessions === undefined) {
    app.all('/api/sessions/*', () => {
      throw new HttpError(503, 'recording is off (recording.mode: off): there are no recordings to serve');
    });
  } else app.route('/api/sessions', o.api.sessions.routes());
  app.all('/api/*', (c) => {
    throw new HttpError(404, `no API at ${untrustedPath(requestUrl(c).pathname)}; see /api/sessions`);
  });

  // The node request and response reach the routes as c.env; Hono's Request is only read for its method and path.
  // The globals stay the platform's, and a body nobody read is the gateway's to drain (autoCleanupIncoming off).
  // A request Hono cannot even make a URL of (a Host header that is no host name) is refused before any route.
  return getRequestListener(app.fetch, {
    overrideGlobalObjects: false,
    autoCleanupIncoming: false,
    hostname: 'gateway',
    errorHandler: (err) => {
      if (!(err instanceof RequestError)) o.log.error({ err: (err as Error).stack ?? String(err) }, 'request failed');
      const [status, error] = err instanceof RequestError ? [400, `Bad Request: ${err.message}`] : [500, 'Internal error in the gateway'];
      return new Response(JSON.stringify({ error }), { status, headers: { 'content-type': 'application/json', 'cache-control': 'no-store' } });
    },
  });
}

/** A connection name from a path segment, or undefined when its %-escapes are malformed. */
export function decodeName(raw: string): string | undefined {
  try {
    return decodeURIComponent(raw);
  } catch {
    return undefined;
  }
}
