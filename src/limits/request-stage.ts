import type { LimitedConnection } from './config.js';
import { ErrorCode, errorResponse, isNotification, isRequest, isResponse, type JsonRpcMessage, type RequestId } from '../protocol/jsonrpc.js';
import type { MessageContext, Stage, Verdict } from '../pipeline/stage.js';
import type { Direction } from '../core/direction.js';
import type { Limits } from './limits.js';

/**
 * The answers this stage gave to requests it refused. Such a request never took a place in flight, so its answer
 * gives none back: on the legacy SSE edge a client may reuse an id before its answer, and the place is that of an
 * earlier, admitted use of the id, still waiting at the server.
 */
const refusals = new WeakSet<JsonRpcMessage>();

/**
 * The first stage of every connection: admits each client request under the limits (rate, per tool, in flight),
 * or answers it with a RateLimited error, a verdict the session records like any other. The request's place
 * in flight is given back by RequestLimitsObserver when its answer reaches the client, the client cancels it, or
 * the session ends.
 */
export class RequestLimitsStage implements Stage {
  readonly name = 'limits';
  /** Requests already admitted: after a hold the stages before it run again on the same context, and must not count it twice. */
  readonly #admitted = new WeakSet<MessageContext>();
  /** Sessions whose opening initialize went by: any later one (a legacy SSE client may send more) is paced as a request. */
  readonly #initialized = new WeakSet<object>();

  constructor(
    private readonly limits: Limits,
    private readonly connection: LimitedConnection,
  ) {}

  inspect(message: JsonRpcMessage, ctx: MessageContext): Verdict | undefined {
    if (ctx.direction !== 'toServer' || !isRequest(message) || this.#admitted.has(ctx)) return undefined;
    const opening = message.method === 'initialize' && !this.#initialized.has(ctx.session);
    if (message.method === 'initialize') this.#initialized.add(ctx.session);
    // A member session of a virtual server: its virtual session's request was counted against the caller already.
    const member = ctx.session.virtual !== undefined;
    const refused = this.limits.admitRequest(ctx.session.id, this.connection, ctx.session.identity, message, !opening, member);
    if (refused === undefined) {
      this.#admitted.add(ctx);
      return undefined;
    }
    const data = { limit: refused.limit, value: refused.value, retryAfterSeconds: refused.retryAfterSeconds };
    const answer = errorResponse(message.id, ErrorCode.RateLimited, refused.message, data);
    refusals.add(answer);
    return { action: 'answer', message: answer, reason: refused.message, details: data };
  }
}

/** Gives back a request's place in flight when it is over for its client (a session observer). */
export class RequestLimitsObserver {
  constructor(private readonly limits: Limits) {}

  message(session: { id: string }, direction: Direction, boundary: 'received' | 'delivered', message: JsonRpcMessage): void {
    if (direction === 'toClient' && boundary === 'delivered' && isResponse(message) && message.id !== null && !refusals.has(message)) {
      this.limits.releaseRequest(session.id, message.id);
    } else if (direction === 'toServer' && boundary === 'received' && isNotification(message) && message.method === 'notifications/cancelled') {
      const id = message.params?.requestId;
      if (typeof id === 'string' || typeof id === 'number') this.limits.releaseRequest(session.id, id as RequestId);
    }
  }

  closed(session: { id: string }): void {
    this.limits.releaseSession(session.id);
  }
}
