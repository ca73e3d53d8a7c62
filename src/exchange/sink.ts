import type { JsonRpcMessage, RequestId } from '../protocol/jsonrpc.js';

/**
 * Where a session delivers messages for its client: implemented by each edge (a Streamable HTTP
 * session's streams, a legacy SSE stream, …). The session decides what belongs together; the edge
 * decides which wire it goes on.
 */
export interface ClientSink {
  /**
   * Delivers one message. `related` is the client's id of the request it belongs to: the request a
   * response answers, or the request a progress notification or a server request was made for, when known.
   * `text` is the message's JSON exactly as recorded: the edge writes these bytes and no others.
   */
  send(message: JsonRpcMessage, related: RequestId | undefined, text: string): void;
  /** The client's request will get no response (the client cancelled it): its stream may close. */
  abandon(clientId: RequestId): void;
  /**
   * The client's request is held (waiting for a review): its stream should show life until the answer comes
   * (an HTTP response switches to SSE, whose keep-alive comments then flow).
   */
  hold?(clientId: RequestId): void;
  /**
   * The client is another Session of this gateway (a virtual server's session, whose member this session is), which
   * records what it receives write-ahead before anything leaves the gateway: delivery need not wait for this
   * session's recording to be durable (src/exchange/client-delivery.ts says why this stays fail-closed).
   */
  readonly inProcess?: boolean;
  /** Whether the client can currently receive anything (an open stream); idle sessions without one are reaped. */
  readonly connected: boolean;
  /**
   * When the client last had a stream open (ms since the epoch): the end of its last one. Set only by an edge whose
   * client may leave without a word (Streamable HTTP); absent, the session is never taken as abandoned
   * (sessions.abandonedAfter). With `connected`, tells a client that has left from one between two streams.
   */
  readonly lastStreamAt?: number;
  /**
   * Bytes written toward the client that it has not read yet (its sockets' and responses' buffers): the session
   * pauses the server when this and what it holds itself grow past limits.clientBacklog.
   */
  readonly backlog?: number;
  /** The session is over: close every stream. */
  close(reason: string): void;
}

/** A sink for a session no edge has attached to yet: holds nothing, the session buffers nothing. */
export const detachedSink: ClientSink = {
  send() {},
  abandon() {},
  connected: false,
  close() {},
};
