import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { hopDeclinedHeader } from '../cluster/hop-auth.js';
import { isHopped } from '../cluster/hop.js';
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
  shuttingDown(req: IncomingMessage, res: ServerResponse): void;
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
   * that peer, so the client's later requests go there from any replica. The membership lags by up to a heartbeat: a
   * peer it still lists may be draining too, and declines (nothing acted on), so the next untried one is asked, with
   * a signature of its own. With none left (a single replica, all declined, or the request came over the hop: a
   * draining receiver declines it), 503 and Retry-After: by the retry the load balancer sends it elsewhere.
   */
  function openElsewhere(req: IncomingMessage, res: ServerResponse, url: URL, connection: string, caller: Caller, body?: string): Promise<void> {
    // In flight from now (its body still to read, a declining peer to try the next after): a drain waits for it.
    const opening = openOnServingPeer(req, res, url, connection, caller, body);
    return o.replicas === undefined ? opening : o.replicas.holdDrain(req, opening);
  }

  async function openOnServingPeer(req: IncomingMessage, res: ServerResponse, url: URL, connection: string, caller: Caller, body?: string): Promise<void> {
    const tried = new Set<string>();
    let text = body;
    for (;;) {
      const peer = o.replicas?.servingPeer(req, tried);
      if (peer === undefined) return noPeerTakes(req, res, connection, caller, [...tried]);
      text ??= await readWhole(req, res);
      if (text === undefined || res.destroyed) return;
      tried.add(peer.id);
      const outcome = await o.replicas!.forward(
        req,
        res,
        peer.id,
        peer.address,
        url.pathname + url.search,
        caller,
        text,
        (err) => {
          o.log.warn({ peer: peer.id, err: err.message }, 'the replica a new session was to open on could not be reached');
          shuttingDown(req, res);
        },
        { peer: 'the gateway replica this new session was sent to (this one is shutting down)', declinable: true },
      );
      if (outcome !== 'declined') return;
      o.replicas!.declinedAsDraining(peer.id);
      o.log.info({ peer: peer.id, connection }, 'a replica listed as serving declined a new session: it is draining too; trying another');
    }
  }

  /** The 503 of a new session no serving replica takes; `declined`: the peers that declined it as draining. */
  function noPeerTakes(req: IncomingMessage, res: ServerResponse, connection: string, caller: Caller, declined: string[]): void {
    req.resume();
    const reason = isHopped(req)
      ? 'draining, and the request came over the hop: declined'
      : declined.length === 0
        ? 'draining, no serving replica to open it on'
        : 'draining, and every serving replica declined: draining too';
    logRefusal(
      o.log,
      { principal: caller.identity.subject, connection, method: httpMethod(req), reason },
      'new session refused while draining',
      declined.length === 0 ? {} : { declined },
    );
    shuttingDown(req, res);
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
    // In flight from now (the owner read again, the body read): a drain beginning meanwhile waits for it.
    return o.replicas.holdDrain(
      req,
      (async () => {
        // Not a live replica as last read: read again (rate-limited) before telling the client its session is gone.
        const to = address === 'gone' ? await o.replicas!.recheck(owner!) : address;
        if (to === 'gone') {
          const reason = 'the replica that held the session is gone';
          logRefusal(o.log, { principal: caller.identity.subject, connection, method: httpMethod(req), reason }, 'session of a replica that is gone', {
            owner,
          });
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
      })(),
    );
  }

  /**
   * 503 with Retry-After: this replica is shutting down, and a retry reaches one that is not. To a hop, marked as a
   * decline (hop-auth.ts): it is answered before anything of the request was acted on, so its sender may try another.
   */
  function shuttingDown(req: IncomingMessage, res: ServerResponse): void {
    const declined = isHopped(req) ? { [hopDeclinedHeader]: 'draining' } : {};
    replyError(res, 503, ErrorCode.UpstreamUnavailable, 'Service Unavailable: this gateway is shutting down; retry', null, { 'retry-after': '5', ...declined });
  }

  return { forwardSession, openElsewhere, shuttingDown };
}
