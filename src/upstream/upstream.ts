import type { Identity } from '../core/identity.js';
import type { VerdictEvent } from '../core/verdict-event.js';
import type { JsonRpcMessage, RequestId } from '../protocol/jsonrpc.js';

/**
 * The gateway's link to one upstream MCP server for one client session. Implementations wrap the
 * official SDK's client transports, which already speak each transport's rules (session headers,
 * SSE endpoints, resumption); the gateway relays raw messages over them.
 */
export interface Upstream {
  /**
   * The link hands messages to other Sessions of this gateway (a virtual server's members), which record each one
   * write-ahead before anything leaves the gateway: the session records what it sends, but need not wait for that to
   * be durable before handing it over (src/exchange/server-forwarding.ts says why this stays fail-closed).
   */
  readonly inProcess?: boolean;
  /** Spawns the process or prepares the HTTP client; rejects when the server cannot be reached. */
  start(): Promise<void>;
  /**
   * Sends `text`, the message's JSON exactly as recorded (write-ahead records it first; the server gets those
   * bytes). Rejects with an UpstreamError when the message could not be delivered. `traceparent`: the gateway's W3C
   * trace context for a request when tracing is on; an HTTP link sends it as the `traceparent` header, a 2026-07-28
   * link in the request's `_meta`, others ignore it.
   */
  send(message: JsonRpcMessage, text: string, traceparent?: string): Promise<void>;
  /**
   * The caller on the session now (a refreshed token, whose groups may have changed): a link that opens sessions
   * for them (a virtual server's member sessions) passes it on, so their access is decided by it too.
   */
  refreshIdentity?(identity: Identity): void;
  /** Transports that send the negotiated version as a header learn it here after initialize. */
  setProtocolVersion(version: string): void;
  /** Ends the upstream session (DELETE for HTTP, terminates the process for stdio). Idempotent. */
  close(): Promise<void>;
  /**
   * Backpressure: stop reading what the server sends (its pipe or socket fills and it waits on its write) until
   * `resume()`. Optional: the session ends a client's session at limits.clientBacklog's hard cap without it.
   */
  pause?(): void;
  resume?(): void;
  /** A message from the server, with its JSON text exactly as received. */
  onmessage?: (message: JsonRpcMessage, text: string) => void;
  /**
   * The link is gone for good: the process exited or the transport closed. `cutOff` says the server did not end
   * it: the way to it was lost mid-session (an agent's tunnel dropped), so the recording is sealed as cut off.
   */
  onclose?: (reason: string, cutOff?: boolean) => void;
  /**
   * The server stopped in the middle of a message (its process died, its connection broke): `partial` is what
   * had arrived of it, as text, and `reason` why it ended. The message itself is never delivered.
   */
  ontruncated?: (partial: string, reason: string) => void;
  /**
   * Requests, by the ids the server was sent, that the link can no longer get answers to (their response stream
   * broke and could not be resumed): the session answers them itself, as the gateway, never as the server.
   */
  onfailed?: (ids: RequestId[], reason: string) => void;
  /** A problem that does not by itself end the link (a stray line, a dropped stream). */
  onerror?: (error: Error) => void;
  /**
   * A decision the link took on a message it was sent, for the recording: a virtual server's route (which member
   * served a request, and under which name). `messageId` is the id the link was sent; the session records it
   * under the client's.
   */
  onverdict?: (event: VerdictEvent) => void;
  /** A line the server wrote to stderr (stdio servers only; it is logged either way). */
  onstderr?: (line: string) => void;
}

/** Why an upstream send failed; `sessionLost` means the server no longer knows the session. */
export class UpstreamError extends Error {
  constructor(
    message: string,
    readonly sessionLost: boolean,
    readonly status?: number,
  ) {
    super(message);
    this.name = 'UpstreamError';
  }
}
