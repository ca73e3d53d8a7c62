import { type ClientRequest, Agent as HttpAgent, type IncomingHttpHeaders, type IncomingMessage, request as httpRequest, type ServerResponse } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { Logger } from 'pino';
import { ErrorCode, errorResponse, type RequestId } from '../protocol/jsonrpc.js';
import { type HopAuth, type HopCaller, hopCallerHeader, hopDeclinedHeader, hopForHeader, hopHeader, hopRefusedHeader, hopSignedHeader } from './hop-auth.js';
import { HopsInFlight } from './hop-drain.js';
import { type AuthRefusal, HopRefusalLog, refusalOf } from './hop-refusal.js';

/**
 * The internal hop's path prefix: `/_portcullis/hop/mcp/<connection>` on the gateway's one port. The hop shares the
 * port rather than taking a listener of its own: a replica's internal address is then simply where it listens (the
 * pod or instance IP and the usual port), with the same TLS, timeouts and connection cap, and nothing more to open in
 * a firewall or a Kubernetes Service. It needs no network isolation to be safe (every hop is signed with
 * cluster.secret, hop-auth.ts); refusing it at the load balancer is defence in depth (docs/deploy.md, examples/haproxy.cfg,
 * examples/nginx.conf).
 */
export const hopPrefix = '/_portcullis/hop';

/**
 * Request headers that are the client's own business with the first replica, never passed on: its credentials above
 * all, and Expect (that replica answered its 100-continue; the owner's would look like it took the hop).
 */
const requestHeadersDropped = new Set([
  'authorization',
  'expect',
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
  hopForHeader,
  hopRefusedHeader,
  hopDeclinedHeader,
]);
/** Never relayed to the client: the hop's own (a draining replica's decline) and the connection's. */
const responseHeadersDropped = new Set(['connection', 'keep-alive', 'transfer-encoding', 'trailer', 'upgrade', 'content-length', hopDeclinedHeader]);

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

/**
 * What answered at the owner's address refused the hop as not for it: that is not the owner, so the owner is gone,
 * whatever the membership still says. (A refusal as unauthenticated is no such proof: see `#refusedByLiveOwner`.)
 */
export class HopRefusedError extends Error {}

/**
 * The owner took the hop (said 102, or refused a retry as already taken), and its answer was lost: it may have acted
 * on the request, so the client must not be told to send it again.
 */
class HopOutcomeUnknownError extends Error {}

/** Transport errors of a kept-alive socket the owner closed as the request went out: worth one retry (see `forward`). */
const staleSocketErrors = new Set(['ECONNRESET', 'EPIPE']);

/** How long a client told 503 is asked to wait: a reset connection is usually fine at once, a dead owner leaves the membership within cluster.goneAfter. */
const retryAfterSeconds = 2;

/** How a hop may be sent beyond the defaults (a session's request, relayed whatever the owner answers). */
export interface HopOptions {
  /** Who the client's error names when the hop fails: the session's owner, a round's, or a replica opening a session. */
  peer?: string;
  /**
   * The request may go to another replica if this one declines it as draining (a session's opening): its decline is
   * then not relayed, and `forward` resolves 'declined', with nothing written to the client.
   */
  declinable?: boolean;
}

/** Whether a hop's reply is a draining replica's decline, sent before it acted on anything (hop-auth.ts). */
function declinedAsDraining(reply: IncomingMessage): boolean {
  return reply.statusCode === 503 && reply.headers[hopDeclinedHeader] === 'draining';
}

/** Forwards requests to the replica that owns their session or round, streaming the answer (SSE included) through as it comes. */
export class HopClient {
  readonly #http = new HttpAgent({ keepAlive: true });
  readonly #https = new HttpsAgent({ keepAlive: true });
  readonly #inFlight = new HopsInFlight();
  readonly #refusals: HopRefusalLog;
  /** The drain is over (or the client closed): nothing more is sent, since shutdown would cut it off unanswered. */
  #drained = false;

  constructor(
    private readonly auth: HopAuth,
    private readonly timeouts: HopTimeouts,
    private readonly log: Logger,
    /** Whether the membership says replica `owner` is alive (read again when not known as alive). */
    private readonly ownerAlive: (owner: string) => Promise<boolean>,
  ) {
    this.#refusals = new HopRefusalLog(log);
  }

  /**
   * Sends `req` with `body` (read whole: the signature covers it; '' for a GET or DELETE) to replica `owner` at `base` +
   * the hop prefix + `target`, as `caller`, and pipes the reply to `res`. An owner that does not connect or answer in
   * time gets the client a 504; one that cannot be reached (its connection reset or refused) a 503 with Retry-After
   * while the membership says it is alive. `unreachable` answers the client when the owner is gone: what answers at
   * its address refuses the hop as not for it, or it cannot be reached (or refuses the hop as unauthenticated) and the
   * membership no longer has it. Refused as unauthenticated while alive: 503 with Retry-After, and an error logged.
   *
   * One retry, on a fresh connection, when a kept-alive socket fails (ECONNRESET, EPIPE) before anything of the answer
   * came back: the owner closed it as idle (its keep-alive timeout, or shed by its connection cap, which sheds only
   * sockets with no request in progress) just as the request went out, so the owner never read it. Every hop the owner
   * acts on is answered 102 first, and the retry carries the very same signature, which the owner takes only once: if
   * the first attempt did reach it after all, the retry is refused rather than acted on twice (the client gets 502).
   * A fresh connection that fails is not retried: the owner is not taking connections. Nor is one that fails after the
   * owner's 102: it took the request and may have acted on it, so the client gets 502 and no invitation to send it again.
   *
   * With `declinable`, a draining replica's decline (its 503, marked as one on the hop) resolves 'declined' instead of
   * being relayed, so that the sender may try another replica with a signature of its own.
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
    { peer = 'the gateway replica holding this session', declinable = false }: HopOptions = {},
  ): Promise<'declined' | undefined> {
    const url = new URL(hopPrefix + target, base);
    const method = req.method ?? 'GET';
    // The client left while this replica was busy with its request (authenticating it, reading the membership): its
    // close came before any listener below, so nothing is sent, or the owner would hold a GET's stream for no one.
    if (res.destroyed) {
      this.log.debug({ owner, method }, 'the client left before its request was forwarded: not sent');
      return Promise.resolve(undefined);
    }
    // Its drain did not wait for it (it came too late, or took longer than the drain's timeout): not sent, as shutdown
    // would cut it off, its outcome unknown; the retry reaches a replica that stays.
    if (this.#drained) {
      req.resume();
      this.log.info({ owner, method }, 'a request to forward came after the drain: not sent, 503');
      notAnswered(res, 503, 'Service Unavailable: this gateway is shutting down; retry', body, { 'retry-after': String(retryAfterSeconds) });
      return Promise.resolve(undefined);
    }
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
    let end = () => {};
    const done = new Promise<'declined' | undefined>((settle) => {
      let finished = false;
      const resolve = (outcome: 'declined' | undefined) => {
        finished = true;
        settle(outcome);
      };
      let current: ClientRequest | undefined;
      let streaming: IncomingMessage | undefined;
      /** The client left, or shutdown ended the hop: nothing more is answered, nor sent again. */
      let abandoned = false;
      // The client left: the owner sees its stream end too (a GET stream closes, a POST's request is cancelled).
      res.on('close', () => {
        if (res.writableFinished) return;
        abandoned = true;
        current?.destroy();
      });
      // Shutdown, past the drain: a GET's stream ends as a local one does (its client opens it again elsewhere);
      // a request still unanswered after the drain's timeout is cut off.
      end = () => {
        if (finished) return;
        abandoned = true;
        if (method === 'GET' && res.headersSent && !res.writableEnded) {
          streaming?.unpipe(res);
          res.end();
        } else res.destroy();
        current?.destroy();
        resolve(undefined);
      };
      const failed = async (err: Error) => {
        if (abandoned) return;
        if (err instanceof HopTimeoutError) {
          this.log.warn({ owner, address: url.origin, why: err.message }, 'the replica owning a session did not answer the hop in time: 504');
          return notAnswered(res, 504, `Gateway Timeout: ${peer} did not answer (${err.message}); try again`, body);
        }
        if (err instanceof HopOutcomeUnknownError) {
          this.log.warn({ owner, address: url.origin, why: err.message }, 'the owner took the hop, and its answer was lost: the outcome is unknown, 502');
          return notAnswered(
            res,
            502,
            `Bad Gateway: ${peer} took the request, and its answer was lost on the way; do not send it again before checking what it did`,
            body,
          );
        }
        // Even a refused connection is no proof that the owner died (a sidecar proxy not up yet, a node's proxy during
        // a rollout): while the membership has it alive, its sessions stand; it learns of a death at cluster.goneAfter.
        // A membership that cannot be read is taken as alive: a 503 the client retries, not its session dropped.
        const alive = !(err instanceof HopRefusedError) && (await this.ownerAlive(owner).catch(() => true));
        if (abandoned) return;
        if (alive) {
          this.log.warn(
            { owner, address: url.origin, err: err.message },
            'the replica owning a session could not be reached, though alive in the membership: 503',
          );
          return notAnswered(res, 503, `Service Unavailable: ${peer} could not be reached (${whatFailed(err)}); try again`, body, {
            'retry-after': String(retryAfterSeconds),
          });
        }
        unreachable(err);
      };
      const attempt = (retry: boolean) => {
        /** Anything of the owner's answer came back (its 102, or the head): the request reached it. */
        let answered = false;
        let head: NodeJS.Timeout | undefined;
        const agent = retry ? false : https ? this.#https : this.#http;
        const out = (https ? httpsRequest : httpRequest)(url, { method, headers, agent }, (reply) => {
          answered = true;
          clearTimeout(head);
          if (abandoned || res.destroyed) {
            reply.destroy();
            out.destroy();
            return resolve(undefined);
          }
          if (reply.headers[hopRefusedHeader] !== undefined) {
            reply.resume();
            const refusal = refusalOf(reply);
            const message = `the replica at ${url.origin} refused the hop (${reply.statusCode} ${refusal})`;
            // Not for it: whoever is at that address is not the owner. As replayed (or, from an earlier version that
            // does not say why, on a retry): the first attempt reached the owner after all (a signature is taken once),
            // and may have been acted on, so the client must not be told to send it again.
            if (refusal === 'not-for-this-instance') void failed(new HopRefusedError(message)).then(() => resolve(undefined));
            else if (refusal === 'replayed' || (retry && refusal === 'unspecified'))
              void failed(new HopOutcomeUnknownError(`${message}${retry ? ' on a retry' : ''}`)).then(() => resolve(undefined));
            else
              void this.#refusedByLiveOwner(owner, url.origin, refusal)
                .then((alive) => {
                  if (abandoned) return;
                  if (!alive) return unreachable(new HopRefusedError(message));
                  notAnswered(
                    res,
                    503,
                    `Service Unavailable: ${peer} refused this replica's request as unauthenticated (${refusal}): the replicas' cluster.secret or clocks disagree; try again`,
                    body,
                    { 'retry-after': String(retryAfterSeconds) },
                  );
                })
                .then(() => resolve(undefined));
            return;
          }
          if (declinable && declinedAsDraining(reply)) {
            reply.resume();
            return resolve('declined');
          }
          res.writeHead(reply.statusCode ?? 502, kept(reply.headers, responseHeadersDropped));
          // An SSE stream's head goes now, not with its first event; each chunk is written as it comes (pipe: no buffering).
          res.flushHeaders();
          streaming = reply;
          reply.pipe(res);
          // Done once the client has it all, or left. A reply cut off before its end cuts the client's off too.
          res.on('finish', () => resolve(undefined));
          res.on('close', () => resolve(undefined));
          reply.on('close', () => {
            if (!reply.complete && !res.writableEnded) res.destroy();
          });
          reply.on('error', () => res.destroy());
        });
        current = out;
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
        // Only a 102 says so: any HTTP server may send a 100 Continue (or a 103) before it even read the request.
        out.on('information', (info) => {
          if (info.statusCode !== 102) return;
          answered = true;
          clearTimeout(head);
        });
        out.on('error', (err: NodeJS.ErrnoException) => {
          clearTimeout(head);
          if (res.headersSent) {
            if (!res.writableEnded) res.destroy();
            return resolve(undefined);
          }
          if (!retry && !answered && !abandoned && out.reusedSocket && staleSocketErrors.has(err.code ?? '')) {
            this.log.debug(
              { owner, address: url.origin, err: err.message },
              'a kept-alive hop connection failed before the owner read the request: retried on a new one',
            );
            return attempt(true);
          }
          // After its 102 the owner acts on the request: the connection failing then loses its answer, not the request.
          const lost = answered ? new HopOutcomeUnknownError(`the connection failed after the owner took the hop (${err.message})`) : err;
          void failed(lost).then(() => resolve(undefined));
        });
        out.end(body);
      };
      attempt(false);
    });
    this.#inFlight.track(done, method !== 'GET', () => end());
    return done;
  }

  /**
   * Counts `work`, a request on its way to `forward` (its body read, its owner read again), as in flight from now: the
   * drain waits for it as for a hop already sent. Resolves as `work` does.
   */
  hold<T>(method: string | undefined, work: Promise<T>): Promise<T> {
    this.#inFlight.track(work, method !== 'GET', () => {});
    return work;
  }

  /**
   * Resolves once no forwarded request (nor one held on its way: `hold`) awaits its answer (a GET's stream does not
   * count), or at `deadline` (epoch ms). From then on nothing more is sent: `forward` answers 503 with Retry-After.
   */
  async settled(deadline: number): Promise<void> {
    await this.#inFlight.settled(deadline);
    this.#drained = true;
  }

  /**
   * The owner refused a hop as unauthenticated (another cluster.secret, clocks apart, no secret there): whether the
   * membership has it alive, when the refusal is logged as an error naming the likely cause (once a minute per
   * owner). A membership that cannot be read is taken as alive: a 503 the client retries, not its session dropped.
   */
  async #refusedByLiveOwner(owner: string, address: string, refusal: AuthRefusal): Promise<boolean> {
    const alive = await this.ownerAlive(owner).catch(() => true);
    if (alive) this.#refusals.refused(owner, address, refusal);
    return alive;
  }

  /** Ends what is still forwarded (streams, and requests past the drain: see `settled`), and closes the connections. */
  close(): void {
    this.#drained = true;
    this.#inFlight.endAll();
    this.#http.destroy();
    this.#https.destroy();
  }
}

/** What failed, for the client, without where: a socket error's message names the internal address (kept for the log). */
function whatFailed(err: NodeJS.ErrnoException): string {
  return err.code !== undefined && /^[A-Z][A-Z0-9_]*$/.test(err.code) ? err.code : 'the connection failed';
}

/**
 * 504, 503 or 502 with a JSON-RPC error (naming the request when the body is one): the owner may be alive, stalled or
 * briefly unreachable, so its session stands (504 and 503: the client may try again; 502: it must check first).
 */
function notAnswered(res: ServerResponse, status: 502 | 503 | 504, message: string, body: string, headers: Record<string, string> = {}): void {
  let id: RequestId | null = null;
  try {
    const parsed = JSON.parse(body) as { id?: unknown };
    if (typeof parsed?.id === 'string' || typeof parsed?.id === 'number') id = parsed.id;
  } catch {
    // A GET, a DELETE, or a batch: no one id to name.
  }
  const text = JSON.stringify(errorResponse(id, ErrorCode.UpstreamUnavailable, message));
  res.writeHead(status, { ...headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) }).end(text);
}
