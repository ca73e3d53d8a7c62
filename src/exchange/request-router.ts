import type { JsonRpcNotification, JsonRpcRequest, RequestId } from '../protocol/jsonrpc.js';
import { type PendingRequest, RequestIdMap } from './id-map.js';

/** A progress token as a map key: a string and a number that print alike are different tokens. */
function progressTokenOf(request: JsonRpcRequest): string | undefined {
  const meta = request.params?._meta as { progressToken?: unknown } | undefined;
  const token = meta?.progressToken;
  return typeof token === 'string' || typeof token === 'number' ? `${typeof token}:${token}` : undefined;
}

/**
 * Request-id routing for one session, both ways. The client's requests are renumbered for the server and the
 * server's for the client (so the gateway's own ids never collide with either side's); the progress tokens of the
 * client's pending requests are remembered; and a message from the server is told which client request it belongs to.
 */
export class RequestRouter {
  /** Client requests on their way to the server, by the id the server sees. */
  readonly #toServer = new RequestIdMap();
  /** Server requests on their way to the client, by the id the client sees. */
  readonly #toClient = new RequestIdMap();
  /** Progress tokens of pending client requests → the client's request id, to route progress to its stream. */
  readonly #progressTokens = new Map<string, RequestId>();

  /** A client request goes to the server: the id it travels under there. */
  toServer(request: JsonRpcRequest): number {
    const mappedId = this.#toServer.add(request);
    const token = progressTokenOf(request);
    if (token !== undefined) this.#progressTokens.set(token, request.id);
    return mappedId;
  }

  /** The client request the server knows as `serverId` is answered (or lost): taken out; undefined when not pending. */
  answered(serverId: RequestId | null): PendingRequest | undefined {
    const pending = this.#toServer.take(serverId);
    if (pending !== undefined) this.#forgetProgress(pending.request);
    return pending;
  }

  /** The client withdrew its request (cancelled it, or the gateway failed on it): taken out by the client's id. */
  withdrawn(clientId: RequestId): PendingRequest | undefined {
    const pending = this.#toServer.forget(clientId);
    if (pending !== undefined) this.#forgetProgress(pending.request);
    return pending;
  }

  /**
   * A client's notification on its way to the server: a `notifications/cancelled` of a request the server has
   * withdraws it and names it by the server's id (`withdrawn`: the client's id, whose stream may close); any other
   * notification is unchanged.
   */
  notificationToServer(n: JsonRpcNotification): { message: JsonRpcNotification; withdrawn?: RequestId } {
    if (n.method !== 'notifications/cancelled') return { message: n };
    const requestId = n.params?.requestId as RequestId | undefined;
    const pending = requestId === undefined ? undefined : this.withdrawn(requestId);
    if (pending === undefined) return { message: n };
    return { message: { ...n, params: { ...n.params, requestId: pending.mappedId } }, withdrawn: requestId! };
  }

  /** The client's id of a request pending at the server, by the id the server was sent; undefined when not pending. */
  clientIdOf(serverId: RequestId): RequestId | undefined {
    return this.#toServer.peek(serverId)?.originalId;
  }

  /** The id a still-pending client request was sent to the server with. */
  serverIdOf(clientId: RequestId): number | undefined {
    return this.#toServer.mappedIdOf(clientId);
  }

  /** A server request goes to the client: the id it travels under there. */
  toClient(request: JsonRpcRequest): number {
    // Made for one of the calls in flight (the only one, usually): guardrails judge its answer in their light.
    const inFlight = this.#toServer.requests();
    return this.#toClient.add(request, inFlight.length > 0 ? inFlight : undefined);
  }

  /** The server request the client answered, by the id the client knows: taken out; undefined when not pending. */
  answeredByClient(clientSideId: RequestId | null): PendingRequest | undefined {
    return this.#toClient.take(clientSideId);
  }

  /** The server request a client's response answers, and the client request it was made for; left pending (stages see the response in their light). */
  serverRequestOf(clientSideId: RequestId | null): { request: JsonRpcRequest; madeFor?: readonly JsonRpcRequest[] } | undefined {
    return this.#toClient.peek(clientSideId);
  }

  /** The server cancelled one of its requests to the client, by the server's id: taken out. */
  withdrawnByServer(serverId: RequestId): PendingRequest | undefined {
    return this.#toClient.forget(serverId);
  }

  /**
   * Which client request a server notification belongs to: progress by its token; a log message to the only request
   * in flight (servers log what a call is doing). Anything else (list_changed, resource updates) belongs to no
   * request and goes on the session's own stream.
   */
  relatedToNotification(n: JsonRpcNotification): RequestId | undefined {
    if (n.method === 'notifications/progress') {
      const token = n.params?.progressToken;
      if (typeof token === 'string' || typeof token === 'number') {
        const id = this.#progressTokens.get(`${typeof token}:${token}`);
        if (id !== undefined) return id;
      }
      return this.#toServer.single()?.originalId;
    }
    if (n.method === 'notifications/message') return this.#toServer.single()?.originalId;
    return undefined;
  }

  /** Which client request a server request (sampling, elicitation, roots) is made for: the call in flight, when only one is. */
  relatedToServerRequest(): RequestId | undefined {
    return this.#toServer.single()?.originalId;
  }

  /** Requests pending either way. */
  get pending(): number {
    return this.#toServer.size + this.#toClient.size;
  }

  /** The session ends: the client's pending requests (each still owed an answer), oldest first; everything forgotten. */
  drain(): PendingRequest[] {
    const owed = this.#toServer.drain();
    this.#toClient.drain();
    this.#progressTokens.clear();
    return owed;
  }

  #forgetProgress(request: JsonRpcRequest): void {
    const token = progressTokenOf(request);
    if (token !== undefined) this.#progressTokens.delete(token);
  }
}
