import type { Direction } from '../core/direction.js';
import type { Identity } from '../core/identity.js';
import type { JsonRpcMessage, JsonRpcRequest, JsonRpcResponse, RequestId } from '../protocol/jsonrpc.js';

/**
 * The pipeline: an ordered list of stages, like an Envoy filter chain. A stage looks at one message in
 * context and answers with a verdict. Stages run in order for messages to the server and in reverse
 * order for messages to the client, so the stage closest to the server sees a response first.
 */

/** What a stage may know about the session; never the transport. */
export interface SessionInfo {
  readonly id: string;
  readonly connection: string;
  readonly identity: Identity;
  /**
   * Aborted when the client's request will never be answered by what the stage waits on: the client cancelled it
   * or the session ended. For stages that hold a request.
   */
  cancellation(requestId: RequestId): AbortSignal;
  /**
   * Asks the server something on the gateway's own behalf (a stage that must see the current tool list): the
   * request is recorded like any other but never reaches the client. Rejects on an error response or timeout.
   */
  requestUpstream(method: string, params?: Record<string, unknown>): Promise<Record<string, unknown>>;
}

export interface MessageContext {
  readonly session: SessionInfo;
  readonly direction: Direction;
  /** For a response: the request it answers, as its sender sent it (ids in the sender's numbering). */
  readonly request?: JsonRpcRequest;
}

export type Verdict =
  /**
   * Forward, with `message` replacing the original when a stage rewrote it. `sensitive` says the rewrite
   * removed something that must not be kept (masking): the recording then keeps only the original's digest.
   */
  | { readonly action: 'pass'; readonly message?: JsonRpcMessage; readonly sensitive?: boolean; readonly details?: Record<string, unknown> }
  /**
   * Reply to the sender and forward nothing. For a request, `message` is its response (same id); a
   * notification or response answered is simply not forwarded.
   */
  | { readonly action: 'answer'; readonly message?: JsonRpcResponse; readonly reason?: string; readonly details?: Record<string, unknown> }
  /** Decide later: the promise settles to a pass or an answer (how a review pauses a call). */
  | { readonly action: 'hold'; readonly until: Promise<Verdict>; readonly reason?: string };

export const pass: Verdict = Object.freeze({ action: 'pass' });

export interface Stage {
  readonly name: string;
  /** Returns undefined (or `pass`) to let the message through unchanged: the common, allocation-free case. */
  inspect(message: JsonRpcMessage, ctx: MessageContext): Verdict | undefined | Promise<Verdict | undefined>;
}

/** The outcome of running every stage. */
export type Outcome =
  | { readonly action: 'forward'; readonly message: JsonRpcMessage }
  | { readonly action: 'answer'; readonly message?: JsonRpcResponse };
