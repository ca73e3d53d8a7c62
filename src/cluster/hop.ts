import { Agent as HttpAgent, type IncomingHttpHeaders, type IncomingMessage, request as httpRequest, type ServerResponse } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { type HopAuth, type HopCaller, hopCallerHeader, hopHeader, hopRefusedHeader } from './hop-auth.js';

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

/** Forwards requests to the replica that owns their session or round, streaming the answer (SSE included) through as it comes. */
export class HopClient {
  readonly #http = new HttpAgent({ keepAlive: true });
  readonly #https = new HttpsAgent({ keepAlive: true });

  constructor(private readonly auth: HopAuth) {}

  /**
   * Sends `req` with `body` (read whole: the signature covers it; '' for a GET or DELETE) to replica `owner` at `base` +
   * the hop prefix + `target`, as `caller`, and pipes the reply to `res`. `unreachable` answers the client when the owner cannot be
   * reached before any reply.
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
    const session = req.headers['mcp-session-id'];
    const headers: Record<string, string | string[] | number> = {
      ...kept(req.headers, requestHeadersDropped),
      ...this.auth.sign(method, target, typeof session === 'string' ? session : undefined, body, caller, owner),
      'content-length': Buffer.byteLength(body),
    };
    const https = url.protocol === 'https:';
    return new Promise<void>((resolve) => {
      const out = (https ? httpsRequest : httpRequest)(url, { method, headers, agent: https ? this.#https : this.#http }, (reply) => {
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
      out.on('error', (err) => {
        if (!res.headersSent) unreachable(err);
        else res.destroy();
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
