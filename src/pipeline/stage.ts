import type { Direction } from '../core/direction.js';
import type { Identity } from '../core/identity.js';
import { isRequest, isResponse, type JsonRpcMessage, type JsonRpcRequest, type JsonRpcResponse, type RequestId } from '../protocol/jsonrpc.js';

/**
 * The pipeline: an ordered list of stages, like an Envoy filter chain. A stage looks at one message in
 * context and answers with a verdict. Stages run in order for messages to the server and in reverse
 * order for messages to the client, so the stage closest to the server sees a response first.
 *
 * The contract every stage keeps (src/pipeline/pipeline.ts runs it):
 * - **Lifetime.** A stage is built once per connection, when the gateway starts, and shared by every session
 *   (exchange) of that connection, concurrently: what it keeps between messages is per connection (a cache, a
 *   rate), and anything per session or per caller is read from `ctx.session`, never kept on the stage as "current".
 * - **Verdicts.** `pass` (possibly rewritten), `answer` (the sender gets the answer; nothing is forwarded), or
 *   `hold` (a promise that settles to one of those: how a review pauses a call). A stage may also return a
 *   promise of a verdict; a thrown error or a rejection refuses the message (its request gets an error).
 * - **Re-entry after a hold.** Time passes while a message to the server is held (a review can take minutes): once
 *   the hold settles to `pass`, the stages *before* the holding one run again on the message as it is now (the
 *   caller's groups today, a tool quarantined meanwhile), then the stages after it. A stage before a hold must
 *   therefore judge the same message twice consistently, and count it (rates, quotas) knowing it may see it again.
 * - **Ordering.** Messages of one session keep their order in each direction: a stage that goes asynchronous on a
 *   message to the client holds back the later ones to the client until it settles. To the server, a held request
 *   does not hold back the others (the client may cancel it, or send more while it waits).
 * - **What a stage sees.** A response comes with the request it answers (`ctx.request`, ids as its sender used them).
 *   A stage never sees HTTP, the recording or the transport; the recording sees every verdict.
 * - **Adding a stage** is one file in src/pipeline/ (or the feature's folder) plus one line where the gateway lists
 *   a connection's stages. A stage that cares only about tool calls and list results implements `StageHandlers`
 *   and sets `inspect = inspectWith(this)`, instead of re-deriving direction, method and `params.name` by hand.
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
  /**
   * Ends a client request the server is working on now: the client gets `response`, the server a cancellation (a
   * guardrail that refuses a call once the client's answer to the server's question is known).
   */
  refusePending(clientId: RequestId, response: JsonRpcResponse): void;
  /** Present when the session serves a member of a virtual server (src/virtual): its calls are that server's calls. */
  readonly virtual?: VirtualOrigin;
}

/** A member session's virtual server: its name, the virtual session it serves, and how its names are exposed there. */
export interface VirtualOrigin {
  readonly server: string;
  readonly session: string;
  /** The name a tool or prompt of this member has on the virtual server (prefixed or renamed). */
  exposed(kind: 'tool' | 'prompt', name: string): string;
}

export interface MessageContext {
  readonly session: SessionInfo;
  readonly direction: Direction;
  /** For a response: the request it answers, as its sender sent it (ids in the sender's numbering). */
  readonly request?: JsonRpcRequest;
  /**
   * For the client's answer to a server request (elicitation, sampling, roots): the client requests in flight when
   * the server asked (one of them asked for it; usually there is one), ids in the client's numbering.
   */
  readonly madeFor?: readonly JsonRpcRequest[];
  /**
   * Watches the stages at work on this message (tracing, src/telemetry); absent when nothing watches. The runner
   * tells it, never a stage: stages know nothing of it.
   */
  readonly trace?: StageTrace | undefined;
}

/** What the runner tells a watcher of one message's stages (times are `performance.now()`). */
export interface StageTrace {
  /** `stage` answered the message with `verdict` (a hold included), asked at `startedAt`. */
  stage(stage: string, verdict: Verdict, startedAt: number): void;
  /** `stage` held the message from `startedAt` until now, when the hold settled to `settled` (undefined: pass). */
  held(stage: string, reason: string | undefined, settled: Verdict | undefined, startedAt: number): void;
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

/** What a stage answers a message with; undefined (or `pass`) lets it through unchanged, the common, allocation-free case. */
export type StageVerdict = Verdict | undefined | Promise<Verdict | undefined>;

export interface Stage {
  readonly name: string;
  /** Looks at one message in context (see the contract above). */
  inspect(message: JsonRpcMessage, ctx: MessageContext): StageVerdict;
}

/** The lists a server answers, by the method that asks for them: the result key its items are under. */
const listKinds = {
  'tools/list': 'tools',
  'prompts/list': 'prompts',
  'resources/list': 'resources',
  'resources/templates/list': 'resourceTemplates',
} as const;

export type ListKind = (typeof listKinds)[keyof typeof listKinds];

/**
 * Typed conveniences: the messages most stages care about, already told apart. A handler left out lets those
 * messages through; `inspectWith` calls them without allocating anything per message.
 */
export interface StageHandlers<R extends StageVerdict = StageVerdict> {
  /** A `tools/call` on its way to the server. `tool`: its `params.name` when that is a string. */
  onToolCall?(request: JsonRpcRequest, tool: string | undefined, ctx: MessageContext): R;
  /** Any other request on its way to the server (not a notification, not a response to the server). */
  onRequest?(request: JsonRpcRequest, ctx: MessageContext): R;
  /** The server's result to a `tools/list`, `prompts/list`, `resources/list` or `resources/templates/list`, when its items are an array. */
  onList?(kind: ListKind, response: JsonRpcResponse, items: readonly unknown[], ctx: MessageContext): R;
}

/** An `inspect` that tells the message apart once and calls the stage's handlers (set it as `inspect = inspectWith(this)`). */
export function inspectWith<R extends StageVerdict>(handlers: StageHandlers<R>): (message: JsonRpcMessage, ctx: MessageContext) => R | undefined {
  return (message, ctx) => {
    if (ctx.direction === 'toServer') {
      if (!isRequest(message)) return undefined;
      if (message.method === 'tools/call' && handlers.onToolCall !== undefined) {
        const name = message.params?.name;
        return handlers.onToolCall(message, typeof name === 'string' ? name : undefined, ctx);
      }
      return handlers.onRequest?.(message, ctx);
    }
    const method = ctx.request?.method;
    if (handlers.onList === undefined || method === undefined || !isResponse(message) || message.result === undefined) return undefined;
    const kind = Object.hasOwn(listKinds, method) ? listKinds[method as keyof typeof listKinds] : undefined;
    if (kind === undefined) return undefined;
    const items = message.result[kind];
    return Array.isArray(items) ? handlers.onList(kind, message, items, ctx) : undefined;
  };
}

/** The outcome of running every stage. */
export type Outcome = { readonly action: 'forward'; readonly message: JsonRpcMessage } | { readonly action: 'answer'; readonly message?: JsonRpcResponse };
