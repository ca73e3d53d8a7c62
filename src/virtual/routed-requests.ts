import { isNotification, isRequest, type JsonRpcMessage, type JsonRpcRequest, type JsonRpcResponse, type RequestId } from '../protocol/jsonrpc.js';
import { unavailableAnswer } from './member-unavailable.js';

/**
 * The client's requests routed to one member that it has not answered, by the virtual session's id (unique in that
 * session, so their answers go back untouched), and what they are owed when the member fails.
 */
export class RoutedRequests {
  readonly #waiting = new Map<RequestId, JsonRpcRequest>();

  constructor(
    private readonly connection: string,
    private readonly server: string,
  ) {}

  add(request: JsonRpcRequest): void {
    this.#waiting.set(request.id, request);
  }

  has(id: RequestId): boolean {
    return this.#waiting.has(id);
  }

  /** The member answered it (or the client cancelled it): it waits no more. */
  settled(id: RequestId): void {
    this.#waiting.delete(id);
  }

  /** A message the client passes to the member: a cancellation settles the request it names. */
  passed(message: JsonRpcMessage): void {
    if (isNotification(message) && message.method === 'notifications/cancelled') this.settled(message.params?.requestId as RequestId);
  }

  /** The member failed: the error answer each request still waiting is owed; none waits afterwards. */
  failAll(reason: string): JsonRpcResponse[] {
    const waiting = [...this.#waiting.values()];
    this.#waiting.clear();
    return waiting.map((r) => unavailableAnswer(r.id, this.connection, this.server, reason));
  }

  clear(): void {
    this.#waiting.clear();
  }

  /**
   * A member session that ends answers the requests it still had with its own error ("Session ended before the server
   * answered: …"); a call routed to it is told what any call to a member that is down is told: the member is unavailable.
   */
  endedAnswer(message: JsonRpcMessage, text: string): { message: JsonRpcMessage; text: string } {
    if (isRequest(message) || isNotification(message)) return { message, text };
    const response = message as JsonRpcResponse;
    if (response.error === undefined || response.id === null || !this.#waiting.has(response.id)) return { message, text };
    const answer = unavailableAnswer(response.id, this.connection, this.server, response.error.message);
    return { message: answer, text: JSON.stringify(answer) };
  }
}
