import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { ErrorCode } from '../protocol/jsonrpc.js';
import { apiRefusal } from '../api/access.js';
import { ApiError, type SessionsApi } from '../api/sessions.js';
import type { SecretString } from '../config/secrets.js';
import type { SessionRegistry } from '../session/registry.js';
import { replyError, replyJson } from './http-reply.js';
import type { LegacySseEdge } from './legacy-sse.js';
import { checkHostAndOrigin, type HostPolicy } from './origin.js';
import type { StreamableHttpEdge } from './streamable-http.js';

export interface HttpServerOptions {
  registry: SessionRegistry;
  streamableHttp: StreamableHttpEdge;
  legacySse: LegacySseEdge;
  hostPolicy: HostPolicy;
  log: Logger;
  /** The HTTP API: absent parts answer 503 saying why (recording off). */
  api: { sessions?: SessionsApi; token?: SecretString };
  /** Why the gateway takes no new sessions (draining, recording store unavailable), or undefined when it does. */
  ready: () => string | undefined;
}

const connectionPath = /^\/(mcp|sse)\/([^/]+)(\/messages)?\/?$/;

/** The gateway's one HTTP port: routes each path to its edge, and answers health checks. */
export function createHttpServer(o: HttpServerOptions): Server {
  const server = createServer({ keepAliveTimeout: 65_000, requestTimeout: 0 }, (req, res) => {
    route(req, res).catch((err: unknown) => {
      o.log.error({ err: (err as Error).stack ?? String(err), url: req.url }, 'request failed');
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
      return replyJson(res, notReady === undefined ? 200 : 503, { status: notReady ?? 'ready', sessions: o.registry.size });
    }
    if (path === '/api' || path.startsWith('/api/')) return api(req, res, url);
    const m = connectionPath.exec(path);
    if (m === null) {
      req.resume();
      return replyError(res, 404, ErrorCode.InvalidRequest, `Not found: ${path.slice(0, 200)}; MCP endpoints are /mcp/<connection> and /sse/<connection>`);
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
    let name: string;
    try {
      name = decodeURIComponent(rawName!);
    } catch {
      req.resume();
      o.log.info({ path: path.slice(0, 200) }, 'malformed connection name in path');
      return replyError(res, 400, ErrorCode.InvalidRequest, 'Bad Request: the connection name in the path has a malformed %-escape');
    }
    const connection = o.registry.connection(name);
    if (connection === undefined) {
      req.resume();
      o.log.info({ connection: name.slice(0, 100) }, 'unknown connection');
      return replyError(res, 404, ErrorCode.InvalidRequest, `Not found: there is no connection named ${JSON.stringify(name.slice(0, 100))}`);
    }
    if (edge === 'mcp') {
      if (messages) return replyError(res, 404, ErrorCode.InvalidRequest, 'Not found');
      return o.streamableHttp.handle(req, res, connection);
    }
    if (messages) return o.legacySse.post(req, res, connection, url.searchParams.get('sessionId'));
    return o.legacySse.open(req, res, connection);
  }

  async function api(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    req.resume();
    const fail = (status: number, message: string, headers: Record<string, string> = {}) => replyJson(res, status, { error: message }, { 'cache-control': 'no-store', ...headers });
    const hostRefusal = checkHostAndOrigin(req, o.hostPolicy);
    if (hostRefusal !== undefined) {
      o.log.warn({ host: req.headers.host, origin: req.headers.origin }, 'foreign host or origin refused');
      return fail(403, `Forbidden: ${hostRefusal}`);
    }
    const refusal = apiRefusal(req, o.api.token);
    if (refusal !== undefined) {
      o.log.info({ path: url.pathname, remote: req.socket.remoteAddress }, 'API request refused');
      return fail(refusal.status, refusal.message, refusal.status === 401 ? { 'www-authenticate': 'Bearer realm="portcullis-api"' } : {});
    }
    if (url.pathname === '/api/sessions' || url.pathname.startsWith('/api/sessions/')) {
      if (o.api.sessions === undefined) return fail(503, 'recording is off (recording.mode: off): there are no recordings to serve');
      try {
        return await o.api.sessions.handle(req, res, url);
      } catch (err) {
        if (err instanceof ApiError) return fail(err.status, err.message);
        throw err;
      }
    }
    return fail(404, `no API at ${url.pathname.slice(0, 200)}; see /api/sessions`);
  }

  return server;
}
