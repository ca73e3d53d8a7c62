import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { Replicas } from '../cluster/replicas.js';
import { httpMethod, logRefusal } from '../core/refusal-log.js';
import type { Caller } from '../edge/authenticate.js';
import { replyError } from '../edge/http-reply.js';
import { ErrorCode } from '../protocol/jsonrpc.js';

/**
 * What the HTTP server sends to another replica over the internal hop: a legacy session's request to the replica that
 * owns it, and, while this replica drains, a new session's opening to one that serves. And the answer a draining
 * replica gives when there is none.
 */
export interface ReplicaForwarding {
  forwardSession(req: IncomingMessage, res: ServerResponse, url: URL, connection: string, caller: Caller, id: unknown): Promise<void> | undefined;
  openElsewhere(req: IncomingMessage, res: ServerResponse, url: URL, connection: string, caller: Caller, body?: string): Promise<void>;
  shuttingDown(res: ServerResponse): void;
}

export function replicaForwarding(o: {
  replicas: Replicas | undefined;
  log: Logger;
  /** A request's body within the message size limit, or undefined once it was answered 413. */
  readWhole: (req: IncomingMessage, res: ServerResponse) => Promise<string | undefined>;
}): ReplicaForwarding {
  const { readWhole } = o;
  /**
   * A new 2025-era session while this replica drains: it would be cut off when the port closes seconds later, so it is
   * opened on a serving peer over the hop (as the owner's requests are forwarded), where the session id it gets names
   * that peer, so the client's later requests go there from any replica. With no serving peer (a single replica, or
   * the request came over the hop), 503 and Retry-After: by the retry the load balancer sends it elsewhere.
   */
  async function openElsewhere(req: IncomingMessage, res: ServerResponse, url: URL, connection: string, caller: Caller, body?: string): Promise<void> {
    const peer = o.replicas?.servingPeer(req);
    if (peer === undefined) {
      req.resume();
      logRefusal(
        o.log,
        { principal: caller.identity.subject, connection, method: httpMethod(req), reason: 'draining, no serving replica to open it on' },
        'new session refused while draining',
      );
      return shuttingDown(res);
    }
    const text = body ?? (await readWhole(req, res));
    if (text === undefined) return;
    await o.replicas!.forward(
      req,
      res,
      peer.id,
      peer.address,
      url.pathname + url.search,
      caller,
      text,
      (err) => {
        o.log.warn({ peer: peer.id, err: err.message }, 'the replica a new session was to open on could not be reached');
        shuttingDown(res);
      },
      'the gateway replica this new session was sent to (this one is shutting down)',
    );
  }

  /**
   * A legacy session's request (POST, GET stream, DELETE, a resumption; a 2024-11-05 SSE session's message POST, its
   * `id` from the query) for a session another live replica owns: sent there over the hop (a POST's body read here
   * first: the hop's signature covers it). A session whose owner is gone is answered 404 here, so that its client
   * initializes anew; one whose owner is alive but cannot be reached gets 503 (hop.ts), so that its client keeps it. Undefined: the session is this replica's (or unknown to all: the edge answers 404).
   */
  function forwardSession(req: IncomingMessage, res: ServerResponse, url: URL, connection: string, caller: Caller, id: unknown): Promise<void> | undefined {
    if (o.replicas === undefined || typeof id !== 'string') return undefined;
    const owner = o.replicas.ownerOfSession(id);
    const address = owner === undefined ? undefined : o.replicas.addressOf(owner, req);
    if (address === undefined) return undefined;
    const gone = () => {
      req.resume();
      replyError(res, 404, ErrorCode.SessionNotFound, 'Session not found: the gateway replica that held it is gone; initialize a new session');
    };
    return (async () => {
      // Not a live replica as last read: read again (rate-limited) before telling the client its session is gone.
      const to = address === 'gone' ? await o.replicas!.recheck(owner!) : address;
      if (to === 'gone') {
        const reason = 'the replica that held the session is gone';
        logRefusal(o.log, { principal: caller.identity.subject, connection, method: httpMethod(req), reason }, 'session of a replica that is gone', { owner });
        return gone();
      }
      let body = '';
      if (req.method === 'POST') {
        const read = await readWhole(req, res);
        if (read === undefined) return;
        body = read;
      }
      await o.replicas!.forward(req, res, owner!, to, url.pathname + url.search, caller, body, (err) => {
        o.log.warn({ owner, err: err.message }, 'the replica owning a session is gone: its address could not be reached or refused the hop');
        gone();
      });
    })();
  }

  /** 503 with Retry-After: this replica is shutting down, and a retry reaches one that is not. */
  function shuttingDown(res: ServerResponse): void {
    replyError(res, 503, ErrorCode.UpstreamUnavailable, 'Service Unavailable: this gateway is shutting down; retry', null, { 'retry-after': '5' });
  }

  return { forwardSession, openElsewhere, shuttingDown };
}
