import { Agent as HttpAgent, type IncomingHttpHeaders, type IncomingMessage, request as httpRequest, type ServerResponse } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { Logger } from 'pino';
import { ErrorCode, errorResponse, type RequestId } from '../protocol/jsonrpc.js';
import { type HopAuth, type HopCaller, hopCallerHeader, hopHeader, hopRefusedHeader, hopSignedHeader } from './hop-auth.js';

/**
 * The internal hop's path prefix: `/_portcullis/hop/mcp/<connection>` on the gateway's one port. The hop shares the
 * port rather than taking a listener of its own: a replica's internal address is then simply where it listens (the
 * pod or instance IP and the usual port), with the same TLS, timeouts and connection cap, and nothing more to open in
 * a firewall or a Kubernetes Service. It needs no network isolation to be safe (every hop is signed with
 * cluster.secret, hop-auth.ts); blocking the prefix at the load balancer is defence in depth (docs/cluster-hop.md).
 */
export const hopPrefix = '/_portcullis/hop';

/** Request headers that are the client's own business with the first replica, never passed on: its credentials above all. */
const requestHeadersDropped = new Set([
  'authorization',
  'cookie',
  'host',
  'origin',
  'connection',
  'keep-alive',
  'proxy-authorization',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'content-length',
  hopHeader,
  hopCallerHeader,
  hopSignedHeader,
  hopRefusedHeader,
]);
const responseHeadersDropped = new Set(['connection', 'keep-alive', 'transfer-encoding', 'trailer', 'upgrade', 'content-length']);

function kept(headers: IncomingHttpHeaders, dropped: ReadonlySet<string>): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(headers)) if (v !== undefined && !dropped.has(k)) out[k] = v;
  return out;
}

/** Requests that arrived over the hop: served where they land, never forwarded again (a stale directory cannot loop). */
const hopped = new WeakSet<IncomingMessage>();

export function markHopped(req: IncomingMessage): void {
  hopped.add(req);
}

export function isHopped(req: IncomingMessage): boolean {
  return hopped.has(req);
}

/** How long a hop may wait for the owner (cluster.hopConnectTimeout, cluster.hopHeadTimeout). */
export interface HopTimeouts {
  /** For the TCP (and TLS) connection to the owner. */
  connectMs: number;
  /** From the request sent to the owner's first answer: the 102 it sends once it took the hop, or the head. */
  headMs: number;
}

/** A hop that timed out: the client is told so (504), not that its session is gone, since the owner may be alive. */
class HopTimeoutError extends Error {}

/** Forwards requests to the replica that owns their session or round, streaming the answer (SSE included) through as it comes. */
export class HopClient {
  readonly #http = new HttpAgent({ keepAlive: true });
  readonly #https = new HttpsAgent({ keepAlive: true });

  constructor(
    private readonly auth: HopAuth,
    private readonly timeouts: HopTimeouts,
    private readonly log: Logger,
  ) {}

  /**
   * Sends `req` with `body` (read whole: the signature covers it; '' for a GET or DELETE) to replica `owner` at `base` +
   * the hop prefix + `target`, as `caller`, and pipes the reply to `res`. `unreachable` answers the client when the owner
   * cannot be reached before any reply; an owner that does not connect or answer in time gets the client a 504.
   */
  forward(
    req: IncomingMessage,
    res: ServerResponse,
    owner: string,
    base: string,
    target: string,
    caller: HopCaller,
    body: string,
    unreachable: (err: Error) => void,
  ): Promise<void> {
    const url = new URL(hopPrefix + target, base);
    const method = req.method ?? 'GET';
    const forwarded = kept(req.headers, requestHeadersDropped);
    // Where the client is goes with the caller: a session the owner opens records it, not this replica's address.
    const remoteAddress = caller.remoteAddress ?? req.socket.remoteAddress;
    const carried = remoteAddress === undefined ? caller : { ...caller, remoteAddress };
    const headers: Record<string, string | string[] | number> = {
      ...forwarded,
      ...this.auth.sign(method, target, forwarded, body, carried, owner),
      'content-length': Buffer.byteLength(body),
    };
    const https = url.protocol === 'https:';
    return new Promise<void>((resolve) => {
      let head: NodeJS.Timeout | undefined;
      const out = (https ? httpsRequest : httpRequest)(url, { method, headers, agent: https ? this.#https : this.#http }, (reply) => {
        clearTimeout(head);
        if (reply.headers[hopRefusedHeader] !== undefined) {
          // Whoever is at that address is not the owner, or does not share cluster.secret: not the client's fault.
          reply.resume();
          unreachable(new Error(`the replica at ${url.origin} refused the hop (${reply.statusCode})`));
          resolve();
          return;
        }
        res.writeHead(reply.statusCode ?? 502, kept(reply.headers, responseHeadersDropped));
        // An SSE stream's head goes now, not with its first event; each chunk is written as it comes (pipe: no buffering).
        res.flushHeaders();
        reply.pipe(res);
        reply.on('end', () => resolve());
        reply.on('error', () => {
          res.destroy();
          resolve();
        });
      });
      const expire = (message: string) => () => out.destroy(new HopTimeoutError(message));
      out.on('socket', (socket) => {
        // A kept-alive socket is connected already; a new one has cluster.hopConnectTimeout to connect.
        if (!socket.connecting) return;
        const connect = setTimeout(expire(`no connection within cluster.hopConnectTimeout (${this.timeouts.connectMs} ms)`), this.timeouts.connectMs);
        socket.once(https ? 'secureConnect' : 'connect', () => clearTimeout(connect));
        socket.once('close', () => clearTimeout(connect));
      });
      // The owner says 102 as soon as it took the hop (checked its signature), then may take as long as the call does.
      head = setTimeout(expire(`no answer within cluster.hopHeadTimeout (${this.timeouts.headMs} ms)`), this.timeouts.headMs);
      out.once('information', () => clearTimeout(head));
      out.on('error', (err) => {
        clearTimeout(head);
        if (res.headersSent) res.destroy();
        else if (err instanceof HopTimeoutError) {
          this.log.warn({ owner, address: url.origin, why: err.message }, 'the replica owning a session did not answer the hop in time: 504');
          timedOut(res, err, body);
        } else unreachable(err);
        resolve();
      });
      // The client left: the owner sees its stream end too (a GET stream closes, a POST's request is cancelled).
      res.on('close', () => {
        if (!res.writableFinished) out.destroy();
      });
      out.end(body);
    });
  }

  close(): void {
    this.#http.destroy();
    this.#https.destroy();
  }
}

/** 504 with a JSON-RPC error (naming the request when the body is one): the owner may be alive but stalled, so its session stands. */
function timedOut(res: ServerResponse, err: Error, body: string): void {
  let id: RequestId | null = null;
  try {
    const message = JSON.parse(body) as { id?: unknown };
    if (typeof message?.id === 'string' || typeof message?.id === 'number') id = message.id;
  } catch {
    // A GET, a DELETE, or a batch: no one id to name.
  }
  const text = JSON.stringify(
    errorResponse(id, ErrorCode.UpstreamUnavailable, `Gateway Timeout: the gateway replica holding this session did not answer (${err.message}); try again`),
  );
  res.writeHead(504, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) }).end(text);
}
